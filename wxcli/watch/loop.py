"""``wxcli watch``: archive every message of one profile and never lose one.

:class:`Watcher` is the composition of the parts, each in its own module:

* :mod:`~wxcli.watch.live` — the login in use and the only sync position ever saved;
* :mod:`~wxcli.watch.sync` — synccheck → webwxsync → normalise, one batch per answer
  (the main thread);
* :mod:`~wxcli.watch.writer` — stores each batch in one transaction with its position, or
  spools it while the database is down and replays it later (the writer thread);
* :mod:`~wxcli.watch.workers` — media threads, analysis processes, the feed, extra services
  and the scheduler (health record, contact refresh), started and stopped together;
* :mod:`~wxcli.watch.relogin` — session loss: exit 3, or log in again and resume.

Nothing here imports the layers above watch: the caller hands in how to make a client, how
to log in and which extra services to run (``wxcli.cli.watch`` passes ``wxcli.account`` and
the REST server).
"""

from __future__ import annotations

import contextlib
import logging
import random
import signal
import threading
from collections.abc import Callable
from typing import Any

from wxcli.client import WebWeChatClient
from wxcli.config import Config
from wxcli.errors import LockedError, SessionExpiredError
from wxcli.fileutil import PidLock
from wxcli.health import Health, write_health
from wxcli.paths import ProfilePaths
from wxcli.session import SessionState, SessionStore
from wxcli.watch.context import Stats, WatchContext, WatchOptions
from wxcli.watch.events import EventBus, EventSink, Payload, Stopped, log_events
from wxcli.watch.live import ClientFactory, LiveSession, plain_client
from wxcli.watch.media import MediaWorkers
from wxcli.watch.relogin import Login, Relogin
from wxcli.watch.spool import Spool
from wxcli.watch.sync import Interrupted, SyncLoop
from wxcli.watch.workers import Service, Workers
from wxcli.watch.writer import Writer

__all__ = ["Stats", "WatchOptions", "Watcher", "run_watch"]

log = logging.getLogger(__name__)


class Watcher:
    """One running watch of one profile (use :meth:`run`; :meth:`stop` from anywhere).

    ``client_factory`` makes the client of a login (default: from ``[wechat]``); ``login``
    logs in again for ``--relogin`` (without it, session loss always exits 3);
    :meth:`add_service` adds what should run as long as watch does (``--serve``).
    """

    def __init__(
        self,
        paths: ProfilePaths,
        config: Config,
        options: WatchOptions | None = None,
        *,
        on_event: EventSink | None = None,
        client_factory: ClientFactory | None = None,
        login: Login | None = None,
        services: list[Service] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ):
        self.paths = paths
        self.config = config
        self.options = options or WatchOptions()
        w = config.settings.watch
        opts = self.options
        self.analysis = w.analysis if opts.analysis is None else opts.analysis
        self.media = w.media if opts.media is None else opts.media
        self.relogin = w.relogin if opts.relogin is None else opts.relogin
        self.serve = w.serve if opts.serve is None else opts.serve
        self.ctx = WatchContext(
            paths,
            config,
            self.options,
            EventBus([on_event] if on_event else [log_events]),
            rng=rng or random.Random(),
            sleep=sleep,
        )
        self.live = LiveSession(self.ctx, client_factory or plain_client(config))
        self.live.media_enabled = bool(self.media)
        self.writer = Writer(
            self.ctx, self.live, stop_watch=self.stop, write_health=self.write_health
        )
        self.sync = SyncLoop(
            self.ctx,
            self.live,
            self.writer.put,
            writer_failed=lambda: self.writer.error is not None,
            session_lost=self._session_lost,
        )
        self.relogin_handler = Relogin(
            self.ctx,
            self.live,
            enabled=bool(self.relogin),
            login=login,
            drain=self.writer.drain,
            resume=self._resume,
            write_health=self.write_health,
        )
        self.services: list[Service] = list(services or [])
        self.workers: Workers | None = None

    # ------------------------------------------------------------------ public

    @property
    def health(self) -> Health:
        return self.ctx.health

    @property
    def stats(self) -> Stats:
        return self.ctx.stats

    @property
    def lock(self) -> threading.RLock:
        return self.ctx.lock

    @property
    def sinks(self) -> list[EventSink]:
        return self.ctx.events.sinks

    @property
    def store(self) -> SessionStore:
        return self.live.store

    @property
    def state(self) -> SessionState | None:
        return self.live.state

    @property
    def client(self) -> WebWeChatClient | None:
        return self.live.client

    @property
    def spool(self) -> Spool:
        return self.writer.spool

    @spool.setter
    def spool(self, spool: Spool) -> None:
        """Another spool file (before :meth:`run`; the soak puts it on a small disk)."""
        self.writer.spool = spool

    @property
    def outage(self) -> Any:
        return self.writer.outage

    @property
    def archive(self) -> Any:
        return self.writer.archive

    @property
    def ingestor(self) -> Any:
        return self.writer.ingestor

    @property
    def account_id(self) -> int | None:
        return self.writer.account_id

    @property
    def media_workers(self) -> MediaWorkers | None:
        return self.workers.media if self.workers is not None else None

    @property
    def exit_code(self) -> int:
        return self.relogin_handler.exit_code

    def add_sink(self, sink: EventSink) -> None:
        self.ctx.events.add(sink)

    def add_service(self, service: Service) -> None:
        """Run ``service()``'s handle as long as watch runs (``.stop()`` at the end)."""
        self.services.append(service)

    def emit(self, kind: str | Payload, **data: Any) -> None:
        """Tell every sink (a typed payload, or a kind and its fields)."""
        if isinstance(kind, Payload):
            self.ctx.events.emit(kind)
        else:
            self.ctx.events.emit_raw(kind, data)

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and exit (thread-safe)."""
        self.ctx.stop_flag.set()
        client = self.live.client
        if client is not None and self.sync.in_poll:
            # Closing the pool aborts a blocking long poll in another thread.
            with contextlib.suppress(Exception):
                client.http.close()

    @property
    def stopping(self) -> bool:
        return self.ctx.stopping

    def run(self) -> int:
        lock = PidLock(self.paths.watch_lock)
        if not lock.acquire():
            raise LockedError(
                f"watch for profile {self.paths.profile!r}", lock.holder_pid(), str(lock.path)
            )
        restore = self._install_signals()
        try:
            self._start()
            self.sync.run()
        finally:
            self._shutdown()
            restore()
            lock.release()
        if self.writer.error is not None:
            raise self.writer.error
        return self.exit_code

    # ------------------------------------------------------------------ start / stop

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            self.ctx.stop_flag.set()
            if self.sync.in_poll:
                raise Interrupted()

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}

        def restore() -> None:
            for s, h in old.items():
                signal.signal(s, h)

        return restore

    def _start(self) -> None:
        state = self.live.store.load()
        if not state.alive:
            raise SessionExpiredError(state.ended_code or 1101, "session file")
        self.live.adopt(state)
        self.writer.open()
        self.live.resume_from(self.writer.stored_positions())
        self.writer.register_groups()
        self.health.state = "running"
        self.writer.start()
        if self.serve and not self.services:
            log.warning("serve is on, but no REST service was handed to watch; not serving")
        wcfg = self.config.settings.watch
        jobs = [(max(float(wcfg.health_seconds), 0.2), self.write_health)]
        minutes = float(wcfg.contact_refresh_minutes)
        if minutes > 0:
            jobs.append((minutes * 60, self._flag_refresh))
        self.workers = Workers(
            self.ctx,
            self.writer,
            lambda: self.live.client,
            media=bool(self.media),
            analysis=bool(self.analysis),
            services=self.services if self.serve else [],
            jobs=jobs,
        )
        self.workers.start()
        self.write_health()

    def _flag_refresh(self) -> None:
        self.sync.refresh_due = True

    def _session_lost(self, exc: SessionExpiredError) -> bool:
        return self.relogin_handler.session_lost(exc)

    def _resume(self, state: SessionState) -> None:
        """A new login, with the writer idle: every part uses it from now on."""
        self.live.adopt(state)
        self.writer.new_login()
        self.live.reset_position()
        self.writer.register_groups()

    def _shutdown(self) -> None:
        self.ctx.stop_flag.set()
        self.writer.drain(final=True)
        if self.workers is not None:
            self.workers.stop_workers()
        self.live.save(force=True)
        if self.health.state == "running":
            self.health.state = "stopped"  # spool_failed and session_lost stay as they are
        self.write_health()
        if self.workers is not None:
            self.workers.join_scheduler()
        self.writer.close()
        self.ctx.events.emit(Stopped(stored=self.stats.stored))

    # ------------------------------------------------------------------ health

    def write_health(self) -> None:
        """Refresh the health record (counters, queues, feed) for ``status``/``keepalive``."""
        health = self.health
        with self.lock:
            health.messages_stored = self.stats.stored
            health.duplicates_ignored = self.stats.duplicates
            spool = self.writer.spool
            queues = {"spool": len(spool)} if spool else {"spool": 0}
            if self.workers is not None:
                queues.update(self.workers.queue_depths())
                feed = self.workers.feed_status()
                if feed is not None:
                    health.feed = feed
            health.queues = queues
            try:
                write_health(self.paths.health, health)
            except OSError as exc:
                log.warning("could not write the health record: %s", exc)


def run_watch(
    paths: ProfilePaths,
    config: Config,
    options: WatchOptions | None = None,
    on_event: EventSink | None = None,
) -> int:
    """Library entry point of ``wxcli watch``; returns the exit status."""
    return Watcher(paths, config, options, on_event=on_event).run()
