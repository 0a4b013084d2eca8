"""The receiving side of ``watch``: synccheck long polls, webwxsync, and one batch per answer.

Each answer is normalised here (names resolved against the session's directory), handed to
the writer, and only then does the network position move; the session file only ever gets
the writer's committed position (see :mod:`wxcli.watch.live`). Selector spins (the server
keeps saying "something new" and sends nothing) and network errors are backed off with
jitter; session loss is handed to whoever decides between exiting and logging in again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from wxcli.errors import NetworkError, ProtocolError, SessionExpiredError, WxError
from wxcli.protocol.models import SyncCheck, SyncResult
from wxcli.watch.context import WatchContext
from wxcli.watch.events import ErrorEvent
from wxcli.watch.live import LiveSession
from wxcli.watch.normalize import ChatMessage, permanent_ids_from_51
from wxcli.watch.writer import Batch

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Raised from the signal handler to leave a blocking long poll at once."""


class SyncLoop:
    """Receives until stopped, the ``--duration`` passes, ``--once`` is done, the writer
    fails, or the session is lost for good."""

    def __init__(
        self,
        ctx: WatchContext,
        live: LiveSession,
        put: Callable[[Batch], None],
        *,
        writer_failed: Callable[[], bool],
        session_lost: Callable[[SessionExpiredError], bool],
    ):
        self.ctx = ctx
        self.live = live
        self.put = put
        self.writer_failed = writer_failed
        self.session_lost = session_lost
        #: True while blocked in the long poll (stop() then closes the connection pool).
        self.in_poll = False
        #: Set by the scheduler every ``[watch] contact_refresh_minutes``.
        self.refresh_due = False

    def run(self) -> None:
        ctx = self.ctx
        opts = ctx.options
        settings = ctx.config.settings
        wechat = settings.wechat
        keep_raw = settings.database.store_raw
        deadline = None
        if opts.duration is not None:
            deadline = time.monotonic() + float(opts.duration)
        failures = 0
        spins = 0
        spin_threshold = settings.watch.spin_threshold
        while not ctx.stopping:
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self.writer_failed():
                break
            if self.refresh_due:
                self.refresh_contacts()
            client = self.live.client
            assert client is not None
            try:
                poll_timeout = None
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    poll_timeout = max(min(remaining + 1.0, float(wechat.synccheck_timeout)), 1.0)
                check = self._sync_check(poll_timeout)
                if ctx.stopping:
                    break
                ctx.health.last_synccheck_at = datetime.now(UTC).isoformat()
                if check is None:
                    continue
                if check.selector == 0:
                    failures = 0
                    spins = 0
                    if opts.once:
                        break
                    continue
                result = client.sync(keep_raw=keep_raw)
                ctx.health.last_sync_at = datetime.now(UTC).isoformat()
                failures = 0
                if result.empty:
                    spins += 1
                    ctx.stats.empty_syncs += 1
                    if spins >= spin_threshold:
                        delay = ctx.backoff(spins - spin_threshold, cap=30.0)
                        if spins == spin_threshold:
                            log.warning(
                                "selector spin (%d empty syncs in a row); backing off", spins
                            )
                            ctx.health.add_error("sync", "selector spin: backing off")
                        ctx.wait(delay)
                    client.advance(result)
                    continue
                spins = 0
                self.handle(result)
            except Interrupted:
                break
            except SessionExpiredError as exc:
                if not self.session_lost(exc):
                    break
            except (NetworkError, ProtocolError) as exc:
                if ctx.stopping:
                    break
                if deadline is not None and time.monotonic() >= deadline - 0.5:
                    break  # a poll shortened to end with --duration, not a failure
                failures += 1
                ctx.stats.errors += 1
                delay = ctx.backoff(failures)
                log.warning("%s; retrying in %.1f s", exc, delay)
                where = getattr(exc, "endpoint", "sync")
                ctx.health.add_error(where, str(exc))
                if failures >= 3:
                    ctx.events.emit(ErrorEvent(where=where, message=str(exc)))
                ctx.wait(delay)

    def _sync_check(self, timeout: float | None) -> SyncCheck | None:
        client = self.live.client
        assert client is not None
        self.in_poll = True
        try:
            if self.ctx.stopping:
                return None
            return client.sync_check(timeout)
        except NetworkError:
            if self.ctx.stopping:
                return None
            raise
        finally:
            self.in_poll = False

    def handle(self, result: SyncResult) -> None:
        """Normalise here, hand the batch to the writer, then move the network position.

        The position the server sees runs at most a couple of batches ahead of what is
        committed; a crash in between re-delivers those batches (duplicates are ignored).
        """
        live = self.live
        normalizer, client = live.normalizer, live.client
        assert normalizer is not None and client is not None
        with self.ctx.lock:
            rows: list[ChatMessage] = []
            hints: dict[str, str] = {}
            normalizer.prefetch(result.messages)
            for m in result.messages:
                found = permanent_ids_from_51(m)
                if found is not None:
                    hints.update(found.permanent_ids)
                row = normalizer.normalize(m)
                if row is not None:
                    rows.append(row)
            changes = normalizer.apply_contacts(result.modified, result.deleted)
        self.put(Batch(rows, result.sync_key, changes, hints))
        client.advance(result)
        live.save()

    def refresh_contacts(self) -> None:
        """Fetch the contact list again (renames, new groups) and register changed groups."""
        self.refresh_due = False
        live = self.live
        client, state, normalizer = live.client, live.state, live.normalizer
        assert client is not None and state is not None and normalizer is not None
        try:
            fresh = client.get_contacts()
            groups = [c.user_name for c in fresh if c.is_group]
            groups += [g.user_name for g in state.contacts.groups() if g.user_name not in groups]
            full = client.batch_get_contacts([(u, "") for u in groups])
        except WxError as exc:
            self.ctx.health.add_error("contacts", str(exc))
            if isinstance(exc, SessionExpiredError):
                raise
            return
        with self.ctx.lock:
            changes = normalizer.apply_contacts(tuple(fresh) + tuple(full), ())
        live.mark_dirty()
        group_changes = [c for c in changes if c[1].is_group]
        if group_changes:
            self.put(Batch([], None, group_changes))
        live.save(force=True)
