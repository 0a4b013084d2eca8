"""Everything ``watch`` runs beside receiving and storing, and keeps running: the media
download threads, the analysis processes, the feed's sink threads, extra services handed in
by the caller (the REST API of ``--serve``), and the scheduler thread that refreshes the
health record, flags contact refreshes and restarts an analysis process that died.

All of them read the archive the writer stored, so receiving never waits for any of them.
:meth:`Workers.start` starts them, :meth:`Workers.stop` ends them in reverse order.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

from wxcli.client import WebWeChatClient
from wxcli.watch.context import WatchContext
from wxcli.watch.events import WatchEvent
from wxcli.watch.media import MediaWorkers
from wxcli.watch.writer import Writer

log = logging.getLogger(__name__)


class Stoppable(Protocol):
    def stop(self) -> object: ...


#: Starts one extra service and returns its handle (e.g. ``wxcli.server.start_server``
#: bound to the profile: the CLI passes it, watch does not import the server).
Service = Callable[[], Stoppable]


class Workers:
    def __init__(
        self,
        ctx: WatchContext,
        writer: Writer,
        client: Callable[[], WebWeChatClient | None],
        *,
        media: bool,
        analysis: bool,
        services: list[Service],
        jobs: list[tuple[float, Callable[[], None]]],
    ):
        """``jobs``: (seconds, function) pairs the scheduler thread runs periodically."""
        self.ctx = ctx
        self.writer = writer
        self._client = client
        self.media_on = media
        self.analysis_on = analysis
        self.services = services
        self.jobs = jobs
        self.media: MediaWorkers | None = None
        self.feed: Any = None  # wxcli.feed.runner.FeedRunner when sinks are configured
        self.analysis_procs: list[subprocess.Popen[bytes]] = []
        self._handles: list[Stoppable] = []
        self._scheduler: threading.Thread | None = None

    # ------------------------------------------------------------------ start

    def start(self) -> None:
        self._scheduler = threading.Thread(target=self._schedule, name="wx-scheduler", daemon=True)
        self._scheduler.start()
        if self.media_on:  # also with the database down: the workers wait for it
            self.start_media()
        self.start_feed()
        if self.analysis_on:
            self.start_analysis()
        for service in self.services:
            self._handles.append(service())

    def start_media(self) -> None:
        w = self.writer
        self.media = MediaWorkers(
            self.ctx.config,
            self.ctx.paths,
            self.ctx.health,
            w.outage,
            archive=lambda: w.archive,
            account_id=lambda: w.account_id,
            client=self._client,
        )
        self.media.start()

    def start_feed(self) -> None:
        """The feed's sink threads, when ``[feed.sinks.*]`` names any (they read what the
        writer stored, so receiving never waits for them)."""
        from wxcli.feed.settings import load_feed_settings

        settings = load_feed_settings(self.ctx.config)
        if not any(s.enabled for s in settings.sinks):
            return
        from wxcli.feed.runner import FeedRunner

        w, events = self.writer, self.ctx.events
        feed = self.feed = FeedRunner(lambda: w.archive, settings, events.emit_raw)

        def stored(event: WatchEvent) -> None:
            if event.kind == "messages":  # rows were just committed: look now, not at the
                feed.wake()  # next poll (the writer raises this after each transaction)

        events.add(stored)
        feed.start()

    def start_analysis(self) -> None:
        """Start ``[analysis] workers`` analysis processes (they split the work by claiming
        ranges of messages, so more than one is safe); restart any that died."""
        ctx = self.ctx
        opts = ctx.options
        cmd = opts.analysis_command or [
            sys.executable,
            "-m",
            "wxcli",
            "--profile",
            ctx.paths.profile,
            "analyze",
            "--follow",
            "--quiet",
        ]
        if opts.db_url and not opts.analysis_command:
            cmd += ["--db", opts.db_url]
        env = dict(os.environ)
        # Only a file that exists: the worker takes WXCLI_CONFIG as an explicit --config, and
        # a missing explicit file is an error (a home without wxcli.toml got no analysis).
        if ctx.config.path is not None and ctx.config.path.exists():
            env["WXCLI_CONFIG"] = str(ctx.config.path)
        env["WXCLI_HOME"] = str(ctx.paths.home)
        wanted = max(ctx.config.settings.analysis.workers, 1)
        self.analysis_procs = [p for p in self.analysis_procs if p.poll() is None]
        while len(self.analysis_procs) < wanted:
            try:
                proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)
            except OSError as exc:
                ctx.health.add_error("analysis", f"could not start the analysis worker: {exc}")
                return
            self.analysis_procs.append(proc)

    # ------------------------------------------------------------------ watch

    def _schedule(self) -> None:
        import schedule

        jobs = schedule.Scheduler()
        for seconds, job in self.jobs:
            # schedule's hints say int; it takes seconds as a float (health_seconds = 0.2)
            jobs.every(seconds).seconds.do(job)  # type: ignore[arg-type]
        stop = self.ctx.stop_flag
        while not stop.wait(0.2):
            try:
                jobs.run_pending()
            except Exception:  # the health writer must outlive a bad tick
                log.exception("scheduler job failed")
            self._restart_dead_analysis()

    def _restart_dead_analysis(self) -> None:
        dead = [p for p in self.analysis_procs if p.poll() not in (None, 0)]
        for proc in dead:
            self.ctx.health.add_error(
                "analysis", f"worker exited with {proc.returncode}; restarting"
            )
        if dead and not self.ctx.stopping:
            self.start_analysis()

    def queue_depths(self) -> dict[str, int]:
        return self.media.queue_depths() if self.media is not None else {}

    def feed_status(self) -> dict[str, dict[str, Any]] | None:
        return dict(self.feed.status()) if self.feed is not None else None

    # ------------------------------------------------------------------ stop

    def stop_workers(self) -> None:
        """Media threads, feed and analysis processes (before the last session save); call
        with the stop flag set."""
        # The scheduler first: it restarts analysis processes that exited, and one started
        # after the terminate below would outlive watch.
        self.join_scheduler()
        if self.media is not None:
            self.media.stop()
        if self.feed is not None:
            self.feed.stop()
        for proc in self.analysis_procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.analysis_procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for handle in reversed(self._handles):
            with contextlib.suppress(Exception):
                handle.stop()

    def join_scheduler(self) -> None:
        if self._scheduler is not None:
            self._scheduler.join(timeout=2)
