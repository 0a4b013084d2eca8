"""Media download workers inside ``watch``: images fetched while the session lives, stored to
OSS or a local folder, failures retried with back-off and visible in the health record.

The work list is the database (messages with ``media_status = 'pending'``), so a crash or
restart loses none of it; the receiving thread never waits for a download.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from wxcli.client import WebWeChatClient
from wxcli.config import Config
from wxcli.errors import MediaError, NetworkError, ProtocolError, SessionExpiredError, WxError
from wxcli.health import Health
from wxcli.paths import ProfilePaths
from wxcli.retry import backoff
from wxcli.store.db import Outage
from wxcli.timeutil import utc_aware

log = logging.getLogger(__name__)


class _ThreadFlags(threading.local):
    retried = False


class MediaWorkers:
    """The download threads. What they read from the running watch is passed as callables,
    since each can change while they run: the database comes back (``archive``,
    ``account_id``), a relogin brings a new ``client``."""

    def __init__(
        self,
        config: Config,
        paths: ProfilePaths,
        health: Health,
        outage: Outage,
        *,
        archive: Callable[[], Any],
        account_id: Callable[[], int | None],
        client: Callable[[], WebWeChatClient | None],
    ):
        self.config = config
        self.paths = paths
        self.health = health
        self.outage = outage
        self._archive = archive
        self._account_id = account_id
        self._client = client
        cfg = config.settings.media
        self.workers = max(cfg.workers, 1)
        self.retries = max(cfg.retries, 1)
        self.max_bytes = cfg.max_bytes
        self.retry_seconds = float(cfg.retry_seconds)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        #: Per download thread: did its last failed query already get a fresh connection?
        self._local = _ThreadFlags()
        self.done = 0
        self.failed = 0
        self.store: Any = None
        self._claims_reset = False

    def start(self) -> None:
        """Start the download threads — also while the database is down: they wait for it."""
        from wxcli.media.storage import open_media_store

        try:
            self.store = open_media_store(self.config, self.paths)
        except WxError as exc:
            self.health.add_error("media", f"media storage unavailable: {exc}")
            return
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"wx-media-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)

    def queue_depths(self) -> dict[str, int]:
        return {"media_done": self.done, "media_failed": self.failed}

    def _run(self) -> None:
        idle = 0.2
        while not self._stop.is_set():
            archive, account_id = self._archive(), self._account_id()
            if archive is None or account_id is None or self._client() is None:
                self._stop.wait(1.0)
                continue
            try:
                with self._lock:  # one claimer at a time; downloads run in parallel
                    if not self._claims_reset:
                        # Jobs a crashed watch had claimed go back to pending (once, as
                        # soon as the database answers — it may be down at start).
                        archive.reset_media_claims(account_id)
                        self._claims_reset = True
                    jobs = archive.claim_media(account_id, 1, datetime.now(UTC))
            except Exception as exc:  # database trouble: wait for it, then resume
                self._database_down(exc)
                continue
            self._database_back()
            if not jobs:
                self._stop.wait(idle)
                idle = min(idle * 2, 2.0)
                continue
            idle = 0.2
            for job in jobs:
                self._one(job)

    def _database_down(self, exc: BaseException) -> None:
        """Drop this thread's dead connection and wait as the shared outage says (the outage
        tells the user, once, whoever noticed first)."""
        archive = self._archive()
        if archive is not None and self._just_after_an_outage() and not self._local.retried:
            # A thread that slept through an outage the others already saw end still holds
            # the connection that died in it: a fresh one answers, and that is no new outage.
            # (Once per failure streak, so an error that is not the database's still waits.)
            self._local.retried = True
            archive.drop_connection()
            if archive.ping():
                log.debug("media: a stale database connection was replaced: %s", exc)
                return
        if archive is not None:
            delay = archive.unavailable("media", exc)
        else:
            delay = self.outage.failed("media", exc)
        self._stop.wait(delay)

    def _just_after_an_outage(self) -> bool:
        if self.outage.down or not self.outage.history:
            return False
        ended = self.outage.history[-1].ended_at
        return ended is not None and (datetime.now(UTC) - ended).total_seconds() < 60

    def _database_back(self) -> None:
        self._local.retried = False
        self.outage.recovered("media")

    def _record(self, write: Callable[[], None]) -> None:
        """Write a job's outcome, waiting out a database outage rather than leaving the job
        'working' (which only a restart of watch would free)."""
        while True:
            try:
                write()
                self._database_back()
                return
            except Exception as exc:
                if self._stop.is_set():
                    log.warning("media result not recorded before stopping: %s", exc)
                    return
                self._database_down(exc)

    def _download(self, job: dict[str, Any]) -> tuple[bytes, str]:
        client = self._client()
        assert client is not None
        kind = job["kind"]
        if kind == "image":
            return client.get_image(job["msg_id"], max_bytes=self.max_bytes)
        if kind == "emoji":
            return client.get_image(job["msg_id"], big=True, max_bytes=self.max_bytes)
        if kind == "voice":
            return client.get_voice(job["msg_id"], max_bytes=self.max_bytes)
        if kind == "video":
            return client.get_video(job["msg_id"], max_bytes=self.max_bytes)
        if kind == "file":
            from wxcli.protocol.models import Message

            raw = json.loads(job["raw"]) if job.get("raw") else {}
            if not raw:
                raise MediaError("file attachment without its raw message; cannot download")
            return client.get_file(Message.from_wire(raw, keep_raw=False), self.max_bytes)
        raise MediaError(f"no download for {kind}")

    def _one(self, job: dict[str, Any]) -> None:
        archive = self._archive()
        attempts = int(job.get("media_attempts") or 0) + 1
        try:
            data, ctype = self._download(job)
            created = job["created_at"]
            when = utc_aware(created)
            stored = self.store.put(data, content_type=ctype, when=when)
        except SessionExpiredError:
            self._record(
                lambda: archive.media_failed(
                    job["id"], attempts - 1, "session ended", datetime.now(UTC)
                )
            )
            self._stop.wait(5.0)
            return
        except (NetworkError, ProtocolError, MediaError, WxError, OSError) as exc:
            final = attempts >= self.retries or isinstance(exc, MediaError)
            delay = timedelta(
                seconds=backoff(attempts - 1, base=self.retry_seconds, cap=3600, jitter=0)
            )
            retry_at = None if final else datetime.now(UTC) + delay
            error = str(exc)
            self._record(lambda: archive.media_failed(job["id"], attempts, error, retry_at))
            if final:
                self.failed += 1
                self.health.add_error("media", f"message {job['msg_id']}: {exc}")
            log.info("media download of %s failed (attempt %d): %s", job["msg_id"], attempts, exc)
            return
        self._record(
            lambda: archive.media_done(
                job["id"],
                media_url=stored.url,
                media_key=stored.key,
                media_sha256=stored.sha256,
                media_size=stored.size,
                media_type=stored.content_type,
                media_attempts=attempts,
            )
        )
        self.done += 1
