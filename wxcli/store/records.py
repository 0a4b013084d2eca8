"""The plain records the store ingests: one message before stable ids are attached.

The sync loop makes them (``wxcli.watch.normalize``), the spool writes them as JSON and the
archive stores them; they live here so the store needs nothing above it to name its input.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class RosterChange:
    kind: str
    actor: str = ""
    subjects: list[str] = field(default_factory=list)
    new_name: str = ""


@dataclass
class ChatMessage:
    """One archive row before stable ids are attached (also the spool's record format)."""

    msg_id: str
    chat_user: str
    chat_kind: str
    chat_name: str
    sender_user: str
    sender_name: str
    is_self: bool
    kind: str
    msg_type: int
    app_msg_type: int
    text: str
    created_at: datetime
    received_at: datetime
    mentions: list[str] = field(default_factory=list)
    mentions_me: bool = False
    title: str = ""
    url: str = ""
    file_name: str = ""
    file_size: int | None = None
    recall_of: str = ""
    media: str = ""  # '' or the media kind to download (image, voice, video, file, emoji)
    raw: str | None = None
    roster: RosterChange | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["received_at"] = self.received_at.isoformat()
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ChatMessage:
        d = dict(d)
        d["created_at"] = datetime.fromisoformat(d["created_at"])
        d["received_at"] = datetime.fromisoformat(d["received_at"])
        if d.get("roster"):
            d["roster"] = RosterChange(**d["roster"])
        return cls(**d)
