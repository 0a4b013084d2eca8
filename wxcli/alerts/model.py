"""The alert value object that rules produce and channels deliver, independent of any transport."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from wxcli.timeutil import utc_now

#: Every kind of alert wxcli raises; channels use it only to pick wording (e.g. the QR hint).
KINDS = frozenset(
    {
        "session_lost",
        "login_needed",
        "watch_down",
        "silence",
        "error",
        "keyword",
        "negative",
        "unanswered",
        "test",
        "digest",
    }
)

SEVERITIES = ("info", "warning", "critical")

#: Kinds whose alert is about logging in again, so channels show the QR code or say how to get it.
LOGIN_KINDS = frozenset({"session_lost", "login_needed"})


@dataclass
class Attachment:
    """A file delivered with an alert, e.g. the login QR PNG; only email carries the bytes."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        """Hex digest, so webhook receivers can match a file they fetch elsewhere."""
        return hashlib.sha256(self.content).hexdigest()


@dataclass
class Alert:
    """One thing to tell a person about; ``fields`` are short facts rendered as a table."""

    kind: str
    title: str
    text: str
    fields: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    image_url: str | None = None
    key: str = ""
    created_at: datetime = field(default_factory=utc_now)
    severity: str = "warning"

    def __post_init__(self) -> None:
        # Programming errors, not user errors: fail loudly where the alert is built.
        if self.kind not in KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}; expected one of {sorted(KINDS)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}; expected one of {SEVERITIES}")
        if self.created_at.tzinfo is None:
            raise ValueError("Alert.created_at must be timezone-aware")
        self.fields = {str(k): str(v) for k, v in self.fields.items()}

    @property
    def is_login(self) -> bool:
        """True when the alert asks someone to log in again (show the QR code)."""
        return self.kind in LOGIN_KINDS
