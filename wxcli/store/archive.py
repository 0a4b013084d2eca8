"""The message archive: open by URL, migrate, ingest sync batches, hand out media work.

One ingest call is one transaction holding the batch's messages, the recalls it marks, the
roster changes and the sync position that delivered them — so a crash between any two steps
loses nothing and duplicates nothing (duplicates by account + MsgId are ignored).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import peewee as pw

from wxcli.errors import DatabaseUnavailableError, StorageError
from wxcli.protocol.models import Contact, SyncKey, sync_key_text
from wxcli.store.bulk import bulk_insert
from wxcli.store.db import CONNECT_TIMEOUT, DbUrl, Outage, connect, parse_url
from wxcli.store.identity import ChatInfo, IdentityResolver, PersonInfo
from wxcli.store.migrations import migrate
from wxcli.store.models import build_models, fit
from wxcli.store.records import ChatMessage
from wxcli.timeutil import utc_aware, utc_naive

log = logging.getLogger(__name__)

#: Errors that mean "the database is not reachable right now" (spool and retry), as opposed
#: to a bug or a constraint problem.
UNAVAILABLE = (pw.OperationalError, pw.InterfaceError)


def root_error(exc: BaseException) -> BaseException:
    """The error that failed a transaction, not the failed rollback after it: SQLite rolls
    back by itself on "database or disk is full", so peewee's own rollback then fails with
    "cannot rollback - no transaction is active" and hides the real cause."""
    while "cannot rollback" in str(exc) and exc.__context__ is not None:
        exc = exc.__context__
    return exc


naive = utc_naive  # the names the store's callers import


def aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else utc_aware(dt)


def open_when_available(
    config: Any, home: Path, url: str | None, stop: threading.Event, *, who: str
) -> Archive | None:
    """The archive, once the database answers: a long-running worker started while it is
    down waits (the shared back-off, one warning) instead of failing. None if ``stop`` is set
    first."""
    outage = Outage()
    while not stop.is_set():
        try:
            archive = Archive.from_config(config, home, url, outage=outage)
        except DatabaseUnavailableError as exc:
            stop.wait(outage.failed(who, exc))
            continue
        outage.recovered(who)
        return archive
    return None


def parse_sync_key(text: str) -> SyncKey:
    pairs = []
    for item in text.split("|"):
        k, _, v = item.partition("_")
        if k.lstrip("-").isdigit() and v.lstrip("-").isdigit():
            pairs.append((int(k), int(v)))
    return tuple(pairs)


@dataclass
class IngestResult:
    inserted: int
    duplicates: int


class Archive:
    """A connected, migrated archive database."""

    def __init__(
        self,
        url: str = "",
        home: Path | None = None,
        password_env: str = "",
        *,
        outage: Outage | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ):
        self.url: DbUrl = parse_url(url, home or Path("."), password_env)
        #: Shared by every thread using this archive (and by the archives a process opens
        #: after one failed to open): one back-off, one "down"/"back" report per outage.
        self.outage = outage if outage is not None else Outage()
        self.db = connect(self.url, timeout=connect_timeout)
        self.m = build_models(self.db)
        try:
            self.migrations = migrate(self.m)
        except UNAVAILABLE as exc:
            raise DatabaseUnavailableError(f"{self.url.safe()}: {root_error(exc)}") from None

    @classmethod
    def from_config(
        cls, config: Any, home: Path, url: str | None = None, *, outage: Outage | None = None
    ) -> Archive:
        db = config.settings.database
        return cls(
            url if url is not None else db.url,
            home,
            db.password_env,
            outage=outage,
            connect_timeout=float(db.connect_timeout),
        )

    @property
    def is_mysql(self) -> bool:
        return self.url.scheme == "mysql"

    def transaction(self) -> Any:
        """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE),
        so a concurrent writer makes us wait (busy_timeout) instead of failing at upgrade."""
        if self.is_mysql:
            return self.db.atomic()
        return self.db.atomic("IMMEDIATE")

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()

    def ping(self, who: str = "") -> bool:
        """True when the database answers (reconnecting if the connection dropped). With
        ``who``, the answer is also told to the shared :class:`Outage`."""
        try:
            if self.db.is_closed():
                self.db.connect(reuse_if_open=True)
            self.db.execute_sql("SELECT 1")
        except UNAVAILABLE as exc:
            self.drop_connection()
            if who:
                self.outage.failed(who, root_error(exc))
            return False
        if who:
            self.outage.recovered(who)
        return True

    def drop_connection(self) -> None:
        """Close this thread's connection after a failure (peewee keeps one per thread, and a
        dead one stays dead: only the thread that holds it can drop it); the next query
        reconnects."""
        try:
            self.db.close()
        except Exception:  # a dead connection may fail to close; it is gone either way
            log.debug("closing a dead connection failed", exc_info=True)

    def unavailable(self, who: str, exc: BaseException | str) -> float:
        """A query of this thread failed because the database is away: drop the connection,
        tell the shared outage; returns the seconds to wait before the next try."""
        self.drop_connection()
        return self.outage.failed(who, root_error(exc) if isinstance(exc, BaseException) else exc)

    def available(self, who: str) -> None:
        """A query of this thread worked: ends the outage, if there was one."""
        self.outage.recovered(who)

    # ------------------------------------------------------------------ accounts & sync

    def account_id(self, uin: int, nickname: str = "") -> int:
        A = self.m.Account
        row = A.get_or_none(A.uin == uin)
        if row is None:
            A.insert(
                uin=uin, nickname=nickname, created_at=naive(datetime.now(UTC))
            ).on_conflict_ignore().execute()
            row = A.get(A.uin == uin)
        elif nickname and row.nickname != nickname:
            A.update(nickname=nickname).where(A.id == row.id).execute()
        account_id: int = row.id
        return account_id

    def sync_state(self, account_id: int) -> tuple[str, SyncKey] | None:
        S = self.m.SyncState
        row = S.get_or_none(S.account == account_id)
        if row is None:
            return None
        return row.sid, parse_sync_key(row.sync_key)

    def counts(self, account_id: int | None = None) -> dict[str, int]:
        M = self.m.Message
        q = M.select()
        if account_id is not None:
            q = q.where(M.account == account_id)
        return {
            "messages": q.count(),
            "chats": self.m.Chat.select().count(),
            "people": self.m.Person.select().count(),
        }

    # ------------------------------------------------------------------ media queue

    def reset_media_claims(self, account_id: int) -> None:
        """Jobs a crashed watch had claimed go back to pending."""
        J, M = self.m.MediaJob, self.m.Message
        mine = M.select(M.id).where(M.account == account_id)
        J.update(status="pending").where(J.status == "working", J.message.in_(mine)).execute()

    def claim_media(self, account_id: int, limit: int, now: datetime) -> list[dict[str, Any]]:
        """Pending media jobs whose retry time has come; marks them 'working'."""
        J, M = self.m.MediaJob, self.m.Message
        with self.transaction():
            rows = list(
                J.select(
                    M.id,
                    M.msg_id,
                    M.kind,
                    M.created_at,
                    J.attempts.alias("media_attempts"),
                    M.raw,
                    M.file_name,
                )
                .join(M, on=(J.message == M.id))
                .where(J.status == "pending", J.next_at <= naive(now), M.account == account_id)
                .order_by(J.next_at)
                .limit(limit)
                .dicts()
            )
            if rows:
                J.update(status="working").where(J.message.in_([r["id"] for r in rows])).execute()
        return rows

    def media_done(self, row_id: int, **fields: Any) -> None:
        M, J = self.m.Message, self.m.MediaJob
        fields.pop("media_attempts", None)
        with self.transaction():
            M.update(media_status="done", media_error="", **fields).where(M.id == row_id).execute()
            J.delete().where(J.message == row_id).execute()

    def media_failed(
        self, row_id: int, attempts: int, error: str, retry_at: datetime | None
    ) -> None:
        """Record a failed download: retry at ``retry_at``, or give up (None)."""
        M, J = self.m.Message, self.m.MediaJob
        with self.transaction():
            if retry_at is None:
                M.update(media_status="failed", media_error=error[:250]).where(
                    M.id == row_id
                ).execute()
                J.delete().where(J.message == row_id).execute()
            else:
                M.update(media_error=error[:250]).where(M.id == row_id).execute()
                J.update(status="pending", attempts=attempts, next_at=naive(retry_at)).where(
                    J.message == row_id
                ).execute()

    def media_queue(self, account_id: int) -> dict[str, int]:
        J, M = self.m.MediaJob, self.m.Message
        q = (
            J.select(J.status, pw.fn.COUNT(J.message).alias("n"))
            .join(M, on=(J.message == M.id))
            .where(M.account == account_id)
            .group_by(J.status)
            .tuples()
        )
        return {status: n for status, n in q}


class Ingestor:
    """Stores normalised sync batches for one account and login, resolving stable ids."""

    def __init__(
        self,
        archive: Archive,
        account_id: int,
        sid: str,
        *,
        describe_chat: Callable[[str], Contact | None] | None = None,
        self_user: str = "",
        self_nickname: str = "",
    ):
        self.archive = archive
        self.m = archive.m
        self.account_id = account_id
        self.sid = sid
        self.describe_chat = describe_chat or (lambda user: None)
        self.self_user = self_user
        self.self_nickname = self_nickname
        self.resolver = IdentityResolver(archive.m, account_id, sid)

    def reset_cache(self) -> None:
        """Forget cached ids (after a rolled-back transaction the cache may name lost rows)."""
        self.resolver = IdentityResolver(self.m, self.account_id, self.sid)

    # -- infos from the directory ----------------------------------------------------------

    def chat_info(self, user: str, name: str, kind: str) -> ChatInfo:
        c = self.describe_chat(user)
        if user == self.self_user:
            return ChatInfo(user_name=user, kind="self", name=self.self_nickname, nickname="self")
        if c is None:
            return ChatInfo(
                user_name=user, kind=kind, name=name, nickname=name if kind != "group" else ""
            )
        members = [m.nickname for m in c.members if m.nickname]
        return ChatInfo(
            user_name=user,
            kind=kind if kind != "self" else "self",
            name=c.shown_name or name,
            nickname=c.nickname if kind != "special" else user,
            remark=c.remark,
            alias=c.alias,
            members=members,
            encry_chat_room_id=c.encry_chat_room_id,
            member_count=c.member_count,
        )

    def person_info(self, user: str, name: str, chat_user: str = "") -> PersonInfo:
        if user == self.self_user:
            return PersonInfo(user_name=user, nickname=self.self_nickname, is_self=True)
        friend = self.describe_chat(user)
        if friend is not None and not friend.is_group:
            return PersonInfo(
                user_name=user,
                nickname=friend.nickname or name,
                remark=friend.remark,
                alias=friend.alias,
                is_friend=friend.kind == "friend",
                sex=friend.sex,
                province=friend.province,
                city=friend.city,
            )
        nickname = name
        if chat_user:
            group = self.describe_chat(chat_user)
            if group is not None:
                for m in group.members:
                    if m.user_name == user and m.nickname:
                        nickname = m.nickname
        return PersonInfo(user_name=user, nickname=nickname)

    def chat_id(self, user: str, name: str, kind: str, when: datetime) -> int:
        cached = self.resolver.chats.get(user)
        if cached is not None:  # the hot path: building a ChatInfo lists every member
            return cached
        return self.resolver.chat_id(self.chat_info(user, name, kind), when)

    # -- batches --------------------------------------------------------------------------

    def store(
        self,
        rows: Sequence[ChatMessage],
        sync_key: SyncKey | None,
        group_changes: Iterable[tuple[Contact | None, Contact]] = (),
        now: datetime | None = None,
    ) -> IngestResult:
        """Write one batch (and the sync position) in one transaction."""
        now = now or datetime.now(UTC)
        M = self.m.Message
        try:
            with self.archive.transaction():
                records = []
                roster = []
                recalls = []
                # Contact changes first: a batch that brings a new group also brings messages
                # from its members, who are then created in bulk rather than one by one.
                for old, new in group_changes:
                    roster.extend(self._group_change(old, new, now))
                for r in rows:
                    chat_id = self.chat_id(r.chat_user, r.chat_name, r.chat_kind, r.received_at)
                    sender_id = None
                    if r.sender_user:
                        sender_id = self.resolver.people.get(r.sender_user)
                        if sender_id is None:
                            info = self.person_info(r.sender_user, r.sender_name, r.chat_user)
                            sender_id = self.resolver.person_id(
                                info, chat_id if r.chat_kind == "group" else None, r.received_at
                            )
                    records.append(
                        {
                            "account": self.account_id,
                            "msg_id": r.msg_id,
                            "chat": chat_id,
                            "chat_name": fit(r.chat_name, 255, "chat name"),
                            "chat_kind": r.chat_kind,
                            "sender": sender_id,
                            "sender_name": fit(r.sender_name, 255, "sender name"),
                            "is_self": r.is_self,
                            "kind": r.kind,
                            "msg_type": r.msg_type,
                            "app_msg_type": r.app_msg_type,
                            "text": r.text,
                            "mentions": json.dumps(r.mentions, ensure_ascii=False)
                            if r.mentions
                            else "",
                            "mentions_me": r.mentions_me,
                            "title": r.title,
                            "url": r.url,
                            "file_name": r.file_name,
                            "file_size": r.file_size,
                            "created_at": naive(r.created_at),
                            "received_at": naive(r.received_at),
                            "recall_of": r.recall_of,
                            "media_status": "pending" if r.media else "",
                            "raw": r.raw,
                        }
                    )
                    if r.recall_of:
                        recalls.append((r.recall_of, r.created_at))
                    if r.roster is not None:
                        if r.roster.kind == "rename" and r.roster.new_name:
                            self.resolver.rename_chat(r.chat_user, r.roster.new_name, r.created_at)
                        subjects = r.roster.subjects or [""]
                        for subject in subjects:
                            roster.append(
                                {
                                    "account": self.account_id,
                                    "chat": chat_id,
                                    "msg_id": r.msg_id,
                                    "kind": r.roster.kind,
                                    "actor": fit(r.roster.actor, 255, "name"),
                                    "subject": fit(subject, 255, "name"),
                                    "new_name": fit(r.roster.new_name, 255, "group name"),
                                    "source": "system",
                                    "created_at": naive(r.created_at),
                                }
                            )
                inserted = bulk_insert(self.archive.db, M, records, ignore=True)
                media = [r["msg_id"] for r in records if r["media_status"] == "pending"]
                if media:
                    ids = M.select(M.id).where(  # not rows re-delivered after their download
                        M.account == self.account_id,
                        M.msg_id.in_(media),
                        M.media_status == "pending",
                    )
                    jobs = [
                        {"message": mid, "status": "pending", "attempts": 0, "next_at": naive(now)}
                        for (mid,) in ids.tuples()
                    ]
                    bulk_insert(self.archive.db, self.m.MediaJob, jobs, ignore=True)
                for msg_id, when in recalls:
                    M.update(revoked=True, revoked_at=naive(when)).where(
                        M.account == self.account_id,
                        M.msg_id == msg_id,
                        M.revoked == False,
                    ).execute()
                if roster:
                    self.m.RosterEvent.insert_many(roster).execute()
                if sync_key:
                    self._save_key(sync_key, now)
        except (pw.DatabaseError, pw.InterfaceError) as exc:
            raise self._storage_error(exc) from None
        return IngestResult(inserted=inserted, duplicates=len(records) - inserted)

    def _storage_error(self, exc: pw.DatabaseError | pw.InterfaceError) -> StorageError:
        """The typed error for a failed write: unavailable (spool and retry) or storage."""
        self.reset_cache()
        where = f"{self.archive.url.safe()}: {root_error(exc)}"
        if isinstance(exc, UNAVAILABLE):
            return DatabaseUnavailableError(where)
        return StorageError(where)

    def _save_key(self, key: SyncKey, now: datetime) -> None:
        S = self.m.SyncState
        text = sync_key_text(key)
        query = S.insert(
            account=self.account_id, sid=self.sid, sync_key=text, updated_at=naive(now)
        )
        update = {S.sid: self.sid, S.sync_key: text, S.updated_at: naive(now)}
        upsert(query, [S.account], update).execute()

    def _group_change(
        self, old: Contact | None, new: Contact, now: datetime
    ) -> list[dict[str, Any]]:
        """A group seen again in sync: rename and membership changes become roster rows."""
        if not new.is_group:
            if not new.is_special:
                info = self.person_info(new.user_name, new.nickname)
                self.resolver.people.pop(new.user_name, None)
                self.resolver.person_id(info, None, now)
            return []
        events = []
        chat_id = self.chat_id(new.user_name, new.shown_name, "group", now)
        if new.nickname:
            self.resolver.rename_chat(new.user_name, new.nickname, now)  # no-op when unchanged
        if new.members_known:
            joined, left = self.sync_group_members(new, now, chat_id)
            for name in joined:
                events.append(self._roster_row(chat_id, "join", name, now))
            for name in left:
                events.append(self._roster_row(chat_id, "leave", name, now))
        return events

    def _roster_row(self, chat_id: int, kind: str, subject: str, now: datetime) -> dict[str, Any]:
        return {
            "account": self.account_id,
            "chat": chat_id,
            "msg_id": "",
            "kind": kind,
            "actor": "",
            "subject": fit(subject, 255, "name"),
            "new_name": "",
            "source": "roster",
            "created_at": naive(now),
        }

    def sync_group_members(
        self, group: Contact, now: datetime, chat_id: int | None = None
    ) -> tuple[list[str], list[str]]:
        """Bring the archive's member list of ``group`` up to date (people + memberships)."""
        if chat_id is None:
            chat_id = self.chat_id(group.user_name, group.shown_name, "group", now)
        members = []
        for m in group.members:
            if m.user_name == self.self_user:
                info = PersonInfo(user_name=m.user_name, nickname=self.self_nickname, is_self=True)
            else:
                friend = self.describe_chat(m.user_name)
                info = PersonInfo(
                    user_name=m.user_name,
                    nickname=m.nickname,
                    remark=friend.remark if friend is not None and not friend.is_group else "",
                    is_friend=friend is not None and friend.kind == "friend",
                )
            members.append((info, m.display_name))
        return self.resolver.sync_members(chat_id, members, now)

    def sync_directory(self, groups: Iterable[Contact], now: datetime | None = None) -> int:
        """At start: register every known group and its members (for lurker reports)."""
        now = now or datetime.now(UTC)
        n = 0
        for g in groups:
            if not g.members_known:
                continue
            try:
                with self.archive.transaction():
                    self.sync_group_members(g, now)
            except (pw.DatabaseError, pw.InterfaceError) as exc:
                raise self._storage_error(exc) from None
            n += 1
        return n


def upsert(query: Any, target: list[Any], update: dict[Any, Any]) -> Any:
    """INSERT … ON CONFLICT/ON DUPLICATE KEY UPDATE for both back-ends (MySQL takes no target)."""
    if isinstance(query.model._meta.database, pw.MySQLDatabase):
        return query.on_conflict(update=update)
    return query.on_conflict(conflict_target=target, update=update)


def since_cutoff(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)
