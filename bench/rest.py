"""REST throughput of `wxcli serve` against a running `wxcli sim` (both subprocesses).

Three runs, each with a fresh pacer:

* unpaced: [send] rate = 0 (pacing off) and a simulator without a send limit — what the HTTP
  stack, auth and the client cost per message;
* paced: the shipped [send] defaults against the simulator's default budget (60 then 1/s) —
  the burst goes at once, then the pacer holds the rate; no 1205 may appear;
* GET /v1/contacts (auth + routing, no send) for reference.

    python bench/rest.py [--requests 400] [--concurrency 8] [--paced-requests 26]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from send_startup import WXCLI, SimEnv, wait_line


def serve(env: SimEnv) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*WXCLI, "serve", "--port", "0"], env=env.env(), stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    line = wait_line(proc.stderr, "Serving on ")
    threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep the pipe drained
    return proc, line.split()[2]


def load(
    url: str,
    method: str,
    path: str,
    auth: dict[str, str],
    total: int,
    concurrency: int,
    body: dict[str, Any] | None = None,
) -> tuple[float, Counter[int], list[float]]:
    """Fire ``total`` requests from ``concurrency`` threads; (elapsed, statuses, finish times)."""
    counter = iter(range(total))
    lock = threading.Lock()
    statuses: Counter[int] = Counter()
    finished: list[float] = []
    start = time.perf_counter()

    def worker() -> None:
        http = requests.Session()
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            payload = {**body, "text": f"{body['text']} {i}"} if body else None
            r = http.request(method, url + path, json=payload, headers=auth, timeout=600)
            with lock:
                statuses[r.status_code] += 1
                finished.append(time.perf_counter() - start)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, statuses, sorted(finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--paced-requests", type=int, default=26)
    args = parser.parse_args()
    text = {"to": "filehelper", "text": "bench"}
    with SimEnv() as env:
        from wxcli.server.auth import AppStore

        created = AppStore(env.home / "apps.json").add("bench")
        auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
        control = env.control()

        # 1. unpaced
        control.settings(send_burst=10**9, send_rate=10**9)
        env.configure({"send": {"rate": 0.0}})
        proc, url = serve(env)
        try:
            load(url, "POST", "/v1/msg/text", auth, 20, args.concurrency, text)  # warm up
            elapsed, statuses, _ = load(
                url, "POST", "/v1/msg/text", auth, args.requests, args.concurrency, text
            )
            c_elapsed, c_statuses, _ = load(
                url, "GET", "/v1/contacts", auth, args.requests, args.concurrency
            )
        finally:
            proc.terminate()
            proc.wait(10)
        unpaced = args.requests / elapsed
        contacts = args.requests / c_elapsed

        # 2. paced, shipped defaults, simulator default budget
        control.reset()
        control.settings(send_burst=60, send_rate=1.0)
        subprocess.run([*WXCLI, "login", "--no-qr"], env=env.env(), check=True, capture_output=True)
        env.configure({})
        proc, url = serve(env)
        try:
            p_elapsed, p_statuses, finished = load(
                url, "POST", "/v1/msg/text", auth, args.paced_requests, args.concurrency, text
            )
        finally:
            proc.terminate()
            proc.wait(10)
        rets = Counter(s["ret"] for s in control.sent())

    from wxcli.config import defaults

    d = defaults().data["send"]
    burst = min(int(d["burst"]), args.paced_requests)
    print(f"REST throughput of wxcli serve ({args.concurrency} client threads)")
    print(
        f"  unpaced  POST /v1/msg/text : {unpaced:7.1f} req/s "
        f"({args.requests} requests in {elapsed:.2f} s, statuses {dict(statuses)})"
    )
    print(
        f"  unpaced  GET  /v1/contacts : {contacts:7.1f} req/s "
        f"({args.requests} requests in {c_elapsed:.2f} s, statuses {dict(c_statuses)})"
    )
    after = finished[burst:]
    sustained = (len(after) - 1) / (after[-1] - after[0]) if len(after) > 1 else float("nan")
    print(
        f"  paced    POST /v1/msg/text : {args.paced_requests / p_elapsed:7.2f} req/s overall "
        f"({args.paced_requests} requests in {p_elapsed:.1f} s, statuses {dict(p_statuses)})"
    )
    print(
        f"           defaults burst={d['burst']} rate={d['rate']}/s jitter={d['jitter']} s: "
        f"first {burst} done in {finished[burst - 1]:.2f} s, then {sustained:.2f} msg/s"
    )
    print(f"           simulator ret codes: {dict(rets)} (1205 must not appear)")


if __name__ == "__main__":
    main()
