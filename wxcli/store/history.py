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
    row_id: int = 0  # the archive's row id: the order messages were stored in (feed cursors)
    chat_id: int = 0
    received_at: datetime | None = None

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


@dataclass(frozen=True)
class MessageFilter:
    """What a reader wants to see: the filters of ``wxcli history``, the read API and feed sinks."""

    chats: tuple[str, ...] = ()  # globs over current and former chat names
    sender: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    grep: str | None = None
    kinds: tuple[str, ...] = ()
    exclude_self: bool = False
    #: Only these chats (ids) exist for this reader (the read API's allow-list); None: all.
    chat_ids: tuple[int, ...] | None = None


def _filtered(archive: Archive, f: MessageFilter) -> Any:
    m = archive.m
    M, S, P = m.Message, m.MessageScore, m.Person
    q = M.select(M, S.sentiment).join(S, on=(S.message == M.id), join_type=pw.JOIN.LEFT_OUTER)
    if f.chat_ids is not None:
        q = q.where(M.chat.in_(list(f.chat_ids) or [-1]))
    if f.chats:
        ids = chat_ids_matching(archive, f.chats)
        q = q.where(M.chat.in_(ids or [-1]))
    if f.sender:
        people = [
            p.id for p in P.select(P.id).where((P.nickname == f.sender) | (P.remark == f.sender))
        ]
        cond = M.sender_name == f.sender
        if people:
            cond = cond | M.sender.in_(people)
        q = q.where(cond)
    if f.since is not None:
        q = q.where(M.created_at >= naive(f.since))
    if f.until is not None:
        q = q.where(M.created_at < naive(f.until))
    if f.grep:
        # peewee's contains() escapes LIKE wildcards itself; escaping here too made `_`, `%`
        # and `\` match only their doubled forms.
        q = q.where(M.text.contains(f.grep) | M.title.contains(f.grep))
    if f.kinds:
        q = q.where(M.kind.in_(list(f.kinds)))
    if f.exclude_self:
        q = q.where(~M.is_self)
    return q


def _row(r: Any) -> HistoryRow:
    return HistoryRow(
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
        row_id=r.id,
        chat_id=r.chat_id,
        received_at=aware(r.received_at),
    )


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
    f = MessageFilter(tuple(chats), sender, since, until, grep, tuple(kinds))
    M = archive.m.Message
    q = _filtered(archive, f).order_by(M.created_at.desc(), M.id.desc()).limit(limit)
    rows = list(q.objects())
    if not newest_first:
        rows.reverse()
    for r in rows:
        yield _row(r)


def messages_after(
    archive: Archive,
    after: int,
    f: MessageFilter = MessageFilter(),
    limit: int = 100,
    upto: int | None = None,
) -> list[HistoryRow]:
    """Up to ``limit`` matching messages stored after row ``after``, in the order they were stored.

    Row ids are a safe cursor because one writer thread stores messages, so ids commit in order
    (a reader never sees id N+1 before id N). ``upto`` bounds the scan (a row id read first)."""
    M = archive.m.Message
    q = _filtered(archive, f).where(M.id > after)
    if upto is not None:
        q = q.where(M.id <= upto)
    return [_row(r) for r in q.order_by(M.id).limit(limit).objects()]


def messages_before(
    archive: Archive, before: int | None, f: MessageFilter = MessageFilter(), limit: int = 50
) -> list[HistoryRow]:
    """The ``limit`` matching messages stored just before row ``before`` (None: the newest),
    newest last: one page of history walking backwards."""
    M = archive.m.Message
    q = _filtered(archive, f)
    if before is not None:
        q = q.where(M.id < before)
    rows = [_row(r) for r in q.order_by(M.id.desc()).limit(limit).objects()]
    rows.reverse()
    return rows


def last_row_id(archive: Archive) -> int:
    """The newest stored message's row id (0 when the archive is empty)."""
    M = archive.m.Message
    return int(M.select(pw.fn.MAX(M.id)).scalar() or 0)
