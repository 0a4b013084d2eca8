"""Alerts end to end: the simulator drives `watch`, alerts arrive at a real SMTP server and a
real webhook receiver, and the alert history lands in the archive."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.servers import SMTPServer, WebhookReceiver, dingtalk_responder, free_port
from tests.helpers.watch import RunningWatch, archive_for, count
from wxcli.alerts.engine import attach
from wxcli.alerts.history import AlertHistoryStore
from wxcli.errors import SESSION_CODE_MEANINGS

GROUP = "云帆Pro客服1群"
OTHER = "VIP客户群💎"


def configure(config, channels, rules=None, **scalars):
    """Put an [alert] section into an in-memory config, as the loader would."""
    config.raw["alert"] = {"channels": channels, "rules": rules or {}}
    config.data["alert"].update(
        {"digest_seconds": 0.0, "retry_seconds": 0.05, "check_seconds": 3600.0, **scalars}
    )


def email_spec(smtp, **extra):
    return {
        "type": "email",
        "host": smtp.host,
        "port": smtp.port,
        "security": "none",
        "sender": "wxcli <bot@example.com>",
        "to": ["ops@example.com"],
        "timeout": 3,
        **extra,
    }


def hook_spec(hook, preset="generic"):
    return {"type": "webhook", "url": hook.url, "preset": preset, "timeout": 3}


def history(db_url, home):
    archive = archive_for(db_url, home)
    try:
        return AlertHistoryStore(archive).query()
    finally:
        archive.close()


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'archive.db'}"


def test_logout_emails_session_lost_within_seconds(logged_in, sim, db, wx_home):
    paths, config, state = logged_in
    with SMTPServer() as smtp:
        configure(config, {"mail": email_spec(smtp)})  # no rules: the built-in health rules
        w = RunningWatch(paths, config, db)
        engine = attach(w.watcher)
        with w:
            w.until(lambda: w.watcher.health.state == "running")
            started = time.monotonic()
            sim.control.logout(1101)
            [msg] = smtp.wait_for(1, timeout=10)
            delay = time.monotonic() - started
            assert w.join() == 3
        assert engine.stop(10)
    print(f"\nsimulator logout → session_lost email received: {delay * 1000:.0f} ms")
    assert delay < 5
    assert msg["Subject"] == "[wxcli] default: WeChat session lost (1101)"
    assert msg["X-Wxcli-Kind"] == "session_lost"
    body = msg.get_body(("plain",)).get_content()
    assert SESSION_CODE_MEANINGS[1101] in body
    assert "wxcli login" in body
    assert state.nickname in body
    [row] = history(db, wx_home)
    assert (row.rule, row.kind, row.channel, row.status, row.attempts) == (
        "session_lost",
        "session_lost",
        "mail",
        "delivered",
        1,
    )
    assert row.fields["code"] == "1101"


def test_relogin_sends_the_new_qr_code(logged_in, sim, db, wx_home):
    paths, config, _state = logged_in
    sim.control.auto_confirm(False)
    # Make push login fail, so the relogin falls back to a QR code.
    sim.control.fault("http", endpoint="webwxpushloginurl", status=500, times=10)
    with SMTPServer() as smtp, WebhookReceiver(responder=dingtalk_responder()) as hook:
        configure(
            config,
            {"mail": email_spec(smtp), "ding": hook_spec(hook, "dingtalk")},
            qr_url_base="https://ops.example.com/wx/",
        )
        w = RunningWatch(paths, config, db, relogin=True)
        engine = attach(w.watcher)
        with w:
            w.until(lambda: w.watcher.health.state == "running")
            sim.control.logout(1100)
            mails = smtp.wait_for(2, timeout=15)
            posts = hook.wait_for(2, timeout=5)
            qr_png = paths.qr_png.read_bytes()
            sim.control.confirm()
            w.until(lambda: "relogin_ok" in w.kinds(), message="relogin")
        assert engine.stop(10)
    lost, qr = sorted(mails, key=lambda m: m["X-Wxcli-Kind"] != "session_lost")
    assert "a new QR code follows" in lost.get_body(("plain",)).get_content()
    assert qr["X-Wxcli-Kind"] == "login_needed"
    [attachment] = list(qr.iter_attachments())
    assert attachment.get_filename() == paths.qr_png.name
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_content() == qr_png  # the very PNG watch wrote
    text = qr.get_body(("plain",)).get_content()
    assert "within 4 min" in text
    assert "/l/" in text  # the QR's login URL, for clients that show no image
    qr_post = next(p for p in posts if "login_needed" in p.json["markdown"]["text"])
    md = qr_post.json["markdown"]["text"]
    assert "](https://ops.example.com/wx/login-qr.png?v=" in md  # an image link
    rows = {(r.rule, r.channel): r.status for r in history(db, wx_home)}
    assert rows == {
        ("session_lost", "mail"): "delivered",
        ("session_lost", "ding"): "delivered",
        ("login_needed", "mail"): "delivered",
        ("login_needed", "ding"): "delivered",
    }


def test_keyword_alert_has_message_sender_chat_and_history_pointer(logged_in, sim, db, wx_home):
    paths, config, _state = logged_in
    with WebhookReceiver() as hook:
        configure(
            config,
            {"hook": hook_spec(hook)},
            {
                "complaints": {
                    "kind": "keyword",
                    "channels": ["hook"],
                    "chats": ["云帆Pro客服*"],
                    "pattern": "退款|投诉|差评",
                }
            },
        )
        w = RunningWatch(paths, config, db)
        engine = attach(w.watcher)
        with w:
            c = sim.control
            c.message(group=OTHER, sender="VIP-赵总", content="我要投诉")  # chat not matched
            c.message(group=GROUP, sender="张伟", content="今天天气不错")  # no keyword
            c.messages([{"self": True, "to": GROUP, "content": "退款已处理"}])  # our own reply
            mid = c.message(group=GROUP, sender="张伟", content="音箱坏了，我要退款！")
            w.until(lambda: count(db, wx_home) >= 4)
            [post] = hook.wait_for(1, timeout=5)
            assert engine.flush(5)
        engine.stop(5)
    assert len(hook.requests) == 1
    alert = post.json
    assert alert["kind"] == "keyword"
    assert alert["text"] == "音箱坏了，我要退款！"
    f = alert["fields"]
    assert (f["chat"], f["sender"], f["matched"], f["message id"]) == (GROUP, "张伟", "退款", mid)
    assert f["history"].startswith(f"wxcli history --chat '{GROUP}' --since ")
    assert f["rule"] == "complaints"
    assert alert["title"] == f"[wxcli] {GROUP}: 张伟 wrote “退款”"


@pytest.fixture
def analysis_cache(request, tmp_path_factory):
    """Where jieba and the sentiment tables keep their caches: pytest's cache when there is
    one (shared with test_analysis), since building the tables takes ~10 s."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return cache.mkdir("wxcli-sentiment-tables")
    return tmp_path_factory.mktemp("sentiment-tables")


def test_negative_sentiment_from_the_analysis_worker(logged_in, sim, db, wx_home, analysis_cache):
    from wxcli.analysis.worker import AnalysisWorker

    paths, config, _state = logged_in
    with WebhookReceiver() as hook:
        configure(
            config,
            {"hook": hook_spec(hook)},
            {"mood": {"kind": "negative", "channels": ["hook"], "threshold": 0.2}},
        )
        w = RunningWatch(paths, config, db)
        engine = attach(w.watcher, periodic=False)
        with w:
            w.until(lambda: w.watcher.archive is not None)
            assert engine.check() == []  # first look: sets the mark, nothing old alerts
            c = sim.control
            c.message(group=GROUP, sender="张伟", content="谢谢，非常满意，很好用")
            c.message(
                group=OTHER, sender="马丽-星辰贸易", content="太差了，垃圾产品，非常失望，退货！"
            )
            w.until(lambda: count(db, wx_home) >= 2)
            archive = archive_for(db, wx_home)
            try:
                AnalysisWorker(archive, config, cache_dir=analysis_cache).drain()
            finally:
                archive.close()
            alerts = engine.check()
            assert engine.flush(5)
            assert engine.check() == []  # the mark moved on: no repeat
        engine.stop(5)
    [alert] = alerts
    [post] = hook.requests
    body = post.json
    assert body["kind"] == "negative"
    assert body["fields"]["sender"] == "马丽-星辰贸易"
    assert body["fields"]["chat"] == OTHER
    assert float(body["fields"]["sentiment"].split()[0]) < 0.2
    assert "垃圾产品" in body["text"]


def test_unanswered_after_n_minutes_unless_staff_answered(logged_in, sim, db, wx_home):
    paths, config, _state = logged_in
    with WebhookReceiver() as hook:
        configure(
            config,
            {"hook": hook_spec(hook)},
            {
                "waiting": {
                    "kind": "unanswered",
                    "channels": ["hook"],
                    "chats": ["云帆Pro客服*", "VIP*"],
                    "minutes": 15,
                }
            },
            staff=["客服-小王", "客服-小李"],
        )
        w = RunningWatch(paths, config, db)
        engine = attach(w.watcher, periodic=False)
        with w:
            c = sim.control
            c.message(group=GROUP, sender="张伟", content="请问怎么开发票？")
            c.message(group=GROUP, sender="张伟", content="在吗？")
            c.message(group=OTHER, sender="VIP-赵总", content="合同什么时候寄？")
            c.message(group=OTHER, sender="客服-小李", content="今天寄出")  # staff answered
            w.until(lambda: count(db, wx_home) >= 4)
            now = datetime.now(UTC)
            assert engine.check(now + timedelta(minutes=14)) == []  # not yet
            [alert] = engine.check(now + timedelta(minutes=16))
            assert engine.flush(5)
            assert engine.check(now + timedelta(minutes=30)) == []  # once per waiting message
        engine.stop(5)
    [post] = hook.requests
    f = post.json["fields"]
    assert (f["chat"], f["customer"], f["messages waiting"]) == (GROUP, "张伟", "2")
    assert f["waiting"].startswith("16 min")
    assert "请问怎么开发票？" in post.json["text"]
    assert alert.key.startswith("unanswered:waiting:")


def test_smtp_down_is_retried_recorded_failed_and_watch_keeps_running(logged_in, sim, db, wx_home):
    paths, config, _state = logged_in
    dead = free_port()
    configure(
        config,
        {
            "mail": {
                "type": "email",
                "host": "127.0.0.1",
                "port": dead,
                "security": "none",
                "sender": "bot@example.com",
                "to": ["ops@example.com"],
                "timeout": 2,
            }
        },
        {"kw": {"kind": "keyword", "channels": ["mail"], "words": ["投诉"]}},
        retries=3,
    )
    w = RunningWatch(paths, config, db)
    engine = attach(w.watcher)
    with w:
        sim.control.message(group=GROUP, sender="张伟", content="我要投诉")
        w.until(lambda: count(db, wx_home) >= 1)
        assert engine.flush(10)
        # The watch carries on archiving while alerts fail.
        sim.control.message(group=GROUP, sender="张伟", content="还在吗")
        w.until(lambda: count(db, wx_home) >= 2)
        assert w.thread.is_alive()
        assert w.watcher.health.state == "running"
    engine.stop(5)
    [row] = history(db, wx_home)
    assert (row.rule, row.channel, row.status, row.attempts) == ("kw", "mail", "failed", 3)
    assert row.error == f"connection refused to 127.0.0.1:{dead}"
    assert w.code == 0
