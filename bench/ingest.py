"""Ingest benchmark: how fast `wxcli watch` archives a flood, how much memory it takes, and the
delay from a message's injection to its row at a steady rate.

    python bench/ingest.py                       # SQLite and MariaDB, 100,000 messages
    python bench/ingest.py --messages 20000 --backends sqlite

The simulator runs in its own process (as WeChat's servers would), `wxcli watch` in another;
the figures are printed as a table (and as JSON with --json). Not a test: nothing asserts.
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


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


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
    backend: str, messages: int, groups: int, analysis: bool, analysis_workers: int = 1
) -> dict:
    home = Path(tempfile.mkdtemp(prefix="wxbench-"))
    sim, url = start_simulator()
    db_url = db_url_for(backend, home)
    try:
        login(home, url)
        write_config(home, url, db_url, analysis_workers)
        requests.post(f"{url}/_sim/settings", json={"sync_batch": 500}, timeout=10)
        t0 = time.monotonic()
        requests.post(f"{url}/_sim/flood", json={"count": messages, "groups": groups}, timeout=600)
        flood_s = time.monotonic() - t0
        env = dict(os.environ, WXCLI_HOME=str(home))
        cmd = [sys.executable, "-m", "wxcli", "watch", "--no-media"]
        if not analysis:
            cmd.append("--no-analysis")
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
            "analysis": analysis,
            "analysis_workers": analysis_workers if analysis else None,
            "messages": messages,
            "groups": groups,
            "flood_queue_s": round(flood_s, 2),
            "ingest_s": round(done - start, 2),
            "msgs_per_s": round(messages / (done - start)),
            "msgs_per_s_after_first_row": round(messages / (done - first)) if first else None,
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
        http = requests.Session()
        injected: dict[str, float] = {}
        seen: dict[str, float] = {}
        interval = 1.0 / rate
        next_at = time.monotonic()
        end = next_at + seconds
        i = 0
        while time.monotonic() < end or len(seen) < len(injected):
            now = time.monotonic()
            if now < end and now >= next_at:
                spec = {"group": "云帆Pro客服1群", "sender": "张伟", "content": f"延迟测试 {i}"}
                t = time.monotonic()
                mid = http.post(f"{url}/_sim/messages", json=spec, timeout=10).json()["msg_ids"][0]
                injected[mid] = t
                i += 1
                next_at += interval
            pending = set(injected) - set(seen)
            if pending:
                for mid in db.seen(pending):
                    seen[mid] = time.monotonic()
            time.sleep(0.002)
            if now > end + 30:
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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    for backend in args.backends.split(","):
        results.append(flood_run(backend, args.messages, args.groups, analysis=False))
        if not args.skip_analysis:
            results.append(
                flood_run(
                    backend,
                    args.messages,
                    args.groups,
                    True,
                    analysis_workers=args.analysis_workers,
                )
            )
        results.append(latency_run(backend, args.rate, args.seconds))
        print(
            json.dumps(
                results[-3:] if not args.skip_analysis else results[-2:], ensure_ascii=False
            ),
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print("  ".join(f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
