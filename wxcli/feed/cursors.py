"""Sink cursors and the rows after them, in the archive database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import peewee as pw

from wxcli.store.archive import Archive
from wxcli.store.history import chat_ids_matching, last_row_id
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
