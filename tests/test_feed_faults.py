"""The feed under faults, with real parts: a private redis-server killed and restarted mid-stream,
webhook receivers that are slow or never answer, a parked sink's lag in `wxcli status`, and a
backlog past ``max_backlog``. Nothing is mocked; short configured timeouts keep it fast."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.messages import msg
from tests.helpers.servers import WebhookReceiver
from tests.helpers.waiting import wait_until
from wxcli.feed import cursors
from wxcli.feed.runner import FeedRunner
from wxcli.feed.settings import FeedSettings, parse_sink
from wxcli.store.archive import Archive, Ingestor

CHATS = [("@@g1", "客服1群"), ("@@g2", "客服2群"), ("@@g3", "VIP群")]


@pytest.fixture
def archive(db_url, wx_home):
    a = Archive(db_url, wx_home)
    yield a
    a.close()


def _ingestor(a: Archive) -> Ingestor:
    return Ingestor(a, a.account_id(42, "me"), "sid", self_user="@me", self_nickname="me")


def _settings(*sinks, **kw) -> FeedSettings:
    kw.setdefault("poll_seconds", 0.05)
    kw.setdefault("retry_seconds", 0.05)
    return FeedSettings(sinks=tuple(sinks), **kw)


def _chat_msg(i: int):
    chat, name = CHATS[i % len(CHATS)]
    return msg(i, f"消息{i}", chat=chat, chat_name=name)


def _first_seen(ids: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for i in ids:
        if i not in seen:
            seen.add(i)
            out.append(i)
    return out


def _assert_in_order_per_chat(entries: list[tuple[str, str]]) -> None:
    """Each chat's messages (first arrival of each msg_id) in increasing msg_id order."""
    by_chat: dict[str, list[int]] = {}
    seen: set[str] = set()
    for chat, mid in entries:
        if mid not in seen:
            seen.add(mid)
            by_chat.setdefault(chat, []).append(int(mid))
    for chat, ids in by_chat.items():
        assert ids == sorted(ids), f"{chat}: out of order"


# --- Redis restarted mid-stream ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of this test alone, on a free port, with every write fsynced to its AOF
    before it is acknowledged (so a restart keeps whatever the feed was told was stored)."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir),
             "--logfile", "redis.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import redis

        r = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def up() -> bool:
            try:
                return bool(r.ping())
            except redis.RedisError:
                return False

        wait_until(up, message="redis-server to answer")
        r.close()

    def log(self) -> str:
        """The server's log (all its starts), for a failing assertion's message."""
        path = self.dir / "redis.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_redis(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH")
    r = PrivateRedis(tmp_path / "redis")
    r.dir.mkdir()
    r.start()
    yield r
    r.stop(signal.SIGKILL)


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP], ids=["sigterm", "sigkill", "hung"]
)
def test_redis_restarted_mid_stream_loses_nothing_and_keeps_chat_order(archive, private_redis, sig):
    import redis

    n = 500
    stream = "wxcli:test"
    ing = _ingestor(archive)
    spec = parse_sink(
        "stream", {"url": private_redis.url, "stream": stream, "timeout": 0.3, "batch_size": 20}
    )
    cursors.load_cursor(archive, "stream")
    events: list[str] = []
    runner = FeedRunner(archive, _settings(spec), lambda k, d: events.append(k))
    r = redis.Redis(port=private_redis.port)
    runner.start()
    worker = runner.workers[0]
    feeding = threading.Event()

    def ingest() -> None:
        for start in range(1, n + 1, 10):
            ing.store([_chat_msg(i) for i in range(start, start + 10)], None)
            time.sleep(0.005)
        feeding.set()

    t = threading.Thread(target=ingest)
    t.start()
    try:
        wait_until(lambda: r.xlen(stream) >= 150, message="the first entries")
        # mid-stream: messages keep being stored meanwhile
        if sig == signal.SIGSTOP:  # hung, not gone: the sink's timeout must notice
            private_redis.proc.send_signal(sig)
        else:
            private_redis.stop(sig)
        wait_until(
            lambda: worker.status.state == "retrying", timeout=20, message="the sink to notice"
        )
        if sig == signal.SIGSTOP:
            private_redis.proc.send_signal(signal.SIGCONT)
        else:
            private_redis.start()
        t.join(30)
        assert feeding.is_set()
        r = redis.Redis(port=private_redis.port)
        want = [str(5000 + i) for i in range(1, n + 1)]

        def all_there() -> bool:
            got = {f[b"msg_id"].decode() for _, f in r.xrange(stream)}
            return got >= set(want)

        wait_until(all_there, timeout=30, message=f"every message in the stream ({events})")
        wait_until(lambda: worker.status.lag == 0 and worker.status.state == "ok", timeout=20)
    finally:
        t.join(30)
        runner.stop()
    entries = [(f[b"chat"].decode(), f[b"msg_id"].decode()) for _, f in r.xrange(stream)]
    ids = [mid for _, mid in entries]
    eids = [e.decode() for e, _ in r.xrange(stream)]
    assert _first_seen(ids) == want  # storage order, none lost
    # At least once: only the batch in flight when Redis went away may come again (a hung
    # Redis executes every copy that reached its socket buffer once it runs again).
    doubled = {mid for mid in ids if ids.count(mid) > 1}
    runs = [
        (i, eid, mid) for i, (eid, mid) in enumerate(zip(eids, ids, strict=True)) if mid in doubled
    ]
    assert len(doubled) <= spec.batch_size, (runs[:3], runs[-3:], len(ids), private_redis.log())
    _assert_in_order_per_chat(entries)
    for _, f in r.xrange(stream, count=3):
        payload = json.loads(f[b"json"])
        assert payload["msg_id"] == f[b"msg_id"].decode() and payload["type"] == "message"
    assert cursors.load_cursor(archive, "stream").message_id == archive.m.Message.select(
    ).order_by(archive.m.Message.id.desc()).get().id  # fmt: skip
    assert "feed_parked" not in events
    r.close()


# --- slow and silent webhooks -----------------------------------------------------------------


def _delivered_ids(rx: WebhookReceiver) -> list[str]:
    return [m["msg_id"] for r in rx.requests for m in json.loads(r.body)["messages"]]


def test_a_slow_webhook_delays_no_other_sink_and_no_ingest(archive):
    n = 100
    ing = _ingestor(archive)
    with (
        WebhookReceiver(delay=1.0) as slow_rx,
        WebhookReceiver() as fast_rx,
        WebhookReceiver(delay=60.0) as hung_rx,
    ):
        specs = [
            parse_sink("slow", {"url": slow_rx.url, "timeout": 5.0, "batch_size": 10}),
            parse_sink("fast", {"url": fast_rx.url, "batch_size": 10}),
            parse_sink("hung", {"url": hung_rx.url, "timeout": 0.3, "batch_size": 10}),
        ]
        for s in specs:
            cursors.load_cursor(archive, s.name)
        runner = FeedRunner(archive, _settings(*specs), lambda k, d: None)
        slow, fast, hung = runner.workers
        runner.start()
        try:
            store_times = []
            t0 = time.monotonic()
            for start in range(1, n + 1, 10):
                t = time.monotonic()
                ing.store([_chat_msg(i) for i in range(start, start + 10)], None)
                store_times.append(time.monotonic() - t)
                time.sleep(0.01)
            wait_until(lambda: len(set(_delivered_ids(fast_rx))) == n, timeout=5)
            fast_done = time.monotonic() - t0
            slow_seen = len(slow_rx.requests)
            wait_until(lambda: hung.status.failures >= 2, timeout=5)
            hung_state, hung_error = hung.status.state, hung.status.last_error
        finally:
            runner.stop(timeout=2)
    # Ingest never waited for any sink: each batch of 10 is stored in a few milliseconds.
    assert max(store_times) < 0.5, store_times
    # The fast sink had everything long before the slow one could take a third batch.
    assert fast_done < 2.5
    assert slow_seen <= 3
    assert _delivered_ids(fast_rx) == [str(5000 + i) for i in range(1, n + 1)]
    # The hung one: each attempt cut at its timeout and retried, never a thread stuck forever.
    assert hung_state == "retrying"
    assert "no answer in 0.3 s" in hung_error
    assert slow.thread.is_alive() is False and hung.thread.is_alive() is False


class DrippingReceiver:
    """A raw TCP server that reads the request and answers one byte every ``gap`` seconds:
    each read comes in time, so only a deadline on the whole request can end it."""

    def __init__(self, gap: float = 0.1):
        self.gap = gap
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/hook"
        self.stop = threading.Event()
        self.requests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                self.requests += 1
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                    if self.stop.wait(self.gap):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def test_a_webhook_that_drips_its_answer_is_cut_at_the_timeout_and_retried(archive):
    """Per-read timeouts never fire against a byte every 0.1 s; the sink's timeout bounds the
    whole delivery, so the sink keeps retrying instead of hanging on one answer forever."""
    ing = _ingestor(archive)
    rx = DrippingReceiver(gap=0.1)
    try:
        spec = parse_sink("drip", {"url": rx.url, "timeout": 0.5})
        cursors.load_cursor(archive, "drip")
        runner = FeedRunner(archive, _settings(spec), lambda k, d: None)
        (worker,) = runner.workers
        runner.start()
        try:
            ing.store([_chat_msg(1)], None)
            t0 = time.monotonic()
            wait_until(lambda: worker.status.failures >= 2, timeout=10, message="two cut attempts")
            took = time.monotonic() - t0
            error = worker.status.last_error
        finally:
            runner.stop(timeout=3)
        assert "no answer in 0.5 s" in error
        assert took < 3  # two attempts of 0.5 s and a short back-off, not minutes
        assert rx.requests >= 2
        assert cursors.load_cursor(archive, "drip").delivered == 0  # nothing counted as taken
    finally:
        rx.close()


def test_a_webhook_that_times_out_gets_the_same_batch_until_it_answers(archive):
    ing = _ingestor(archive)
    with WebhookReceiver(delay=30.0) as rx:
        spec = parse_sink("hook", {"url": rx.url, "timeout": 0.2})
        cursors.load_cursor(archive, "hook")
        events: list[str] = []
        runner = FeedRunner(archive, _settings(spec), lambda k, d: events.append(k))
        runner.start()
        try:
            ing.store([_chat_msg(i) for i in range(1, 6)], None)
            wait_until(lambda: len(rx.requests) >= 3, message="three attempts")
            assert cursors.load_cursor(archive, "hook").delivered == 0
            rx.delay = 0.0  # the receiver is fast again
            wait_until(lambda: cursors.load_cursor(archive, "hook").delivered == 5)
            ing.store([_chat_msg(6)], None)
            wait_until(lambda: cursors.load_cursor(archive, "hook").delivered == 6)
        finally:
            runner.stop()
    reqs = rx.requests
    first, last = reqs[:-1], reqs[-1]
    assert len(first) >= 4  # three (or more) timed out, then the one that was taken
    assert len({r.headers["Idempotency-Key"] for r in first}) == 1
    bodies = [json.loads(r.body) for r in first]
    assert {b["batch"] for b in bodies} == {first[0].headers["Idempotency-Key"]}
    assert all(b["messages"] == bodies[0]["messages"] for b in bodies)
    assert [m["msg_id"] for m in bodies[0]["messages"]] == [str(5000 + i) for i in range(1, 6)]
    assert [m["msg_id"] for m in json.loads(last.body)["messages"]] == ["5006"]
    assert last.headers["Idempotency-Key"] != first[0].headers["Idempotency-Key"]
    assert events == ["feed_failing", "feed_recovered"]


# --- lag in `wxcli status`, the backlog alert ------------------------------------------------

GROUP = "云帆Pro客服1群"


def test_status_shows_a_parked_sinks_growing_lag_from_a_running_watch(
    logged_in, sim, db_url, wx_home, capsys
):
    from tests.helpers.cli import run_cli
    from tests.helpers.watch import RunningWatch, count

    paths, config, _state = logged_in
    with WebhookReceiver(status=400, body={"error": "schema"}) as refusing, WebhookReceiver() as ok:
        config.raw = {"feed": {"sinks": {"crm": {"url": refusing.url}, "ok": {"url": ok.url}}}}
        config.data["feed"].update(poll_seconds=0.05, retry_seconds=0.05, max_backlog=10)
        with RunningWatch(paths, config, db_url) as w:
            feed = lambda: w.watcher.health.feed  # noqa: E731 - what the health record gets
            w.until(lambda: feed().get("crm", {}).get("state") == "ok", message="feed started")
            sim.control.message(group=GROUP, sender="张伟", content="第一条")
            w.until(lambda: feed()["crm"]["state"] == "parked", message="the refusal")
            sim.control.messages(
                [{"group": GROUP, "sender": "张伟", "content": f"第{i}条"} for i in range(2, 31)]
            )
            w.until(lambda: count(db_url, wx_home) == 30)  # receiving went on regardless
            w.until(lambda: feed()["crm"]["lag"] == 30, message="the lag counted")
            w.until(lambda: feed()["ok"]["delivered"] == 30)
            time.sleep(0.5)  # a health write or two more: the record on disk is current
            code, out, err = run_cli(capsys, "status", "--no-check")
            kinds = w.kinds()
            backlog = [e.data["sink"] for e in w.events if e.kind == "feed_backlog"]
    assert code == 0, err
    lines = [ln.strip() for ln in out.splitlines()]
    crm = next(ln for ln in lines if ln.startswith("feed crm:"))
    assert crm.startswith("feed crm: parked, 30 behind, 0 delivered")
    assert "refused: " in crm and "HTTP 400" in crm and crm.endswith("`wxcli feed resume crm`")
    assert "feed ok: ok, 0 behind, 30 delivered" in lines
    assert kinds.count("feed_parked") == 1
    assert backlog.count("crm") == 1  # past max_backlog: once, not once per poll


def test_a_backlog_past_max_backlog_alerts_once_per_episode_and_never_blocks_receiving(archive):
    from tests.helpers.servers import Reply

    down = threading.Event()
    down.set()
    ing = _ingestor(archive)
    with WebhookReceiver(responder=lambda r: Reply(503 if down.is_set() else 200, b"")) as rx:
        spec = parse_sink("hook", {"url": rx.url, "batch_size": 50})
        cursors.load_cursor(archive, "hook")
        events: list[tuple[str, dict]] = []
        settings = _settings(spec, max_backlog=20, retry_seconds=0.02)
        runner = FeedRunner(archive, settings, lambda k, d: events.append((k, d)))
        worker = runner.workers[0]
        runner.start()
        backlog = lambda: [d for k, d in events if k == "feed_backlog"]  # noqa: E731
        try:
            times = []
            for start in range(1, 61, 5):  # over ~1.2 s: more than one lag count past the limit
                t = time.monotonic()
                ing.store([_chat_msg(i) for i in range(start, start + 5)], None)
                times.append(time.monotonic() - t)
                time.sleep(0.1)
            wait_until(lambda: worker.status.lag == 60, message="the lag counted")
            time.sleep(1.2)  # two more counts, still past the limit
            assert len(backlog()) == 1
            assert backlog()[0]["lag"] > 20 and backlog()[0]["limit"] == 20
            assert "HTTP 503" in backlog()[0]["error"]
            assert max(times) < 0.5, times  # storing never waited for the feed
            down.clear()  # back: it catches up in order, and the alert is re-armed
            wait_until(lambda: cursors.load_cursor(archive, "hook").delivered == 60)
            wait_until(lambda: worker.status.lag == 0)
            down.set()
            ing.store([_chat_msg(i) for i in range(61, 91)], None)
            wait_until(lambda: len(backlog()) == 2, message="a second episode")
        finally:
            runner.stop()
    got = _delivered_ids(rx)
    assert _first_seen(got) == [str(5000 + i) for i in range(1, 61)] + _first_seen(got)[60:]
    assert [k for k, _ in events].count("feed_backlog") == 2
