"""Events the watch loop raises for others (alert rules, logs): one small typed record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("wxcli.watch")

#: kinds: session_lost, login_needed, relogin_ok, error, db_spooling, db_recovered,
#: messages (a stored batch: data["rows"]), synced (heartbeat), stopped
EventSink = Callable[["WatchEvent"], None]


@dataclass
class WatchEvent:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))


def log_events(event: WatchEvent) -> None:
    """The default sink until alert channels are configured: important events to the log."""
    if event.kind == "session_lost":
        log.error("session lost (%s: %s)", event.data.get("code"), event.data.get("meaning", ""))
    elif event.kind == "login_needed":
        log.error("a new login is needed: scan the QR code at %s", event.data.get("qr_path"))
    elif event.kind == "error":
        log.error("%s: %s", event.data.get("where"), event.data.get("message"))
    elif event.kind == "db_spooling":
        log.warning("database unreachable; spooling to %s", event.data.get("spool"))
    elif event.kind == "db_recovered":
        log.warning("database back; replayed %s spooled batches", event.data.get("replayed"))
