"""The pacer's bucket, back-off and queue, on an injected clock (no real sleeping)."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import random
import stat
import time

import pytest

from wxcli.errors import RateLimitedError
from wxcli.pacer import Pacer, PacerQueueFullError, PacerSettings


class FakeClock:
    """time.time and time.sleep in one: sleeping moves the clock, nothing waits."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def make(tmp_path, clock: FakeClock, **settings) -> Pacer:
    base = {"burst": 3, "rate": 2.0, "jitter": 0.0, "retries": 3, "backoff": 5.0}
    return Pacer(
        tmp_path / "pacer.json",
        PacerSettings(**{**base, **settings}),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
    )


def send_times(pacer: Pacer, clock: FakeClock, n: int) -> list[float]:
    out = []
    for _ in range(n):
        pacer.acquire()
        out.append(round(clock.now - 1_800_000_000.0, 6))
    return out


def test_burst_then_steady_rate(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=3, rate=2.0)
    assert send_times(pacer, clock, 6) == [0, 0, 0, 0.5, 1.0, 1.5]


def test_bucket_refills_while_idle(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=3, rate=2.0)
    send_times(pacer, clock, 3)
    clock.now += 10  # long idle: the bucket is full again, but never above the burst
    start = clock.now - 1_800_000_000.0
    times = [t - start for t in send_times(pacer, clock, 4)]
    assert times == [0, 0, 0, 0.5]


def test_budget_is_shared_through_the_state_file(tmp_path):
    """Two pacers (as in two processes) on one file draw from one bucket."""
    clock = FakeClock()
    a = make(tmp_path, clock, burst=2, rate=1.0)
    b = make(tmp_path, clock, burst=2, rate=1.0)
    a.acquire()
    b.acquire()
    b.acquire()  # third send overall: must wait a full interval
    assert clock.sleeps == [1.0]
    assert a.status().sent == 3


def test_jitter_only_delays_waiting_senders_and_stays_in_bounds(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=2, rate=1.0, jitter=0.5)
    times = send_times(pacer, clock, 6)
    unjittered = [0, 0, 1, 2, 3, 4]
    assert times[:2] == [0, 0]  # burst sends go at once
    late = [t - base for t, base in zip(times, unjittered, strict=True)]
    assert all(0 <= d <= 0.5 + 1e-9 for d in late), late
    assert any(d > 0 for d in late)  # the jitter is really there


def test_sustained_sends_never_exceed_the_bucket(tmp_path):
    """Property of the output: in any window [t, t+w], sends <= burst + rate*w."""
    clock = FakeClock()
    burst, rate = 4, 3.0
    pacer = make(tmp_path, clock, burst=burst, rate=rate, jitter=0.2)
    times = send_times(pacer, clock, 40)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            window = times[j] - start
            assert j - i + 1 <= burst + rate * window + 1e-6


def test_call_backs_off_on_1205_and_retries(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=5, rate=10.0, backoff=5.0, retries=3)
    answers = iter([RateLimitedError("webwxsendmsg"), RateLimitedError("webwxsendmsg"), "ok"])
    calls = []

    def send():
        calls.append(clock.now)
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert pacer.call(send) == "ok"
    waits = [b - a for a, b in itertools.pairwise(calls)]
    # Doubling back-off with ±25 % jitter: ~5 s, then ~10 s (plus at most one interval).
    assert 3.75 <= waits[0] <= 6.25 + 0.1
    assert 7.5 <= waits[1] <= 12.5 + 0.1
    status = pacer.status()
    assert status.rate_limited == 2


def test_call_gives_up_with_a_clear_error(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, retries=2, backoff=1.0)
    calls = []

    def send():
        calls.append(clock.now)
        raise RateLimitedError("webwxsendmsgimg")

    with pytest.raises(RateLimitedError) as info:
        pacer.call(send)
    assert len(calls) == 3
    assert "after 2 retries" in str(info.value)
    assert info.value.endpoint == "webwxsendmsgimg"
    assert info.value.exit_code == 4


def test_a_1205_pauses_every_sender_of_the_profile(tmp_path):
    clock = FakeClock()
    a = make(tmp_path, clock, burst=10, rate=10.0, backoff=20.0)
    b = make(tmp_path, clock, burst=10, rate=10.0, backoff=20.0)
    delay = a.rate_limited(0)
    before = clock.now
    b.acquire()
    assert clock.now - before == pytest.approx(delay)
    assert b.status().blocked_for == 0


def test_waiters_requeue_behind_a_backoff_announced_while_they_sleep(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=1, rate=1.0, backoff=30.0)
    other = make(tmp_path, clock, burst=1, rate=1.0, backoff=30.0)
    pacer.acquire()  # the burst is used up: the next sender waits ~1 s
    announced = []

    def sleep_and_meanwhile_1205(seconds: float) -> None:
        if not announced:
            announced.append(other.rate_limited(0))
        clock.sleep(seconds)

    pacer.sleep = sleep_and_meanwhile_1205
    start = clock.now
    pacer.acquire()
    assert clock.now - start >= announced[0] - 1e-6


def test_queue_limit_refuses_extra_waiters(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=1, rate=1.0, queue_limit=2)
    pacer.acquire()
    # Two senders of other (live) processes are waiting: write them the way acquire() does.
    state = json.loads((tmp_path / "pacer.json").read_text())
    state["waiting"] = {
        f"w{i}": {"pid": os.getpid(), "at": clock.now + 5 + i, "gen": state["gen"]}
        for i in range(2)
    }
    (tmp_path / "pacer.json").write_text(json.dumps(state))
    assert pacer.status().waiting == 2
    with pytest.raises(PacerQueueFullError) as info:
        pacer.acquire()
    assert info.value.limit == 2
    assert info.value.retry_after > 0


def test_waiters_of_dead_processes_are_forgotten(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=1, rate=1.0, queue_limit=1)
    proc = multiprocessing.get_context("spawn").Process(target=time.sleep, args=(0,))
    proc.start()
    proc.join()
    state = {
        "version": 1,
        "tat": 0.0,
        "gen": 0,
        "blocked_until": 0.0,
        "waiting": {"dead": {"pid": proc.pid, "at": clock.now + 1, "gen": 0}},
        "sent": 0,
        "rate_limited": 0,
    }
    (tmp_path / "pacer.json").write_text(json.dumps(state))
    assert pacer.status().waiting == 0
    pacer.acquire()  # not refused: the dead waiter does not count


def test_corrupt_state_file_starts_afresh_and_state_is_private(tmp_path):
    clock = FakeClock()
    (tmp_path / "pacer.json").write_text("{not json")
    pacer = make(tmp_path, clock)
    assert pacer.acquire() == 0
    assert json.loads((tmp_path / "pacer.json").read_text())["sent"] == 1
    assert stat.S_IMODE((tmp_path / "pacer.json").stat().st_mode) == 0o600


def test_rate_zero_disables_pacing(tmp_path):
    clock = FakeClock()
    pacer = make(tmp_path, clock, burst=1, rate=0.0)
    send_times(pacer, clock, 50)
    assert clock.sleeps == []


def test_settings_from_config():
    from wxcli.config import defaults

    cfg = defaults()
    cfg.data["send"].update(burst=7, rate=1.5, jitter=0.1, retries=2, backoff=3.0, queue_limit=9)
    s = PacerSettings.from_config(cfg)
    assert (s.burst, s.rate, s.jitter, s.retries, s.backoff, s.queue_limit) == (
        7,
        1.5,
        0.1,
        2,
        3.0,
        9,
    )
    d = PacerSettings.from_config(defaults())
    # The shipped defaults stay well inside WeChat's observed budget (burst ~60, ~1/s).
    assert d.burst <= 60
    assert d.rate <= 1.0
