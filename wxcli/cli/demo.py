"""``wxcli demo``."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext


@click.command()
@click.option("--duration", default=20.0, show_default=True, type=float, help="Seconds to watch.")
@click.option("--rate", default=3.0, show_default=True, type=float, help="Chatter, msgs/s.")
@click.option("--keep", is_flag=True, help="Add to the previous demo archive instead of a new one.")
@click.option("--no-alerts", is_flag=True, help="Skip the alerts part (and the final logout).")
@click.pass_obj
def demo(app: AppContext, duration: float, rate: float, keep: bool, no_alerts: bool) -> None:
    """Try wxcli without WeChat: simulator + login + watch + analysis, then a summary.

    Runs the built-in simulator with a customer-service company (several
    groups, staff, customers who ask, complain and thank), logs in, archives
    everything into a demo SQLite database under $WXCLI_HOME/demo, and
    analyses it. Alerts (complaint keywords, unhappy customers, customers left
    waiting) go to a local receiver and are shown as they fire; at the end the
    simulated phone logs the session out, which raises the session-lost alert.
    Afterwards `wxcli history`, `wxcli stats` and `wxcli alert history` show
    the demo archive until you have a real one.
    """
    import logging

    from wxcli.cli._output import err_console, out_console
    from wxcli.demo import run_demo

    wx_log = logging.getLogger("wxcli")
    previous_level = wx_log.level
    if not app.verbose:
        # The demo narrates what happens itself; log lines would repeat each alert.
        wx_log.setLevel(logging.CRITICAL)
    con = err_console()
    status = con.status("starting the simulator…")
    status.start()

    def progress(stage: str, info: dict) -> None:
        if stage == "simulator":
            status.update(f"simulator at {info['url']}; logging in…")
        elif stage == "login":
            status.stop()
            con.print(
                f"Logged in as [bold]{info['nickname']}[/] ({info['groups']} groups); "
                f"watching for {duration:.0f} s…"
            )
            status.start()
        elif stage == "progress":
            status.update(f"watching… {info['stored']} messages archived")
        elif stage == "analysis":
            status.update("segmenting and scoring (the first run builds model caches)…")
        elif stage == "alert":
            con.print(f"[yellow]alert[/] {info.get('title', '')}", markup=True, highlight=False)
        elif stage == "logout":
            con.print("The simulated phone now logs the session out…")

    try:
        result = run_demo(
            app.home,
            duration=duration,
            rate=rate,
            keep=keep,
            alerts=not no_alerts,
            progress=progress,
        )
    finally:
        status.stop()
        wx_log.setLevel(previous_level)
    out = out_console()
    out.print(
        f"\n[bold]Archived {result.stored} messages[/] in {result.seconds:.0f} s "
        f"into {result.db_path} ({result.media_done} images stored)."
    )
    from rich.table import Table

    chats = Table(title="Messages per chat", show_edge=False)
    chats.add_column("chat")
    chats.add_column("messages", justify="right")
    for name, n in result.per_chat[:8]:
        chats.add_row(name, str(n))
    out.print(chats)
    out.print("Kinds: " + ", ".join(f"{k} {n}" for k, n in result.per_kind))
    if result.top_words:
        words = "  ".join(f"{w} {n}" for w, n in result.top_words)
        out.print(f"Top words: {words}")
    for chat, sender, text, score in result.negatives:
        out.print(f"Unhappy ({score:.2f}) in {chat} — {sender}: {text}", markup=False)
    if result.alerts:
        kinds: dict[str, int] = {}
        for a in result.alerts:
            kinds[a.get("kind", "?")] = kinds.get(a.get("kind", "?"), 0) + 1
        out.print("Alerts: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    out.print(
        "\nNext: [bold]wxcli history --chat '云帆*'[/], [bold]wxcli stats words[/], "
        "[bold]wxcli stats report --html report.html[/], [bold]wxcli alert history[/]"
    )
