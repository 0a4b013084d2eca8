"""Nothing lost, nothing doubled: kill -9, database outages, SIGTERM."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.db import MYSQL_HOST, MYSQL_PORT
from tests.helpers.tcpproxy import TcpProxy
from tests.helpers.waiting import wait_until
from tests.helpers.watch import RunningWatch, count, messages

GROUP = "云帆Pro客服1群"


def write_config(home, sim_url: str) -> None:
    (home / "wxcli.toml").write_text(
        f"""
[wechat]
login_url = "{sim_url}"
synccheck_timeout = 5.0
login_poll_timeout = 5.0
backoff = 0.05
[watch]
health_seconds = 0.2
session_save_seconds = 0.2
""",
        encoding="utf-8",
    )


def watch_process(home, db_url: str, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, WXCLI_HOME=str(home))
    env.pop("WXCLI_CONFIG", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wxcli",
            "watch",
            "--db",
            db_url,
            "--no-analysis",
            "--no-media",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def running(paths, pid: int) -> bool:
    """The health record says watch process ``pid`` is running."""
    from wxcli.health import read_health

    health = read_health(paths.health)
    return health is not None and health.pid == pid and health.state == "running"


@pytest.mark.slow
def test_kill_9_during_a_flood_loses_and_doubles_nothing(logged_in, sim, db_url, wx_home):
    paths, config, state = logged_in
    write_config(wx_home, sim.base_url)
    sim.control.settings(sync_batch=50)
    injected = {h["msg_id"] for h in sim.control.injected()}
    sim.control.flood(3000, groups=5)
    injected = {h["msg_id"] for h in sim.control.injected()} - injected
    assert len(injected) == 3000
    rng = random.Random(7)
    for _ in range(4):
        proc = watch_process(wx_home, db_url)
        time.sleep(rng.uniform(0.4, 1.2))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)  # reap it and close its pipes
    proc = watch_process(wx_home, db_url)
    try:
        wait_until(lambda: count(db_url, wx_home) >= 3000, timeout=60, message="the whole flood")
        # The killed runs may have stored everything already: SIGTERM only once this one is
        # running (its handler installed), or it dies by the signal instead of exiting 0.
        wait_until(lambda: running(paths, proc.pid), timeout=20, message="the last watch running")
        time.sleep(0.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    stored = [r["msg_id"] for r in messages(db_url, wx_home)]
    assert len(stored) == len(set(stored))  # no duplicates
    assert set(stored) == injected  # no gaps


def test_sigterm_finishes_the_batch_and_exits_0(logged_in, sim, wx_home, tmp_path):
    db_url = f"sqlite:///{tmp_path / 'a.db'}"
    write_config(wx_home, sim.base_url)
    proc = watch_process(wx_home, db_url)
    try:
        ids = sim.control.messages(
            [{"group": GROUP, "sender": "张伟", "content": f"t{i}"} for i in range(20)]
        )
        wait_until(lambda: count(db_url, wx_home) >= 20, timeout=20)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Stored 20 messages" in err
    from wxcli.session import SessionStore
    from wxcli.store.archive import Archive

    saved = SessionStore(paths_for(wx_home)).load()
    a = Archive(db_url, wx_home)
    try:
        sid, key = a.sync_state(a.account_id(saved.uin))
    finally:
        a.close()
    assert saved.sync_key == key  # the session file caught up with the committed position
    assert {r["msg_id"] for r in messages(db_url, wx_home)} == set(ids)


def paths_for(home):
    from wxcli.paths import ProfilePaths

    return ProfilePaths("default", home)


@pytest.mark.mysql
def test_database_outage_spools_and_replays(logged_in, sim, mysql_url, wx_home):
    paths, config, state = logged_in
    name = mysql_url.rsplit("/", 1)[1]
    with TcpProxy(MYSQL_HOST, MYSQL_PORT) as proxy:
        url = f"mysql://root@127.0.0.1:{proxy.port}/{name}"
        with RunningWatch(paths, config, url) as w:
            first = sim.control.messages(
                [{"group": GROUP, "sender": "张伟", "content": f"a{i}"} for i in range(10)]
            )
            w.until(lambda: w.watcher.stats.stored >= 10)
            proxy.cut()
            second = sim.control.messages(
                [{"group": GROUP, "sender": "张伟", "content": f"b{i}"} for i in range(10)]
            )
            w.until(lambda: w.watcher.stats.spooled >= 10, message="spooling")
            assert w.watcher.health.database == "spooling"
            assert paths.spool.exists() and paths.spool.stat().st_mode & 0o777 == 0o600
            third = sim.control.messages(
                [{"group": GROUP, "sender": "张伟", "content": f"c{i}"} for i in range(10)]
            )
            w.until(lambda: w.watcher.stats.spooled >= 20)
            proxy.restore()
            w.until(lambda: w.watcher.health.database == "ok", timeout=20, message="replay")
            w.until(lambda: count(mysql_url, wx_home) >= 30)
        kinds = w.kinds()
    stored = [r["msg_id"] for r in messages(mysql_url, wx_home)]
    assert sorted(stored) == sorted(first + second + third)
    assert not paths.spool.exists()
    assert "db_spooling" in kinds and "db_recovered" in kinds


def test_database_down_at_start_spools_then_replays(logged_in, sim, wx_home, tmp_path):
    """SQLite cannot 'go down', so use MariaDB when present, else a path we can unblock."""
    paths, config, state = logged_in
    blocked = tmp_path / "not-yet"
    blocked.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocked / 'archive.db'}"
    with RunningWatch(paths, config, url) as w:
        ids = sim.control.messages(
            [{"group": GROUP, "sender": "张伟", "content": f"x{i}"} for i in range(5)]
        )
        w.until(lambda: w.watcher.stats.spooled >= 5, message="spooling from the start")
        blocked.unlink()  # now the directory can be created
        w.until(lambda: w.watcher.health.database == "ok", timeout=20, message="replay")
    assert sorted(r["msg_id"] for r in messages(url, wx_home)) == sorted(ids)
