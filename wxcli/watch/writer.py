"""The writer: stores each batch in one transaction with its sync position — or, while the
database is unreachable, fsyncs it to the spool and replays the spool in order once the
database answers again.

It runs on its own thread behind a two-slot queue, so receiving batch N+1 overlaps storing
batch N and a slow database slows receiving down (back-pressure) rather than piling up
memory. The outage discipline (one warning, one ``db_spooling``/``db_recovered`` pair per
outage, health entries, back-off between tries) is shared with the media threads through
:class:`~wxcli.store.db.Outage`; this module owns the archive connection they all read.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from wxcli.errors import DatabaseUnavailableError, SpoolError, StorageError, WxError
from wxcli.protocol.models import SyncKey
from wxcli.store.db import Outage, OutageRecord
from wxcli.watch.context import WatchContext
from wxcli.watch.events import DbRecovered, DbSpooling, ErrorEvent, Messages
from wxcli.watch.live import LiveSession
from wxcli.watch.normalize import ChatMessage
from wxcli.watch.spool import Spool

log = logging.getLogger(__name__)

#: At most this many messages go into one merged transaction (see Writer._gather).
MERGE_ROWS = 2000


@dataclass
class Batch:
    """Work for the writer thread: one sync result, normalised (or contact changes alone)."""

    rows: list[ChatMessage]
    key: SyncKey | None
    changes: list[Any]
    hints: dict[str, str] = field(default_factory=dict)


class Writer:
    """Owns the archive connection, the spool and the writer thread."""

    def __init__(
        self,
        ctx: WatchContext,
        live: LiveSession,
        *,
        stop_watch: Callable[[], None],
        write_health: Callable[[], None],
    ):
        self.ctx = ctx
        self.live = live
        self._stop_watch = stop_watch
        self._write_health = write_health
        self.spool = Spool(ctx.paths.spool)
        #: How long a worker waits before trying a database that did not answer.
        self.retry_seconds = float(ctx.config.settings.watch.db_retry_seconds)
        #: Shared by the writer, the media threads and the alert history: one back-off and
        #: one "down"/"back" report per outage, however many threads notice it.
        self.outage = Outage(retry_seconds=self.retry_seconds, listener=self._on_outage)
        self.archive: Any = None
        self.ingestor: Any = None
        self.account_id: int | None = None
        self.error: BaseException | None = None
        self._queue: queue.Queue[Batch | None] = queue.Queue(maxsize=2)
        self._thread: threading.Thread | None = None
        self._next_replay = 0.0
        self._outage_spooled = 0  # messages spooled since the current outage began

    # ------------------------------------------------------------------ the archive

    def open(self) -> None:
        """Connect (a database that is down now is retried later; batches spool meanwhile)."""
        from wxcli.store.archive import Archive

        try:
            self.archive = Archive.from_config(
                self.ctx.config, self.ctx.paths.home, self.ctx.options.db_url, outage=self.outage
            )
        except DatabaseUnavailableError as exc:
            self.archive = None
            self._next_replay = time.monotonic() + self.outage.failed("writer", exc)
            self.ctx.health.database = "spooling"
            return
        self.new_login()

    def new_login(self) -> None:
        """An ingestor for the live session's account and login (after start or relogin)."""
        from wxcli.store.archive import Ingestor

        st = self.live.state
        if self.archive is None or st is None:
            return
        self.account_id = self.archive.account_id(st.uin, st.nickname)
        self.ingestor = Ingestor(
            self.archive,
            self.account_id,
            st.sid,
            describe_chat=st.contacts.get,
            self_user=st.user_name,
            self_nickname=st.nickname,
        )

    def stored_positions(self) -> Iterator[SyncKey]:
        """Positions stored for the live login, in the archive and in the spool."""
        st = self.live.state
        assert st is not None
        if self.archive is not None and self.account_id is not None:
            saved = self.archive.sync_state(self.account_id)
            if saved is not None and saved[0] == st.sid and saved[1]:
                yield saved[1]
        for record in self.spool.read():
            if record.get("sid") == st.sid and record.get("sync_key"):
                yield tuple(tuple(p) for p in record["sync_key"])

    def register_groups(self) -> None:
        """Record the live session's groups and their members (names for the resolver); a
        database that fails now is tried again when it is back."""
        st = self.live.state
        if self.ingestor is None or st is None:
            return
        try:
            n = self.ingestor.sync_directory(st.contacts.groups())
        except (DatabaseUnavailableError, StorageError) as exc:
            log.warning("could not register group members yet: %s", exc)
            return
        log.info("registered %d groups and their members", n)

    def close(self) -> None:
        if self.archive is not None:
            with contextlib.suppress(Exception):
                self.archive.close()

    # ------------------------------------------------------------------ the thread

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wx-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Batch) -> None:
        """Queue a batch; waits while the writer is two batches behind (back-pressure)."""
        while True:
            if isinstance(self.error, WxError):
                raise self.error  # an expected failure, e.g. the spool disk is full
            if self.error is not None or self._thread is None:
                raise RuntimeError("the database writer stopped") from self.error
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def drain(self, final: bool = False) -> None:
        """Wait until every queued batch is stored (or spooled); ``final`` ends the thread."""
        if self._thread is None or not self._thread.is_alive():
            return
        if final:
            self._queue.put(None)
            self._thread.join()
        else:
            self._queue.join()

    def _run(self) -> None:
        held: list[Batch | None] = []  # taken from the queue but not mergeable: next turn
        while True:
            if held:
                item = held.pop()
            else:
                try:
                    item = self._queue.get(timeout=1.0)
                except queue.Empty:
                    try:
                        self.replay()
                    except Exception as exc:  # never kill the writer over a replay attempt
                        log.warning("spool replay failed: %s", exc)
                    continue
            group = [item]
            try:
                if item is None:
                    self._queue.task_done()
                    return
                self._gather(group, held)
                self.write_many(group)  # type: ignore[arg-type]  # no None in a group
            except SpoolError as exc:
                # Neither stored nor spooled: the position stays behind this batch, so
                # WeChat keeps it for the next start. Stop receiving, say so clearly.
                health = self.ctx.health
                log.error("%s; watch stops so that no message is lost", exc)
                health.add_error("spool", str(exc))
                health.state = "spool_failed"
                self._write_health()
                self.ctx.events.emit(ErrorEvent(where="spool", message=str(exc)))
                self._fail(exc, group + held)
                return
            except BaseException as exc:
                log.exception("storing a batch failed; stopping")
                self.ctx.health.add_error("database", f"storing failed: {exc}")
                self._fail(exc, group + held)
                return
            for _ in group:
                self._queue.task_done()

    def _fail(self, exc: BaseException, taken: list[Batch | None]) -> None:
        self.error = exc
        for _ in taken:
            self._queue.task_done()
        self._stop_watch()

    def _gather(self, group: list[Batch | None], held: list[Batch | None]) -> None:
        """Add the batches already waiting to ``group``, so that a writer that fell behind
        stores them in one transaction (one commit, one sync-state update, one INSERT)
        instead of one each. A batch that brings contact changes or permanent ids starts a
        group of its own, so those still apply before the rows that follow them."""
        rows = len(group[0].rows) if group[0] is not None else 0
        while rows < MERGE_ROWS:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return
            if nxt is None or nxt.changes or nxt.hints:
                held.append(nxt)
                return
            group.append(nxt)
            rows += len(nxt.rows)

    # ------------------------------------------------------------------ one batch

    def write(self, batch: Batch) -> None:
        """Store one batch (replaying the spool first, so order is kept)."""
        self.write_many([batch])

    def write_many(self, batches: list[Batch]) -> None:
        """Store consecutive batches in one transaction with the last one's position: all of
        them or none, so what is committed is still a position with everything before it
        stored. The first may carry contact changes and hints, the others carry none."""
        self.replay()
        first = batches[0]
        if first.hints and self.ingestor is not None:
            self.ingestor.resolver.note_permanent_ids(first.hints)
        rows = first.rows if len(batches) == 1 else [r for b in batches for r in b.rows]
        key = next((b.key for b in reversed(batches) if b.key), None)
        stored = self._store(rows, key, first.changes, len(batches))
        if key:
            self.live.committed(key)  # stored, or durably spooled
        if rows and stored:
            last = max(r.created_at for r in rows)
            self.ctx.health.last_message_at = last.isoformat()
            for b in batches:  # one event per batch, as received
                if b.rows:
                    self.ctx.events.emit(Messages(rows=b.rows))

    def _store(
        self, rows: list[ChatMessage], key: SyncKey | None, changes: list, batches: int = 1
    ) -> bool:
        """Into the database in one transaction; into the spool when it is unreachable."""
        stats = self.ctx.stats
        if self.ingestor is not None and not self.spool:
            try:
                res = self.ingestor.store(rows, key, changes)
                stats.stored += res.inserted
                stats.duplicates += res.duplicates
                stats.batches += batches
                self.outage.recovered("writer")
                return True
            except DatabaseUnavailableError as exc:
                assert self.archive is not None
                self._next_replay = time.monotonic() + self.archive.unavailable("writer", exc)
                self.ctx.health.database = "spooling"
        elif self.ingestor is None and time.monotonic() >= self._next_replay:
            self._try_reconnect()  # one try per back-off period, not one per batch
        if rows or key:
            self._spool_batch(rows, key or (), changes)
        return False

    def _spool_batch(self, rows: list[ChatMessage], key: SyncKey, changes: list) -> None:
        from wxcli.contacts import contact_to_json

        st = self.live.state
        assert st is not None
        self.spool.append(
            {
                "uin": st.uin,
                "nickname": st.nickname,
                "sid": st.sid,
                "self_user": st.user_name,
                "sync_key": [list(p) for p in key],
                "rows": [r.to_json() for r in rows],
                "changes": [
                    [contact_to_json(old) if old is not None else None, contact_to_json(new)]
                    for old, new in changes
                ],
            }
        )
        self.ctx.stats.spooled += len(rows)
        self._outage_spooled += len(rows)
        self.ctx.health.database = "spooling"

    # ------------------------------------------------------------------ outages

    def _try_reconnect(self) -> bool:
        """One try at the database; after a failure the next try waits for the shared
        outage's back-off."""
        if self.archive is None:
            self.open()
            if self.archive is None:
                return False
            st = self.live.state
            if self.ingestor is not None and st is not None:
                with contextlib.suppress(WxError):
                    self.ingestor.sync_directory(st.contacts.groups())
            self.outage.recovered("writer")
            return True
        if self.archive.ping():
            self.outage.recovered("writer")
            return True
        delay = self.outage.failed("writer", "the database does not answer")
        self._next_replay = time.monotonic() + delay
        return False

    def _on_outage(self, record: OutageRecord, down: bool) -> None:
        """The shared outage began or ended (told once, by whichever thread noticed)."""
        health = self.ctx.health
        if down:
            self._outage_spooled = 0
            log.warning(
                "database unavailable (%s): %s; new messages are spooled to %s, image "
                "downloads and alert history wait for it",
                record.noticed_by,
                record.error,
                self.spool.path,
            )
            health.add_error("database", f"unavailable: {record.error}")
            self._note_outage(record)
            if health.database == "ok":
                health.database = "down"
            self.ctx.events.emit(
                DbSpooling(
                    spool=str(self.spool.path), error=record.error, noticed_by=record.noticed_by
                )
            )
            return
        self._note_outage(record)
        if not self.spool:
            # Nothing to replay: the outage is over now. (Otherwise replay() reports it
            # when the spool is empty again.)
            health.database = "ok"
            log.warning("database back after %.0f s", record.seconds)
            self.ctx.events.emit(
                DbRecovered(replayed=0, messages=0, seconds=round(record.seconds, 1))
            )

    def _note_outage(self, record: OutageRecord, **extra: Any) -> None:
        """Keep the last outages in the health record, for ``wxcli status``."""
        health = self.ctx.health
        entry = {**record.to_json(), "spooled": self._outage_spooled, **extra}
        outages = [o for o in health.outages if o.get("started_at") != entry["started_at"]]
        health.outages = [*outages, entry][-5:]

    def replay(self) -> None:
        """Move spooled batches into the database, oldest first, once it answers."""
        if not self.spool:
            return
        now = time.monotonic()
        if now < self._next_replay:
            return
        if not self._try_reconnect() or self.ingestor is None:
            return
        from wxcli.contacts import contact_from_json
        from wxcli.store.archive import Ingestor

        stats = self.ctx.stats
        records = self.spool.read()
        done = 0
        replayed_rows = 0
        try:
            for record in records:
                rows = [ChatMessage.from_json(r) for r in record.get("rows", [])]
                changes = [
                    (contact_from_json(o) if o else None, contact_from_json(n))
                    for o, n in record.get("changes", [])
                ]
                key = tuple(tuple(p) for p in record.get("sync_key", []))
                ingestor = self.ingestor
                if record.get("sid") != self.ingestor.sid:
                    account = self.archive.account_id(record["uin"], record.get("nickname", ""))
                    ingestor = Ingestor(
                        self.archive,
                        account,
                        record["sid"],
                        self_user=record.get("self_user", ""),
                        self_nickname=record.get("nickname", ""),
                    )
                    key = ()  # an old login's position is of no use now
                res = ingestor.store(rows, key, changes)
                stats.stored += res.inserted
                stats.duplicates += res.duplicates
                done += 1
                replayed_rows += len(rows)
                if rows:
                    # Alert rules see spooled messages too, late rather than never.
                    self.ctx.events.emit(Messages(rows=rows, replayed=True))
        except DatabaseUnavailableError as exc:
            log.info("replay paused: %s", exc)
            self._next_replay = now + self.archive.unavailable("writer", exc)
        except StorageError as exc:
            log.info("replay paused: %s", exc)
            self._next_replay = now + self.retry_seconds
        if done:
            self.spool.drop_first(done)
        if not self.spool:
            self.ctx.health.database = "ok"
            last = self.outage.history[-1] if self.outage.history else None
            seconds = round(last.seconds, 1) if last is not None else 0.0
            if last is not None:
                self._note_outage(last, replayed=replayed_rows)
            log.warning(
                "database back%s; %d spooled messages replayed",
                f" after {seconds:.0f} s" if last is not None else "",
                replayed_rows,
            )
            self.ctx.events.emit(
                DbRecovered(replayed=done, messages=replayed_rows, seconds=seconds)
            )
