"""The alert history in the archive database: every alert fired, to which channel, delivered or
not (with the error) — what ``wxcli alert history`` shows — plus a small key/value table where
rules keep their place (e.g. the last sentiment score already looked at) across restarts.

The tables are created by :func:`ensure_schema` (idempotent) and by the archive's named
migration step (``0003_alert_history``), so an archive made before alerts existed gains them
either way. Their models live in the store (``wxcli.store.alert_models``), which owns every
table and migration and must not import the alerts layer above it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import peewee as pw

from wxcli.store.alert_models import AlertModels, build_alert_models, migrate_alert_history
from wxcli.timeutil import utc_aware, utc_naive

__all__ = [
    "AlertHistoryStore",
    "HistoryRecord",
    "build_alert_models",
    "ensure_schema",
    "migrate_alert_history",
]

log = logging.getLogger(__name__)

#: Delivery outcomes stored in ``alert_history.status``.
STATUSES = ("delivered", "failed", "skipped", "quiet")
#: Alerts kept in memory while the database cannot be written (oldest dropped beyond this).
BACKLOG_LIMIT = 1000


def ensure_schema(archive: Any) -> AlertModels:
    """The alert models of ``archive``, creating their tables when missing (idempotent)."""
    am = build_alert_models(archive.db)
    if not all(archive.db.table_exists(t._meta.table_name) for t in am.all):
        archive.db.create_tables(am.all, safe=True)
    return am


def _aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else utc_aware(dt)


@dataclass
class HistoryRecord:
    """One row of the alert history."""

    fired_at: datetime
    rule: str
    kind: str
    severity: str
    key: str
    title: str
    channel: str
    status: str
    text: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    attempts: int = 0
    error: str = ""
    delivered_at: datetime | None = None
    digest: str = ""
    profile: str = ""  # "" = the store's profile
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "fired_at": self.fired_at.isoformat(),
            "profile": self.profile,
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "key": self.key,
            "title": self.title,
            "text": self.text,
            "fields": self.fields,
            "channel": self.channel,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "delivered_at": self.delivered_at.isoformat() if self.delivered_at else None,
            "digest": self.digest,
        }


ArchiveSource = Callable[[], Any]


class AlertHistoryStore:
    """Reads and writes the alert tables of whatever archive ``source()`` returns right now.

    Safe from any thread (peewee keeps one connection per thread). When the database cannot
    be written — it is down and ``watch`` is spooling — records wait in memory and are
    written with the next successful one, so an outage alert still reaches the history.
    """

    def __init__(self, source: Any, profile: str = "default"):
        self._source: ArchiveSource = source if callable(source) else (lambda: source)
        self.profile = profile
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ready: dict[int, AlertModels] = {}
        self._backlog: deque[HistoryRecord] = deque(maxlen=BACKLOG_LIMIT)

    def archive(self) -> Any:
        """The archive written to right now (None while there is none)."""
        return self._source()

    def models(self) -> AlertModels | None:
        """The alert models of the current archive (None when there is none)."""
        archive = self._source()
        if archive is None:
            return None
        key = id(archive)
        am = self._ready.get(key)
        if am is None:
            with self._lock:
                am = self._ready.get(key)
                if am is None:
                    am = ensure_schema(archive)
                    self._ready[key] = am
        return am

    # -- writing ------------------------------------------------------------------------------

    def add(self, record: HistoryRecord) -> bool:
        """Store ``record`` (and any backlog); False when it had to wait in memory."""
        record.profile = record.profile or self.profile
        with self._write_lock:  # one writer at a time, so a backlog is never written twice
            self._backlog.append(record)
            archive = None
            try:
                archive = self._source()
                am = self.models()
                if am is None:
                    return False
                rows = [self._row(r) for r in self._backlog]
                with am.db.atomic():
                    am.AlertHistory.insert_many(rows).execute()
            except (pw.OperationalError, pw.InterfaceError) as exc:
                # The archive's shared outage reports it (once); this thread's dead
                # connection is dropped so that the next record reconnects.
                unavailable = getattr(archive, "unavailable", None)
                if unavailable is not None:
                    unavailable("alert history", exc)
                log.debug("alert history waits in memory (database unavailable: %s)", exc)
                return False
            except pw.PeeweeException as exc:  # a bug or schema problem: keep alerting anyway
                log.error("alert history not written: %s", exc)
                return False
            self._backlog.clear()
            available = getattr(archive, "available", None)
            if available is not None:
                available("alert history")
            return True

    @staticmethod
    def _row(r: HistoryRecord) -> dict[str, Any]:
        return {
            "fired_at": utc_naive(r.fired_at),
            "profile": r.profile[:64],
            "rule": r.rule[:64],
            "kind": r.kind[:16],
            "severity": r.severity[:8],
            "alert_key": r.key[:191],
            "title": r.title[:255],
            "text": r.text[:20000],
            "fields": json.dumps(r.fields, ensure_ascii=False),
            "channel": r.channel[:64],
            "status": r.status,
            "attempts": r.attempts,
            "error": r.error[:2000],
            "delivered_at": utc_naive(r.delivered_at) if r.delivered_at else None,
            "digest": r.digest[:32],
        }

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    # -- reading ------------------------------------------------------------------------------

    def query(
        self,
        *,
        since: datetime | None = None,
        rule: str | None = None,
        status: str | None = None,
        profile: str | None = None,
        limit: int = 100,
    ) -> list[HistoryRecord]:
        """The newest ``limit`` records matching the filters, oldest first."""
        am = self.models()
        if am is None:
            return []
        H = am.AlertHistory
        q = H.select()
        if since is not None:
            q = q.where(H.fired_at >= utc_naive(since))
        if rule:
            q = q.where(H.rule == rule)
        if status:
            q = q.where(H.status == status)
        if profile:
            q = q.where(H.profile == profile)
        rows = list(q.order_by(H.fired_at.desc(), H.id.desc()).limit(limit))
        rows.reverse()
        return [
            HistoryRecord(
                id=r.id,
                fired_at=_aware(r.fired_at) or datetime.now(UTC),
                profile=r.profile,
                rule=r.rule,
                kind=r.kind,
                severity=r.severity,
                key=r.alert_key,
                title=r.title,
                text=r.text,
                fields=json.loads(r.fields) if r.fields else {},
                channel=r.channel,
                status=r.status,
                attempts=r.attempts,
                error=r.error,
                delivered_at=_aware(r.delivered_at),
                digest=r.digest,
            )
            for r in rows
        ]

    def last_fired(self, since: datetime) -> dict[tuple[str, str], datetime]:
        """When each (rule, key) last went out to a channel since ``since`` — to restore
        cooldowns after a restart, and to share them with ``keepalive`` runs."""
        am = self.models()
        if am is None:
            return {}
        H = am.AlertHistory
        q = (
            H.select(H.rule, H.alert_key, pw.fn.MAX(H.fired_at))
            .where(
                H.fired_at >= utc_naive(since),
                H.status != "quiet",
                H.profile == self.profile,
            )
            .group_by(H.rule, H.alert_key)
            .tuples()
        )
        return {(rule, key): _aware(at) for rule, key, at in q if at is not None}  # type: ignore[misc]

    def get_state(self, key: str) -> str | None:
        am = self.models()
        if am is None:
            return None
        row = am.AlertState.get_or_none(am.AlertState.key == key)
        return row.value if row is not None else None

    def set_state(self, key: str, value: str) -> None:
        am = self.models()
        if am is None:
            return
        S = am.AlertState
        now = utc_naive(datetime.now(UTC))
        with am.db.atomic():
            updated = S.update(value=value, updated_at=now).where(S.key == key).execute()
            if not updated:
                S.insert(key=key, value=value, updated_at=now).on_conflict_ignore().execute()

    def close_thread(self) -> None:
        """Close this thread's connection (worker threads call it when they end)."""
        archive = self._source()
        if archive is not None and not archive.db.is_closed():
            try:
                archive.db.close()
            except pw.PeeweeException:
                log.debug("closing the alert history connection failed", exc_info=True)
