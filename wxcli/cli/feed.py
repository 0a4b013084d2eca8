"""``wxcli feed``: the sinks that receive every stored message (list, add, remove, test,
status, replay, resume). Sinks live in wxcli.toml under [feed.sinks.NAME]; `watch` runs them."""

from __future__ import annotations

from typing import Any

import click

from wxcli.cli._context import AppContext
from wxcli.errors import WxError


@click.group()
def feed() -> None:
    """Push every stored message to webhooks or Redis streams, at least once, in order."""


def _settings(app: AppContext) -> Any:
    from wxcli.feed.settings import load_feed_settings

    return load_feed_settings(app.config)


@feed.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sink.")
@click.pass_obj
def list_(app: AppContext, as_json: bool) -> None:
    """The configured sinks and what they receive."""
    from wxcli.cli._output import emit_json, markup_safe

    sinks = _settings(app).sinks
    if as_json:
        for s in sinks:
            emit_json({"name": s.name, **s.to_toml(), "target": s.where()})
        return
    if not sinks:
        click.echo("No feed sinks. Add one: wxcli feed add NAME URL", err=True)
        return
    for s in sinks:
        what = ", ".join(s.chats) or "all chats"
        kinds = ", ".join(s.kinds) or "all kinds"
        off = "" if s.enabled else " (disabled)"
        extra = "".join(
            f"; {note}"
            for note, on in (
                ("not our own", s.exclude_self),
                ("no roster events", not s.roster),
                (f"signed ({s.secret_env})", bool(s.secret_env)),
            )
            if on
        )
        click.echo(markup_safe(f"{s.name}: {s.where()}{off} — {what}; {kinds}{extra}"))


@feed.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--secret-env", help="Env var holding the webhook's HMAC key.")
@click.option("--chat", "chats", multiple=True, help="Only these chats (globs); repeatable.")
@click.option("--kind", "kinds", multiple=True, help="Only these message kinds; repeatable.")
@click.option("--exclude-self", is_flag=True, help="Leave out the account's own messages.")
@click.option("--no-roster", is_flag=True, help="Leave out join/leave/rename events.")
@click.option("--stream", help="Redis stream key [wxcli:messages].")
@click.option("--maxlen", type=int, help="Redis stream length bound [100000].")
@click.option("--password-env", help="Env var holding the Redis password.")
@click.option("--replace", is_flag=True, help="Overwrite a sink of that name.")
@click.option("--db", "db_url", help="Database URL.")
@click.pass_obj
def add(
    app: AppContext,
    name: str,
    url: str,
    secret_env: str | None,
    chats: tuple[str, ...],
    kinds: tuple[str, ...],
    exclude_self: bool,
    no_roster: bool,
    stream: str | None,
    maxlen: int | None,
    password_env: str | None,
    replace: bool,
    db_url: str | None,
) -> None:
    """Add a sink: an http(s):// URL is a webhook, redis:// a Redis stream. It receives
    messages stored from now on (`wxcli feed replay` sends older ones)."""
    from wxcli.feed.settings import FeedConfigFile, kind_of_url, parse_sink

    spec_in: dict[str, Any] = {"kind": kind_of_url(url), "url": url}
    for key, value in (
        ("secret_env", secret_env), ("stream", stream), ("maxlen", maxlen),
        ("password_env", password_env),
    ):  # fmt: skip
        if value is not None:
            spec_in[key] = value
    if chats:
        spec_in["chats"] = list(chats)
    if kinds:
        spec_in["kinds"] = list(kinds)
    if exclude_self:
        spec_in["exclude_self"] = True
    if no_roster:
        spec_in["roster"] = False
    f = FeedConfigFile(app.config_file)
    spec = parse_sink(name, spec_in, str(f.path))
    f.add(spec, replace=replace)
    f.save()
    try:
        from wxcli.cli._archive import open_archive
        from wxcli.feed.cursors import load_cursor

        load_cursor(open_archive(app, db_url), name)
    except WxError as exc:  # the cursor is made by watch at its next start then
        click.echo(
            f"(the archive is not reachable now: {exc}; the cursor starts with watch)", err=True
        )
    click.echo(
        f"Sink {name!r} saved in {f.path}; `wxcli watch` delivers to it from its next start."
    )


@feed.command("remove")
@click.argument("name")
@click.option("--db", "db_url", help="Database URL.")
@click.pass_obj
def remove(app: AppContext, name: str, db_url: str | None) -> None:
    """Remove a sink and its cursor."""
    from wxcli.feed.settings import FeedConfigFile

    f = FeedConfigFile(app.config_file)
    f.remove(name)
    f.save()
    try:
        from wxcli.cli._archive import open_archive
        from wxcli.feed.cursors import drop_cursor

        drop_cursor(open_archive(app, db_url), name)
    except WxError as exc:  # a stale cursor row is harmless
        click.echo(f"(its cursor stays in the archive: {exc})", err=True)
    click.echo(f"Sink {name!r} removed.")


@feed.command("status")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per sink.")
@click.option("--db", "db_url", help="Database URL.")
@click.pass_obj
def status(app: AppContext, as_json: bool, db_url: str | None) -> None:
    """Each sink's cursor, lag (messages stored after it) and state."""
    from wxcli.cli._archive import open_archive
    from wxcli.cli._output import emit_json, markup_safe
    from wxcli.feed.cursors import all_cursors, backlog

    archive = open_archive(app, db_url)
    curs = all_cursors(archive)
    for s in _settings(app).sinks:
        c = curs.get(s.name)
        row = {
            "name": s.name,
            "target": s.where(),
            "lag": backlog(archive, c.message_id) if c else None,
            "delivered": c.delivered if c else 0,
            "state": "parked" if c and c.parked_at else ("new" if c is None else "ok"),
            "parked_reason": c.parked_reason if c else "",
        }
        if as_json:
            emit_json(row)
        else:
            extra = f" — {row['parked_reason']}" if row["parked_reason"] else ""
            click.echo(
                markup_safe(
                    f"{s.name}: {row['state']}, {row['lag'] or 0} behind, "
                    f"{row['delivered']} delivered{extra}"
                )
            )


@feed.command("resume")
@click.argument("name")
@click.option("--skip", is_flag=True, help="Move past the refused batch instead of re-sending it.")
@click.option("--db", "db_url", help="Database URL.")
@click.pass_obj
def resume(app: AppContext, name: str, skip: bool, db_url: str | None) -> None:
    """Deliver again to a sink that was parked after a refusal (4xx)."""
    from wxcli.cli._archive import open_archive
    from wxcli.feed import cursors
    from wxcli.feed.runner import next_batch

    spec = _settings(app).sink(name)
    archive = open_archive(app, db_url)
    cur = cursors.load_cursor(archive, name)
    assert cur is not None
    skip_to = None
    if skip:
        b = next_batch(archive, spec, cur, _settings(app).batch_size, 0.0)
        skip_to = (b.message_id, b.roster_id)
    cursors.resume(archive, name, skip_to=skip_to)
    click.echo(f"Sink {name!r} resumed" + (" past the refused batch." if skip else "."))


@feed.command("replay")
@click.argument("name")
@click.option("--since", required=True, help="7d, 12h, 2026-11-01 …")
@click.option("--until", help="Same forms as --since.")
@click.option("--db", "db_url", help="Database URL.")
@click.pass_obj
def replay(app: AppContext, name: str, since: str, until: str | None, db_url: str | None) -> None:
    """Send a range of stored messages to a sink again (its live cursor is not moved)."""
    from wxcli.cli._archive import open_archive
    from wxcli.feed.runner import replay as run_replay
    from wxcli.timeutil import parse_when, zone

    tz = zone(app.config.settings.analysis.timezone)
    settings = _settings(app)
    spec = settings.sink(name)
    n = run_replay(
        open_archive(app, db_url),
        spec,
        parse_when(since, tz),
        parse_when(until, tz, end=True) if until else None,
        batch_size=settings.batch_size,
    )
    click.echo(f"Sent {n} message(s) and event(s) to {name!r}.")


@feed.command("test")
@click.argument("name")
@click.pass_obj
def test(app: AppContext, name: str) -> None:
    """Send one test message to a sink and say whether it was taken."""
    from datetime import UTC, datetime

    from wxcli.feed.sinks import open_sink

    spec = _settings(app).sink(name)
    sink = open_sink(spec)
    now = datetime.now(UTC).isoformat()
    item = {"type": "test", "seq": 0, "msg_id": "wxcli-test", "chat": "", "kind": "test",
            "text": "wxcli feed test", "created_at": now}  # fmt: skip
    try:
        sink.deliver([item], [])
    finally:
        sink.close()
    click.echo(f"{name}: delivered to {spec.where()}.")
