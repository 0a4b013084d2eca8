"""The REST API's audit trail in the archive database (``send_audit``), with the JSON-lines
file as the fallback so that no record is lost while the database is away.

The server picks the sink (:func:`wxcli.server.app.audit_sink`); the store only writes rows
and hands a record it cannot write to the fallback it was given."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from wxcli.store.archive import Archive, naive

log = logging.getLogger(__name__)

COLUMNS = ("profile", "app", "app_id", "kind", "to_name", "via", "remote", "result", "msg_id")


class DbAudit:
    """An audit sink (``Callable[[dict], None]``) writing one row per record."""

    def __init__(self, archive: Archive, fallback: Callable[[dict[str, Any]], None]):
        self.archive = archive
        self.fallback = fallback
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        row: dict[str, Any] = {k: str(record.get(k) or "")[:255] for k in COLUMNS}
        row["to_user"] = str(record.get("to") or "")[:140]
        error = record.get("error")
        row["error"] = json.dumps(error, ensure_ascii=False) if error else ""
        try:
            at = datetime.fromisoformat(str(record.get("at")))
        except ValueError:
            at = datetime.now(UTC)
        row["at"] = naive(at)
        rest = {k: v for k, v in record.items() if k not in (*COLUMNS, "to", "error", "at")}
        row["detail"] = json.dumps(rest, ensure_ascii=False, default=str) if rest else ""
        try:
            with self._lock:
                self.archive.m.SendAudit.insert(**row).execute()
        except Exception as exc:  # the database went away: keep the record in the file
            first = not self.archive.outage.down
            # Drops this thread's dead connection, so the next record reconnects.
            self.archive.unavailable("audit", exc)
            if first:
                log.warning("audit records go to the file until the database is back: %s", exc)
            self.fallback(record)
            return
        self.archive.available("audit")
