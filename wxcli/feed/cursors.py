"""Sink cursors and the rows after them, in the archive database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import peewee as pw

from wxcli.store.archive import Archive, aware
from wxcli.store.history import HistoryRow, MessageFilter, chat_ids_matching, last_row_id
from wxcli.timeutil import utc_aware, utc_naive


def _now() -> datetime:
    return utc_naive(datetime.now(UTC))


@dataclass
class Cursor:
    name: str
    message_id: int = 0
    roster_id: int = 0
    delivered: int = 0
    parked_at: datetime | None = None
    parked_reason: str = ""


def last_roster_id(archive: Archive) -> int:
    R = archive.m.RosterEvent
    return int(R.select(pw.fn.MAX(R.id)).scalar() or 0)


def load_cursor(archive: Archive, name: str, *, create: bool = True) -> Cursor | None:
    """The sink's cursor; a new sink starts at the newest stored message (`feed replay` sends
    older ones)."""
    F = archive.m.FeedCursor
    row = F.get_or_none(F.name == name)
    if row is None:
        if not create:
            return None
        cur = Cursor(name, last_row_id(archive), last_roster_id(archive))
        F.insert(
            name=name,
            message_id=cur.message_id,
            roster_id=cur.roster_id,
            updated_at=_now(),
        ).on_conflict_ignore().execute()
        row = F.get(F.name == name)
    return Cursor(
        row.name,
        row.message_id,
        row.roster_id,
        row.delivered,
        utc_aware(row.parked_at) if row.parked_at else None,
        row.parked_reason,
    )


def save_cursor(
    archive: Archive, name: str, message_id: int, roster_id: int, delivered: int
) -> None:
    F = archive.m.FeedCursor
    F.update(
        message_id=message_id,
        roster_id=roster_id,
        delivered=F.delivered + delivered,
        updated_at=_now(),
    ).where(F.name == name).execute()


def park(archive: Archive, name: str, reason: str) -> None:
    F = archive.m.FeedCursor
    F.update(parked_at=_now(), parked_reason=reason[:2000]).where(F.name == name).execute()


def resume(archive: Archive, name: str, *, skip_to: tuple[int, int] | None = None) -> bool:
    """Un-park a sink; with ``skip_to`` also move its cursor past the refused batch."""
    F = archive.m.FeedCursor
    fields: dict[Any, Any] = {F.parked_at: None, F.parked_reason: "", F.updated_at: _now()}
    if skip_to is not None:
        fields[F.message_id] = skip_to[0]
        fields[F.roster_id] = skip_to[1]
    return bool(F.update(fields).where(F.name == name).execute())


def drop_cursor(archive: Archive, name: str) -> None:
    F = archive.m.FeedCursor
    F.delete().where(F.name == name).execute()


def all_cursors(archive: Archive) -> dict[str, Cursor]:
    F = archive.m.FeedCursor
    return {
        r.name: Cursor(
            r.name,
            r.message_id,
            r.roster_id,
            r.delivered,
            utc_aware(r.parked_at) if r.parked_at else None,
            r.parked_reason,
        )
        for r in F.select()
    }


def backlog(archive: Archive, after: int) -> int:
    """Messages stored after ``after`` (what a sink still has to look at)."""
    M = archive.m.Message
    return int(M.select(pw.fn.COUNT(M.id)).where(M.id > after).scalar() or 0)


def messages_after(
    archive: Archive, after: int, upto: int, f: MessageFilter, limit: int
) -> list[HistoryRow]:
    """The rows :func:`wxcli.store.history.messages_after` returns (chat, kind and self
    filters only: a sink has no sender, time or text filter), reading just the columns a
    payload carries and converting only the two timestamps. The history query builds a whole
    model object per row, the stored raw JSON included: about three times the CPU per
    message, spent in the same process (under the same GIL) as receiving."""
    m = archive.m
    M, S = m.Message, m.MessageScore
    cols = (M.msg_id, M.chat_name, M.chat_kind, M.sender_name, M.is_self, M.kind, M.text,
            M.title, M.url, M.media_url, M.media_status, S.sentiment, M.created_at, M.revoked,
            M.recall_of, M.mentions, M.id, M.chat, M.received_at)  # fmt: skip
    q = (
        M.select(*cols)
        .join(S, on=(S.message == M.id), join_type=pw.JOIN.LEFT_OUTER)
        .where((M.id > after) & (M.id <= upto))
    )
    if f.chat_ids is not None:
        q = q.where(M.chat.in_(list(f.chat_ids) or [-1]))
    if f.chats:
        q = q.where(M.chat.in_(chat_ids_matching(archive, f.chats) or [-1]))
    if f.kinds:
        q = q.where(M.kind.in_(list(f.kinds)))
    if f.exclude_self:
        q = q.where(~M.is_self)
    out = []
    when = M.created_at.python_value  # the driver's value as the model reads it
    cursor = archive.db.execute(q.order_by(M.id).limit(limit))
    for (msg_id, chat, chat_kind, sender, is_self, kind, text, title, url, media_url, media_status,
         sentiment, created, revoked, recall_of, mentions, row_id, chat_id, received,
         ) in cursor.fetchall():  # fmt: skip
        out.append(
            HistoryRow(
                msg_id=msg_id,
                chat=chat,
                chat_kind=chat_kind,
                sender=sender,
                is_self=bool(is_self),
                kind=kind,
                text=text,
                title=title,
                url=url,
                media_url=media_url,
                media_status=media_status,
                sentiment=sentiment,
                created_at=aware(when(created)) or datetime.now(UTC),
                revoked=bool(revoked),
                recall_of=recall_of,
                mentions=json.loads(mentions) if mentions else [],
                row_id=row_id,
                chat_id=chat_id,
                received_at=aware(when(received)),
            )
        )
    return out


def roster_after(
    archive: Archive,
    after: int,
    upto: int,
    chats: tuple[str, ...] = (),
    limit: int = 100,
    until: datetime | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    m = archive.m
    R, C = m.RosterEvent, m.Chat
    q = (
        R.select(
            R.id, R.msg_id, R.chat, C.name, R.kind, R.actor, R.subject, R.new_name, R.created_at
        )
        .join(C, on=(R.chat == C.id))
        .where((R.id > after) & (R.id <= upto))
    )
    if chats:
        q = q.where(R.chat.in_(chat_ids_matching(archive, chats) or [-1]))
    if since is not None:
        q = q.where(R.created_at >= utc_naive(since))
    if until is not None:
        q = q.where(R.created_at < utc_naive(until))
    out = []
    for rid, msg_id, chat_id, chat, kind, actor, subject, new_name, created in (
        q.order_by(R.id).limit(limit).tuples()
    ):
        out.append(
            {
                "id": rid,
                "msg_id": msg_id,
                "chat_id": chat_id,
                "chat": chat,
                "kind": kind,
                "actor": actor,
                "subject": subject,
                "new_name": new_name,
                "created_at": utc_aware(created),
            }
        )
    return out
