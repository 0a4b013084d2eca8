"""``wxcli apps``: API credentials for ``wxcli serve`` (add, list, revoke)."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext


@click.group()
def apps() -> None:
    """Manage the apps allowed to use the REST API (`wxcli serve`).

    Each app gets an id and a random key, shown once by `apps add`. The
    store (apps.json in the wxcli home, mode 0600) keeps only a one-way
    derivative of each key. Changes apply to a running server at once.
    """


@apps.command("add")
@click.argument("name")
@click.option(
    "--allow-to",
    "allow_to",
    multiple=True,
    metavar="PATTERN",
    help="Only chats whose name matches this glob (e.g. '客服*'), for sending and reading; "
    "repeatable. Default: every chat.",
)
@click.option("--read", "read", is_flag=True, help="May read messages, chats and stats.")
@click.option("--send", "send", is_flag=True, help="May send messages (the default scope).")
@click.option("--json", "as_json", is_flag=True, help="Print id and key as JSON.")
@click.pass_obj
def add(
    app: AppContext, name: str, allow_to: tuple[str, ...], read: bool, send: bool, as_json: bool
) -> None:
    """Create an app NAME and print its id and key (the key is shown only now).

    An app gets only the scopes it is given: --send (the default when
    neither is given) and/or --read. To change them, revoke and add again.
    """
    from wxcli.server.auth import AppStore

    scopes = [s for s, on in (("read", read), ("send", send)) if on] or ["send"]
    created = AppStore(app.paths.apps).add(name, allow_to, scopes)
    if as_json:
        from wxcli.cli._output import emit_json

        emit_json({**created.app.public(), "app_key": created.app_key})
        return
    a = created.app
    click.echo(f"App:      {a.name}")
    click.echo(f"App id:   {a.app_id}")
    click.echo(f"App key:  {created.app_key}")
    click.echo(f"Scopes:   {', '.join(a.scopes)}")
    click.echo(f"Chats:    {', '.join(a.allow_to) if a.allow_to else 'every chat'}")
    click.echo("")
    click.echo("Store the key now: it is not shown again. Use it as")
    click.echo(f"  Authorization: Bearer {a.app_id}:<app key>")


@apps.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def list_apps(app: AppContext, as_json: bool) -> None:
    """List apps (ids and allow-lists; keys are never shown)."""
    from wxcli.server.auth import AppStore

    found = AppStore(app.paths.apps).list()
    if as_json:
        from wxcli.cli._output import emit_json

        for a in found:
            emit_json(a.public())
        return
    if not found:
        click.echo("No apps yet. Create one with `wxcli apps add NAME`.", err=True)
        return
    width = max(len(a.name) for a in found)
    for a in found:
        allowed = ", ".join(a.allow_to) if a.allow_to else "*"
        scopes = ",".join(a.scopes)
        click.echo(
            f"{a.name:<{width}}  {a.app_id}  {a.created_at}  scopes: {scopes}  allow-to: {allowed}"
        )


@apps.command("revoke")
@click.argument("name")
@click.pass_obj
def revoke(app: AppContext, name: str) -> None:
    """Delete app NAME (or its app id); its key stops working at once."""
    from wxcli.server.auth import AppStore

    gone = AppStore(app.paths.apps).revoke(name)
    click.echo(f"Revoked {gone.name} ({gone.app_id}).", err=True)
