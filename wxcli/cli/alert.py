"""``wxcli alert``: list, add and remove alert channels and rules (in wxcli.toml, comments kept),
send a test alert, and show the alert history."""

from __future__ import annotations

from typing import Any

import click

from wxcli.alerts.settings import RULE_KINDS
from wxcli.cli._context import AppContext
from wxcli.textutil import safe_text

PRESETS = ("generic", "dingtalk", "wecom", "feishu")


@click.group()
def alert() -> None:
    """Alerts by email, robot webhooks (DingTalk, WeCom, Feishu) or WeChat.

    \b
    Channels say where alerts go, rules say when:
      session_lost  login_needed  watch_down  silence
      error  keyword  negative  unanswered
    `wxcli watch` raises them; `wxcli keepalive` too when the session ends
    or watch is down. Settings live in wxcli.toml under [alert]; these
    commands edit it in place and keep your comments. With channels but
    no rules, the bot's own health is alerted (session, QR, watch, errors).
    """


# --- list --------------------------------------------------------------------------------------


@alert.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print channels and rules as JSON.")
@click.pass_obj
def list_(app: AppContext, as_json: bool) -> None:
    """Show the configured channels, rules and settings."""
    from wxcli.alerts.channels import build_channel
    from wxcli.alerts.settings import load_alert_settings, missing_secrets, placeholder_env
    from wxcli.errors import ConfigError

    s = load_alert_settings(app.config)
    env = placeholder_env(s.channels)
    unset = dict(missing_secrets(s.channels))
    channels: list[dict[str, Any]] = []
    for name, spec in s.channels.items():
        try:
            target = build_channel(name, spec, env).target
            problem = f"env var {unset[name]} is not set" if name in unset else ""
        except ConfigError as exc:
            target, problem = "", str(exc)
        channels.append(
            {"name": name, "type": spec.get("type", ""), "target": target, "problem": problem}
        )
    rules: list[dict[str, Any]] = [
        {
            "name": r.name,
            "kind": r.kind,
            "channels": list(r.channels) or ["(all)"],
            "settings": r.summary(),
            "built_in": r.implicit,
        }
        for r in s.rules
    ]
    general = {
        "config": str(app.config_file),
        "digest_seconds": s.digest_seconds,
        "retries": s.retries,
        "retry_seconds": s.retry_seconds,
        "working_hours": s.working_hours.text if s.working_hours else "always",
        "timezone": s.timezone,
        "staff": list(s.staff),
        "qr_url_base": s.qr_url_base,
    }
    if as_json:
        from wxcli.cli._output import emit_json

        emit_json({"settings": general, "channels": channels, "rules": rules})
        return
    click.echo(f"Config: {app.config_file}")
    if not channels:
        click.echo("No alert channels: alerts are off. Add one, e.g.")
        click.echo("  wxcli alert add-channel webhook ops --preset dingtalk --url URL")
        return
    click.echo("Channels:")
    width = max(len(c["name"]) for c in channels)
    for c in channels:
        note = f"  [{c['problem']}]" if c["problem"] else ""
        click.echo(f"  {c['name']:<{width}}  {c['type']:<7}  {c['target']}{note}")
    builtin = any(r["built_in"] for r in rules)
    click.echo("Rules:" + ("  (built-in defaults: no [alert.rules] configured)" if builtin else ""))
    width = max((len(r["name"]) for r in rules), default=4)
    for r in rules:
        click.echo(
            f"  {r['name']:<{width}}  {r['kind']:<12} → {', '.join(r['channels'])}"
            f"  ({r['settings']})"
        )
    click.echo(
        f"Digest {s.digest_seconds:g} s; {s.retries} attempt(s), first retry after "
        f"{s.retry_seconds:g} s; working hours {general['working_hours']} ({s.timezone}); "
        f"staff: {', '.join(s.staff) or '(only the account itself)'}"
    )


# --- add-channel -----------------------------------------------------------------------------


@alert.group("add-channel")
def add_channel() -> None:
    """Add a channel: email, webhook (generic, dingtalk, wecom, feishu) or wechat."""


def _save_channel(app: AppContext, name: str, spec: dict[str, Any], replace: bool) -> None:
    from wxcli.alerts.settings import AlertConfigFile, missing_secrets
    from wxcli.cli._output import warn

    f = AlertConfigFile(app.config_file)
    f.add_channel(name, spec, replace=replace)
    f.save()
    click.echo(f"Channel {name!r} saved in {f.path}. Try it: wxcli alert test {name}")
    for _name, var in missing_secrets({name: spec}):
        warn(f"environment variable {var} is not set here; set it where wxcli runs")


_replace = click.option("--replace", is_flag=True, help="Overwrite a channel of that name.")
_timeout = click.option("--timeout", type=float, help="Seconds per delivery attempt [10].")


@add_channel.command("email")
@click.argument("name")
@click.option("--host", required=True, help="SMTP server host name.")
@click.option("--port", type=int, help="Port [25 none, 587 starttls, 465 ssl].")
@click.option(
    "--security",
    type=click.Choice(["starttls", "ssl", "none"]),
    default="starttls",
    show_default=True,
    help="Transport security.",
)
@click.option("--username", help="SMTP user name (needs --password-env).")
@click.option("--password-env", help="Name of the env var that holds the SMTP password.")
@click.option("--sender", required=True, help='From address, e.g. "wxcli <bot@example.com>".')
@click.option("--to", "to", multiple=True, required=True, help="Recipient; repeatable.")
@click.option("--no-verify-tls", is_flag=True, help="Don't check the server certificate.")
@click.option("--ca-file", help="PEM file of a private CA to trust.")
@_timeout
@_replace
@click.pass_obj
def add_email(
    app: AppContext,
    name: str,
    host: str,
    port: int | None,
    security: str,
    username: str | None,
    password_env: str | None,
    sender: str,
    to: tuple[str, ...],
    no_verify_tls: bool,
    ca_file: str | None,
    timeout: float | None,
    replace: bool,
) -> None:
    """Email over SMTP (the password comes from an env var, never the file)."""
    spec: dict[str, Any] = {
        "type": "email",
        "host": host,
        "port": port,
        "security": security,
        "username": username,
        "password_env": password_env,
        "sender": sender,
        "to": list(to),
        "timeout": timeout,
        "verify_tls": False if no_verify_tls else None,
        "ca_file": ca_file,
    }
    _save_channel(app, name, spec, replace)


@add_channel.command("webhook")
@click.argument("name")
@click.option("--url", required=True, help="The webhook URL (robot URLs include their token).")
@click.option(
    "--preset",
    type=click.Choice(PRESETS),
    default="generic",
    show_default=True,
    help="Message format: generic JSON, or a DingTalk/WeCom/Feishu group robot.",
)
@click.option(
    "--secret-env", help="Env var holding the signing secret (DingTalk, Feishu, generic)."
)
@click.option(
    "--header", "headers", multiple=True, help='"Name: value" (generic only); repeatable.'
)
@_timeout
@_replace
@click.pass_obj
def add_webhook(
    app: AppContext,
    name: str,
    url: str,
    preset: str,
    secret_env: str | None,
    headers: tuple[str, ...],
    timeout: float | None,
    replace: bool,
) -> None:
    """An HTTP POST of JSON: generic, or a DingTalk / WeCom / Feishu group robot."""
    from wxcli.errors import UsageError

    parsed: dict[str, str] = {}
    for h in headers:
        key, sep, value = h.partition(":")
        if not sep or not key.strip():
            raise UsageError(f'--header {h!r}: use "Name: value"')
        parsed[key.strip()] = value.strip()
    spec: dict[str, Any] = {
        "type": "webhook",
        "url": url,
        "preset": preset,
        "secret_env": secret_env,
        "timeout": timeout,
        "headers": parsed or None,
    }
    _save_channel(app, name, spec, replace)


@add_channel.command("wechat")
@click.argument("name")
@click.option(
    "--to",
    default="filehelper",
    show_default=True,
    help="Group name or 'filehelper' (File Transfer); not a customer group.",
)
@_replace
@click.pass_obj
def add_wechat(app: AppContext, name: str, to: str, replace: bool) -> None:
    """A WeChat text through the live session (paced; not for session-loss alerts)."""
    _save_channel(app, name, {"type": "wechat", "to": to}, replace)


# --- add-rule / remove ---------------------------------------------------------------------


@alert.command("add-rule")
@click.argument("kind", type=click.Choice(RULE_KINDS), metavar="KIND")
@click.argument("name")
@click.option("--channel", "channels", multiple=True, help="Channel name; repeatable [all].")
@click.option("--chat", "chats", multiple=True, help="Chat name or glob (客服*); repeatable.")
@click.option("--pattern", help="keyword: a regular expression, e.g. '退款|投诉|差评'.")
@click.option("--word", "words", multiple=True, help="keyword: a word to look for; repeatable.")
@click.option("--include-self", is_flag=True, help="keyword: also the account's own messages.")
@click.option("--threshold", type=float, help="negative: sentiment below this (0-1).")
@click.option(
    "--minutes", type=float, help="watch_down/silence/unanswered: how many minutes count."
)
@click.option("--window-minutes", type=float, help="negative: judge the share in this window.")
@click.option("--share", type=float, help="negative: share of negative messages (0-1) [0.5].")
@click.option("--min-messages", type=int, help="negative/silence: messages needed [5].")
@click.option("--baseline-days", type=int, help="silence: days averaged for 'busy' [7].")
@click.option("--staff", multiple=True, help="unanswered: extra staff names; repeatable.")
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice(["sync", "database", "media", "send"]),
    help="error: only these failures; repeatable [all].",
)
@click.option("--cooldown", type=float, help="Minutes before the same alert repeats.")
@click.option("--quiet-hours", help='Don\'t send in these hours, e.g. "23:00-07:00".')
@click.option(
    "--severity",
    type=click.Choice(["info", "warning", "critical"]),
    help="Override the kind's severity (critical alerts skip the digest).",
)
@click.option("--disabled", is_flag=True, help="Add it switched off (enabled = false).")
@click.option("--replace", is_flag=True, help="Overwrite a rule of that name.")
@click.pass_obj
def add_rule(
    app: AppContext,
    kind: str,
    name: str,
    channels: tuple[str, ...],
    chats: tuple[str, ...],
    pattern: str | None,
    words: tuple[str, ...],
    include_self: bool,
    threshold: float | None,
    minutes: float | None,
    window_minutes: float | None,
    share: float | None,
    min_messages: int | None,
    baseline_days: int | None,
    staff: tuple[str, ...],
    sources: tuple[str, ...],
    cooldown: float | None,
    quiet_hours: str | None,
    severity: str | None,
    disabled: bool,
    replace: bool,
) -> None:
    """Add a rule of KIND named NAME.

    KIND is one of session_lost, login_needed, watch_down, silence, error,
    keyword, negative, unanswered (see `wxcli alert --help`).

    \b
    Examples:
      wxcli alert add-rule keyword complaints --channel ops --chat '客服*' \\
            --pattern '退款|投诉|差评'
      wxcli alert add-rule unanswered waiting --channel ops --chat '客服*' --minutes 15
      wxcli alert add-rule negative mood --channel ops --threshold 0.15
    """
    from wxcli.alerts.settings import AlertConfigFile

    spec: dict[str, Any] = {
        "kind": kind,
        "channels": list(channels),
        "chats": list(chats),
        "pattern": pattern,
        "words": list(words),
        "include_self": True if include_self else None,
        "threshold": threshold,
        "minutes": minutes,
        "window_minutes": window_minutes,
        "share": share,
        "min_messages": min_messages,
        "baseline_days": baseline_days,
        "staff": list(staff),
        "sources": list(sources),
        "cooldown_minutes": cooldown,
        "quiet_hours": quiet_hours,
        "severity": severity,
        "enabled": False if disabled else None,
    }
    f = AlertConfigFile(app.config_file)
    rule = f.add_rule(name, spec, replace=replace)
    f.save()
    where = ", ".join(rule.channels) if rule.channels else "every channel"
    click.echo(f"Rule {name!r} ({kind} → {where}) saved in {f.path}: {rule.summary()}")
    if not f.channels():
        from wxcli.cli._output import warn

        warn("no channel is configured yet: add one with `wxcli alert add-channel`")


@alert.command("remove")
@click.argument("name")
@click.pass_obj
def remove(app: AppContext, name: str) -> None:
    """Remove the channel or rule NAME."""
    from wxcli.alerts.settings import AlertConfigFile

    f = AlertConfigFile(app.config_file)
    what = f.remove(name)
    f.save()
    click.echo(f"Removed {what} {name!r} from {f.path}.")


# --- test ----------------------------------------------------------------------------------


@alert.command("test")
@click.argument("channel", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON lines.")
@click.pass_obj
def test(app: AppContext, channel: str | None, as_json: bool) -> int:
    """Send a real test alert to CHANNEL (or every channel) and report the outcome.

    Exit status 0 when every channel delivered, 1 when one failed (the
    exact reason is printed), 2 when the configuration is wrong.
    """
    import socket
    from datetime import UTC, datetime

    from wxcli.alerts.channels import build_channel
    from wxcli.alerts.dispatcher import DeliveryResult, Dispatcher
    from wxcli.alerts.engine import make_wechat_sender, open_history
    from wxcli.alerts.model import Alert
    from wxcli.alerts.settings import load_alert_settings
    from wxcli.errors import ConfigError, UsageError

    s = load_alert_settings(app.config)
    if not s.channels:
        raise UsageError("no alert channel is configured; add one with `wxcli alert add-channel`")
    names = list(s.channels)
    if channel is not None:
        if channel not in s.channels:
            raise UsageError(f"no channel named {channel!r} (channels: {', '.join(names)})")
        names = [channel]
    sender = make_wechat_sender(app.paths, app.config, lambda: None)
    path = str(app.config.path) if app.config.path else None
    built, broken = {}, {}
    for name in names:
        try:
            built[name] = build_channel(
                name, s.channels[name], wechat_sender=sender, config_path=path
            )
        except ConfigError as exc:
            broken[name] = str(exc)
    history = open_history(app.config, app.paths)
    dispatcher = Dispatcher(built, history=history, retries=1, profile=app.profile, tz=s.tz)
    host = socket.gethostname()
    failed = 0
    for name in names:
        now = datetime.now(UTC)
        if name in broken:
            result = DeliveryResult(name, "failed", 0, broken[name])
        else:
            ch = built[name]
            test_alert = Alert(
                kind="test",
                title=f"[wxcli] test alert from {host} ({app.profile})",
                text="If you can read this, the channel works. Sent by `wxcli alert test`.",
                fields={
                    "channel": name,
                    "target": ch.target,
                    "profile": app.profile,
                    "host": host,
                    "sent at": now.astimezone(s.tz).strftime("%Y-%m-%d %H:%M:%S"),
                },
                key=f"test:{name}",
                created_at=now,
                severity="info",
            )
            result = dispatcher.deliver(test_alert, name, rule="test", retries=1)
        failed += not result.ok
        if as_json:
            from wxcli.cli._output import emit_json

            emit_json(result.to_json())
        elif result.ok:
            click.echo(f"{name}: delivered in {result.seconds:.2f} s ({built[name].target})")
        else:
            click.echo(f"{name}: FAILED: {safe_text(str(result.error))}", err=True)
    if history is not None:
        history.close_thread()
    return 1 if failed else 0


# --- history -------------------------------------------------------------------------------


@alert.command("history")
@click.option("--since", default="7d", show_default=True, help="7d, 12h, 2026-11-01 …")
@click.option("--rule", help="Only alerts of this rule.")
@click.option(
    "--status",
    type=click.Choice(["delivered", "failed", "skipped", "quiet"]),
    help="Only alerts with this outcome.",
)
@click.option("--limit", default=100, show_default=True, type=int, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--db", "db_url", help="Database URL.")
@click.pass_obj
def history(
    app: AppContext,
    since: str,
    rule: str | None,
    status: str | None,
    limit: int,
    as_json: bool,
    db_url: str | None,
) -> None:
    """Every alert fired: when, which rule, to which channel, delivered or not (and why)."""
    from wxcli.alerts.history import AlertHistoryStore
    from wxcli.alerts.settings import load_alert_settings
    from wxcli.cli._archive import open_archive
    from wxcli.timeutil import parse_when

    tz = load_alert_settings(app.config).tz
    archive = open_archive(app, db_url)
    try:
        records = AlertHistoryStore(archive, app.profile).query(
            since=parse_when(since, tz),
            rule=rule,
            status=status,
            profile=app.profile,
            limit=limit,
        )
    finally:
        archive.close()
    if as_json:
        from wxcli.cli._output import emit_json

        for r in records:
            emit_json(r.to_json())
        return
    if not records:
        click.echo(f"No alerts since {since}.", err=True)
        return
    from rich.table import Table

    from wxcli.cli._output import markup_safe, out_console

    colours = {"delivered": "green", "failed": "red", "skipped": "yellow", "quiet": "dim"}
    table = Table(show_header=True, header_style="bold", expand=True)
    table.add_column("time", no_wrap=True, style="dim")
    table.add_column("rule", max_width=14, overflow="ellipsis")
    table.add_column("kind", no_wrap=True)
    table.add_column("channel", max_width=12, overflow="ellipsis")
    table.add_column("status", no_wrap=True)
    table.add_column("alert", ratio=1)
    for r in records:
        state = f"[{colours.get(r.status, 'white')}]{r.status}[/]"
        if r.attempts > 1:
            state += f" ×{r.attempts}"
        if r.digest:
            state += " (digest)"
        body = markup_safe(r.title)
        if r.error:
            body += f"\n[red]{markup_safe(r.error)}[/]"
        table.add_row(
            r.fired_at.astimezone(tz).strftime("%m-%d %H:%M:%S"),
            markup_safe(r.rule),
            r.kind,
            markup_safe(r.channel or "-"),
            state,
            body,
        )
    out_console().print(table)
