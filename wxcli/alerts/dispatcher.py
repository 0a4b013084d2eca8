"""Alert delivery: one queue and worker thread per channel, retries with back-off, bursts
grouped into a digest, and a history row for every alert and channel.

:meth:`Dispatcher.submit` only queues (no I/O), so the watch loop can call it from its receiving
thread; a slow or dead channel delays nobody but itself. Nothing here raises into the caller.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wxcli.alerts.channels import Channel
from wxcli.alerts.history import AlertHistoryStore, HistoryRecord
from wxcli.alerts.model import SEVERITIES, Alert
from wxcli.errors import AlertError
from wxcli.retry import backoff

log = logging.getLogger(__name__)

#: Longest pause between two delivery attempts, whatever the first back-off doubles to.
RETRY_MAX_SECONDS = 300.0
#: Most alerts listed one by one in a digest (the rest are counted).
DIGEST_MAX_LISTED = 30


@dataclass
class DeliveryResult:
    """What happened to one alert on one channel."""

    channel: str
    status: str  # delivered | failed | skipped
    attempts: int
    error: str = ""
    seconds: float = 0.0
    alerts: int = 1  # > 1 when delivered as a digest
    delivered_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status == "delivered"

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "alerts": self.alerts,
        }


@dataclass
class _Item:
    alert: Alert
    rule: str


def _bypasses_digest(alert: Alert) -> bool:
    """Login alerts (they carry the QR), critical ones and tests go out at once, alone."""
    return alert.is_login or alert.kind == "test" or alert.severity == "critical"


def make_digest(alerts: Sequence[Alert], profile: str, tz: Any = UTC) -> Alert:
    """One alert that lists ``alerts`` (a burst), most severe first in its severity."""
    counts = Counter(a.kind for a in alerts)
    severity = max((a.severity for a in alerts), key=SEVERITIES.index)
    summary = ", ".join(f"{n} {kind}" for kind, n in counts.most_common())
    lines = []
    for i, a in enumerate(alerts[:DIGEST_MAX_LISTED], 1):
        when = a.created_at.astimezone(tz).strftime("%H:%M:%S")
        lines.append(f"{i}. [{when}] {a.title}")
        body = " ".join(a.text.split())
        if body:
            lines.append(f"   {body[:200]}{'…' if len(body) > 200 else ''}")
        history = a.fields.get("history")
        if history:
            lines.append(f"   {history}")
    if len(alerts) > DIGEST_MAX_LISTED:
        lines.append(f"… and {len(alerts) - DIGEST_MAX_LISTED} more (see `wxcli alert history`).")
    first, last = alerts[0].created_at, alerts[-1].created_at
    return Alert(
        kind="digest",
        title=f"[wxcli] {profile}: {len(alerts)} alerts ({summary})",
        text="\n".join(lines),
        fields={
            "alerts": str(len(alerts)),
            "kinds": summary,
            "from": first.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            "to": last.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            "profile": profile,
        },
        key="digest:" + uuid.uuid4().hex[:12],
        created_at=last,
        severity=severity,
    )


class Dispatcher:
    """Delivers alerts to named channels in the background; see the module docstring.

    ``retries`` is the number of delivery attempts per alert and channel; the pause after the
    n-th failure is ``retry_seconds * 2**(n-1)`` (capped). With ``digest_seconds`` > 0, the first
    alert for a channel goes out at once and the ones that follow within that many seconds are
    sent together as one digest when the window ends.
    """

    def __init__(
        self,
        channels: Mapping[str, Channel],
        *,
        history: AlertHistoryStore | None = None,
        retries: int = 3,
        retry_seconds: float = 5.0,
        digest_seconds: float = 30.0,
        profile: str = "default",
        tz: Any = UTC,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        self.channels = dict(channels)
        self.history = history
        self.retries = max(int(retries), 1)
        self.retry_seconds = max(float(retry_seconds), 0.0)
        self.digest_seconds = max(float(digest_seconds), 0.0)
        self.profile = profile
        self.tz = tz
        self.monotonic = monotonic
        self.results: deque[DeliveryResult] = deque(maxlen=1000)
        self._closing = threading.Event()  # no new alerts; flush digests, end when empty
        self._stopping = threading.Event()  # the deadline passed: no more back-off pauses
        self._lock = threading.Condition()
        self._pending = 0
        self._workers: dict[str, _ChannelWorker] = {}
        self._started = False

    # -- public ------------------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
            for name, channel in self.channels.items():
                worker = _ChannelWorker(self, name, channel)
                self._workers[name] = worker
                worker.thread.start()

    def submit(
        self, alert: Alert, *, rule: str = "", channels: Sequence[str] | None = None
    ) -> None:
        """Queue ``alert`` for ``channels`` (None or empty: every channel). Never blocks."""
        if self._closing.is_set():
            log.warning("alert dropped, the dispatcher is stopped: %s", alert.title)
            return
        self.start()
        names = list(channels) if channels else list(self.channels)
        for name in names:
            worker = self._workers.get(name)
            if worker is None:
                log.error("alert for unknown channel %r dropped: %s", name, alert.title)
                continue
            with self._lock:
                self._pending += 1
            worker.put(_Item(alert, rule))

    def record(self, alert: Alert, *, rule: str, status: str, note: str = "") -> None:
        """Store an alert that is not delivered (e.g. in quiet hours) in the history."""
        if self.history is not None:
            self.history.add(self._record(alert, rule, "", status, 0, note, None, ""))

    def deliver(
        self, alert: Alert, channel: str, *, rule: str = "test", retries: int | None = None
    ) -> DeliveryResult:
        """Deliver now, in this thread (``wxcli alert test``), and record the outcome."""
        ch = self.channels.get(channel)
        if ch is None:
            return DeliveryResult(channel, "failed", 0, f"no channel named {channel!r}")
        result = self._attempt(ch, alert, retries or self.retries, report=False)
        if self.history is not None:
            self.history.add(self._result_record(_Item(alert, rule), ch.name, result, ""))
        return result

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every alert submitted so far has an outcome (digest windows included)."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def stop(self, timeout: float = 10.0) -> bool:
        """Send what is queued or waiting for a digest now, retrying until ``timeout``; then
        stop pausing between attempts and end the workers. False if a delivery was still
        running at the end (its alert is lost; the threads are daemons)."""
        self._closing.set()
        deadline = self.monotonic() + timeout
        workers = list(self._workers.values())
        for worker in workers:
            worker.wake()
        for worker in workers:
            worker.thread.join(max(deadline - self.monotonic() - 1.0, 0.0))
        self._stopping.set()  # cut back-off pauses short; one last attempt each
        for worker in workers:
            worker.wake()
            worker.thread.join(max(deadline - self.monotonic(), 0.1))
        ok = not any(w.thread.is_alive() for w in workers)
        if not ok:
            log.warning("alert delivery still running at shutdown; %d alert(s) left", self.pending)
        return ok

    # -- internals ---------------------------------------------------------------------------

    def _done(self, n: int, result: DeliveryResult) -> None:
        self.results.append(result)
        with self._lock:
            self._pending -= n
            self._lock.notify_all()

    def _attempt(
        self, channel: Channel, alert: Alert, retries: int, *, report: bool = True
    ) -> DeliveryResult:
        """Send with retries and back-off; never raises. ``report=False``: the caller shows
        the outcome itself, so a final failure is only logged at info level."""
        started = self.monotonic()
        skip = channel.skip_reason(alert)
        if skip is not None:
            return DeliveryResult(channel.name, "skipped", 0, skip)
        error = ""
        attempt = 0
        while attempt < retries:
            attempt += 1
            try:
                channel.send(alert)
            except AlertError as exc:
                error = str(exc)
            except Exception as exc:  # a channel bug must not kill the worker
                log.exception("channel %s failed unexpectedly", channel.name)
                error = f"unexpected {type(exc).__name__}: {exc}"
            else:
                took = self.monotonic() - started
                log.info("alert %r delivered to %s (%.2f s)", alert.title, channel.name, took)
                return DeliveryResult(
                    channel.name, "delivered", attempt, "", took, delivered_at=datetime.now(UTC)
                )
            if attempt >= retries:
                break
            pause = backoff(attempt - 1, base=self.retry_seconds, cap=RETRY_MAX_SECONDS, jitter=0)
            log.warning(
                "alert to %s failed (attempt %d of %d): %s; retrying in %.1f s",
                channel.name,
                attempt,
                retries,
                error,
                pause,
            )
            if self._stopping.wait(pause):
                error += " (not retried further: shutting down)"
                break
        log.log(
            logging.ERROR if report else logging.INFO,
            "alert %r NOT delivered to %s after %d attempt(s): %s",
            alert.title,
            channel.name,
            attempt,
            error,
        )
        return DeliveryResult(channel.name, "failed", attempt, error, self.monotonic() - started)

    def _record(
        self,
        alert: Alert,
        rule: str,
        channel: str,
        status: str,
        attempts: int,
        error: str,
        delivered_at: datetime | None,
        digest: str,
    ) -> HistoryRecord:
        return HistoryRecord(
            fired_at=alert.created_at,
            rule=rule,
            kind=alert.kind,
            severity=alert.severity,
            key=alert.key,
            title=alert.title,
            text=alert.text,
            fields=dict(alert.fields),
            channel=channel,
            status=status,
            attempts=attempts,
            error=error,
            delivered_at=delivered_at,
            digest=digest,
            profile=self.profile,
        )

    def _result_record(
        self, item: _Item, channel: str, result: DeliveryResult, digest: str
    ) -> HistoryRecord:
        return self._record(
            item.alert,
            item.rule,
            channel,
            result.status,
            result.attempts,
            result.error,
            result.delivered_at,
            digest,
        )


@dataclass
class _ChannelWorker:
    """The queue, digest buffer and thread of one channel."""

    dispatcher: Dispatcher
    name: str
    channel: Channel
    queue: deque[_Item] = field(default_factory=deque)
    buffer: list[_Item] = field(default_factory=list)
    window_end: float = 0.0

    def __post_init__(self) -> None:
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name=f"wx-alert-{self.name}", daemon=True)

    def put(self, item: _Item) -> None:
        with self.cond:
            self.queue.append(item)
            self.cond.notify()

    def wake(self) -> None:
        with self.cond:
            self.cond.notify()

    def _due(self) -> bool:
        return bool(self.buffer) and self.dispatcher.monotonic() >= self.window_end

    def _run(self) -> None:
        d = self.dispatcher
        try:
            while True:
                with self.cond:
                    while not (self.queue or self._due() or d._closing.is_set()):
                        timeout = None
                        if self.buffer:
                            timeout = max(self.window_end - d.monotonic(), 0.0) + 0.001
                        self.cond.wait(timeout)
                    items = list(self.queue)
                    self.queue.clear()
                    stopping = d._closing.is_set()
                for item in items:
                    self._take(item)
                if self.buffer and (self._due() or stopping):
                    batch, self.buffer = self.buffer, []
                    self.window_end = d.monotonic() + d.digest_seconds
                    self._send(batch)
                if stopping:
                    with self.cond:
                        if not self.queue and not self.buffer:
                            break
        finally:
            if d.history is not None:
                d.history.close_thread()

    def _take(self, item: _Item) -> None:
        d = self.dispatcher
        if d.digest_seconds <= 0 or _bypasses_digest(item.alert):
            self._send([item])
        elif self.buffer or d.monotonic() < self.window_end:
            self.buffer.append(item)
        else:
            self.window_end = d.monotonic() + d.digest_seconds
            self._send([item])

    def _send(self, items: list[_Item]) -> None:
        d = self.dispatcher
        result = DeliveryResult(self.name, "failed", 0, "internal error", alerts=len(items))
        try:
            if len(items) == 1:
                alert, digest = items[0].alert, ""
            else:
                alert = make_digest([i.alert for i in items], d.profile, d.tz)
                digest = alert.key.removeprefix("digest:")
            result = d._attempt(self.channel, alert, d.retries)
            result.alerts = len(items)
            if d.history is not None:
                for item in items:
                    d.history.add(d._result_record(item, self.name, result, digest))
        except Exception:  # the worker must survive anything, or this channel goes silent
            log.exception("alert delivery on channel %s failed", self.name)
        finally:
            d._done(len(items), result)
