"""Ingest benchmark: how fast `wxcli watch` archives a flood, how much memory it takes, and the
delay from a message's injection to its row at a steady rate.

    python bench/ingest.py                       # SQLite and MariaDB, 100,000 messages
    python bench/ingest.py --messages 20000 --backends mysql --skip-analysis

The simulator runs in its own process (as WeChat's servers would), `wxcli watch` in another;
the figures are printed as a table (and as JSON with --json). Beside `watch`, the same flood
is received the way a bot written on ItChat stores it: one INSERT + COMMIT per message
("per_message" rows; --skip-naive leaves it out). Not a test: nothing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wxcli.simulator", "--port", "0", "--auto-confirm", "--hold", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = proc.stdout.readline().strip()
    return proc, url


def login(home: Path, url: str) -> None:
    from wxcli import account
    from wxcli.config import defaults
    from wxcli.paths import ProfilePaths

    cfg = defaults()
    cfg.data["wechat"]["login_url"] = url
    account.login(ProfilePaths("default", home), cfg, push=False)


def write_config(home: Path, url: str, db_url: str, analysis_workers: int = 1) -> None:
    (home / "wxcli.toml").write_text(
        f'[wechat]\nlogin_url = "{url}"\nsynccheck_timeout = 10.0\n'
        f'[database]\nurl = "{db_url}"\nstore_raw = true\n'
        "[watch]\nhealth_seconds = 1.0\nsession_save_seconds = 2.0\n"
        f"[analysis]\nworkers = {analysis_workers}\n",
        encoding="utf-8",
    )


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 when it cannot be read)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def db_server_pid() -> int | None:
    """The local MariaDB/MySQL server, to count its CPU per message (shared with anything
    else that uses it meanwhile, so read that figure with care on a busy machine)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in ("mariadbd", "mysqld"):
                    return int(entry.name)
            except OSError:
                continue
    return None


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


class SteadyInjector:
    """One tagged message into the simulator every ``1/rate`` s for ``seconds`` (the latency
    runs): ``injected`` maps each MsgId to the moment its injection call returned."""

    def __init__(self, url: str, rate: float, seconds: float):
        self.url = url
        self.http = requests.Session()
        self.injected: dict[str, float] = {}
        self.interval = 1.0 / rate
        self.next_at = time.monotonic()
        self.end = self.next_at + seconds
        self.count = 0

    def tick(self) -> float:
        """Inject the next message if it is due; returns the time of the look."""
        now = time.monotonic()
        if self.next_at <= now < self.end:
            text = f"延迟测试 {self.count}"
            spec = {"group": "云帆Pro客服1群", "sender": "张伟", "content": text}
            t = time.monotonic()
            reply = self.http.post(f"{self.url}/_sim/messages", json=spec, timeout=10)
            self.injected[reply.json()["msg_ids"][0]] = t
            self.count += 1
            self.next_at += self.interval
        return now


class Db:
    def __init__(self, db_url: str, home: Path):
        from wxcli.store.archive import Archive

        self.archive = Archive(db_url, home)

    def count(self) -> int:
        return self.archive.m.Message.select().count()

    def analysed(self) -> int:
        W = self.archive.m.WorkRange
        import peewee as pw

        return (
            W.select(pw.fn.SUM(W.end_id - W.start_id + 1)).where(W.done == True).scalar() or 0  # noqa: E712
        )

    def seen(self, ids: set[str]) -> set[str]:
        M = self.archive.m.Message
        out: set[str] = set()
        chunk = list(ids)
        for i in range(0, len(chunk), 500):
            out |= {
                r for (r,) in M.select(M.msg_id).where(M.msg_id.in_(chunk[i : i + 500])).tuples()
            }
        return out


def db_url_for(backend: str, home: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{home / 'bench.db'}"
    return f"mysql://root@127.0.0.1:3306/wxcli_bench_{uuid.uuid4().hex[:8]}"


def drop_mysql(db_url: str) -> None:
    if not db_url.startswith("mysql"):
        return
    import pymysql

    name = db_url.rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", user="root")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def flood_run(
    backend: str,
    messages: int,
    groups: int,
    analysis: bool,
    analysis_workers: int = 1,
    sync_batch: int = 100,
) -> dict:
    home = Path(tempfile.mkdtemp(prefix="wxbench-"))
    sim, url = start_simulator()
    db_url = db_url_for(backend, home)
    try:
        login(home, url)
        write_config(home, url, db_url, analysis_workers)
        requests.post(f"{url}/_sim/settings", json={"sync_batch": sync_batch}, timeout=10)
        t0 = time.monotonic()
        requests.post(f"{url}/_sim/flood", json={"count": messages, "groups": groups}, timeout=600)
        flood_s = time.monotonic() - t0
        env = dict(os.environ, WXCLI_HOME=str(home))
        cmd = [sys.executable, "-m", "wxcli", "watch", "--no-media"]
        if not analysis:
            cmd.append("--no-analysis")
        server = db_server_pid() if backend == "mysql" else None
        server_cpu0 = cpu_seconds(server) if server else 0.0
        start = time.monotonic()
        watch = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        db = None
        while db is None:
            try:
                db = Db(db_url, home)
            except Exception:
                time.sleep(0.05)
        first = None
        peak_analysis = 0.0
        while True:
            n = db.count()
            if n and first is None:
                first = time.monotonic()
            if analysis:
                for kid in children(watch.pid):
                    peak_analysis = max(peak_analysis, rss_mb(kid))
            if n >= messages:
                break
            if watch.poll() is not None:
                raise RuntimeError(watch.stderr.read().decode())
            time.sleep(0.02)
        done = time.monotonic()
        watch_cpu = cpu_seconds(watch.pid)
        server_cpu = cpu_seconds(server) - server_cpu0 if server else None
        analysed_at = None
        if analysis:
            while db.analysed() < messages:
                for kid in children(watch.pid):
                    peak_analysis = max(peak_analysis, rss_mb(kid))
                time.sleep(0.1)
                if time.monotonic() - done > 900:
                    break
            analysed_at = time.monotonic()
        peak_watch = rss_mb(watch.pid)
        watch.terminate()
        watch.wait(30)
        sim_rss = rss_mb(sim.pid)
        return {
            "backend": backend,
            "approach": "watch",
            "analysis": analysis,
            "analysis_workers": analysis_workers if analysis else None,
            "sync_batch": sync_batch,
            "messages": messages,
            "groups": groups,
            "flood_queue_s": round(flood_s, 2),
            "ingest_s": round(done - start, 2),
            "msgs_per_s": round(messages / (done - start)),
            "msgs_per_s_after_first_row": round(messages / (done - first)) if first else None,
            "watch_cpu_us_per_msg": round(watch_cpu / messages * 1e6),
            "db_server_cpu_us_per_msg": round(server_cpu / messages * 1e6) if server else None,
            "analysis_s": round(analysed_at - start, 2) if analysed_at else None,
            "analysis_msgs_per_s": round(messages / (analysed_at - start)) if analysed_at else None,
            "watch_peak_rss_mb": round(peak_watch, 1),
            "analysis_peak_rss_mb": round(peak_analysis, 1) if analysis else None,
            "simulator_peak_rss_mb": round(sim_rss, 1),
        }
    finally:
        sim.terminate()
        sim.wait(10)
        drop_mysql(db_url)


def naive_run(backend: str, messages: int, groups: int, sync_batch: int = 100) -> dict:
    """The same flood stored the way an ItChat bot does: each message, as its handler is
    called, goes into the database with one INSERT and one COMMIT (no batching, no names
    resolved, no raw JSON). Receiving uses wxcli's client, so only the storing differs."""
    from wxcli import account
    from wxcli.config import defaults
    from wxcli.paths import ProfilePaths
    from wxcli.session import SessionStore

    home = Path(tempfile.mkdtemp(prefix="wxbench-"))
    sim, url = start_simulator()
    db_url = db_url_for(backend, home)
    conn = _naive_connect(backend, db_url, home)
    try:
        login(home, url)
        requests.post(f"{url}/_sim/settings", json={"sync_batch": sync_batch}, timeout=10)
        requests.post(f"{url}/_sim/flood", json={"count": messages, "groups": groups}, timeout=600)
        cfg = defaults()
        cfg.data["wechat"]["login_url"] = url
        state = SessionStore(ProfilePaths("default", home)).load()
        client = account.make_client(cfg, state)
        cur = conn.cursor()
        mark = "%s" if backend == "mysql" else "?"
        sql = (
            "INSERT INTO message (msg_id, from_user, to_user, msg_type, content, create_time) "
            f"VALUES ({', '.join([mark] * 6)})"
        )
        stored = 0
        server = db_server_pid() if backend == "mysql" else None
        server_cpu0 = cpu_seconds(server) if server else 0.0
        cpu0 = time.process_time()
        start = time.monotonic()
        while stored < messages:
            if client.sync_check(10.0).selector == 0:
                continue
            result = client.sync(keep_raw=False)
            for m in result.messages:  # the bot's handler, once per message
                cur.execute(
                    sql, (m.msg_id, m.from_user, m.to_user, m.msg_type, m.content, m.create_time)
                )
                conn.commit()
                stored += 1
            client.advance(result)
        elapsed = time.monotonic() - start
        cpu = time.process_time() - cpu0
        server_cpu = cpu_seconds(server) - server_cpu0 if server else None
        return {
            "backend": backend,
            "approach": "per_message",
            "sync_batch": sync_batch,
            "messages": stored,
            "ingest_s": round(elapsed, 2),
            "msgs_per_s": round(stored / elapsed),
            "bot_cpu_us_per_msg": round(cpu / stored * 1e6),
            "db_server_cpu_us_per_msg": round(server_cpu / stored * 1e6) if server else None,
        }
    finally:
        conn.close()
        sim.terminate()
        sim.wait(10)
        drop_mysql(db_url)


def _naive_connect(backend: str, db_url: str, home: Path):
    """A plain DB-API connection with the bot's one table (autocommit off, as usual)."""
    columns = (
        "id {auto}, msg_id VARCHAR(64) UNIQUE, from_user VARCHAR(128), to_user VARCHAR(128), "
        "msg_type INT, content {text}, create_time BIGINT"
    )
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(home / "naive.db")
        conn.execute("PRAGMA journal_mode=WAL")
        auto, text = "INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT"
        conn.execute(f"CREATE TABLE message ({columns.format(auto=auto, text=text)})")
        return conn
    import pymysql

    name = db_url.rsplit("/", 1)[1]
    conn = pymysql.connect(host="127.0.0.1", user="root", charset="utf8mb4", autocommit=False)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        auto, text = "BIGINT AUTO_INCREMENT PRIMARY KEY", "LONGTEXT"
        cur.execute(f"CREATE TABLE message ({columns.format(auto=auto, text=text)})")
    conn.commit()
    return conn


def latency_run(backend: str, rate: float, seconds: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="wxbench-"))
    sim, url = start_simulator()
    db_url = db_url_for(backend, home)
    try:
        login(home, url)
        write_config(home, url, db_url)
        env = dict(os.environ, WXCLI_HOME=str(home))
        watch = subprocess.Popen(
            [sys.executable, "-m", "wxcli", "watch", "--no-media", "--no-analysis"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        db = None
        while db is None:
            try:
                db = Db(db_url, home)
            except Exception:
                time.sleep(0.05)
        time.sleep(1.5)  # let watch reach its long poll
        steady = SteadyInjector(url, rate, seconds)
        injected = steady.injected
        seen: dict[str, float] = {}
        while time.monotonic() < steady.end or len(seen) < len(injected):
            now = steady.tick()
            pending = set(injected) - set(seen)
            if pending:
                for mid in db.seen(pending):
                    seen[mid] = time.monotonic()
            time.sleep(0.002)
            if now > steady.end + 30:
                break
        watch.terminate()
        watch.wait(30)
        lat = sorted((seen[m] - injected[m]) * 1000 for m in seen)
        return {
            "backend": backend,
            "rate": rate,
            "messages": len(injected),
            "p50_ms": round(statistics.median(lat), 1),
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 1),
            "max_ms": round(lat[-1], 1),
        }
    finally:
        sim.terminate()
        sim.wait(10)
        drop_mysql(db_url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--backends", default="sqlite,mysql")
    ap.add_argument("--rate", type=float, default=50.0, help="steady rate for the latency run")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the latency run")
    ap.add_argument("--skip-analysis", action="store_true")
    ap.add_argument("--analysis-workers", type=int, default=1, help="[analysis] workers")
    ap.add_argument(
        "--sync-batch",
        type=int,
        default=100,
        help="messages per webwxsync (the simulator's default, like WeChat's: 100)",
    )
    ap.add_argument(
        "--skip-naive", action="store_true", help="leave out the one-INSERT-per-message run"
    )
    ap.add_argument("--skip-latency", action="store_true", help="leave out the latency run")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    for backend in args.backends.split(","):
        ours = [flood_run(backend, args.messages, args.groups, False, sync_batch=args.sync_batch)]
        if not args.skip_naive:
            ours.append(naive_run(backend, args.messages, args.groups, args.sync_batch))
        if not args.skip_analysis:
            ours.append(
                flood_run(
                    backend,
                    args.messages,
                    args.groups,
                    True,
                    analysis_workers=args.analysis_workers,
                    sync_batch=args.sync_batch,
                )
            )
        if not args.skip_latency:
            ours.append(latency_run(backend, args.rate, args.seconds))
        results += ours
        print(json.dumps(ours, ensure_ascii=False), file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print("  ".join(f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
