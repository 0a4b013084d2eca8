"""Runs the feed: one thread per sink, each reading the archive from its own cursor.

A sink's thread holds at most one batch in memory and retries exactly that batch until the sink
acknowledges it, then commits the cursor: at-least-once, in storage order (so in order per chat).
Threads are independent, so a slow or dead sink delays nobody else, and none of them touches
the receiving path: `watch` stores first, the feed reads what was stored.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee as pw

from wxcli.errors import FeedError
from wxcli.feed import cursors
from wxcli.feed.payload import message_payload, roster_payload
from wxcli.feed.settings import FeedSettings, SinkSpec
from wxcli.feed.sinks import Sink, open_sink
from wxcli.retry import backoff
from wxcli.store.archive import Archive
from wxcli.store.history import MessageFilter, last_row_id, messages_after

log = logging.getLogger("wxcli.feed")

Notify = Callable[[str, dict[str, Any]], None]
#: consecutive failed deliveries before a `feed_failing` alert
FAILING_AFTER = 3
#: the lag (a COUNT over the rows after the cursor) is counted every this many polls, within
#: 0.5-5 s: often enough for `wxcli status`, rarely enough for a sink a million rows behind
LAG_EVERY_POLLS = 10
#: While messages are flowing (a delivery in the last BUSY_SECONDS), a caught-up sink looks for
#: new rows this often with one cheap MAX(id) query instead of sleeping the whole poll_seconds:
#: under traffic a message then waits ~25 ms for its sink rather than ~poll_seconds / 2, and a
#: quiet archive is still only polled every poll_seconds.
FAST_POLL_SECONDS = 0.05
BUSY_SECONDS = 60.0
#: A sink that is behind (each batch full, more waiting) commits its cursor at most this often;
#: a caught-up sink commits after every batch. On SQLite each commit waits for the write lock,
#: which `watch`'s writer holds most of the time during a flood: committing per batch starved
#: the feed. The price: a crash while behind resends up to this long's batches (at least once).
SAVE_EVERY_SECONDS = 1.0


@dataclass
class Batch:
    messages: list[dict[str, Any]]
    roster: list[dict[str, Any]]
    message_id: int  # the cursor once acknowledged
    roster_id: int
    caught_up: bool = False  # nothing stored after it when it was read

    @property
    def size(self) -> int:
        return len(self.messages) + len(self.roster)


def next_batch(
    archive: Archive,
    spec: SinkSpec,
    cur: cursors.Cursor,
    limit: int,
    media_wait: float,
    now: datetime | None = None,
) -> Batch:
    """What the sink gets next. An image whose download is still pending (and younger than
    ``media_wait`` seconds) ends the batch, so it goes out with its stored URL; later messages
    wait behind it, keeping the order. When nothing matches up to the newest row, the cursor
    still moves there, so a narrow filter does not rescan the same rows on every poll."""
    now = now or datetime.now(UTC)
    top_m = last_row_id(archive)
    f = MessageFilter(chats=spec.chats, kinds=spec.kinds, exclude_self=spec.exclude_self)
    rows = cursors.messages_after(archive, cur.message_id, top_m, f, limit)
    full = len(rows) >= limit
    cut = None
    for i, r in enumerate(rows):
        fresh = r.received_at is not None and now - r.received_at < timedelta(seconds=media_wait)
        if r.media_status == "pending" and fresh:
            cut = i
            break
    if cut is not None:
        rows = rows[:cut]
        message_id = rows[-1].row_id if rows else cur.message_id
    elif full:
        message_id = rows[-1].row_id
    else:
        message_id = max(top_m, cur.message_id)
    roster: list[dict[str, Any]] = []
    roster_id = cur.roster_id
    if spec.roster:
        top_r = cursors.last_roster_id(archive)
        room = max(limit - len(rows), 1)
        if top_r > cur.roster_id:  # usually not: spare the query
            roster = cursors.roster_after(archive, cur.roster_id, top_r, spec.chats, room)
        roster_id = roster[-1]["id"] if len(roster) >= room else max(top_r, cur.roster_id)
        full = full or len(roster) >= room
    return Batch(
        [message_payload(r) for r in rows],
        [roster_payload(r) for r in roster],
        message_id,
        roster_id,
        caught_up=cut is None and not full,
    )


@dataclass
class SinkStatus:
    name: str
    kind: str
    target: str
    state: str = "starting"  # starting | ok | retrying | parked | database_down | stopped
    lag: int = 0
    delivered: int = 0
    failures: int = 0
    last_error: str = ""
    last_delivery_at: str = ""
    parked_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


ArchiveSource = Archive | Callable[[], Archive | None]


class SinkWorker:
    def __init__(
        self,
        archive: ArchiveSource,
        spec: SinkSpec,
        settings: FeedSettings,
        notify: Notify,
        stop: threading.Event,
        sink_factory: Callable[[SinkSpec], Sink] = open_sink,
    ):
        # watch hands a callable: its archive is None while the database was down at start
        self._source = archive
        self.spec = spec
        self.settings = settings
        self.notify = notify
        self._stop = stop
        self._factory = sink_factory
        self.status = SinkStatus(spec.name, spec.kind, spec.where())
        self._backlog_alerted = False
        self._lag_checked = 0.0
        self._last_delivery = float("-inf")  # monotonic
        #: acknowledged but not yet committed: (message_id, roster_id, items)
        self._held: tuple[int, int, int] | None = None
        self._saved_at = 0.0
        self._wake = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"wx-feed-{spec.name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def wake(self) -> None:
        """New rows were stored: look now rather than at the next poll."""
        self._wake.set()

    def _nap(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when woken (new rows, or stopping)."""
        woke = self._wake.wait(seconds)
        self._wake.clear()
        return woke or self._stop.is_set()

    def _idle(self, batch: Batch) -> None:
        """Wait for rows after ``batch`` (an empty one): at most poll_seconds, and while messages
        are flowing, only until a cheap probe sees a newer row. A batch cut short by an image
        still downloading is simply retried after poll_seconds (newer rows are no news then)."""
        poll = self.settings.poll_seconds
        fast = min(FAST_POLL_SECONDS, poll)
        busy = time.monotonic() - self._last_delivery < BUSY_SECONDS
        if not (batch.caught_up and busy and fast < poll):
            self._nap(poll)
            return
        deadline = time.monotonic() + poll
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or self._nap(min(fast, left)):
                return
            try:
                if last_row_id(self.archive) > batch.message_id:
                    return
                if self.spec.roster and cursors.last_roster_id(self.archive) > batch.roster_id:
                    return
            except (pw.DatabaseError, pw.InterfaceError):
                return  # the next full poll deals with it

    def _run(self) -> None:
        sink = self._factory(self.spec)
        try:
            self._loop(sink)
            self._flush()
        except Exception:  # a bug in one sink must not end watch; say so loudly
            log.exception("feed sink %s stopped", self.spec.name)
            self.status.state = "stopped"
            self.status.last_error = "stopped by an internal error (see the log)"
        finally:
            sink.close()

    def _loop(self, sink: Sink) -> None:
        limit = self.spec.batch_size or self.settings.batch_size
        pending: Batch | None = None
        while not self._stop.is_set():
            archive = self._source if isinstance(self._source, Archive) else self._source()
            if archive is None:
                self.status.state = "database_down"
                self._wait(max(self.settings.poll_seconds, 0.5))
                continue
            self.archive = archive
            try:
                cur = cursors.load_cursor(self.archive, self.spec.name)
                assert cur is not None
                if self._held is not None:  # ahead of the committed cursor
                    cur.message_id, cur.roster_id = self._held[0], self._held[1]
                self._check_lag(cur)  # also while parked: that is when it grows
                if cur.parked_at is not None:
                    self.status.state = "parked"
                    self.status.parked_reason = cur.parked_reason
                    pending = None
                    self._wait(max(self.settings.poll_seconds, 1.0))
                    continue
                if pending is None:
                    pending = next_batch(
                        self.archive, self.spec, cur, limit, self.settings.media_wait_seconds
                    )
                if pending.size == 0:
                    at = (pending.message_id, pending.roster_id)
                    if at != (cur.message_id, cur.roster_id) or self._held is not None:
                        n = self._held[2] if self._held else 0
                        self._held = (pending.message_id, pending.roster_id, n)
                        self._flush()
                    if pending.caught_up:
                        self._set_lag(0)
                    idle, pending = pending, None
                    if self.status.state in ("starting", "database_down", "parked"):
                        self.status.state = "ok"
                        self.status.parked_reason = ""
                    self._idle(idle)
                    continue
            except (pw.DatabaseError, pw.InterfaceError) as exc:
                self.status.state = "database_down"
                self._wait(self.archive.unavailable(f"feed {self.spec.name}", exc))
                continue
            self.archive.available(f"feed {self.spec.name}")
            try:
                sink.deliver(pending.messages, pending.roster)
            except FeedError as exc:
                pending = self._failed(pending, exc)
                continue
            self._delivered(pending)
            n = self._held[2] if self._held else 0
            self._held = (pending.message_id, pending.roster_id, n + pending.size)
            if pending.caught_up or time.monotonic() - self._saved_at >= SAVE_EVERY_SECONDS:
                self._flush()
            pending = None

    def _flush(self) -> None:
        """Commit the acknowledged position. If the database refuses, the batches since the
        last commit go out again (at least once), never lost."""
        if self._held is None:
            return
        held, self._held = self._held, None
        try:
            cursors.save_cursor(self.archive, self.spec.name, *held)
            self._saved_at = time.monotonic()
        except (pw.DatabaseError, pw.InterfaceError) as exc:
            log.warning(
                "feed %s: cursor not saved (%s); what was delivered since will be sent again",
                self.spec.name,
                exc,
            )

    def _delivered(self, batch: Batch) -> None:
        s = self.status
        if s.failures >= FAILING_AFTER:
            self.notify(
                "feed_recovered", {"sink": s.name, "target": s.target, "failures": s.failures}
            )
            log.warning("feed %s: delivering again after %d failed attempts", s.name, s.failures)
        s.state, s.failures, s.last_error = "ok", 0, ""
        self._last_delivery = time.monotonic()
        s.delivered += batch.size
        s.last_delivery_at = datetime.now(UTC).isoformat()
        s.lag = max(s.lag - batch.size, 0)

    def _failed(self, batch: Batch, exc: FeedError) -> Batch | None:
        self._flush()  # about to wait (or park): commit what was taken before
        s = self.status
        s.last_error = str(exc)
        if not exc.retryable:
            reason = f"refused: {exc}"
            cursors.park(self.archive, s.name, reason)
            s.state, s.parked_reason = "parked", reason
            first = (batch.messages + batch.roster)[0]
            log.error("feed %s parked: %s (run `wxcli feed resume %s`)", s.name, exc, s.name)
            self.notify(
                "feed_parked",
                {"sink": s.name, "target": s.target, "error": str(exc), "status": exc.status,
                 "first_msg_id": first.get("msg_id") or first.get("event_id"), "batch": batch.size},
            )  # fmt: skip
            return None
        s.failures += 1
        s.state = "retrying"
        if s.failures == FAILING_AFTER:
            log.warning("feed %s: %s (retrying with back-off)", s.name, exc)
            self.notify("feed_failing", {"sink": s.name, "target": s.target, "error": str(exc)})
        self._wait(backoff(s.failures - 1, base=self.settings.retry_seconds, cap=60.0, jitter=0.25))
        return batch

    def _check_lag(self, cur: cursors.Cursor) -> None:
        now = time.monotonic()
        every = min(max(LAG_EVERY_POLLS * self.settings.poll_seconds, 0.5), 5.0)
        if now - self._lag_checked < every and self.status.state != "starting":
            return
        self._lag_checked = now
        self._set_lag(cursors.backlog(self.archive, cur.message_id))

    def _set_lag(self, lag: int) -> None:
        """Record the lag; past ``max_backlog`` alert once, re-armed only when the sink is back
        under half of it (so a backlog hovering at the limit is one alert, not one per count)."""
        self.status.lag = lag
        limit = self.settings.max_backlog
        if lag > limit and not self._backlog_alerted:
            self._backlog_alerted = True
            log.warning("feed %s is %d messages behind", self.spec.name, lag)
            self.notify(
                "feed_backlog",
                {"sink": self.spec.name, "target": self.status.target, "lag": lag, "limit": limit,
                 "error": self.status.last_error},
            )  # fmt: skip
        elif lag <= limit // 2:
            self._backlog_alerted = False


class FeedRunner:
    """Every enabled sink of ``settings``, each on its own thread."""

    def __init__(
        self,
        archive: ArchiveSource,
        settings: FeedSettings,
        notify: Notify,
        sink_factory: Callable[[SinkSpec], Sink] = open_sink,
    ):
        self._stop = threading.Event()
        self.workers = [
            SinkWorker(archive, spec, settings, notify, self._stop, sink_factory)
            for spec in settings.sinks
            if spec.enabled
        ]

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def wake(self) -> None:
        """Tell every sink that rows were just stored (the writer may call this after each
        commit; without it, sinks find new rows by polling)."""
        for w in self.workers:
            w.wake()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for w in self.workers:
            w.thread.join(max(deadline - time.monotonic(), 0.0))
            w.status.state = "stopped"

    def status(self) -> Mapping[str, dict[str, Any]]:
        return {w.spec.name: w.status.to_json() for w in self.workers}


def replay(
    archive: Archive,
    spec: SinkSpec,
    since: datetime,
    until: datetime | None = None,
    *,
    batch_size: int = 100,
    sink: Sink | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Send the sink's messages (and roster events) stored from ``since`` to ``until`` again,
    from this process; its live cursor is left alone. Returns the number sent."""
    own = sink is None
    sink = sink or open_sink(spec)
    f = MessageFilter(
        chats=spec.chats, kinds=spec.kinds, exclude_self=spec.exclude_self, since=since, until=until
    )
    sent = 0
    after, top = 0, last_row_id(archive)
    try:
        while True:
            rows = messages_after(archive, after, f, batch_size, upto=top)
            if not rows:
                break
            sink.deliver([message_payload(r) for r in rows], [])
            sent += len(rows)
            after = rows[-1].row_id
            if progress:
                progress(sent)
        if spec.roster:
            r_after, r_top = 0, cursors.last_roster_id(archive)
            while True:
                roster = cursors.roster_after(
                    archive, r_after, r_top, spec.chats, batch_size, until=until, since=since
                )
                if not roster:
                    break
                sink.deliver([], [roster_payload(r) for r in roster])
                sent += len(roster)
                r_after = roster[-1]["id"]
    finally:
        if own:
            sink.close()
    return sent
