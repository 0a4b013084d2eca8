"""``wxcli sim``: run the protocol simulator in the foreground."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback).")
@click.option("--port", default=8765, show_default=True, type=int, help="Port; 0 = any free.")
@click.option(
    "--scenario",
    type=str,
    help="TOML/JSON world + timeline file, or a built-in name (company).",
)
@click.option("--auto-confirm", is_flag=True, help="The phone scans and confirms every QR.")
@click.option("--rate", type=float, help="Generate customer chatter at this many msgs/s.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of names and chatter.")
@click.option(
    "--hold",
    type=float,
    help="Seconds synccheck/login polls hold when idle [default: 25, like WeChat].",
)
def sim(
    host: str,
    port: int,
    scenario: str | None,
    auto_confirm: bool,
    rate: float | None,
    seed: int,
    hold: float | None,
) -> None:
    """Run a local Web WeChat simulator for trying wxcli without an account.

    \b
    It answers like WeChat's web servers and is driven through a control
    API under /_sim/ (see the README). Point wxcli at it with:
        WXCLI_LOGIN_URL=http://127.0.0.1:8765 wxcli login
    """
    from wxcli.simulator.foreground import run_foreground

    run_foreground(
        host=host,
        port=port,
        scenario=scenario,
        auto_confirm=auto_confirm,
        rate=rate,
        seed=seed,
        hold=hold,
        say=lambda line: click.echo(line, err=True),
    )
