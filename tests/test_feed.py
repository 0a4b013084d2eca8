"""The feed: sinks read the archive from their own cursors, deliver at least once and in order,
park on refusals and retry on failures (real archive, real webhook receiver, real Redis)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import uuid

import pytest

from tests.helpers.messages import msg
from tests.helpers.servers import WebhookReceiver
from tests.helpers.waiting import wait_until
from wxcli.feed import cursors
from wxcli.feed.runner import FeedRunner
from wxcli.feed.settings import FeedSettings, parse_sink
from wxcli.store.archive import Archive, Ingestor


@pytest.fixture
def archive(db_url, wx_home):
    a = Archive(db_url, wx_home)
    yield a
    a.close()


def _ingestor(a):
    return Ingestor(a, a.account_id(42, "me"), "sid", self_user="@me", self_nickname="me")


def _settings(*sinks):
    return FeedSettings(poll_seconds=0.05, retry_seconds=0.05, sinks=tuple(sinks))


def test_webhook_gets_new_messages_signed_once_in_order(archive, monkeypatch):
    ing = _ingestor(archive)
    ing.store([msg(1, "before the sink existed")], None)
    monkeypatch.setenv("FEED_SECRET", "s3cret")
    with WebhookReceiver() as rx:
        spec = parse_sink("tickets", {"url": rx.url, "secret_env": "FEED_SECRET"})
        cursors.load_cursor(archive, "tickets")  # created now: starts after message 1
        events = []
        runner = FeedRunner(archive, _settings(spec), lambda k, d: events.append(k))
        runner.start()
        try:
            ing.store(
                [msg(i, f"第{i}条 " + "长" * (100_000 if i == 3 else 1)) for i in range(2, 6)], None
            )
            wait_until(lambda: sum(len(json.loads(r.body)["messages"]) for r in rx.requests) >= 4)
        finally:
            runner.stop()
        got = [m for r in rx.requests for m in json.loads(r.body)["messages"]]
        assert [m["msg_id"] for m in got] == ["5002", "5003", "5004", "5005"]
        assert len(got[1]["text"]) > 100_000  # stored and sent whole
        r0 = rx.requests[0]
        want = hmac.new(b"s3cret", r0.body, hashlib.sha256).hexdigest()
        assert r0.headers["X-Wxcli-Signature"] == f"sha256={want}"
        assert r0.headers["Idempotency-Key"]
        cur = cursors.load_cursor(archive, "tickets")
        assert cur.delivered == 4 and cur.parked_at is None
        assert events == []


def test_a_refusing_webhook_is_parked_with_an_alert_and_loses_nothing(archive):
    ing = _ingestor(archive)
    with WebhookReceiver(status=400, body={"error": "bad"}) as rx:
        spec = parse_sink("crm", {"url": rx.url})
        cursors.load_cursor(archive, "crm")
        events = []
        runner = FeedRunner(archive, _settings(spec), lambda k, d: events.append((k, d)))
        runner.start()
        try:
            ing.store([msg(1, "一"), msg(2, "二")], None)
            wait_until(lambda: any(k == "feed_parked" for k, _ in events))
        finally:
            runner.stop()
        assert len(rx.requests) == 1  # not retried forever
        cur = cursors.load_cursor(archive, "crm")
        assert cur.parked_at is not None and "HTTP 400" in cur.parked_reason
        assert cur.delivered == 0  # the cursor did not move: resume re-sends
        assert cursors.resume(archive, "crm")
    with WebhookReceiver() as rx2:
        spec = parse_sink("crm", {"url": rx2.url})
        runner = FeedRunner(archive, _settings(spec), lambda k, d: None)
        runner.start()
        try:
            wait_until(lambda: rx2.requests)
        finally:
            runner.stop()
        assert [m["msg_id"] for m in json.loads(rx2.requests[0].body)["messages"]] == [
            "5001",
            "5002",
        ]


def test_5xx_is_retried_until_it_is_taken(archive):
    ing = _ingestor(archive)
    answers = iter([503, 500, 502])

    def responder(request):
        from tests.helpers.servers import Reply

        return Reply(next(answers, 200), b"")

    with WebhookReceiver(responder=responder) as rx:
        spec = parse_sink("hook", {"url": rx.url})
        cursors.load_cursor(archive, "hook")
        events = []
        runner = FeedRunner(archive, _settings(spec), lambda k, d: events.append(k))
        runner.start()
        try:
            ing.store([msg(1, "重试")], None)
            wait_until(lambda: cursors.load_cursor(archive, "hook").delivered == 1)
        finally:
            runner.stop()
        assert len(rx.requests) == 4
        bodies = {json.loads(r.body)["batch"] for r in rx.requests}
        assert len(bodies) == 1  # the very same batch each time
        assert events == ["feed_failing", "feed_recovered"]


def _redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), 1).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="needs redis-server on 127.0.0.1:6379")
def test_redis_stream_gets_every_message_for_a_consumer_group(archive):
    import redis

    stream = f"wxcli-test:{uuid.uuid4().hex}"
    r = redis.Redis()
    ing = _ingestor(archive)
    spec = parse_sink(
        "stream", {"url": "redis://127.0.0.1:6379/0", "stream": stream, "maxlen": 1000}
    )
    cursors.load_cursor(archive, "stream")
    runner = FeedRunner(archive, _settings(spec), lambda k, d: None)
    runner.start()
    try:
        ing.store([msg(i, f"m{i}") for i in range(1, 21)], None)
        wait_until(lambda: r.xlen(stream) >= 20)
    finally:
        runner.stop()
    r.xgroup_create(stream, "team", id="0")
    got = r.xreadgroup("team", "c1", {stream: ">"}, count=100)[0][1]
    ids = [fields[b"msg_id"].decode() for _, fields in got]
    assert ids == [str(5000 + i) for i in range(1, 21)]
    assert json.loads(got[0][1][b"json"])["text"] == "m1"
    r.delete(stream)


def test_feed_cli_add_list_status_remove(wx_home, tmp_path, capsys):
    from tests.helpers.cli import run_cli

    db = f"sqlite:///{tmp_path / 'a.db'}"
    code, out, err = run_cli(
        capsys, "feed", "add", "hook", "https://example.com/x", "--chat", "客服*",
        "--exclude-self", "--secret-env", "HOOK_KEY", "--db", db,
    )  # fmt: skip
    assert code == 0, err
    assert (wx_home / "wxcli.toml").stat().st_mode & 0o777 == 0o600
    code, out, err = run_cli(capsys, "feed", "list")
    assert "hook" in out and "客服*" in out
    assert "not our own" in out and "signed (HOOK_KEY)" in out
    code, out, err = run_cli(capsys, "feed", "status", "--json", "--db", db)
    assert json.loads(out.splitlines()[0])["lag"] == 0
    code, out, err = run_cli(capsys, "feed", "add", "bad", "ftp://x")
    assert code == 2 and "Traceback" not in err
    code, out, err = run_cli(capsys, "feed", "remove", "hook", "--db", db)
    assert code == 0, err
    code, out, err = run_cli(capsys, "feed", "replay", "nope", "--since", "1d")
    assert code == 2 and "no feed sink" in err


def test_while_messages_flow_a_sink_finds_new_rows_long_before_poll_seconds(archive):
    """poll_seconds is how long a quiet sink sleeps; once it is delivering, a cheap probe
    finds each new row within ~FAST_POLL_SECONDS, and wake() cuts any sleep short."""
    import time

    ing = _ingestor(archive)
    with WebhookReceiver() as rx:
        spec = parse_sink("hook", {"url": rx.url})
        cursors.load_cursor(archive, "hook")
        settings = FeedSettings(poll_seconds=30.0, retry_seconds=0.05, sinks=(spec,))
        ing.store([msg(1, "一")], None)
        runner = FeedRunner(archive, settings, lambda k, d: None)
        runner.start()  # the first look is at once
        try:
            wait_until(lambda: len(rx.requests) == 1, timeout=5)
            t = time.monotonic()
            ing.store([msg(2, "二")], None)
            wait_until(lambda: len(rx.requests) == 2, timeout=5)
            assert time.monotonic() - t < 5  # not the 30 s poll
        finally:
            runner.stop()
        # a fresh runner is not "busy": it sleeps the whole poll unless woken
        runner = FeedRunner(archive, settings, lambda k, d: None)
        runner.start()
        try:
            wait_until(lambda: runner.workers[0].status.state == "ok")
            ing.store([msg(3, "三")], None)
            runner.wake()  # what the writer can call after a commit
            wait_until(lambda: len(rx.requests) == 3, timeout=5)
        finally:
            t = time.monotonic()
            runner.stop()
            assert time.monotonic() - t < 2  # stop cuts the 30 s sleep short too
    got = [m["msg_id"] for r in rx.requests for m in json.loads(r.body)["messages"]]
    assert got == ["5001", "5002", "5003"]


def test_the_feeds_lean_read_returns_exactly_the_history_rows(archive):
    """cursors.messages_after reads only the payload's columns; it must give the very rows (and
    so the very payloads) history.messages_after gives, on both back-ends."""
    import dataclasses

    from wxcli.store.history import MessageFilter, last_row_id
    from wxcli.store.history import messages_after as history_after

    ing = _ingestor(archive)
    ing.store(
        [
            msg(1, "普通消息 😀", mentions=["张伟", "李娜"], raw='{"MsgId": "5001"}'),
            msg(2, "", kind="image", msg_type=3, media="image", chat="@@g2", chat_name="VIP群"),
            dataclasses.replace(msg(3, "我发的", sender="@me", name="me"), is_self=True),
            msg(4, '"张伟" 撤回了一条消息', kind="recall", msg_type=10002, recall_of="5001"),
            msg(5, "链接", kind="link", msg_type=49, title="标题" * 300, url="https://x.example/a"),
        ],
        None,
    )
    M, S = archive.m.Message, archive.m.MessageScore
    S.insert(message=M.get(M.msg_id == "5001").id, sentiment=0.123456789).execute()
    M.update(revoked=True).where(M.msg_id == "5001").execute()
    top = last_row_id(archive)
    for f in (
        MessageFilter(),
        MessageFilter(chats=("VIP*",)),
        MessageFilter(kinds=("text", "link")),
        MessageFilter(exclude_self=True),
        MessageFilter(chat_ids=(M.get(M.msg_id == "5002").chat_id,)),
        MessageFilter(chat_ids=()),
    ):
        for after, limit in ((0, 100), (1, 2)):
            lean = cursors.messages_after(archive, after, top, f, limit)
            assert lean == history_after(archive, after, f, limit, upto=top), (f, after)
    rows = cursors.messages_after(archive, 0, top, MessageFilter(), 100)
    assert [r.media_status for r in rows][:2] == ["", "pending"]
    assert (
        rows[0].sentiment == 0.123456789
        and rows[0].revoked
        and rows[0].mentions == ["张伟", "李娜"]
    )
    assert rows[2].is_self is True and rows[0].created_at.tzinfo is not None


def test_a_sink_that_is_behind_commits_its_cursor_about_once_a_second_and_on_stop(archive):
    """Catching up, each batch is acknowledged but the cursor is committed at most every
    SAVE_EVERY_SECONDS (on SQLite every commit queues behind watch's writer); a caught-up batch
    and stopping commit at once, so a clean stop resends nothing."""
    from tests.helpers.servers import Reply

    ing = _ingestor(archive)
    committed = []  # the cursor in the database as each request arrives

    def responder(request):
        committed.append(cursors.load_cursor(archive, "hook").message_id)
        return Reply(200, b"")

    with WebhookReceiver(responder=responder) as rx:
        spec = parse_sink("hook", {"url": rx.url, "batch_size": 5})
        start = cursors.load_cursor(archive, "hook").message_id
        ing.store([msg(i, f"m{i}") for i in range(1, 51)], None)
        settings = FeedSettings(poll_seconds=0.05, retry_seconds=0.05, sinks=(spec,))
        runner = FeedRunner(archive, settings, lambda k, d: None)
        runner.start()
        try:
            wait_until(lambda: len(rx.requests) == 10)
            wait_until(lambda: cursors.load_cursor(archive, "hook").delivered == 50)
        finally:
            runner.stop()
    assert len(set(committed)) < 5, committed  # not one commit per batch
    assert committed[0] == start
    cur = cursors.load_cursor(archive, "hook")
    assert cur.message_id == cursors.last_row_id(archive) and cur.delivered == 50


def test_a_sink_filters_by_the_kinds_the_archive_stores():
    """One list of kinds for the archive, history, the read API and sinks (the sink list once
    spelled friend_request, so a filter on friend requests could never match)."""
    from wxcli.errors import ConfigError
    from wxcli.protocol.content import MESSAGE_KINDS

    spec = parse_sink("crm", {"url": "https://example.com/x", "kinds": ["friend-request", "text"]})
    assert spec.kinds == ("friend-request", "text")
    assert "friend-request" in MESSAGE_KINDS
    with pytest.raises(ConfigError):
        parse_sink("crm", {"url": "https://example.com/x", "kinds": ["friend_request"]})
