"""``wxcli login`` and ``wxcli logout``."""

from __future__ import annotations

from pathlib import Path

import click

from wxcli.cli._context import AppContext


class TerminalLoginEvents:
    """Shows the QR code and the login progress on stderr."""

    def __init__(self, qr_png: Path | None, show_qr: bool = True):
        from wxcli.cli._output import err_console

        self.console = err_console()
        self.qr_png = qr_png
        self.show_qr = show_qr
        self.pushing = False

    def qr_ready(self, uuid: str, url: str) -> None:
        from wxcli.fileutil import atomic_write_bytes
        from wxcli.qr import qr_png, qr_terminal

        if self.qr_png is not None:
            atomic_write_bytes(self.qr_png, qr_png(url), mode=0o600)
            self.console.print(f"QR code written to {self.qr_png}")
        if self.show_qr:
            self.console.print(qr_terminal(url), highlight=False, markup=False)
        self.console.print("[bold]Scan this QR code with WeChat on your phone[/] (waiting…)")

    def push_sent(self) -> None:
        self.pushing = True
        self.console.print("Confirm the login on your phone (no scan needed)…")

    def push_failed(self, reason: str) -> None:
        from rich.markup import escape

        self.pushing = False
        self.console.print(
            f"[yellow]Push login did not work ({escape(reason)}); using a QR code.[/]"
        )

    def scanned(self, avatar: str) -> None:
        if self.pushing:
            self.console.print("The phone shows the prompt; tap [bold]Log In[/] there…")
        else:
            self.console.print("[cyan]Scanned.[/] Now tap [bold]Log In[/] on the phone…")

    def confirmed(self) -> None:
        self.console.print("[green]Confirmed.[/] Loading…")

    def qr_expired(self) -> None:
        self.console.print("[yellow]The QR code expired; here is a new one.[/]")

    def loading(self, what: str) -> None:
        self.console.print(f"  loading {what}…")


@click.command()
@click.option(
    "--qr-png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the QR code as a PNG image to this file.",
)
@click.option("--timeout", type=float, help="Give up after this many seconds [default: 300].")
@click.option(
    "--desktop-mode/--no-desktop-mode",
    default=None,
    help="Log in as the UOS desktop client (default from config: on).",
)
@click.option("--no-push", is_flag=True, help="Always show a QR code; skip push login.")
@click.option("--no-qr", is_flag=True, help="Don't draw the QR code in the terminal.")
@click.pass_obj
def login(
    app: AppContext,
    qr_png: Path | None,
    timeout: float | None,
    desktop_mode: bool | None,
    no_push: bool,
    no_qr: bool,
) -> None:
    """Log in by scanning a QR code with WeChat on your phone.

    If this profile was logged in before, the phone is first asked to
    confirm without scanning (push login); otherwise, or if that fails, a QR
    code is shown. The session is saved (0600) in the wxcli home for every
    other command. The login URL never leaves this machine.
    """
    from wxcli import account

    events = TerminalLoginEvents(qr_png, show_qr=not no_qr)
    state = account.login(
        app.paths,
        app.config,
        events,
        timeout=timeout,
        desktop_mode=desktop_mode,
        push=not no_push,
    )
    friends, groups = account.contact_counts(state)
    click.echo(
        f"Logged in as {state.nickname} (uin {state.uin}): {friends} friends, {groups} groups."
    )


@click.command()
@click.pass_obj
def logout(app: AppContext) -> None:
    """Log out of Web WeChat and delete this profile's session file."""
    from wxcli import account

    if account.logout(app.paths, app.config):
        click.echo("Logged out.")
    else:
        click.echo("Not logged in.")
