"""Delivery and gating: retries with back-off, digests, cooldowns (also across restarts), quiet
hours, the WeChat channel through the pacer, and the alert history on SQLite and MariaDB."""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.servers import Reply, SMTPServer, WebhookReceiver, free_port
from wxcli.alerts.channels import WebhookChannel
from wxcli.alerts.dispatcher import Dispatcher, make_digest
from wxcli.alerts.engine import AlertEngine, make_wechat_sender
from wxcli.alerts.history import (
    AlertHistoryStore,
    HistoryRecord,
    build_alert_models,
    ensure_schema,
    migrate_alert_history,
)
from wxcli.alerts.model import Alert, Attachment
from wxcli.alerts.rules import Sources
from wxcli.alerts.settings import parse_alert_settings
from wxcli.store.archive import Archive
from wxcli.watch.events import WatchEvent
from wxcli.watch.normalize import ChatMessage

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Asia/Shanghai


def alert(n: int = 1, kind: str = "keyword", **kw) -> Alert:
    values = dict(
        kind=kind,
        title=f"alert {n}",
        text=f"text {n}",
        fields={"chat": "客服1群", "history": f"wxcli history --chat x --since {n}"},
        key=f"k{n}",
        created_at=T0 + timedelta(seconds=n),
    )
    values.update(kw)
    return Alert(**values)


def row(text: str, sender: str = "张伟", chat: str = "客服1群", **kw) -> ChatMessage:
    values = dict(
        msg_id=hashlib.md5(f"{text}{sender}{chat}".encode()).hexdigest()[:12],
        chat_user="@@" + hashlib.md5(chat.encode()).hexdigest(),
        chat_kind="group",
        chat_name=chat,
        sender_user="@" + hashlib.md5(sender.encode()).hexdigest(),
        sender_name=sender,
        is_self=False,
        kind="text",
        msg_type=1,
        app_msg_type=0,
        text=text,
        created_at=T0,
        received_at=T0,
    )
    values.update(kw)
    return ChatMessage(**values)


@pytest.fixture
def archive(tmp_path):
    a = Archive(f"sqlite:///{tmp_path / 'a.db'}", tmp_path)
    yield a
    a.close()


class Clock:
    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def engine_for(section, hook_or_channels, *, archive=None, clock=None, **kw) -> AlertEngine:
    section = {"digest_seconds": 0, "retry_seconds": 0.01, **section}
    if isinstance(hook_or_channels, WebhookReceiver):
        section["channels"] = {"hook": {"type": "webhook", "url": hook_or_channels.url}}
    settings = parse_alert_settings(section)
    history = AlertHistoryStore(archive, "default") if archive is not None else None
    engine = AlertEngine.from_settings(
        settings,
        sources=Sources(archive=lambda: archive, state=history),
        history=history,
        clock=clock or Clock(),
        periodic=False,
        hostname="ops-host",
        **kw,
    )
    return engine


KEYWORD = {"kw": {"kind": "keyword", "words": ["退款"], "cooldown_minutes": 10}}


# --- retries -----------------------------------------------------------------------------------


def test_a_failing_channel_is_retried_with_back_off_until_it_delivers(archive):
    answers = iter([Reply(503, "busy"), Reply(502, "bad gateway"), Reply(200, "ok")])
    with WebhookReceiver(responder=lambda req: next(answers)) as hook:
        channel = WebhookChannel("hook", url=hook.url, timeout=2)
        d = Dispatcher(
            {"hook": channel},
            history=AlertHistoryStore(archive),
            retries=3,
            retry_seconds=0.1,
            digest_seconds=0,
        )
        d.submit(alert(1), rule="kw")
        assert d.flush(5)
        d.stop(2)
        times = [r for r in hook.requests]
    assert len(times) == 3
    [rec] = AlertHistoryStore(archive).query()
    assert (rec.status, rec.attempts, rec.error, rec.channel) == ("delivered", 3, "", "hook")
    assert d.results[-1].seconds >= 0.1 + 0.2  # back-off doubled between the attempts


def test_smtp_down_is_recorded_failed_with_the_exact_error(archive):
    port = free_port()
    settings = parse_alert_settings(
        {
            "retries": 2,
            "retry_seconds": 0.01,
            "digest_seconds": 0,
            "channels": {
                "mail": {
                    "type": "email",
                    "host": "127.0.0.1",
                    "port": port,
                    "security": "none",
                    "sender": "bot@example.com",
                    "to": ["ops@example.com"],
                }
            },
        }
    )
    history = AlertHistoryStore(archive)
    engine = AlertEngine.from_settings(settings, history=history, periodic=False)
    engine.dispatcher.submit(alert(1, kind="error"), rule="error")
    assert engine.dispatcher.flush(5)
    engine.stop(2)
    [rec] = history.query()
    assert (rec.status, rec.attempts) == ("failed", 2)
    assert rec.error == f"connection refused to 127.0.0.1:{port}"


def test_stop_cuts_back_off_short_and_records_the_failure(archive):
    with WebhookReceiver(status=500, body="down") as hook:
        d = Dispatcher(
            {"hook": WebhookChannel("hook", url=hook.url, timeout=2)},
            history=AlertHistoryStore(archive),
            retries=5,
            retry_seconds=30,
            digest_seconds=0,
        )
        d.submit(alert(1), rule="kw")
        hook.wait_for(1)
        started = time.monotonic()
        assert d.stop(timeout=1.5)
        took = time.monotonic() - started
    assert took < 3
    [rec] = AlertHistoryStore(archive).query()
    assert rec.status == "failed"
    assert rec.attempts == 1
    assert "webhook answered 500" in rec.error
    assert "shutting down" in rec.error


# --- digests -----------------------------------------------------------------------------------


def test_a_burst_becomes_one_digest_after_the_first_alert(archive):
    with WebhookReceiver() as hook:
        d = Dispatcher(
            {"hook": WebhookChannel("hook", url=hook.url)},
            history=AlertHistoryStore(archive),
            digest_seconds=0.8,
        )
        for n in range(1, 5):
            d.submit(alert(n), rule="kw")
        first = hook.wait_for(1)[0]
        assert first.json["title"] == "alert 1"  # the first goes out at once
        time.sleep(0.1)
        assert len(hook.requests) == 1  # the rest wait for the window to end
        assert d.flush(5)
        d.stop(2)
    [_, digest] = hook.requests
    body = digest.json
    assert body["kind"] == "digest"
    assert body["title"] == "[wxcli] default: 3 alerts (3 keyword)"
    assert [line for line in body["text"].splitlines() if line[0].isdigit()] == [
        "1. [02:00:02] alert 2",
        "2. [02:00:03] alert 3",
        "3. [02:00:04] alert 4",
    ]
    assert "wxcli history --chat x --since 3" in body["text"]
    records = AlertHistoryStore(archive).query()
    assert [r.title for r in records] == ["alert 1", "alert 2", "alert 3", "alert 4"]
    assert {r.status for r in records} == {"delivered"}
    assert records[0].digest == ""
    assert records[1].digest and len({r.digest for r in records[1:]}) == 1


def test_login_and_critical_alerts_never_wait_for_a_digest():
    png = b"\x89PNG fake"
    with WebhookReceiver() as hook:
        d = Dispatcher({"hook": WebhookChannel("hook", url=hook.url)}, digest_seconds=60)
        d.submit(alert(1), rule="kw")
        d.submit(alert(2), rule="kw")  # waits for the 60 s window
        d.submit(
            alert(3, kind="login_needed", attachments=[Attachment("qr.png", png, "image/png")]),
            rule="login_needed",
        )
        d.submit(alert(4, kind="watch_down", severity="critical"), rule="watch_down")
        got = hook.wait_for(3)
        assert [r.json["title"] for r in got] == ["alert 1", "alert 3", "alert 4"]
        assert got[1].json["attachments"][0]["sha256"] == hashlib.sha256(png).hexdigest()
        started = time.monotonic()
        assert d.stop(5)  # stopping sends the waiting digest at once
        assert time.monotonic() - started < 2
    assert [r.json["title"] for r in hook.requests][-1] == "alert 2"


def test_make_digest_counts_kinds_and_takes_the_worst_severity():
    a = [alert(1), alert(2, kind="negative", severity="critical"), alert(3)]
    d = make_digest(a, "shop")
    assert d.title == "[wxcli] shop: 3 alerts (2 keyword, 1 negative)"
    assert d.severity == "critical"
    assert d.fields["alerts"] == "3"


# --- cooldown and quiet hours ------------------------------------------------------------------


def test_cooldown_per_key_and_restored_after_a_restart(archive):
    clock = Clock()
    with WebhookReceiver() as hook:
        engine = engine_for({"rules": KEYWORD}, hook, archive=archive, clock=clock)
        engine.start()
        ev = WatchEvent("messages", {"rows": [row("我要退款")]})
        assert len(engine.handle(ev)) == 1
        clock.now += timedelta(minutes=5)
        assert engine.handle(ev) == []  # same chat + sender within 10 min
        other = WatchEvent("messages", {"rows": [row("退款！", sender="李四")]})
        assert len(engine.handle(other)) == 1  # another key
        assert engine.flush(5)
        engine.stop(5)

        # A new process (watch restarted, or keepalive) knows the cooldown from the history.
        clock.now += timedelta(minutes=4)
        again = engine_for({"rules": KEYWORD}, hook, archive=archive, clock=clock)
        assert again.handle(ev) == []
        clock.now += timedelta(minutes=2)  # 11 min after the first
        assert len(again.handle(ev)) == 1
        assert again.flush(5)
        again.stop(5)
    assert [r.json["fields"]["sender"] for r in hook.requests] == ["张伟", "李四", "张伟"]


def test_quiet_hours_record_the_alert_but_send_nothing(archive):
    rules = {"kw": {**KEYWORD["kw"], "quiet_hours": "09:00-12:00"}}  # T0 is 10:00 local
    with WebhookReceiver() as hook:
        engine = engine_for({"rules": rules}, hook, archive=archive)
        engine.start()
        assert engine.handle(WatchEvent("messages", {"rows": [row("我要退款")]})) == []
        engine.clock.now += timedelta(hours=3)  # 13:00: no longer quiet
        assert len(engine.handle(WatchEvent("messages", {"rows": [row("我要退款")]}))) == 1
        assert engine.flush(5)
        engine.stop(5)
    assert len(hook.requests) == 1
    statuses = [(r.status, r.channel) for r in AlertHistoryStore(archive).query()]
    assert statuses == [("quiet", ""), ("delivered", "hook")]


def test_rules_send_only_to_their_channels():
    with WebhookReceiver() as a, WebhookReceiver() as b:
        settings = {
            "channels": {
                "a": {"type": "webhook", "url": a.url},
                "b": {"type": "webhook", "url": b.url},
            },
            "rules": {
                "kw": {"kind": "keyword", "words": ["退款"], "channels": ["b"]},
                "all": {"kind": "keyword", "words": ["投诉"]},  # no channels: every channel
            },
        }
        engine = engine_for(settings, {})
        engine.handle(WatchEvent("messages", {"rows": [row("退款"), row("投诉", sender="李四")]}))
        assert engine.flush(5)
        engine.stop(5)
    assert [r.json["title"] for r in a.requests] == ["[wxcli] 客服1群: 李四 wrote “投诉”"]
    assert sorted(r.json["fields"]["rule"] for r in b.requests) == ["all", "kw"]


def test_the_sink_never_blocks_nor_raises_and_drops_unused_events():
    gate = threading.Event()
    with WebhookReceiver() as hook:
        engine = engine_for({"rules": KEYWORD}, hook)
        original = engine.handle

        def slow_handle(event, now=None):
            gate.wait(5)
            return original(event, now)

        engine.handle = slow_handle  # type: ignore[method-assign]
        engine.start()
        started = time.monotonic()
        for _ in range(100):
            engine.sink(WatchEvent("messages", {"rows": [row("我要退款")]}))
        engine.sink(WatchEvent("synced", {}))  # no rule reads it: not even queued
        engine.sink(WatchEvent("messages", {"rows": None}))  # garbage: the rule logs, no raise
        assert time.monotonic() - started < 0.5
        gate.set()
        assert engine.flush(10)
        engine.stop(5)
    assert len(hook.requests) == 1  # cooldown: one alert for the 100 identical messages


# --- WeChat ------------------------------------------------------------------------------------


def test_wechat_channel_sends_through_the_pacer_only_while_alive(sim, wx_home, tmp_path):
    from tests.helpers.send import logged_in

    profile = logged_in(sim, wx_home)
    alive = {"problem": None}
    sender = make_wechat_sender(profile.paths, profile.config, lambda: alive["problem"])
    settings = parse_alert_settings(
        {
            "digest_seconds": 0,
            "retries": 1,
            "channels": {"wx": {"type": "wechat", "to": "filehelper"}},
            "rules": {"kw": {"kind": "keyword", "words": ["退款"]}},
        }
    )
    archive = Archive(f"sqlite:///{tmp_path / 'a.db'}", tmp_path)
    history = AlertHistoryStore(archive)
    engine = AlertEngine.from_settings(
        settings, wechat_sender=sender, history=history, periodic=False
    )
    engine.handle(WatchEvent("messages", {"rows": [row("我要退款")]}))
    assert engine.flush(10)
    sent = [m for m in sim.control.sent() if "我要退款" in m.get("content", "")]
    assert len(sent) == 1
    assert sent[0]["to_user_name"] == "filehelper"
    assert "张伟 wrote “退款”" in sent[0]["content"]
    assert (profile.paths.pacer_state).exists()  # it went through the profile's pacer

    alive["problem"] = "the WeChat session is not usable (watch: session_lost)"
    engine.handle(WatchEvent("messages", {"rows": [row("退款", sender="李四")]}))
    engine.handle(WatchEvent("session_lost", {"code": 1101, "meaning": "m", "sid": "s"}))
    assert engine.flush(10)
    engine.stop(5)
    records = history.query()
    archive.close()
    assert [(r.rule, r.status) for r in records] == [
        ("kw", "delivered"),
        ("kw", "failed"),
    ]  # no session_lost rule configured here
    assert records[1].error == (
        "WeChat channel: the WeChat session is not usable (watch: session_lost)"
    )
    # A login alert is never tried on WeChat (it needs the session that was lost).
    d = Dispatcher(engine.dispatcher.channels, retries=1)
    result = d.deliver(alert(1, kind="session_lost"), "wx")
    assert result.status == "skipped"


# --- the history table -------------------------------------------------------------------------


def test_history_round_trip_migration_and_state(db_url, tmp_path):
    archive = Archive(db_url, tmp_path)
    try:
        migrate_alert_history(archive.m)  # as the central migration list will run it
        migrate_alert_history(archive.m)  # re-running is harmless
        ensure_schema(archive)
        store = AlertHistoryStore(archive, "shop")
        when = datetime(2026, 3, 2, 2, 0, 0, 123456, tzinfo=UTC)
        store.add(
            HistoryRecord(
                fired_at=when,
                rule="kw",
                kind="keyword",
                severity="warning",
                key="keyword:kw:客服1群:张伟" + "😀" * 200,  # cut to the indexable length
                title="标题 😀",
                channel="mail",
                status="failed",
                fields={"chat": "客服1群"},
                attempts=3,
                error="connection refused",
            )
        )
        store.add(
            HistoryRecord(
                fired_at=when + timedelta(minutes=1),
                rule="kw",
                kind="keyword",
                severity="warning",
                key="k2",
                title="t2",
                channel="mail",
                status="quiet",
            )
        )
        [first, second] = store.query(since=when - timedelta(seconds=1))
        assert first.fired_at == when  # microseconds kept (DATETIME(6) on MySQL)
        assert (first.title, first.fields, first.attempts, first.error) == (
            "标题 😀",
            {"chat": "客服1群"},
            3,
            "connection refused",
        )
        assert len(first.key) == 191
        assert second.status == "quiet"
        assert store.query(status="failed") == [first]
        assert store.query(since=when + timedelta(seconds=30)) == [second]
        fired = store.last_fired(when - timedelta(hours=1))
        assert fired == {("kw", first.key): when}  # quiet records start no cooldown
        assert store.get_state("x") is None
        store.set_state("x", "41")
        store.set_state("x", "42")
        assert store.get_state("x") == "42"
        am = build_alert_models(archive.db)
        assert am.AlertHistory.select().count() == 2
    finally:
        archive.close()


def test_history_waits_in_memory_while_there_is_no_database(tmp_path):
    holder: dict[str, Archive | None] = {"archive": None}
    store = AlertHistoryStore(lambda: holder["archive"], "default")
    rec = HistoryRecord(T0, "db", "error", "warning", "k", "database down", "mail", "delivered")
    assert store.add(rec) is False
    assert store.backlog == 1
    holder["archive"] = Archive(f"sqlite:///{tmp_path / 'a.db'}", tmp_path)
    try:
        later = HistoryRecord(T0, "db", "error", "info", "k2", "database back", "mail", "delivered")
        assert store.add(later) is True
        assert store.backlog == 0
        assert [r.title for r in store.query()] == ["database down", "database back"]
    finally:
        holder["archive"].close()


def test_email_carries_the_alert_and_history_shows_delivery(archive):
    with SMTPServer() as smtp:
        settings = parse_alert_settings(
            {
                "digest_seconds": 0,
                "channels": {
                    "mail": {
                        "type": "email",
                        "host": smtp.host,
                        "port": smtp.port,
                        "security": "none",
                        "sender": "bot@example.com",
                        "to": ["ops@example.com"],
                    }
                },
                "rules": KEYWORD,
            }
        )
        history = AlertHistoryStore(archive)
        engine = AlertEngine.from_settings(settings, history=history, periodic=False)
        engine.handle(WatchEvent("messages", {"rows": [row("我要退款，太慢了")]}))
        [msg] = smtp.wait_for(1)
        assert engine.flush(5)
        engine.stop(5)
    assert msg["Subject"] == "[wxcli] 客服1群: 张伟 wrote “退款”"
    assert "我要退款，太慢了" in msg.get_body(("plain",)).get_content()
    [rec] = history.query()
    assert (rec.status, rec.channel, rec.kind) == ("delivered", "mail", "keyword")
    assert rec.delivered_at is not None
