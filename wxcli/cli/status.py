"""``wxcli status``."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext
from wxcli.errors import EXIT_OK, EXIT_SESSION


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-check", is_flag=True, help="Don't contact the server; report the saved state.")
@click.pass_obj
def status(app: AppContext, as_json: bool, no_check: bool) -> int:
    """Show who is logged in and whether the session works right now.

    Exit status 0 when the session is alive, 3 when not logged in or expired,
    5 when the server could not be reached to tell (4 when it answered nonsense).
    """
    from wxcli import account
    from wxcli.cli._output import emit_json, human_duration, markup_safe, out_console
    from wxcli.errors import EXIT_NETWORK

    stale = app.config.settings.keepalive.stale_minutes * 60
    report = account.session_status(app.paths, app.config, live=not no_check, stale_after=stale)
    if as_json:
        emit_json(report.to_json())
    else:
        con = out_console()
        if not report.logged_in:
            con.print(f"Not logged in (profile {report.profile}). Run `wxcli login`.")
        else:
            alive = {True: "[green]alive[/]", False: "[red]expired[/]", None: "[yellow]unknown[/]"}
            name = markup_safe(report.nickname)  # a nickname may spell [bold] or escapes
            con.print(f"Account:   {name} (uin {report.uin}, profile {report.profile})")
            when = report.login_time
            since = f"{when.astimezone():%Y-%m-%d %H:%M:%S %Z}" if when else "unknown"
            con.print(f"Logged in: {since} ({human_duration(report.session_age_seconds)} ago)")
            src = f" (from {report.alive_source})" if report.alive_source else ""
            con.print(f"Session:   {alive[report.alive]}{src}")
            if report.problem:
                con.print(f"           {report.problem}", markup=False)
            if report.alive is False:
                con.print("           run `wxcli login` to log in again", markup=False)
            con.print(f"Contacts:  {report.friends} friends, {report.groups} groups")
        if report.watch_running:
            h = report.health
            last = h.last_sync_at if h and h.last_sync_at else "never"
            con.print(f"Watch:     running (pid {report.watch_pid}), last sync {last}")
            if h:
                con.print(
                    f"           {h.messages_stored} messages stored, database {h.database}, "
                    f"queues {h.queues or {}}"
                )
                for line in outage_lines(h.outages):
                    con.print(f"           {line}", markup=False)
                for line in feed_lines(h.feed):  # one line per sink, however long: for grep
                    con.print(f"           {line}", markup=False, soft_wrap=True)
        elif report.logged_in:
            con.print("Watch:     not running")
    if not report.logged_in or report.alive is False:
        return EXIT_SESSION
    if report.alive is None and not no_check:
        return report.check_exit or EXIT_NETWORK
    return EXIT_OK


def feed_lines(feed: dict[str, dict]) -> list[str]:
    """One line per feed sink from the health record: state, lag (messages stored after its
    cursor, the backlog it still has to deliver) and why it is not delivering."""
    from wxcli.textutil import safe_text

    out = []
    for name, st in sorted((feed or {}).items()):
        why = st.get("parked_reason") or st.get("last_error") or ""
        err = f" ({safe_text(str(why))[:160]})" if why else ""
        hint = f"; `wxcli feed resume {safe_text(name)}`" if st.get("state") == "parked" else ""
        out.append(
            f"feed {safe_text(name)}: {st.get('state', '?')}, {st.get('lag', 0)} behind, "
            f"{st.get('delivered', 0)} delivered{err}{hint}"
        )
    return out


def outage_lines(outages: list[dict], last: int = 3) -> list[str]:
    """What happened during the last database outages, one line each."""
    from datetime import datetime

    lines = []
    for o in outages[-last:]:
        try:
            start = datetime.fromisoformat(str(o["started_at"])).astimezone()
        except (KeyError, ValueError):
            continue
        end = o.get("ended_at") or ""
        until = f"{datetime.fromisoformat(end).astimezone():%H:%M:%S}" if end else "now"
        what = f"{o.get('spooled', 0)} messages spooled"
        if end:
            what += f", {o.get('replayed', 0)} replayed"
        lines.append(
            f"database down {start:%Y-%m-%d %H:%M:%S}–{until} ({o.get('seconds', 0)} s, "
            f"noticed by {o.get('noticed_by', '?')}): {what}; {o.get('error', '')}"
        )
    return lines
