"""Events the watch loop raises for others (alert rules, logs, the demo).

Each kind has a small frozen dataclass, so the parts of ``watch`` that raise an event cannot
misspell a field. Sinks receive a :class:`WatchEvent`: ``kind`` and ``data`` (a plain dict of
the payload's fields, as alert rules have always read them) plus the typed ``payload``.
Kinds raised by other parts (the feed's sink alerts) travel without a typed payload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar

log = logging.getLogger("wxcli.watch")

#: kinds: session_lost, login_needed, relogin_ok, error, db_spooling, db_recovered,
#: messages (a stored batch: data["rows"]), stopped; feed_* from the feed runner
EventSink = Callable[["WatchEvent"], None]


@dataclass(frozen=True)
class Payload:
    """Base of the typed payloads; :meth:`data` is what sinks see as ``event.data``."""

    kind: ClassVar[str] = ""

    def data(self) -> dict[str, Any]:
        # Shallow on purpose: rows stay the ChatMessage objects the rules read.
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class SessionLost(Payload):
    kind: ClassVar[str] = "session_lost"
    code: int
    meaning: str
    endpoint: str


@dataclass(frozen=True)
class LoginNeeded(Payload):
    kind: ClassVar[str] = "login_needed"
    qr_path: str
    qr_png: bytes
    url: str
    valid_seconds: int = 240


@dataclass(frozen=True)
class ReloginOk(Payload):
    kind: ClassVar[str] = "relogin_ok"
    nickname: str


@dataclass(frozen=True)
class ErrorEvent(Payload):
    """Something the user should hear about at once (repeated sync failures, the spool)."""

    kind: ClassVar[str] = "error"
    where: str
    message: str


@dataclass(frozen=True)
class DbSpooling(Payload):
    kind: ClassVar[str] = "db_spooling"
    spool: str
    error: str
    noticed_by: str


@dataclass(frozen=True)
class DbRecovered(Payload):
    kind: ClassVar[str] = "db_recovered"
    replayed: int  # spool records (batches)
    messages: int
    seconds: float


@dataclass(frozen=True)
class Messages(Payload):
    """A stored batch (or, with ``replayed``, one replayed from the spool)."""

    kind: ClassVar[str] = "messages"
    rows: Sequence[Any]  # ChatMessage
    replayed: bool = False

    def data(self) -> dict[str, Any]:
        # "replayed" appears only when true, as it always has.
        return {"rows": self.rows, "replayed": True} if self.replayed else {"rows": self.rows}


@dataclass(frozen=True)
class Stopped(Payload):
    kind: ClassVar[str] = "stopped"
    stored: int


@dataclass
class WatchEvent:
    kind: str
    data: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    payload: Payload | None = None

    @classmethod
    def of(cls, payload: Payload) -> WatchEvent:
        return cls(payload.kind, payload.data(), payload=payload)


class EventBus:
    """The sinks of one watch. :meth:`emit` never raises: a failing alert channel must never
    stop the archive. Safe to call from any thread."""

    def __init__(self, sinks: Sequence[EventSink] = ()):
        self._sinks: list[EventSink] = list(sinks)
        self._lock = threading.Lock()

    @property
    def sinks(self) -> list[EventSink]:
        return self._sinks

    def add(self, sink: EventSink) -> None:
        with self._lock:
            self._sinks = [*self._sinks, sink]  # copy-on-write: emit iterates without a lock

    def emit(self, payload: Payload) -> None:
        self.send(WatchEvent.of(payload))

    def emit_raw(self, kind: str, data: dict[str, Any]) -> None:
        """An event without a typed payload (kinds other parts define, e.g. the feed's)."""
        self.send(WatchEvent(kind, dict(data)))

    def send(self, event: WatchEvent) -> None:
        for sink in self._sinks:
            try:
                sink(event)
            except Exception:
                log.exception("event handler failed for %s", event.kind)


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
