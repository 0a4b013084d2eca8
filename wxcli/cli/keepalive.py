"""``wxcli keepalive``: check the session from cron; exit 0 alive, 3 expired."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext


@click.command()
@click.option("--ping", is_flag=True, help="Also send a short text to File Transfer (paced).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing; use the exit status.")
@click.pass_obj
def keepalive(app: AppContext, ping: bool, as_json: bool, quiet: bool) -> int:
    """Check that the session works (for cron: */5 * * * * wxcli keepalive).

    With `wxcli watch` running, its health record answers; otherwise a
    cheap live check that does not disturb syncing. Each run is recorded in
    keepalive.jsonl in the wxcli home; a session found dead triggers the
    session-lost alert once.

    Exit status: 0 alive, 3 not logged in or expired, 5 server unreachable.
    """
    from wxcli.alerts.engine import keepalive_alerts
    from wxcli.errors import ConfigError
    from wxcli.keepalive import keepalive as run_keepalive
    from wxcli.keepalive import log_session_lost

    try:
        alerts = keepalive_alerts(app.paths, app.config)
    except ConfigError as exc:  # the check itself must still run and report
        from wxcli.cli._output import warn

        warn(f"alerts are off: {exc}")
        alerts = None
    try:
        result = run_keepalive(
            app.paths,
            app.config,
            ping=ping,
            on_session_lost=alerts.session_lost if alerts else log_session_lost,
            on_watch_down=alerts.watch_down if alerts else None,
        )
        if alerts is not None:
            alerts.after(result)
    finally:
        if alerts is not None:
            alerts.close(timeout=30.0)
    if as_json:
        from wxcli.cli._output import emit_json

        emit_json(result.to_json())
    elif not quiet:
        if result.alive:
            line = f"alive (from {result.source})"
        elif result.alive is None:
            line = f"unknown: {result.problem}"
        elif not result.logged_in:
            line = "not logged in; run `wxcli login`"
        else:
            line = f"expired ({result.code}: {result.problem}); run `wxcli login`"
        if result.watch_running:
            line += f"; watch pid {result.watch_pid}"
            if result.watch_stale:
                line += " (stale: no health update recently)"
        if result.ping_msg_id:
            line += f"; ping sent (MsgID {result.ping_msg_id})"
        if result.ping_error:
            line += f"; ping failed: {result.ping_error}"
        click.echo(f"{app.profile}: {line}")
    return result.exit_code
