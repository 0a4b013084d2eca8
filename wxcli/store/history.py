"""Reading the archive back: the query behind ``wxcli history``."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import peewee as pw

from wxcli.store.archive import Archive, aware, naive


@dataclass
class HistoryRow:
    msg_id: str
    chat: str
    chat_kind: str
    sender: str
    is_self: bool
    kind: str
    text: str
    title: str
    url: str
    media_url: str
    media_status: str
    sentiment: float | None
    created_at: datetime
    revoked: bool
    recall_of: str
    mentions: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "chat": self.chat,
            "chat_kind": self.chat_kind,
            "sender": self.sender,
            "is_self": self.is_self,
            "kind": self.kind,
            "text": self.text,
            "title": self.title,
            "url": self.url,
            "media_url": self.media_url,
            "sentiment": self.sentiment,
            "created_at": self.created_at.isoformat(),
            "revoked": self.revoked,
            "recall_of": self.recall_of or None,
            "mentions": self.mentions,
        }


def chat_ids_matching(archive: Archive, patterns: Sequence[str]) -> list[int]:
    """Chats whose current or any former name matches one of the glob patterns (or equals it)."""
    m = archive.m
    names: dict[int, set[str]] = {}
    for chat_id, name in m.Chat.select(m.Chat.id, m.Chat.name).tuples():
        names.setdefault(chat_id, set()).add(name)
    for chat_id, name in m.ChatName.select(m.ChatName.chat, m.ChatName.name).tuples():
        names.setdefault(chat_id, set()).add(name)
    out = []
    for chat_id, known in names.items():
        if any(fnmatch.fnmatchcase(n, p) for n in known for p in patterns):
            out.append(chat_id)
    return out


def query_history(
    archive: Archive,
    *,
    chats: Sequence[str] = (),
    sender: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    grep: str | None = None,
    kinds: Sequence[str] = (),
    limit: int = 50,
    newest_first: bool = False,
) -> Iterator[HistoryRow]:
    """Messages matching the filters, oldest first within the last ``limit`` (like `tail`)."""
    m = archive.m
    M, S, P = m.Message, m.MessageScore, m.Person
    q = M.select(M, S.sentiment).join(S, on=(S.message == M.id), join_type=pw.JOIN.LEFT_OUTER)
    if chats:
        ids = chat_ids_matching(archive, chats)
        q = q.where(M.chat.in_(ids or [-1]))
    if sender:
        people = [p.id for p in P.select(P.id).where((P.nickname == sender) | (P.remark == sender))]
        cond = M.sender_name == sender
        if people:
            cond = cond | M.sender.in_(people)
        q = q.where(cond)
    if since is not None:
        q = q.where(M.created_at >= naive(since))
    if until is not None:
        q = q.where(M.created_at < naive(until))
    if grep:
        # peewee's contains() escapes LIKE wildcards itself; escaping here too made `_`, `%`
        # and `\` match only their doubled forms.
        q = q.where(M.text.contains(grep) | M.title.contains(grep))
    if kinds:
        q = q.where(M.kind.in_(list(kinds)))
    q = q.order_by(M.created_at.desc(), M.id.desc()).limit(limit)
    rows = list(q.objects())
    if not newest_first:
        rows.reverse()
    for r in rows:
        yield HistoryRow(
            msg_id=r.msg_id,
            chat=r.chat_name,
            chat_kind=r.chat_kind,
            sender=r.sender_name,
            is_self=r.is_self,
            kind=r.kind,
            text=r.text,
            title=r.title,
            url=r.url,
            media_url=r.media_url,
            media_status=r.media_status,
            sentiment=getattr(r, "sentiment", None),
            created_at=aware(r.created_at) or datetime.now(UTC),
            revoked=r.revoked,
            recall_of=r.recall_of,
            mentions=json.loads(r.mentions) if r.mentions else [],
        )
