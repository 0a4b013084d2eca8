"""``wxcli history``."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext
from wxcli.protocol.content import MESSAGE_KINDS as KINDS


@click.command()
@click.option("--chat", "chats", multiple=True, help="Chat name or glob (客服*); repeatable.")
@click.option("--from", "sender", help="Only messages from this person (name or remark).")
@click.option("--since", help="7d, 12h, 2026-11-01 … (in [analysis] timezone).")
@click.option("--until", help="Same forms as --since.")
@click.option("--grep", help="Only messages containing this text.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS), help="Message kind.")
@click.option("--limit", default=50, show_default=True, type=int, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--db", "db_url", help="Database URL.")
@click.pass_obj
def history(
    app: AppContext,
    chats: tuple[str, ...],
    sender: str | None,
    since: str | None,
    until: str | None,
    grep: str | None,
    kinds: tuple[str, ...],
    limit: int,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Read the archive: the latest messages matching the filters."""
    from wxcli.cli._archive import open_archive
    from wxcli.cli._output import emit_json, out_console
    from wxcli.store.history import query_history
    from wxcli.timeutil import parse_when, zone

    tz = zone(app.config.settings.analysis.timezone)
    archive = open_archive(app, db_url)
    rows = list(
        query_history(
            archive,
            chats=chats,
            sender=sender,
            since=parse_when(since, tz) if since else None,
            until=parse_when(until, tz, end=True) if until else None,
            grep=grep,
            kinds=kinds,
            limit=limit,
        )
    )
    if as_json:
        for r in rows:
            emit_json(r.to_json())
        return
    if not rows:
        click.echo("No messages match.", err=True)
        return
    from rich.table import Table

    from wxcli.cli._output import markup_safe

    table = Table(show_header=True, header_style="bold", expand=True, show_lines=False)
    table.add_column("time", no_wrap=True, style="dim")
    table.add_column("chat", max_width=18, overflow="ellipsis")
    table.add_column("sender", max_width=16, overflow="ellipsis")
    table.add_column("message", ratio=1)
    for r in rows:
        body = r.text or r.title
        if r.kind not in ("text", "system"):
            label = f"[{r.kind}]"
            body = f"{label} {body}".strip()
            if r.media_url:
                body += f" {r.media_url}"
        body = markup_safe(body, multiline=True)  # text from WeChat: no markup, no escapes
        if r.revoked:
            body = f"[strike]{body}[/strike] [red](recalled)[/]"
        if r.sentiment is not None and r.sentiment < 0.3:
            body += f" [red]({r.sentiment:.2f})[/]"
        when = r.created_at.astimezone(tz).strftime("%m-%d %H:%M:%S")
        table.add_row(when, markup_safe(r.chat), markup_safe(r.sender), body)
    out_console().print(table)
