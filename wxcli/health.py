"""The health record: a small JSON file ``watch`` rewrites every few seconds.

``wxcli status`` and ``wxcli keepalive`` read it instead of opening a second long poll on a
session that ``watch`` is already using; a record that stops being refreshed means ``watch`` is
down even if its process still exists.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wxcli.fileutil import atomic_write_json


def now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Health:
    pid: int = field(default_factory=os.getpid)
    state: str = "starting"  # starting | running | session_lost | stopped | relogin
    started_at: str = ""
    updated_at: str = ""
    last_synccheck_at: str = ""
    last_sync_at: str = ""
    last_message_at: str = ""
    messages_stored: int = 0
    duplicates_ignored: int = 0
    queues: dict[str, int] = field(default_factory=dict)
    database: str = "ok"  # ok | down (nothing to spool yet) | spooling
    #: The last few database outages: started_at, ended_at, seconds, error, noticed_by,
    #: spooled (messages) and replayed (messages), for ``wxcli status``.
    outages: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    #: feed sinks by name: state, lag, delivered, failures, last_error, last_delivery_at
    feed: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_code: int = 0
    sid_hint: str = ""  # first characters of the session id, to tell logins apart

    def add_error(self, where: str, message: str, keep: int = 20) -> None:
        self.errors.append({"at": now().isoformat(), "where": where, "message": message})
        del self.errors[:-keep]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def write_health(path: Path, health: Health) -> None:
    health.updated_at = now().isoformat()
    atomic_write_json(path, health.to_json(), mode=0o600)


def read_health(path: Path) -> Health | None:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    known = {k: v for k, v in data.items() if k in Health.__dataclass_fields__}
    try:
        return Health(**known)
    except TypeError:
        return None


def age_seconds(stamp: str, at: datetime | None = None) -> float | None:
    if not stamp:
        return None
    try:
        then = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)  # records are written in UTC
    return ((at or now()) - then).total_seconds()
