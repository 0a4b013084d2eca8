"""Several `wxcli send` processes and REST requests at once share one pacer: no 1205.

The simulator's budget and the pacer are scaled down in proportion to the real ones (WeChat
~60 burst then ~1/s vs. our default 20 then 0.5/s): simulator 10 then 20/s, pacer 5 then 10/s.
A control run with pacing switched off shows that the same load does trigger 1205, so the
zero in the paced run is the pacer's doing.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
import requests

from tests.helpers.send import logged_in, sent_rets
from wxcli.server.app import start_server
from wxcli.server.auth import AppStore

CLI_SENDERS = 6
REST_SENDS = 24  # all from 127.0.0.1: above [serve] connections_per_client (20), raised here


@pytest.fixture
def scaled_sim(sim):
    sim.control.settings(send_burst=10, send_rate=20.0)
    return sim


def fire(
    profile, server_url: str, auth: dict[str, str], rest_sends: int = REST_SENDS
) -> tuple[list, list, float]:
    """Start the CLI senders, then the REST requests; wait for all; returns results."""
    start = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "wxcli", "send", "text", "--to", "内部员工群", f"cli {i}"],
            env=profile.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(CLI_SENDERS)
    ]
    statuses: list[int] = []
    lock = threading.Lock()

    def rest(i: int) -> None:
        r = requests.post(
            f"{server_url}/v1/msg/text",
            json={"to": "内部员工群", "text": f"rest {i}"},
            headers=auth,
            timeout=60,
        )
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=rest, args=(i,)) for i in range(rest_sends)]
    for t in threads:
        t.start()
    results = []
    for p in procs:
        _out, err = p.communicate(timeout=60)
        results.append((p.returncode, err))
    for t in threads:
        t.join(60)
    return results, statuses, time.monotonic() - start


def test_concurrent_senders_never_trigger_1205(scaled_sim, wx_home):
    profile = logged_in(
        scaled_sim,
        wx_home,
        send={"burst": 5, "rate": 10.0, "jitter": 0.02, "retries": 0, "backoff": 0.01},
        serve={"threads": 8, "connections_per_client": 2 * REST_SENDS},
    )
    created = AppStore(profile.paths.apps).add("load")
    auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
    with start_server(profile.paths, profile.config, "127.0.0.1", 0) as server:
        cli_results, statuses, elapsed = fire(profile, server.url, auth)
    assert [code for code, _ in cli_results] == [0] * CLI_SENDERS, cli_results
    assert statuses == [200] * REST_SENDS
    rets = sent_rets(scaled_sim)
    assert len(rets) == CLI_SENDERS + REST_SENDS
    assert 1205 not in rets
    assert set(rets) == {0}
    # 30 sends at burst 5 then 10/s cannot finish sooner than 2.5 s: pacing really happened.
    assert elapsed >= (CLI_SENDERS + REST_SENDS - 5) / 10.0
    texts = sorted(s["text"] for s in scaled_sim.control.sent())
    assert texts == sorted(
        [f"cli {i}" for i in range(CLI_SENDERS)] + [f"rest {i}" for i in range(REST_SENDS)]
    )


def test_control_without_pacing_the_same_load_hits_1205(scaled_sim, wx_home):
    profile = logged_in(
        scaled_sim,
        wx_home,
        send={"rate": 0.0, "retries": 0},  # rate 0 = pacing off
        serve={"threads": 8, "connections_per_client": 2 * REST_SENDS},
    )
    created = AppStore(profile.paths.apps).add("load")
    auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
    with start_server(profile.paths, profile.config, "127.0.0.1", 0) as server:
        _cli, statuses, _ = fire(profile, server.url, auth)
    assert 1205 in sent_rets(scaled_sim)
    assert 429 in statuses  # the API reports WeChat's refusal as rate_limited
