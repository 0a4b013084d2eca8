"""The parts of `watch` on their own: events, the live session, the writer, the sync loop,
relogin and worker supervision — each built from a context of its own, against the real
simulator and a real SQLite archive (the end-to-end behaviour is in tests/test_watch*.py)."""

from __future__ import annotations

import ast
import queue
import sys
import threading
from pathlib import Path

import pytest

from tests.helpers.waiting import wait_until
from wxcli import account
from wxcli.errors import ProtocolError, SessionExpiredError
from wxcli.session import SessionStore
from wxcli.watch.context import WatchContext, WatchOptions
from wxcli.watch.events import (
    DbRecovered,
    EventBus,
    Messages,
    SessionLost,
    WatchEvent,
)
from wxcli.watch.live import LiveSession, key1
from wxcli.watch.loop import Watcher
from wxcli.watch.relogin import Relogin
from wxcli.watch.sync import SyncLoop
from wxcli.watch.workers import Workers
from wxcli.watch.writer import Batch, Writer

WATCH = Path(__file__).resolve().parent.parent / "wxcli" / "watch"
GROUP = "云帆Pro客服1群"
#: What watch may not import (the layers above it), not even inside a function.
ABOVE = (
    "wxcli.account",
    "wxcli.server",
    "wxcli.cli",
    "wxcli.alerts",
    "wxcli.demo",
    "wxcli.keepalive",
)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("module", sorted(p.name for p in WATCH.glob("*.py")))
def test_watch_imports_nothing_above_it(module):
    names = imported(WATCH / module)
    bad = sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in ABOVE))
    assert bad == [], f"wxcli/watch/{module} imports {bad}"
    if module != "loop.py":  # the composition uses the parts, never the other way round
        assert not any(n.startswith("wxcli.watch.loop") for n in names), module


# --- events -----------------------------------------------------------------------------------


def test_typed_events_keep_the_data_alert_rules_read():
    rows = [object()]
    assert WatchEvent.of(Messages(rows=rows)).data == {"rows": rows}
    assert WatchEvent.of(Messages(rows=rows, replayed=True)).data == {
        "rows": rows,
        "replayed": True,
    }
    lost = WatchEvent.of(SessionLost(code=1101, meaning="logged out", endpoint="synccheck"))
    assert (lost.kind, lost.data) == (
        "session_lost",
        {"code": 1101, "meaning": "logged out", "endpoint": "synccheck"},
    )
    assert isinstance(lost.payload, SessionLost) and lost.payload.code == 1101
    back = WatchEvent.of(DbRecovered(replayed=2, messages=7, seconds=1.5))
    assert back.data == {"replayed": 2, "messages": 7, "seconds": 1.5}


def test_a_failing_sink_does_not_stop_the_others():
    seen: list[WatchEvent] = []

    def broken(event: WatchEvent) -> None:
        raise RuntimeError("channel down")

    bus = EventBus([broken, seen.append])
    bus.emit(DbRecovered(replayed=0, messages=0, seconds=0.0))
    bus.emit_raw("feed_backlog", {"sink": "hook", "lag": 5})
    assert [e.kind for e in seen] == ["db_recovered", "feed_backlog"]
    assert seen[1].data == {"sink": "hook", "lag": 5} and seen[1].payload is None


# --- the parts, wired by hand -----------------------------------------------------------------


def make_parts(paths, config, db_url=None, **options):
    events: list[WatchEvent] = []
    ctx = WatchContext(
        paths, config, WatchOptions(db_url=db_url, **options), EventBus([events.append])
    )
    live = LiveSession(ctx, lambda st: account.make_client(config, st))
    live.adopt(SessionStore(paths).load())
    writer = Writer(ctx, live, stop_watch=ctx.stop_flag.set, write_health=lambda: None)
    return ctx, live, writer, events


def test_only_the_committed_position_is_saved(logged_in, sim):
    paths, config, state = logged_in
    ctx, live, writer, _ = make_parts(paths, config)
    start = live.state.sync_key
    live.resume_from([])
    ahead = tuple((k, v + 10) for k, v in start)
    live.state.sync_key = ahead  # what the network delivered, not yet stored
    live.save(force=True)
    assert SessionStore(paths).load().sync_key == start
    live.committed(ahead)
    live.save(force=True)
    assert SessionStore(paths).load().sync_key == ahead


def test_resume_picks_the_furthest_stored_position(logged_in, sim):
    paths, config, _ = logged_in
    _, live, _, _ = make_parts(paths, config)
    start = live.state.sync_key
    behind = tuple((k, v - 1) for k, v in start)
    further = tuple((k, v + 5) for k, v in start)
    live.resume_from([behind, further])
    assert live.state.sync_key == further and live.state.sync_check_key == further
    assert key1(further) == key1(start) + 5


def test_writer_stores_batches_and_commits_their_position(logged_in, sim, tmp_path):
    paths, config, _ = logged_in
    url = f"sqlite:///{tmp_path / 'a.db'}"
    ctx, live, writer, events = make_parts(paths, config, url)
    writer.open()
    live.resume_from(writer.stored_positions())
    sim.control.messages([{"group": GROUP, "sender": "张伟", "content": f"m{i}"} for i in range(5)])
    client = live.client
    wait_until(lambda: client.sync_check(5).selector != 0)
    result = client.sync()
    rows = [r for r in map(live.normalizer.normalize, result.messages) if r is not None]
    writer.start()
    writer.put(Batch(rows, result.sync_key, []))
    writer.drain(final=True)
    assert ctx.stats.stored == 5 and ctx.stats.batches == 1
    assert [e.kind for e in events] == ["messages"] and len(events[0].data["rows"]) == 5
    assert writer.archive.sync_state(writer.account_id)[1] == result.sync_key
    live.save(force=True)
    assert SessionStore(paths).load().sync_key == result.sync_key  # committed, so saved
    writer.close()


def test_a_writer_behind_merges_waiting_batches_into_one_transaction(logged_in, sim, tmp_path):
    paths, config, _ = logged_in
    ctx, live, writer, events = make_parts(paths, config, f"sqlite:///{tmp_path / 'a.db'}")
    writer.open()
    live.resume_from(writer.stored_positions())
    client = live.client
    batches = []
    for n in range(3):
        sim.control.messages([{"group": GROUP, "sender": "张伟", "content": f"b{n}"}])
        wait_until(lambda: client.sync_check(5).selector != 0)
        result = client.sync()
        client.advance(result)
        rows = [r for r in map(live.normalizer.normalize, result.messages) if r is not None]
        batches.append(Batch(rows, result.sync_key, []))
    group = next(g for g in live.state.contacts.groups() if g.members_known)
    batches[2].changes = [(group, group)]  # contact changes start a transaction of their own
    transactions = []
    real_store = writer.ingestor.store

    def store(rows, key, changes):
        transactions.append([r.text for r in rows])
        return real_store(rows, key, changes)

    writer.ingestor.store = store  # records the calls; the real store does the work
    # Batches waiting as a writer that fell behind finds them (its queue holds two; this one
    # holds all), then the writer's loop on this thread.
    writer._queue = queue.Queue()
    for b in [*batches, None]:
        writer._queue.put(b)
    writer._run()
    assert transactions == [["b0", "b1"], ["b2"]]
    assert ctx.stats.batches == 3 and ctx.stats.stored == 3
    assert [len(e.data["rows"]) for e in events if e.kind == "messages"] == [1, 1, 1]
    assert writer.archive.sync_state(writer.account_id)[1] == batches[2].key
    writer.close()


def test_writer_spools_while_the_database_is_down_and_replays_in_order(logged_in, sim, tmp_path):
    paths, config, _ = logged_in
    config.data["watch"]["db_retry_seconds"] = 0.05
    blocked = tmp_path / "not-yet"
    blocked.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocked / 'a.db'}"
    ctx, live, writer, events = make_parts(paths, config, url)
    writer.open()
    assert writer.archive is None and ctx.health.database == "spooling"
    live.resume_from(writer.stored_positions())
    key = live.state.sync_key
    writer.write(Batch([], key, []))
    assert len(writer.spool) == 1 and ctx.stats.stored == 0
    assert ctx.stats.stored == 0
    blocked.unlink()
    wait_until(lambda: (writer.replay(), not writer.spool)[1], message="replay")
    kinds = [e.kind for e in events]
    assert kinds.count("db_spooling") == 1 and kinds[-1] == "db_recovered"
    assert ctx.health.database == "ok" and writer.archive is not None
    writer.close()


def test_a_failed_writer_stops_the_loop_with_its_error(logged_in, sim, tmp_path):
    paths, config, _ = logged_in
    ctx, live, writer, _ = make_parts(paths, config, f"sqlite:///{tmp_path / 'a.db'}")
    writer.open()
    writer.start()
    writer.put(Batch([object()], (), []))  # type: ignore[list-item]  # not a ChatMessage
    wait_until(lambda: writer.error is not None, message="writer failure")
    assert ctx.stopping
    with pytest.raises(RuntimeError, match="writer stopped"):
        writer.put(Batch([], (), []))
    writer.close()


def test_sync_loop_hands_one_batch_per_answer_and_moves_the_position(logged_in, sim):
    paths, config, _ = logged_in
    ctx, live, _, _ = make_parts(paths, config, duration=20)
    live.resume_from([])
    batches: list[Batch] = []
    before = live.state.sync_key

    def put(batch: Batch) -> None:
        batches.append(batch)
        if sum(len(b.rows) for b in batches) >= 3:
            ctx.stop_flag.set()

    loop = SyncLoop(ctx, live, put, writer_failed=lambda: False, session_lost=lambda e: False)
    sim.control.messages([{"group": GROUP, "sender": "张伟", "content": f"s{i}"} for i in range(3)])
    loop.run()
    assert [r.text for b in batches for r in b.rows] == ["s0", "s1", "s2"]
    assert key1(live.state.sync_key) > key1(before)
    assert batches[-1].key == live.state.sync_key


def test_sync_loop_backs_off_network_errors_and_reports_the_third(logged_in, sim):
    paths, config, _ = logged_in
    delays: list[float] = []
    ctx, live, _, events = make_parts(paths, config, duration=20)
    ctx.sleep = delays.append
    live.resume_from([])
    sim.control.fault("http", "synccheck", status=502, times="always")
    loop = SyncLoop(ctx, live, lambda b: None, writer_failed=lambda: len(delays) >= 3,
                    session_lost=lambda e: False)  # fmt: skip
    loop.run()
    assert len(delays) == 3 and ctx.stats.errors == 3
    assert [e.kind for e in events] == ["error"]


def test_sync_loop_hands_session_loss_over(logged_in, sim):
    paths, config, _ = logged_in
    ctx, live, _, _ = make_parts(paths, config, duration=20)
    live.resume_from([])
    lost: list[int] = []
    loop = SyncLoop(ctx, live, lambda b: None, writer_failed=lambda: False,
                    session_lost=lambda e: bool(lost.append(e.code)))  # fmt: skip
    sim.control.logout(1101)
    loop.run()
    assert lost == [1101]


# --- relogin ----------------------------------------------------------------------------------


def relogin_for(ctx, live, login, resumed):
    return Relogin(ctx, live, enabled=True, login=login, drain=lambda: None,
                   resume=resumed.append, write_health=lambda: None)  # fmt: skip


def test_session_loss_without_relogin_exits_3_and_keeps_the_file(logged_in, sim):
    paths, config, _ = logged_in
    ctx, live, _, events = make_parts(paths, config)
    r = Relogin(ctx, live, enabled=False, login=None, drain=lambda: None,
                resume=lambda s: None, write_health=lambda: None)  # fmt: skip
    assert r.session_lost(SessionExpiredError(1101, "synccheck")) is False
    assert r.exit_code == 3 and ctx.health.state == "session_lost"
    saved = SessionStore(paths).load()
    assert saved.alive is False and saved.ended_code == 1101
    assert [e.kind for e in events] == ["session_lost"]


def test_relogin_resumes_with_the_new_login(logged_in, sim):
    paths, config, _ = logged_in
    ctx, live, _, events = make_parts(paths, config)
    resumed: list = []
    r = relogin_for(ctx, live, lambda ev: account.login(paths, config, ev), resumed)
    assert r.session_lost(SessionExpiredError(1101, "synccheck")) is True
    assert len(resumed) == 1 and resumed[0].alive
    assert ctx.health.state == "running" and r.exit_code == 0
    assert [e.kind for e in events] == ["session_lost", "relogin_ok"]


def test_a_failed_relogin_stops_with_its_exit_status(logged_in, sim):
    paths, config, _ = logged_in
    ctx, live, _, _ = make_parts(paths, config)

    def refused(events):
        raise ProtocolError("webwxnewloginpage", "refused")

    r = relogin_for(ctx, live, refused, [])
    assert r.session_lost(SessionExpiredError(1101, "synccheck")) is False
    assert r.exit_code == ProtocolError("x", "y").exit_code
    assert any(e["where"] == "relogin" for e in ctx.health.errors)


# --- workers ----------------------------------------------------------------------------------


class FakeService:
    def __init__(self) -> None:
        self.stopped = threading.Event()

    def stop(self) -> None:
        self.stopped.set()


def test_workers_run_jobs_start_services_and_restart_dead_analysis(logged_in, sim, tmp_path):
    paths, config, _ = logged_in
    config.data["analysis"]["workers"] = 1
    command = [sys.executable, "-c", "raise SystemExit(7)"]
    ctx, live, writer, _ = make_parts(paths, config, analysis_command=command)
    ticks: list[int] = []
    service = FakeService()
    workers = Workers(
        ctx,
        writer,
        lambda: live.client,
        media=False,
        analysis=True,
        services=[lambda: service],
        jobs=[(0.2, lambda: ticks.append(1))],
    )
    workers.start()
    try:
        wait_until(lambda: len(ticks) >= 2, message="scheduled job")
        wait_until(
            lambda: any("exited with 7; restarting" in e["message"] for e in ctx.health.errors),
            message="restart of the analysis process",
        )
    finally:
        ctx.stop_flag.set()
        workers.stop_workers()
        workers.join_scheduler()
    assert service.stopped.is_set()
    assert all(p.poll() is not None for p in workers.analysis_procs)


def test_watcher_runs_the_services_it_is_given_only_with_serve(logged_in, sim, tmp_path):
    paths, config, _ = logged_in
    url = f"sqlite:///{tmp_path / 'a.db'}"
    for serve in (True, False):
        service = FakeService()
        started: list[FakeService] = []
        options = WatchOptions(db_url=url, once=True, analysis=False, media=False, serve=serve)
        w = Watcher(paths, config, options, on_event=lambda e: None)
        w.add_service(lambda s=service, started=started: started.append(s) or s)
        assert w.run() == 0
        assert bool(started) is serve and service.stopped.is_set() is serve


def test_watch_serve_runs_the_rest_api_the_cli_hands_in(logged_in, sim, wx_home):
    """`wxcli watch --serve`: the CLI passes the REST server as a service (watch does not
    import it); it answers while watch runs and is gone after."""
    import os
    import socket
    import subprocess

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (wx_home / "wxcli.toml").write_text(
        f'[wechat]\nlogin_url = "{sim.base_url}"\nsynccheck_timeout = 5.0\n'
        f'[serve]\nhost = "127.0.0.1"\nport = {port}\n',
        encoding="utf-8",
    )
    env = dict(os.environ, WXCLI_HOME=str(wx_home))
    argv = [sys.executable, "-m", "wxcli", "watch", "--serve", "--no-analysis", "--no-media"]
    with subprocess.Popen([*argv, "--duration", "30"], env=env, stderr=subprocess.PIPE) as proc:

        def watch_answers() -> bool:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read().decode()
                return False
            return r.json()["watch"]["running"] is True

        try:
            wait_until(watch_answers, timeout=20, message="the REST API of watch --serve")
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err.decode()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)


@pytest.mark.mysql
def test_a_media_thread_that_slept_through_an_outage_reports_no_new_one(mysql_url, tmp_path):
    """Its connection died in an outage the writer already saw end: a fresh connection
    answers, so no second db_spooling/db_recovered pair (this made test_watch_outage flaky)."""
    from tests.helpers.db import MYSQL_HOST, MYSQL_PORT
    from tests.helpers.tcpproxy import TcpProxy
    from wxcli.config import defaults
    from wxcli.health import Health
    from wxcli.paths import ProfilePaths
    from wxcli.store.archive import Archive
    from wxcli.store.db import Outage
    from wxcli.watch.media import MediaWorkers

    told: list[bool] = []
    outage = Outage(retry_seconds=0.05, listener=lambda record, down: told.append(down))
    name = mysql_url.rsplit("/", 1)[1]
    with TcpProxy(MYSQL_HOST, MYSQL_PORT) as proxy:
        url = f"mysql://root@127.0.0.1:{proxy.port}/{name}"
        archive = Archive(url, tmp_path, outage=outage)
        media = MediaWorkers(defaults(), ProfilePaths("default", tmp_path), Health(), outage,
                             archive=lambda: archive, account_id=lambda: 1,
                             client=lambda: None)  # fmt: skip
        try:
            assert archive.ping()  # this thread holds a connection
            proxy.cut()  # ... which dies in an outage that another thread notices and ends
            outage.failed("writer", "lost")
            proxy.restore()
            outage.recovered("writer")
            try:
                archive.db.execute_sql("SELECT 1")
            except Exception as exc:  # the media thread's next query, on the dead connection
                media._database_down(exc)
            else:
                pytest.fail("the connection should have died with the proxy")
            assert told == [True, False], told  # the one outage, nothing more
            assert archive.ping() and not outage.down
            # An error that persists is still reported (once per streak a fresh connection).
            media._database_down(RuntimeError("not the database"))
            assert told == [True, False, True]
        finally:
            archive.close()


def test_the_feed_is_woken_by_each_stored_batch(logged_in, sim, tmp_path):
    """With a long poll_seconds, a message reaches the feed's webhook at once: the writer's
    `messages` event wakes the sinks instead of their waiting for the next poll."""
    import json

    from tests.helpers.servers import WebhookReceiver
    from tests.helpers.watch import RunningWatch

    paths, config, _ = logged_in
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with WebhookReceiver() as hook:
        config.raw = {"feed": {"sinks": {"crm": {"url": hook.url}}}}
        config.data["feed"].update(poll_seconds=60.0)
        with RunningWatch(paths, config, url) as w:
            feed = lambda: w.watcher.health.feed  # noqa: E731
            w.until(lambda: feed().get("crm", {}).get("state") == "ok", message="feed started")
            w.until(lambda: feed()["crm"].get("lag") == 0, timeout=10, message="caught up")
            sim.control.message(group=GROUP, sender="张伟", content="马上到")
            delivered = w.until(lambda: hook.requests, timeout=5, message="woken, not polled")
    assert [m["text"] for m in json.loads(delivered[0].body)["messages"]] == ["马上到"]
