"""Media downloads survive a database outage and a start while the database is down."""

from __future__ import annotations

import pytest

from tests.helpers.db import MYSQL_HOST, MYSQL_PORT
from tests.helpers.tcpproxy import TcpProxy
from tests.helpers.watch import RunningWatch, messages

GROUP = "云帆Pro客服1群"


def images(db_url, home):
    return [r for r in messages(db_url, home) if r["kind"] == "image"]


def all_done(db_url, home, n):
    rows = images(db_url, home)
    return len(rows) == n and all(r["media_status"] == "done" for r in rows)


def send_images(sim, tag, n):
    return sim.control.messages(
        [
            {"group": GROUP, "sender": "张伟", "type": "image", "image": f"{tag}{i}"}
            for i in range(n)
        ]
    )


@pytest.mark.mysql
def test_media_downloads_resume_after_the_database_comes_back(logged_in, sim, mysql_url, wx_home):
    paths, config, state = logged_in
    config.data["watch"]["db_retry_seconds"] = 0.2
    name = mysql_url.rsplit("/", 1)[1]
    with TcpProxy(MYSQL_HOST, MYSQL_PORT) as proxy:
        url = f"mysql://root@127.0.0.1:{proxy.port}/{name}"
        with RunningWatch(paths, config, url, media=True) as w:
            first = send_images(sim, "a", 5)
            w.until(lambda: all_done(mysql_url, wx_home, 5), timeout=30, message="first images")
            proxy.cut()  # every open connection dies, as in a MariaDB restart
            second = send_images(sim, "b", 5)
            w.until(lambda: w.watcher.stats.spooled >= 5, timeout=20, message="spooling")
            proxy.restore()
            w.until(lambda: all_done(mysql_url, wx_home, 10), timeout=40, message="images resumed")
            w.until(lambda: w.watcher.health.database == "ok", timeout=20, message="replayed")
            errors = [e for e in w.watcher.health.errors if e["where"] == "database"]
            kinds = [e.kind for e in w.events]
            outages = w.watcher.health.outages
    assert sorted(r["msg_id"] for r in images(mysql_url, wx_home)) == sorted(first + second)
    # Writer and media threads both noticed; the user is told once that it went, once that
    # it came back, and the health record keeps what happened for `wxcli status`.
    assert len(errors) == 1, errors
    assert kinds.count("db_spooling") == 1 and kinds.count("db_recovered") == 1, kinds
    (outage,) = outages
    assert outage["ended_at"] and outage["spooled"] >= 5 and outage["replayed"] >= 5


def test_media_workers_start_while_the_database_is_down(logged_in, sim, wx_home, tmp_path):
    paths, config, state = logged_in
    config.data["watch"]["db_retry_seconds"] = 0.2
    blocked = tmp_path / "not-yet"
    blocked.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocked / 'archive.db'}"
    with RunningWatch(paths, config, url, media=True) as w:
        ids = send_images(sim, "c", 4)
        w.until(lambda: w.watcher.stats.spooled >= 4, message="spooling from the start")
        blocked.unlink()  # now the database can be created
        w.until(lambda: w.watcher.health.database == "ok", timeout=20, message="replay")
        w.until(lambda: all_done(url, wx_home, 4), timeout=30, message="images after start")
    assert sorted(r["msg_id"] for r in images(url, wx_home)) == sorted(ids)


def test_a_start_while_the_database_is_down_warns_once(logged_in, sim, wx_home, tmp_path):
    paths, config, state = logged_in
    config.data["watch"]["db_retry_seconds"] = 0.2
    blocked = tmp_path / "not-yet"
    blocked.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocked / 'archive.db'}"
    with RunningWatch(paths, config, url) as w:
        for i in range(6):
            sim.control.messages([{"group": GROUP, "sender": "张伟", "content": f"d{i}"}])
            w.until(lambda i=i: w.watcher.stats.spooled >= i + 1, message="spooling")
        errors = [e for e in w.watcher.health.errors if e["where"] == "database"]
        spooling = [e for e in w.events if e.kind == "db_spooling"]
    assert len(errors) == 1, errors
    assert len(spooling) == 1
