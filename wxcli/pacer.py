"""The send pacer: one rate discipline shared by every process that sends for a profile.

WeChat answers 1205 ("too frequent") and eventually blocks accounts that send in bursts, so
``send``, ``serve`` and the WeChat alert channel all reserve a slot here before each send. The
bucket lives in a small JSON state file guarded by an ``flock`` on a lock file beside it; it is a
GCRA token bucket (burst, then a sustained rate) with a theoretical-arrival-time, so every
process sees the same budget and waiters are served roughly in arrival order. A 1205 pushes the
whole profile into an exponential back-off: senders already waiting notice the new
"generation" when they wake and queue again behind the back-off.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from wxcli.errors import RateLimitedError, WxError
from wxcli.fileutil import locked
from wxcli.retry import backoff

if TYPE_CHECKING:
    from wxcli.config import Config
    from wxcli.paths import ProfilePaths

log = logging.getLogger(__name__)

T = TypeVar("T")

STATE_VERSION = 1
#: A waiting entry older than this past its slot belongs to a sender that died mid-wait.
STALE_WAIT_SECONDS = 120.0
#: Never sleep longer than this in one go, so a back-off announced meanwhile is seen soon.
MAX_NAP = 5.0
#: Upper bound of one 1205 back-off, whatever the configured first back-off doubles to.
BACKOFF_MAX = 300.0


class PacerQueueFullError(WxError):
    """Too many senders are already waiting for the pacer (REST answers 429)."""

    def __init__(self, waiting: int, limit: int, retry_after: float):
        self.waiting = waiting
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"{waiting} sends are already waiting for the send pacer (limit {limit}); "
            f"retry in about {retry_after:.0f} s"
        )


@dataclass(frozen=True)
class PacerSettings:
    """The ``[send]`` pacing knobs. ``rate <= 0`` disables pacing (benchmarks only)."""

    burst: int = 20
    rate: float = 0.5
    jitter: float = 0.3
    retries: int = 4
    backoff: float = 5.0
    queue_limit: int = 50

    @classmethod
    def from_config(cls, config: Config) -> PacerSettings:
        s = config.settings.send
        return cls(
            burst=max(s.burst, 1),
            rate=float(s.rate),
            jitter=max(float(s.jitter), 0.0),
            retries=max(s.retries, 0),
            backoff=max(float(s.backoff), 0.0),
            queue_limit=max(s.queue_limit, 0),
        )

    @property
    def enabled(self) -> bool:
        return self.rate > 0


@dataclass
class PacerStatus:
    """What ``/v1/health`` shows about the pacer."""

    waiting: int
    queue_limit: int
    available: float  # sends that could go right now (the bucket's level)
    blocked_for: float  # seconds of 1205 back-off still ahead
    sent: int
    rate_limited: int

    def to_json(self) -> dict[str, Any]:
        return {
            "waiting": self.waiting,
            "queue_limit": self.queue_limit,
            "available": round(self.available, 2),
            "blocked_for": round(self.blocked_for, 2),
            "sent": self.sent,
            "rate_limited": self.rate_limited,
        }


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Pacer:
    """Cross-process send pacing for one profile (thread-safe: every call opens its own lock)."""

    def __init__(
        self,
        state_path: Path,
        settings: PacerSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        self.state_path = Path(state_path)
        self.lock_path = self.state_path.with_name(self.state_path.name + ".lock")
        self.settings = settings or PacerSettings()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()

    @classmethod
    def for_profile(cls, paths: ProfilePaths, config: Config, **kwargs: Any) -> Pacer:
        return cls(paths.pacer_state, PacerSettings.from_config(config), **kwargs)

    # ------------------------------------------------------------------ state file

    def _fresh_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "tat": 0.0,
            "gen": 0,
            "blocked_until": 0.0,
            "waiting": {},
            "sent": 0,
            "rate_limited": 0,
        }

    def _read(self) -> dict[str, Any]:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return self._fresh_state()
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            if text.strip():
                log.warning("pacer state %s was unreadable; starting afresh", self.state_path)
            return self._fresh_state()
        state = self._fresh_state()
        state.update(data)
        if not isinstance(state["waiting"], dict):
            state["waiting"] = {}
        return state

    def _write(self, state: dict[str, Any]) -> None:
        # The lock serialises every reader and writer, so an in-place rewrite is enough; the
        # state is ephemeral (a crash mid-write only costs a fresh bucket), hence no fsync.
        data = json.dumps(state, separators=(",", ":")).encode("utf-8")
        fd = os.open(self.state_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _state(self, write: bool = True) -> Iterator[dict[str, Any]]:
        with locked(self.lock_path, exclusive=write):
            state = self._read()
            yield state
            if write:
                self._write(state)

    def _prune(self, state: dict[str, Any], now: float) -> None:
        waiting: dict[str, Any] = state["waiting"]
        for token, entry in list(waiting.items()):
            try:
                pid = int(entry["pid"])
                at = float(entry["at"])
            except (KeyError, TypeError, ValueError):
                del waiting[token]
                continue
            if at < now - STALE_WAIT_SECONDS or not _pid_alive(pid):
                del waiting[token]

    # ------------------------------------------------------------------ the bucket

    def _reserve(self, state: dict[str, Any], now: float) -> float:
        """Take the next slot (GCRA); returns the time the caller may send."""
        s = self.settings
        interval = 1.0 / s.rate
        tolerance = (s.burst - 1) * interval
        blocked = float(state["blocked_until"])
        tat = max(float(state["tat"]), now)
        send_at = max(now, tat - tolerance, blocked)
        if send_at > now and s.jitter > 0:
            # Jitter only for senders that wait anyway; it also moves the bucket, so a delayed
            # send never squeezes the one after it closer than the rate allows.
            send_at += self.rng.uniform(0.0, s.jitter)
        state["tat"] = max(tat, send_at) + interval
        return send_at

    def acquire(self) -> float:
        """Block until this caller may send one message; returns the seconds waited.

        Raises PacerQueueFullError when ``queue_limit`` senders are already waiting.
        """
        if not self.settings.enabled:
            return 0.0
        token = secrets.token_hex(8)
        start = self.clock()
        while True:
            with self._state() as state:
                now = self.clock()
                self._prune(state, now)
                waiting: dict[str, Any] = state["waiting"]
                entry = waiting.get(token)
                if entry is None or entry.get("gen") != state["gen"]:
                    if entry is None and len(waiting) >= self.settings.queue_limit:
                        probe = dict(state)
                        if self._reserve(probe, now) > now:
                            raise PacerQueueFullError(
                                len(waiting),
                                self.settings.queue_limit,
                                len(waiting) / self.settings.rate,
                            )
                    slot = self._reserve(state, now)
                else:
                    slot = float(entry["at"])
                if slot <= now:
                    waiting.pop(token, None)
                    state["sent"] = int(state["sent"]) + 1
                    return now - start
                if entry is None and slot - now > 1.0:
                    ahead = len(waiting)
                    log.info("waiting %.1f s for the send pacer (%d ahead)", slot - now, ahead)
                waiting[token] = {"pid": os.getpid(), "at": slot, "gen": state["gen"]}
            self.sleep(min(slot - now, MAX_NAP))

    def cancel_waiters_of_this_process(self) -> None:
        """Forget this process's waiting entries (on shutdown of a server)."""
        with self._state() as state:
            pid = os.getpid()
            state["waiting"] = {t: e for t, e in state["waiting"].items() if e.get("pid") != pid}

    def backoff_delay(self, attempt: int) -> float:
        """The pause after the ``attempt``-th 1205 in a row (0-based): doubling, 75–125 %."""
        return backoff(
            attempt, base=self.settings.backoff, cap=BACKOFF_MAX, jitter=0.25, rand=self.rng.random
        )

    def rate_limited(self, attempt: int) -> float:
        """Record a 1205: everyone of this profile pauses; returns the pause in seconds."""
        delay = self.backoff_delay(attempt)
        s = self.settings
        with self._state() as state:
            now = self.clock()
            until = now + delay
            state["blocked_until"] = max(float(state["blocked_until"]), until)
            if s.enabled:
                # After the pause the server's bucket is assumed empty: one send, then the rate.
                tolerance = (s.burst - 1) / s.rate
                state["tat"] = max(float(state["tat"]), until + tolerance)
            state["gen"] = int(state["gen"]) + 1
            state["rate_limited"] = int(state["rate_limited"]) + 1
        log.warning("WeChat answered 1205 (too frequent); pausing sends for %.1f s", delay)
        return delay

    def call(self, send: Callable[[], T]) -> T:
        """Pace ``send`` and retry it after 1205 with back-off, up to ``retries`` times."""
        attempt = 0
        waited = 0.0
        while True:
            waited += self.acquire()
            try:
                return send()
            except RateLimitedError as exc:
                if attempt >= self.settings.retries:
                    raise RateLimitedError(
                        exc.endpoint,
                        f"{exc.endpoint}: WeChat still answers 1205 (too frequent) after "
                        f"{attempt} retr{'y' if attempt == 1 else 'ies'} over {waited:.0f} s; "
                        "the account is being throttled — wait a few minutes before sending "
                        "again (and consider lowering [send] rate/burst)",
                    ) from None
                delay = self.rate_limited(attempt)
                if not self.settings.enabled:
                    self.sleep(delay)  # no bucket to carry the pause: wait here
                waited += delay
                attempt += 1

    def status(self) -> PacerStatus:
        """A read-only look at the bucket (shared lock, nothing written)."""
        s = self.settings
        with self._state(write=False) as state:
            now = self.clock()
            self._prune(state, now)
            if s.enabled:
                interval = 1.0 / s.rate
                backlog = max(float(state["tat"]) - now, 0.0)
                available = max(s.burst - backlog / interval, 0.0)
            else:
                available = float("inf")
            blocked_for = max(float(state["blocked_until"]) - now, 0.0)
            if blocked_for > 0:
                available = 0.0
            return PacerStatus(
                waiting=len(state["waiting"]),
                queue_limit=s.queue_limit,
                available=min(available, float(s.burst)),
                blocked_for=blocked_for,
                sent=int(state["sent"]),
                rate_limited=int(state["rate_limited"]),
            )

    def queue_depth(self) -> int:
        return self.status().waiting
