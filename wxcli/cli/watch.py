"""``wxcli watch``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from wxcli.cli._context import AppContext


@click.command()
@click.option("--db", "db_url", help="Database URL [default: [database] url, else SQLite in home].")
@click.option("--duration", type=float, help="Stop after this many seconds (for scripts).")
@click.option("--once", is_flag=True, help="Fetch what is pending now, then exit.")
@click.option("--no-analysis", is_flag=True, help="Don't start the analysis worker.")
@click.option("--no-media", is_flag=True, help="Don't download images.")
@click.option("--relogin", is_flag=True, help="On session loss, log in again instead of exiting 3.")
@click.option(
    "--qr-png",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where --relogin writes the QR code [default: $WXCLI_HOME/login-qr.png].",
)
@click.option("--serve", is_flag=True, help="Also run the REST API ([serve] host/port).")
@click.pass_obj
def watch(
    app: AppContext,
    db_url: str | None,
    duration: float | None,
    once: bool,
    no_analysis: bool,
    no_media: bool,
    relogin: bool,
    qr_png: Path | None,
    serve: bool,
) -> int:
    """Archive every message of every chat, until stopped (Ctrl-C or SIGTERM).

    Messages go to the database in batches, each in one transaction with the
    sync position, so restarts neither lose nor duplicate anything. If the
    database is down, batches are spooled to disk and replayed later.
    Exit status 3 when WeChat ends the session (unless --relogin).
    """
    from wxcli import account
    from wxcli.watch.loop import Watcher, WatchOptions

    options = WatchOptions(
        db_url=db_url,
        duration=duration,
        once=once,
        analysis=False if no_analysis else None,
        media=False if no_media else None,
        relogin=True if relogin else None,
        serve=True if serve else None,
        qr_png=qr_png,
    )
    paths, config = app.paths, app.config
    watcher = Watcher(
        paths,
        config,
        options,
        client_factory=lambda state: account.make_client(config, state),
        login=lambda events: account.login(paths, config, events),
    )
    if watcher.serve:
        watcher.add_service(lambda: _rest_api(app))
    from wxcli.alerts.engine import attach

    alerts = attach(watcher)  # None without [alert.channels]; ConfigError if they are wrong
    if not (duration or once):
        click.echo(f"Watching as profile {app.profile!r}; Ctrl-C to stop.", err=True)
    try:
        code = watcher.run()
    finally:
        if alerts is not None:
            # A session-lost alert raised just before exit 3 must still go out.
            alerts.stop(timeout=30.0)
    s = watcher.stats
    click.echo(
        f"Stored {s.stored} messages ({s.duplicates} duplicates ignored"
        f"{f', {s.spooled} spooled' if s.spooled else ''}).",
        err=True,
    )
    return code


def _rest_api(app: AppContext) -> Any:
    """The REST shim of ``--serve`` on ``[serve] host``/``port`` (started by watch)."""
    from wxcli.server import start_server

    s = app.config.settings.serve
    return start_server(app.paths, app.config, s.host, s.port)
