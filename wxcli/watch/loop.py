"""``wxcli watch``: the sync loop that archives every message and never loses one.

The main thread receives (synccheck → webwxsync → normalise) and hands each batch to a writer
thread, which stores it in one database transaction together with the sync position that
delivered it — or, with the database down, fsyncs it to the spool. Only positions stored that
way are ever saved, so a crash re-delivers rather than loses. Media downloads run on worker
threads and analysis in a separate process, both fed from the database, so receiving never
waits for them. A scheduler thread (the ``schedule`` library) keeps the health record fresh
and flags periodic jobs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wxcli.client import WebWeChatClient
from wxcli.config import Config
from wxcli.errors import (
    DatabaseUnavailableError,
    LockedError,
    NetworkError,
    ProtocolError,
    SessionExpiredError,
    SpoolError,
    StorageError,
    WxError,
)
from wxcli.fileutil import PidLock
from wxcli.paths import ProfilePaths
from wxcli.protocol.models import SyncKey, SyncResult
from wxcli.retry import backoff
from wxcli.session import SessionState, SessionStore
from wxcli.store.db import Outage, OutageRecord
from wxcli.watch.events import EventSink, WatchEvent, log_events
from wxcli.watch.health import Health, write_health
from wxcli.watch.normalize import ChatMessage, Normalizer, permanent_ids_from_51
from wxcli.watch.spool import Spool

log = logging.getLogger(__name__)


class _Interrupted(Exception):
    """Raised from the signal handler to leave a blocking long poll at once."""


@dataclass
class WatchOptions:
    db_url: str | None = None
    duration: float | None = None
    once: bool = False
    analysis: bool | None = None  # None = from config
    media: bool | None = None
    relogin: bool | None = None
    serve: bool | None = None
    qr_png: Path | None = None
    analysis_command: list[str] | None = None  # override how the analysis worker is started


@dataclass
class Stats:
    stored: int = 0
    duplicates: int = 0
    batches: int = 0
    empty_syncs: int = 0
    spooled: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Batch:
    """Work for the writer thread: one sync result, normalised (or contact changes alone)."""

    rows: list[ChatMessage]
    key: SyncKey | None
    changes: list[Any]
    hints: dict[str, str] = field(default_factory=dict)


def _key1(key: SyncKey) -> int:
    for k, v in key:
        if k == 1:
            return v
    return -1


class Watcher:
    """One running watch of one profile (use :meth:`run`; :meth:`stop` from anywhere)."""

    def __init__(
        self,
        paths: ProfilePaths,
        config: Config,
        options: WatchOptions | None = None,
        *,
        on_event: EventSink | None = None,
        client_factory: Callable[[SessionState], WebWeChatClient] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ):
        self.paths = paths
        self.config = config
        self.options = options or WatchOptions()
        w = config.data["watch"]
        self.analysis = w["analysis"] if self.options.analysis is None else self.options.analysis
        self.media = w["media"] if self.options.media is None else self.options.media
        self.relogin = w["relogin"] if self.options.relogin is None else self.options.relogin
        self.serve = w["serve"] if self.options.serve is None else self.options.serve
        self.sinks: list[EventSink] = [on_event] if on_event else [log_events]
        self.client_factory = client_factory
        self.rng = rng or random.Random()
        self._stop = threading.Event()
        self._sleep = sleep
        self._in_poll = False
        self.store = SessionStore(paths)
        self.spool = Spool(paths.spool)
        self.health = Health(started_at=datetime.now(UTC).isoformat())
        self.stats = Stats()
        self.lock = threading.RLock()
        self.archive: Any = None
        self.ingestor: Any = None
        self.account_id: int | None = None
        self.client: WebWeChatClient | None = None
        self.state: SessionState | None = None
        self.normalizer: Normalizer | None = None
        self._last_session_save = 0.0
        self._dirty = False
        self._refresh_due = False
        self._analysis_procs: list[subprocess.Popen[bytes]] = []
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._feed: Any = None  # wxcli.feed.runner.FeedRunner when sinks are configured
        self.exit_code = 0
        # Receiving and storing overlap: the main thread syncs batch N+1 while the writer
        # commits batch N. Only committed positions are ever saved (see _save_session).
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=2)
        self._committed: SyncKey = ()
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        #: How long a worker waits before trying a database that did not answer.
        self.db_retry_seconds = float(config.data["watch"]["db_retry_seconds"])
        #: Shared by the writer, the media threads and the alert history: one back-off and
        #: one "down"/"back" report per outage, however many threads notice it.
        self.outage = Outage(retry_seconds=self.db_retry_seconds, listener=self._on_outage)
        self._next_replay = 0.0
        self._outage_spooled = 0  # messages spooled since the current outage began

    # ------------------------------------------------------------------ public

    def add_sink(self, sink: EventSink) -> None:
        self.sinks.append(sink)

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and exit (thread-safe)."""
        self._stop.set()
        client = self.client
        if client is not None and self._in_poll:
            # Closing the pool aborts a blocking long poll in another thread.
            with contextlib.suppress(Exception):
                client.http.close()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> int:
        lock = PidLock(self.paths.watch_lock)
        if not lock.acquire():
            raise LockedError(
                f"watch for profile {self.paths.profile!r}", lock.holder_pid(), str(lock.path)
            )
        restore = self._install_signals()
        try:
            self._start()
            self._loop()
        finally:
            self._shutdown()
            restore()
            lock.release()
        if self._writer_error is not None:
            raise self._writer_error
        return self.exit_code

    # ------------------------------------------------------------------ events & timing

    def emit(self, kind: str, **data: Any) -> None:
        event = WatchEvent(kind, data)
        for sink in self.sinks:
            try:
                sink(event)
            except Exception:  # an alert channel failing must never stop the archive
                log.exception("event handler failed for %s", kind)

    def _wait(self, seconds: float) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            self._stop.wait(seconds)

    def _backoff(self, failures: int, cap: float = 60.0) -> float:
        base = float(self.config.data["wechat"]["backoff"])
        return backoff(failures, base=base, cap=cap, rand=self.rng.random)

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            self._stop.set()
            if self._in_poll:
                raise _Interrupted()

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore

    # ------------------------------------------------------------------ start / stop

    def _make_client(self, state: SessionState) -> WebWeChatClient:
        if self.client_factory is not None:
            return self.client_factory(state)
        from wxcli.account import make_client

        return make_client(self.config, state)

    def _start(self) -> None:
        state = self.store.load()
        if not state.alive:
            raise SessionExpiredError(state.ended_code or 1101, "session file")
        self._adopt_session(state)
        self._open_archive()
        self._choose_start_key()
        if self.archive is not None and self.ingestor is not None:
            try:
                n = self.ingestor.sync_directory(self.state.contacts.groups())
                log.info("registered %d groups and their members", n)
            except (DatabaseUnavailableError, StorageError) as exc:
                log.warning("could not register group members yet: %s", exc)
        self.health.state = "running"
        self._start_threads()
        if self.analysis:
            self._start_analysis()
        if self.serve:
            self._start_server()
        self._write_health()

    def _adopt_session(self, state: SessionState) -> None:
        self.state = state
        self.client = self._make_client(state)
        w = self.config.data
        media_kinds = {"image", "emoji"}
        if w["media"]["voice"]:
            media_kinds.add("voice")
        if w["media"]["video"]:
            media_kinds.add("video")
        if w["media"]["files"]:
            media_kinds.add("file")
        self.normalizer = Normalizer(
            state.contacts,
            state.user_name,
            fetch_contacts=self.client.batch_get_contacts,
            keep_raw=bool(w["database"]["store_raw"]),
            media_kinds=frozenset(media_kinds) if self.media else frozenset(),
        )
        self.health.sid_hint = state.sid[:4]
        self.health.session_code = 0
        if self.archive is not None:
            self._make_ingestor()

    def _open_archive(self) -> None:
        from wxcli.store.archive import Archive

        try:
            self.archive = Archive.from_config(
                self.config, self.paths.home, self.options.db_url, outage=self.outage
            )
        except DatabaseUnavailableError as exc:
            self.archive = None
            self._next_replay = time.monotonic() + self.outage.failed("writer", exc)
            self.health.database = "spooling"
            return
        self._make_ingestor()

    def _on_outage(self, record: OutageRecord, down: bool) -> None:
        """The shared outage began or ended (told once, by whichever thread noticed)."""
        if down:
            self._outage_spooled = 0
            log.warning(
                "database unavailable (%s): %s; new messages are spooled to %s, image "
                "downloads and alert history wait for it",
                record.noticed_by,
                record.error,
                self.spool.path,
            )
            self.health.add_error("database", f"unavailable: {record.error}")
            self._note_outage(record)
            if self.health.database == "ok":
                self.health.database = "down"
            self.emit(
                "db_spooling",
                spool=str(self.spool.path),
                error=record.error,
                noticed_by=record.noticed_by,
            )
            return
        self._note_outage(record)
        if not self.spool:
            # Nothing to replay: the outage is over now. (Otherwise the writer reports it
            # when the spool is replayed.)
            self.health.database = "ok"
            log.warning("database back after %.0f s", record.seconds)
            self.emit("db_recovered", replayed=0, messages=0, seconds=round(record.seconds, 1))

    def _note_outage(self, record: OutageRecord, **extra: Any) -> None:
        """Keep the last outages in the health record, for ``wxcli status``."""
        entry = {**record.to_json(), "spooled": self._outage_spooled, **extra}
        outages = [o for o in self.health.outages if o.get("started_at") != entry["started_at"]]
        self.health.outages = [*outages, entry][-5:]

    def _make_ingestor(self) -> None:
        from wxcli.store.archive import Ingestor

        st = self.state
        assert st is not None and self.archive is not None
        self.account_id = self.archive.account_id(st.uin, st.nickname)
        self.ingestor = Ingestor(
            self.archive,
            self.account_id,
            st.sid,
            describe_chat=st.contacts.get,
            self_user=st.user_name,
            self_nickname=st.nickname,
        )

    def _choose_start_key(self) -> None:
        """Resume from the furthest position that was stored durably for this login."""
        st = self.state
        assert st is not None
        candidates = [st.sync_key]
        if self.archive is not None and self.account_id is not None:
            saved = self.archive.sync_state(self.account_id)
            if saved is not None and saved[0] == st.sid and saved[1]:
                candidates.append(saved[1])
        for record in self.spool.read():
            if record.get("sid") == st.sid and record.get("sync_key"):
                candidates.append(tuple(tuple(p) for p in record["sync_key"]))
        best = max(candidates, key=_key1)
        if best and best != st.sync_key:
            log.info("resuming from the stored sync position")
            st.sync_key = best
            st.sync_check_key = best

    def _start_threads(self) -> None:
        t = threading.Thread(target=self._scheduler, name="wx-scheduler", daemon=True)
        t.start()
        self._threads.append(t)
        self._committed = self.state.sync_key if self.state is not None else ()
        self._writer = threading.Thread(target=self._write_loop, name="wx-writer", daemon=True)
        self._writer.start()
        if self.media:  # also with the database down: the workers wait for it
            from wxcli.watch.media import MediaWorkers

            self._media = MediaWorkers(self)
            self._media.start()
        self._start_feed()

    def _start_feed(self) -> None:
        """The feed's sink threads, when ``[feed.sinks.*]`` names any (they read what the
        writer stored, so receiving never waits for them)."""
        from wxcli.feed.settings import load_feed_settings

        settings = load_feed_settings(self.config)
        if not any(s.enabled for s in settings.sinks):
            return
        from wxcli.feed.runner import FeedRunner

        self._feed = FeedRunner(lambda: self.archive, settings, lambda k, d: self.emit(k, **d))
        self._feed.start()

    def _start_analysis(self) -> None:
        """Start ``[analysis] workers`` analysis processes (they split the work by claiming
        ranges of messages, so more than one is safe); restart any that died."""
        cmd = self.options.analysis_command or [
            sys.executable,
            "-m",
            "wxcli",
            "--profile",
            self.paths.profile,
            "analyze",
            "--follow",
            "--quiet",
        ]
        if self.options.db_url and not self.options.analysis_command:
            cmd += ["--db", self.options.db_url]
        env = dict(os.environ)
        # Only a file that exists: the worker takes WXCLI_CONFIG as an explicit --config, and
        # a missing explicit file is an error (a home without wxcli.toml got no analysis).
        if self.config.path is not None and self.config.path.exists():
            env["WXCLI_CONFIG"] = str(self.config.path)
        env["WXCLI_HOME"] = str(self.paths.home)
        wanted = max(int(self.config.data["analysis"]["workers"]), 1)
        self._analysis_procs = [p for p in self._analysis_procs if p.poll() is None]
        while len(self._analysis_procs) < wanted:
            try:
                proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
            except OSError as exc:
                self.health.add_error("analysis", f"could not start the analysis worker: {exc}")
                return
            self._analysis_procs.append(proc)

    def _start_server(self) -> None:
        try:
            from wxcli.server import start_server  # type: ignore[attr-defined]
        except ImportError:
            log.warning("the REST server is not available in this build")
            return
        s = self.config.data["serve"]
        self._server = start_server(self.paths, self.config, s["host"], int(s["port"]))

    def _shutdown(self) -> None:
        self._stop.set()
        self._drain_writer(final=True)
        if getattr(self, "_media", None) is not None:
            self._media.stop()
        if self._feed is not None:
            self._feed.stop()
        for proc in self._analysis_procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._analysis_procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.stop()
        self._save_session(force=True)
        if self.health.state == "running":
            self.health.state = "stopped"  # spool_failed and session_lost stay as they are
        self._write_health()
        for t in self._threads:
            t.join(timeout=2)
        if self.archive is not None:
            with contextlib.suppress(Exception):
                self.archive.close()
        self.emit("stopped", stored=self.stats.stored)

    # ------------------------------------------------------------------ scheduler thread

    def _scheduler(self) -> None:
        import schedule

        jobs = schedule.Scheduler()
        w = self.config.data["watch"]
        jobs.every(max(float(w["health_seconds"]), 0.2)).seconds.do(self._write_health)
        minutes = float(w["contact_refresh_minutes"])
        if minutes > 0:
            jobs.every(minutes * 60).seconds.do(self._flag_refresh)
        while not self._stop.wait(0.2):
            try:
                jobs.run_pending()
            except Exception:  # the health writer must outlive a bad tick
                log.exception("scheduler job failed")
            dead = [p for p in self._analysis_procs if p.poll() not in (None, 0)]
            for proc in dead:
                self.health.add_error(
                    "analysis", f"worker exited with {proc.returncode}; restarting"
                )
            if dead and not self._stop.is_set():
                self._start_analysis()

    def _flag_refresh(self) -> None:
        self._refresh_due = True

    def _write_health(self) -> None:
        with self.lock:
            self.health.messages_stored = self.stats.stored
            self.health.duplicates_ignored = self.stats.duplicates
            queues = {"spool": len(self.spool)} if self.spool else {"spool": 0}
            media = getattr(self, "_media", None)
            if media is not None:
                queues.update(media.queue_depths())
            self.health.queues = queues
            if self._feed is not None:
                self.health.feed = dict(self._feed.status())
            try:
                write_health(self.paths.health, self.health)
            except OSError as exc:
                log.warning("could not write the health record: %s", exc)

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        deadline = None
        if self.options.duration is not None:
            deadline = time.monotonic() + float(self.options.duration)
        failures = 0
        spins = 0
        spin_threshold = int(self.config.data["watch"]["spin_threshold"])
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self._writer_error is not None:
                break
            if self._refresh_due:
                self._refresh_contacts()
            try:
                poll_timeout = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    poll_timeout = max(
                        min(
                            remaining + 1.0, float(self.config.data["wechat"]["synccheck_timeout"])
                        ),
                        1.0,
                    )
                check = self._sync_check(poll_timeout)
                if self._stop.is_set():
                    break
                now = datetime.now(UTC).isoformat()
                self.health.last_synccheck_at = now
                if check is None:
                    continue
                if check.selector == 0:
                    failures = 0
                    spins = 0
                    if self.options.once:
                        break
                    continue
                result = self.client.sync(keep_raw=bool(self.config.data["database"]["store_raw"]))
                self.health.last_sync_at = datetime.now(UTC).isoformat()
                failures = 0
                if result.empty:
                    spins += 1
                    self.stats.empty_syncs += 1
                    if spins >= spin_threshold:
                        delay = self._backoff(spins - spin_threshold, cap=30.0)
                        if spins == spin_threshold:
                            log.warning(
                                "selector spin (%d empty syncs in a row); backing off", spins
                            )
                            self.health.add_error("sync", "selector spin: backing off")
                        self._wait(delay)
                    self.client.advance(result)
                    continue
                spins = 0
                self._handle(result)
            except _Interrupted:
                break
            except SessionExpiredError as exc:
                if not self._session_lost(exc):
                    break
            except (NetworkError, ProtocolError) as exc:
                if self._stop.is_set():
                    break
                if deadline is not None and time.monotonic() >= deadline - 0.5:
                    break  # a poll shortened to end with --duration, not a failure
                failures += 1
                self.stats.errors += 1
                delay = self._backoff(failures)
                log.warning("%s; retrying in %.1f s", exc, delay)
                self.health.add_error(getattr(exc, "endpoint", "sync"), str(exc))
                if failures >= 3:
                    self.emit("error", where=getattr(exc, "endpoint", "sync"), message=str(exc))
                self._wait(delay)

    def _sync_check(self, timeout: float | None):
        assert self.client is not None
        self._in_poll = True
        try:
            if self._stop.is_set():
                return None
            return self.client.sync_check(timeout)
        except NetworkError:
            if self._stop.is_set():
                return None
            raise
        finally:
            self._in_poll = False

    # ------------------------------------------------------------------ one batch

    def _handle(self, result: SyncResult) -> None:
        """Normalise here, hand the batch to the writer, then move the network position.

        The position the server sees runs at most a couple of batches ahead of what is
        committed; a crash in between re-delivers those batches (duplicates are ignored).
        """
        assert self.normalizer is not None and self.client is not None and self.state is not None
        with self.lock:
            rows: list[ChatMessage] = []
            hints: dict[str, str] = {}
            self.normalizer.prefetch(result.messages)
            for m in result.messages:
                found = permanent_ids_from_51(m)
                if found is not None:
                    hints.update(found.permanent_ids)
                row = self.normalizer.normalize(m)
                if row is not None:
                    rows.append(row)
            changes = self.normalizer.apply_contacts(result.modified, result.deleted)
        self._enqueue(_Batch(rows, result.sync_key, changes, hints))
        self.client.advance(result)
        self._save_session()

    def _enqueue(self, batch: _Batch) -> None:
        while True:
            if isinstance(self._writer_error, WxError):
                raise self._writer_error  # an expected failure, e.g. the spool disk is full
            if self._writer_error is not None or self._writer is None:
                raise RuntimeError("the database writer stopped") from self._writer_error
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue  # the writer is behind: receiving waits (back-pressure)

    def _drain_writer(self, final: bool = False) -> None:
        """Wait until every queued batch is stored (or spooled)."""
        if self._writer is None or not self._writer.is_alive():
            return
        if final:
            self._queue.put(None)
            self._writer.join()
        else:
            self._queue.join()

    def _write_loop(self) -> None:
        while True:
            try:
                batch = self._queue.get(timeout=1.0)
            except queue.Empty:
                try:
                    self._replay_spool()
                except Exception as exc:  # never kill the writer over a replay attempt
                    log.warning("spool replay failed: %s", exc)
                continue
            try:
                if batch is None:
                    return
                self._write(batch)
            except SpoolError as exc:
                # Neither stored nor spooled: the position stays behind this batch, so
                # WeChat keeps it for the next start. Stop receiving, say so clearly.
                log.error("%s; watch stops so that no message is lost", exc)
                self.health.add_error("spool", str(exc))
                self.health.state = "spool_failed"
                self._write_health()
                self.emit("error", where="spool", message=str(exc))
                self._writer_error = exc
                self.stop()
                return
            except BaseException as exc:
                log.exception("storing a batch failed; stopping")
                self.health.add_error("database", f"storing failed: {exc}")
                self._writer_error = exc
                self.stop()
                return
            finally:
                self._queue.task_done()

    def _write(self, batch: _Batch) -> None:
        self._replay_spool()
        if batch.hints and self.ingestor is not None:
            self.ingestor.resolver.note_permanent_ids(batch.hints)
        stored = self._store(batch.rows, batch.key, batch.changes)
        if batch.key:
            with self.lock:
                self._committed = batch.key  # stored, or durably spooled
                self._dirty = True
        if batch.rows and stored:
            last = max(r.created_at for r in batch.rows)
            self.health.last_message_at = last.isoformat()
            self.emit("messages", rows=batch.rows)

    def _store(self, rows: list[ChatMessage], key: SyncKey | None, changes: list) -> bool:
        """Into the database in one transaction; into the spool when it is unreachable."""
        if self.ingestor is not None and not self.spool:
            try:
                res = self.ingestor.store(rows, key, changes)
                self.stats.stored += res.inserted
                self.stats.duplicates += res.duplicates
                self.stats.batches += 1
                self.outage.recovered("writer")
                return True
            except DatabaseUnavailableError as exc:
                assert self.archive is not None
                self._next_replay = time.monotonic() + self.archive.unavailable("writer", exc)
                self.health.database = "spooling"
        elif self.ingestor is None and time.monotonic() >= self._next_replay:
            self._try_reconnect()  # one try per back-off period, not one per batch
        if rows or key:
            self._spool_batch(rows, key or (), changes)
        return False

    def _spool_batch(self, rows: list[ChatMessage], key: SyncKey, changes: list) -> None:
        from wxcli.contacts import contact_to_json

        st = self.state
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
        self.stats.spooled += len(rows)
        self._outage_spooled += len(rows)
        self.health.database = "spooling"

    def _try_reconnect(self) -> bool:
        """One try at the database by the writer; after a failure the next try waits for the
        shared outage's back-off."""
        if self.archive is None:
            self._open_archive()
            if self.archive is None:
                return False
            if self.ingestor is not None and self.state is not None:
                with contextlib.suppress(WxError):
                    self.ingestor.sync_directory(self.state.contacts.groups())
            self.outage.recovered("writer")
            return True
        if self.archive.ping():
            self.outage.recovered("writer")
            return True
        delay = self.outage.failed("writer", "the database does not answer")
        self._next_replay = time.monotonic() + delay
        return False

    def _replay_spool(self) -> None:
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
                self.stats.stored += res.inserted
                self.stats.duplicates += res.duplicates
                done += 1
                replayed_rows += len(rows)
                if rows:
                    # Alert rules see spooled messages too, late rather than never.
                    self.emit("messages", rows=rows, replayed=True)
        except DatabaseUnavailableError as exc:
            log.info("replay paused: %s", exc)
            self._next_replay = now + self.archive.unavailable("writer", exc)
        except StorageError as exc:
            log.info("replay paused: %s", exc)
            self._next_replay = now + self.db_retry_seconds
        if done:
            self.spool.drop_first(done)
        if not self.spool:
            self.health.database = "ok"
            last = self.outage.history[-1] if self.outage.history else None
            seconds = round(last.seconds, 1) if last is not None else 0.0
            if last is not None:
                self._note_outage(last, replayed=replayed_rows)
            log.warning(
                "database back%s; %d spooled messages replayed",
                f" after {seconds:.0f} s" if last is not None else "",
                replayed_rows,
            )
            self.emit("db_recovered", replayed=done, messages=replayed_rows, seconds=seconds)

    # ------------------------------------------------------------------ contacts & session

    def _refresh_contacts(self) -> None:
        self._refresh_due = False
        assert self.client is not None and self.state is not None
        try:
            fresh = self.client.get_contacts()
            groups = [c.user_name for c in fresh if c.is_group]
            groups += [
                g.user_name for g in self.state.contacts.groups() if g.user_name not in groups
            ]
            full = self.client.batch_get_contacts([(u, "") for u in groups])
        except WxError as exc:
            self.health.add_error("contacts", str(exc))
            if isinstance(exc, SessionExpiredError):
                raise
            return
        with self.lock:
            changes = self.normalizer.apply_contacts(tuple(fresh) + tuple(full), ())
            self._dirty = True
        groups = [c for c in changes if c[1].is_group]
        if groups:
            self._enqueue(_Batch([], None, groups))
        self._save_session(force=True)

    def _save_session(self, force: bool = False) -> None:
        if not self._dirty and not force:
            return
        interval = float(self.config.data["watch"]["session_save_seconds"])
        now = time.monotonic()
        if not force and now - self._last_session_save < interval:
            return
        st = self.state
        if st is None or self.client is None:
            return
        with self.lock:
            st.cookies = self.client.export_cookies()
            # Never save the network position: only what is committed (or spooled).
            committed = self._committed or st.sync_key
            snapshot = dataclasses.replace(st, sync_key=committed, sync_check_key=committed)
            try:
                ok = self.store.update(snapshot)
            except OSError as exc:
                log.warning("could not save the session file: %s", exc)
                return
        if not ok:
            log.warning(
                "the session file holds another login (or was logged out); not overwriting it"
            )
        self._last_session_save = now
        self._dirty = False

    # ------------------------------------------------------------------ session loss

    def _session_lost(self, exc: SessionExpiredError) -> bool:
        """Record, tell, and either relogin (True: keep looping) or stop with exit 3."""
        log.error("session ended: %s", exc)
        self._drain_writer()
        self.health.state = "session_lost"
        self.health.session_code = exc.code
        self.health.add_error("session", str(exc))
        if self.state is not None:
            # Kept (not deleted): push login needs this login's cookies.
            self.state.alive = False
            self.state.ended_code = exc.code
        self._save_session(force=True)
        self.emit("session_lost", code=exc.code, meaning=exc.meaning, endpoint=exc.endpoint)
        self._write_health()
        if not self.relogin:
            self.exit_code = exc.exit_code
            return False
        return self._relogin()

    def _relogin(self) -> bool:
        from wxcli import account

        qr_path = self.options.qr_png or self.paths.qr_png
        watcher = self

        class Events:
            def qr_ready(self, uuid: str, url: str) -> None:
                from wxcli.fileutil import atomic_write_bytes
                from wxcli.qr import qr_png

                png = qr_png(url)
                atomic_write_bytes(qr_path, png, mode=0o600)
                watcher.emit(
                    "login_needed",
                    qr_path=str(qr_path),
                    qr_png=png,
                    url=url,
                    valid_seconds=240,
                )

            def push_sent(self) -> None:
                log.warning("asked the phone to confirm a new login")

            def push_failed(self, reason: str) -> None:
                log.warning("push login failed: %s", reason)

            def scanned(self, avatar: str) -> None:
                log.warning("QR code scanned")

            def confirmed(self) -> None:
                log.warning("login confirmed")

            def qr_expired(self) -> None:
                log.warning("QR code expired; a new one was written")

            def loading(self, what: str) -> None:
                pass

        self.health.state = "relogin"
        self._write_health()
        try:
            state = account.login(self.paths, self.config, Events())
        except WxError as exc:
            log.error("relogin failed: %s", exc)
            self.health.add_error("relogin", str(exc))
            self.exit_code = exc.exit_code
            return False
        self._drain_writer()
        with self.lock:
            self._adopt_session(state)
            self._committed = state.sync_key
            if self.ingestor is not None:
                with contextlib.suppress(DatabaseUnavailableError, StorageError):
                    self.ingestor.sync_directory(state.contacts.groups())
        self.health.state = "running"
        self.emit("relogin_ok", nickname=state.nickname)
        self._write_health()
        return True


def run_watch(
    paths: ProfilePaths,
    config: Config,
    options: WatchOptions | None = None,
    on_event: EventSink | None = None,
) -> int:
    """Library entry point of ``wxcli watch``; returns the exit status."""
    return Watcher(paths, config, options, on_event=on_event).run()
