"""One reconnect discipline for every part that writes the archive (store.db.Outage): alert
history, the REST audit trail and the analysis worker come back after a MariaDB connection
loss; a black-holed host costs a short connect timeout; an outage is told once."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime

import pytest

from tests.helpers.db import MYSQL_HOST, MYSQL_PORT
from tests.helpers.tcpproxy import TcpProxy
from wxcli.alerts.history import AlertHistoryStore, HistoryRecord
from wxcli.cli.status import outage_lines
from wxcli.config import load_config
from wxcli.errors import DatabaseUnavailableError
from wxcli.store.archive import Archive, open_when_available
from wxcli.store.audit import DbAudit
from wxcli.store.db import Outage


def record(n: int) -> HistoryRecord:
    return HistoryRecord(
        fired_at=datetime.now(UTC),
        rule="r",
        kind="keyword",
        severity="warning",
        key=f"k{n}",
        title=f"alert {n}",
        channel="mail",
        status="delivered",
    )


def proxied(proxy: TcpProxy, mysql_url: str) -> str:
    return f"mysql://root@127.0.0.1:{proxy.port}/{mysql_url.rsplit('/', 1)[1]}"


def test_an_outage_is_told_once_however_many_threads_notice_it():
    told: list[tuple[str, bool]] = []
    outage = Outage(retry_seconds=0.5, listener=lambda r, down: told.append((r.noticed_by, down)))
    waits: list[float] = []

    together = threading.Barrier(4)  # alive at once, as watch's threads are

    def worker(name: str) -> None:
        together.wait()
        for _ in range(3):
            waits.append(outage.failed(name, "connection refused"))

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [down for _, down in told] == [True]
    assert outage.current is not None and outage.current.attempts == 12
    # Each thread backs off on its own count: 0.5, 1, 2 s (±25 %), never beyond the cap.
    assert min(waits) >= 0.375 and max(waits) <= 2.5
    ended = outage.recovered("t0")
    outage.recovered("t1")  # a second "back" is not a second outage
    assert ended is not None and ended.ended_at is not None
    assert told[-1][1] is False and len(told) == 2
    assert outage.history == [ended] and not outage.down


@pytest.mark.mysql
def test_alert_history_comes_back_after_its_connection_died(mysql_url, wx_home):
    with TcpProxy(MYSQL_HOST, MYSQL_PORT) as proxy:
        archive = Archive(proxied(proxy, mysql_url), wx_home)
        store = AlertHistoryStore(archive)
        try:
            assert store.add(record(1))
            proxy.cut()  # the connection this thread holds dies, as in a restart
            assert not store.add(record(2))  # kept in memory
            assert archive.outage.down
            proxy.restore()
            assert store.add(record(3))  # reconnects: the dead connection was dropped
            assert not archive.outage.down
            titles = sorted(r.title for r in store.query())
        finally:
            archive.close()
    assert titles == ["alert 1", "alert 2", "alert 3"]


@pytest.mark.mysql
def test_the_audit_trail_returns_to_the_database_after_an_outage(mysql_url, wx_home, caplog):
    kept: list[dict] = []
    with TcpProxy(MYSQL_HOST, MYSQL_PORT) as proxy:
        archive = Archive(proxied(proxy, mysql_url), wx_home)
        audit = DbAudit(archive, kept.append)
        try:
            audit({"app": "crm", "kind": "text", "result": "sent", "msg_id": "1"})
            proxy.cut()
            audit({"app": "crm", "kind": "text", "result": "sent", "msg_id": "2"})
            audit({"app": "crm", "kind": "text", "result": "sent", "msg_id": "3"})
            proxy.restore()
            audit({"app": "crm", "kind": "text", "result": "sent", "msg_id": "4"})
            A = archive.m.SendAudit
            in_db = sorted(r.msg_id for r in A.select(A.msg_id))
        finally:
            archive.close()
    assert in_db == ["1", "4"]
    assert [r["msg_id"] for r in kept] == ["2", "3"]  # nothing lost: in the file meanwhile
    warned = [r for r in caplog.records if "audit records go to the file" in r.getMessage()]
    assert len(warned) == 1


def test_a_black_holed_database_host_fails_fast(wx_home):
    """A host that accepts the TCP connection and never says a word (a firewall black hole
    behind a load balancer) costs one short connect timeout, not the default 10 s wait."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError):
            Archive(f"mysql://root@127.0.0.1:{port}/x", wx_home, connect_timeout=0.5)
        took = time.monotonic() - started
    finally:
        silent.close()
    assert took < 3.0, took


def test_a_worker_started_while_the_database_is_down_waits_for_it(wx_home, tmp_path):
    blocked = tmp_path / "not-yet"
    blocked.write_text("a file where the database directory should be")
    config = load_config(None)
    url = f"sqlite:///{blocked / 'archive.db'}"
    stop = threading.Event()
    opened: list[Archive | None] = []
    t = threading.Thread(
        target=lambda: opened.append(
            open_when_available(config, wx_home, url, stop, who="analysis")
        )
    )
    t.start()
    time.sleep(0.3)  # a short look: the worker is waiting, not failing
    assert t.is_alive()
    blocked.unlink()
    t.join(timeout=10)
    stop.set()
    assert opened and opened[0] is not None
    opened[0].close()


def test_status_says_what_happened_during_each_outage():
    lines = outage_lines(
        [
            {
                "started_at": "2026-12-07T10:00:00+00:00",
                "ended_at": "2026-12-07T10:00:21+00:00",
                "seconds": 21.0,
                "error": '(2003, "Can\'t connect to MySQL server")',
                "noticed_by": "media",
                "spooled": 150,
                "replayed": 150,
            },
            {
                "started_at": "2026-12-07T11:00:00+00:00",
                "ended_at": "",
                "seconds": 3.0,
                "noticed_by": "writer",
                "spooled": 7,
                "error": "gone",
            },
        ]
    )
    assert "21.0 s" in lines[0] and "150 messages spooled, 150 replayed" in lines[0]
    assert "noticed by media" in lines[0]
    assert "–now" in lines[1] and "7 messages spooled" in lines[1]
