"""Feed benchmark: does the feed keep up with ingest, and how long does a message take from
WeChat to the systems that act on it?

    python bench/feed.py                         # SQLite: 50,000 messages, 30 s at 50 msg/s
    python bench/feed.py --mysql                 # the same on MariaDB too
    python bench/feed.py --messages 10000 --seconds 10 --poll 0.5

(a) Throughput. The simulator floods ``--messages`` over 200 groups and `wxcli watch` (a real
process, media and analysis off) archives them with two sinks configured: a webhook (a
receiver in this process) and a Redis stream on 127.0.0.1:6379. Ingest, webhook and Redis
rates are measured in the same run, from `watch`'s start to the last row stored / the last
message received. Then the sinks' cursors are rewound and a feed runner in this process
delivers the whole archive again with no ingest running: the catch-up rate of a sink that was
down.

(b) Delay. Messages injected one by one at ``--rate`` msg/s for ``--seconds`` s; for each, the
time from the injection call returning to its row being visible to another connection, to its
arrival at the webhook receiver, and to its arrival in the Redis stream (a blocking XREAD).

The simulator and `watch` run in their own processes, as in production. Not a test: nothing
asserts; figures are printed as a table (and as JSON with --json).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # noqa: E402
    Db,
    SteadyInjector,
    db_url_for,
    drop_mysql,
    login,
    start_simulator,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


class Receiver:
    """A webhook receiver that notes when each msg_id first arrived (and how many repeats)."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.repeats = 0
        self.requests = 0
        self._lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.monotonic()
                ids = [m["msg_id"] for m in json.loads(body)["messages"]]
                with rx._lock:
                    rx.requests += 1
                    for i in ids:
                        if i in rx.arrived:
                            rx.repeats += 1
                        else:
                            rx.arrived[i] = now
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def count(self) -> int:
        return len(self.arrived)

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class StreamReader:
    """Follows the Redis stream with a blocking XREAD, noting each msg_id's first arrival."""

    def __init__(self, stream: str) -> None:
        import redis

        self.stream = stream
        self.arrived: dict[str, float] = {}
        self.repeats = 0
        self._r = redis.Redis.from_url(REDIS_URL)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last = "0-0"
        while not self._stop.is_set():
            got = self._r.xread({self.stream: last}, count=1000, block=100)
            now = time.monotonic()
            for _, entries in got or []:
                for eid, fields in entries:
                    last = eid
                    mid = fields[b"msg_id"].decode()
                    if mid in self.arrived:
                        self.repeats += 1
                    else:
                        self.arrived[mid] = now

    def count(self) -> int:
        return len(self.arrived)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._r.delete(self.stream)
        self._r.close()


def write_config(home: Path, url: str, db_url: str, hook: str, stream: str, poll: float) -> None:
    (home / "wxcli.toml").write_text(
        f'[wechat]\nlogin_url = "{url}"\nsynccheck_timeout = 10.0\n'
        f'[database]\nurl = "{db_url}"\nstore_raw = true\n'
        "[watch]\nhealth_seconds = 1.0\nsession_save_seconds = 2.0\n"
        f"[feed]\npoll_seconds = {poll}\n"
        f'[feed.sinks.hook]\nurl = "{hook}"\n'
        f'[feed.sinks.stream]\nurl = "{REDIS_URL}"\nstream = "{stream}"\nmaxlen = 10000000\n',
        encoding="utf-8",
    )


def start_watch(home: Path):
    import os
    import subprocess

    env = dict(os.environ, WXCLI_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "wxcli", "watch", "--no-media", "--no-analysis"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def prepare(home: Path, url: str, db_url: str, poll: float):
    """Log in, write the config, and create the archive with both cursors at its start (so
    the flood's first rows cannot slip in before a sink's cursor exists)."""
    from wxcli.feed.cursors import load_cursor

    login(home, url)
    rx = Receiver()
    stream = f"wxcli-bench:{uuid.uuid4().hex[:8]}"
    write_config(home, url, db_url, rx.url, stream, poll)
    db = Db(db_url, home)
    for name in ("hook", "stream"):
        load_cursor(db.archive, name)
    return rx, StreamReader(stream), db


@contextlib.contextmanager
def bench_world(backend: str, poll: float) -> Iterator[tuple[Path, str, Db, Any, Any]]:
    """A fresh home, the simulator, a login, both sinks configured and their receivers:
    (home, simulator URL, archive, webhook receiver, stream reader); all cleaned up after."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="wxbench-"))
    sim, url = start_simulator()
    db_url = db_url_for(backend, home)
    rx = reader = None
    try:
        rx, reader, db = prepare(home, url, db_url, poll)
        yield home, url, db, rx, reader
    finally:
        for x in (rx, reader):
            if x is not None:
                x.close()
        sim.terminate()
        sim.wait(10)
        drop_mysql(db_url)


def flood_run(backend: str, messages: int, groups: int, poll: float) -> dict:
    with bench_world(backend, poll) as (home, url, db, rx, reader):
        requests.post(f"{url}/_sim/settings", json={"sync_batch": 500}, timeout=10)
        requests.post(f"{url}/_sim/flood", json={"count": messages, "groups": groups}, timeout=600)
        start = time.monotonic()
        watch = start_watch(home)
        stored_at = hook_at = redis_at = None
        while None in (stored_at, hook_at, redis_at):
            now = time.monotonic()
            if stored_at is None and db.count() >= messages:
                stored_at = now
            if hook_at is None and rx.count() >= messages:
                hook_at = now
            if redis_at is None and reader.count() >= messages:
                redis_at = now
            if watch.poll() is not None:
                raise RuntimeError(watch.stderr.read().decode())
            if now - start > 1800:
                raise RuntimeError("no end after 30 minutes")
            time.sleep(0.02)
        watch.terminate()
        watch.wait(30)
        out = {
            "run": "flood",
            "backend": backend,
            "messages": messages,
            "ingest_msgs_per_s": round(messages / (stored_at - start)),
            "webhook_msgs_per_s": round(messages / (hook_at - start)),
            "redis_msgs_per_s": round(messages / (redis_at - start)),
            "webhook_after_ingest_s": round(hook_at - stored_at, 2),
            "redis_after_ingest_s": round(redis_at - stored_at, 2),
            "webhook_requests": rx.requests,
            "repeats": rx.repeats + reader.repeats,
        }
        out.update(catch_up(db, messages, poll))
        return out


def catch_up(db: Db, messages: int, poll: float) -> dict:
    """Both sinks rewound to the archive's start, delivered by a runner in this process while
    nothing is being stored: how fast a sink that was down catches up."""
    from wxcli.feed import cursors
    from wxcli.feed.runner import FeedRunner
    from wxcli.feed.settings import FeedSettings, parse_sink

    out = {}
    for kind in ("webhook", "redis"):
        if kind == "webhook":
            target = Receiver()
            spec = parse_sink("hook", {"url": target.url})
        else:
            target = StreamReader(f"wxcli-bench:{uuid.uuid4().hex[:8]}")
            spec = parse_sink("stream", {"url": REDIS_URL, "stream": target.stream})
        cursors.save_cursor(db.archive, spec.name, 0, 0, 0)
        settings = FeedSettings(poll_seconds=poll, max_backlog=10**9, sinks=(spec,))
        runner = FeedRunner(db.archive, settings, lambda k, d: None)
        t0 = time.monotonic()
        runner.start()
        while target.count() < messages and time.monotonic() - t0 < 900:
            time.sleep(0.01)
        out[f"catch_up_{kind}_msgs_per_s"] = round(messages / (time.monotonic() - t0))
        runner.stop()
        target.close()
    return out


def _pcts(values: list[float]) -> dict:
    v = sorted(values)
    if not v:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "p50_ms": round(statistics.median(v), 1),
        "p99_ms": round(v[max(int(len(v) * 0.99) - 1, 0)], 1),
        "max_ms": round(v[-1], 1),
    }


def delay_run(backend: str, rate: float, seconds: float, poll: float) -> dict:
    with bench_world(backend, poll) as (home, url, db, rx, reader):
        watch = start_watch(home)
        time.sleep(2.0)  # let watch reach its long poll and the sinks their first poll
        steady = SteadyInjector(url, rate, seconds)
        injected = steady.injected
        end = steady.end
        stored: dict[str, float] = {}
        while True:
            now = steady.tick()
            pending = set(injected) - set(stored)
            if pending:
                for mid in db.seen(pending):
                    stored[mid] = time.monotonic()
            done = len(stored) == len(rx.arrived) == len(reader.arrived) == len(injected)
            if now >= end and (done or now > end + 30):
                break
            time.sleep(0.002)
        watch.terminate()
        watch.wait(30)

        def ms(arrived: dict[str, float]) -> list[float]:
            return [(arrived[m] - injected[m]) * 1000 for m in injected if m in arrived]

        out = {"run": "delay", "backend": backend, "rate": rate, "messages": len(injected)}
        for what, arrived in (("row", stored), ("webhook", rx.arrived), ("redis", reader.arrived)):
            for k, v in _pcts(ms(arrived)).items():
                out[f"{what}_{k}"] = v
        out["lost"] = len(injected) - min(len(rx.arrived), len(reader.arrived))
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=50_000, help="size of the flood")
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--mysql", action="store_true", help="also on MariaDB (127.0.0.1:3306)")
    ap.add_argument("--rate", type=float, default=50.0, help="steady rate of the delay run")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the delay run")
    ap.add_argument("--poll", type=float, default=0.5, help="[feed] poll_seconds")
    ap.add_argument("--skip-flood", action="store_true")
    ap.add_argument("--skip-delay", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = []
    for backend in ["sqlite"] + (["mysql"] if args.mysql else []):
        if not args.skip_flood:
            results.append(flood_run(backend, args.messages, args.groups, args.poll))
            print(json.dumps(results[-1]), file=sys.stderr)
        if not args.skip_delay:
            results.append(delay_run(backend, args.rate, args.seconds, args.poll))
            print(json.dumps(results[-1]), file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print("  ".join(f"{k}={v}" for k, v in r.items()))


if __name__ == "__main__":
    main()
