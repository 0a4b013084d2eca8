"""Stable ids for chats and people across logins.

Web WeChat renames everyone at every login (new ``@…`` UserNames), so the archive matches what it
sees to what it already knows, in this order (the README documents the rules and their limits):

Chats
  1. the same UserName in the same login (a restarted ``watch``);
  2. the permanent id (``…@chatroom`` / ``wxid_…``) the phone reveals for recent chats (MsgType 51);
  3. groups: the same name, preferring the closest member list when several groups share it;
     a renamed group (no name match) is found by its member list (≥ 60 % of members in common);
  4. friends: the same remark, else the same nickname (and WeChat id when public);
     official accounts: the same nickname; special accounts and yourself: their fixed names.
People
  1. the same UserName in the same login; 2. the permanent id; 3. yourself;
  4. friends: remark, else nickname; 5. group members who are not friends: the same nickname
  among the members of the group they are seen in (a stranger in two groups is one person only
  once both groups have seen them in the same login).
Anything unmatched gets a new id. Names that change are kept with the time they changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace

log = logging.getLogger(__name__)

MEMBER_MATCH = 0.6


@dataclass
class ChatInfo:
    user_name: str
    kind: str
    name: str
    nickname: str = ""
    remark: str = ""
    alias: str = ""
    members: list[str] = field(default_factory=list)  # member nicknames
    encry_chat_room_id: str = ""
    member_count: int = 0
    permanent_id: str = ""


@dataclass
class PersonInfo:
    user_name: str
    nickname: str
    remark: str = ""
    alias: str = ""
    is_friend: bool = False
    is_self: bool = False
    sex: int = 0
    province: str = ""
    city: str = ""
    permanent_id: str = ""


def _now() -> datetime:
    return datetime.now(UTC)


def _naive(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(tzinfo=None)


def member_sig(names: Iterable[str]) -> str:
    return "\x1f".join(sorted({n for n in names if n})[:500])


def _overlap(a: str, b: str) -> float:
    sa = set(a.split("\x1f")) - {""}
    sb = set(b.split("\x1f")) - {""}
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / max(len(sa), len(sb))


class IdentityResolver:
    """Maps this login's UserNames to stable chat/person ids (cached; call inside a transaction)."""

    def __init__(self, m: SimpleNamespace, account_id: int, sid: str):
        self.m = m
        self.account_id = account_id
        self.sid = sid
        self.chats: dict[str, int] = {}
        self.people: dict[str, int] = {}
        self.claimed_chats: dict[int, str] = {}
        self.permanent: dict[str, str] = {}  # UserName -> permanent id (MsgType 51)

    def note_permanent_ids(self, mapping: dict[str, str]) -> None:
        self.permanent.update(mapping)

    # ------------------------------------------------------------------ chats

    def chat_id(self, info: ChatInfo, when: datetime | None = None) -> int:
        cached = self.chats.get(info.user_name)
        if cached is not None:
            return cached
        when = when or _now()
        Chat = self.m.Chat
        info.permanent_id = info.permanent_id or self.permanent.get(info.user_name, "")
        row = self._match_chat(info)
        if row is None:
            row = Chat.create(
                account=self.account_id,
                kind=info.kind,
                name=info.name,
                nickname=info.nickname,
                remark=info.remark,
                alias=info.alias,
                permanent_id=info.permanent_id,
                user_name=info.user_name,
                session_sid=self.sid,
                encry_chat_room_id=info.encry_chat_room_id,
                member_count=info.member_count or len(info.members),
                member_sig=member_sig(info.members),
                first_seen=_naive(when),
                last_seen=_naive(when),
            )
            self.m.ChatName.create(chat=row.id, name=info.name, since=_naive(when))
        else:
            self._refresh_chat(row, info, when)
        self.chats[info.user_name] = row.id
        self.claimed_chats[row.id] = info.user_name
        return row.id

    def _free(self, row_id: int, user_name: str) -> bool:
        owner = self.claimed_chats.get(row_id)
        return owner is None or owner == user_name

    def _match_chat(self, info: ChatInfo):  # -> Chat | None
        Chat = self.m.Chat
        base = Chat.select().where(Chat.account == self.account_id)
        row = base.where(Chat.user_name == info.user_name, Chat.session_sid == self.sid).first()
        if row is not None:
            return row
        if info.permanent_id:
            row = base.where(Chat.permanent_id == info.permanent_id).first()
            if row is not None and self._free(row.id, info.user_name):
                return row
        if info.kind in ("special", "self"):
            return base.where(Chat.kind == info.kind, Chat.nickname == info.nickname).first()
        if info.kind == "group":
            return self._match_group(info)
        candidates = base.where(Chat.kind == info.kind)
        if info.remark:
            rows = [r for r in candidates.where(Chat.remark == info.remark)]
            rows = [r for r in rows if self._free(r.id, info.user_name)]
            if len(rows) == 1:
                return rows[0]
        rows = [r for r in candidates.where(Chat.nickname == info.nickname)]
        rows = [r for r in rows if self._free(r.id, info.user_name)]
        if info.alias:
            aliased = [r for r in rows if r.alias == info.alias]
            if aliased:
                rows = aliased
        if len(rows) == 1:
            return rows[0]
        if len(rows) > 1:
            return max(rows, key=lambda r: r.last_seen)
        return None

    def _match_group(self, info: ChatInfo):  # -> Chat | None
        Chat = self.m.Chat
        sig = member_sig(info.members)
        groups = Chat.select().where(Chat.account == self.account_id, Chat.kind == "group")
        named = [
            r for r in groups.where(Chat.name == info.name) if self._free(r.id, info.user_name)
        ]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            return max(named, key=lambda r: (_overlap(sig, r.member_sig), r.last_seen))
        if not sig:
            return None
        best, score = None, 0.0
        for r in groups:
            if not self._free(r.id, info.user_name):
                continue
            s = _overlap(sig, r.member_sig)
            if s > score:
                best, score = r, s
        if best is not None and score >= MEMBER_MATCH:
            log.info(
                "group %r matched to earlier %r by members (%.0f%%)",
                info.name,
                best.name,
                100 * score,
            )
            return best
        return None

    def _refresh_chat(self, row, info: ChatInfo, when: datetime) -> None:
        Chat = self.m.Chat
        updates = {
            Chat.user_name: info.user_name,
            Chat.session_sid: self.sid,
            Chat.last_seen: _naive(when),
        }
        if info.name and info.name != row.name:
            self.m.ChatName.create(chat=row.id, name=info.name, since=_naive(when))
            updates[Chat.name] = info.name
        for attr in ("nickname", "remark", "alias", "encry_chat_room_id", "permanent_id"):
            value = getattr(info, attr)
            if value and value != getattr(row, attr):
                updates[getattr(Chat, attr)] = value
        if info.members:
            updates[Chat.member_sig] = member_sig(info.members)
            updates[Chat.member_count] = info.member_count or len(info.members)
        Chat.update(updates).where(Chat.id == row.id).execute()

    def rename_chat(self, user_name: str, new_name: str, when: datetime) -> int | None:
        """Record a rename seen in sync (ModContactList) for a chat of this login."""
        chat_id = self.chats.get(user_name)
        if chat_id is None:
            return None
        Chat = self.m.Chat
        row = Chat.get_or_none(Chat.id == chat_id)
        if row is None or row.name == new_name:
            return chat_id
        self.m.ChatName.create(chat=chat_id, name=new_name, since=_naive(when))
        Chat.update(name=new_name).where(Chat.id == chat_id).execute()
        return chat_id

    # ------------------------------------------------------------------ people

    def person_id(
        self, info: PersonInfo, chat_id: int | None = None, when: datetime | None = None
    ) -> int:
        cached = self.people.get(info.user_name)
        if cached is not None:
            return cached
        when = when or _now()
        Person = self.m.Person
        info.permanent_id = info.permanent_id or self.permanent.get(info.user_name, "")
        row = self._match_person(info, chat_id)
        if row is None:
            row = Person.create(
                account=self.account_id,
                nickname=info.nickname,
                remark=info.remark,
                alias=info.alias,
                permanent_id=info.permanent_id,
                user_name=info.user_name,
                session_sid=self.sid,
                is_friend=info.is_friend,
                is_self=info.is_self,
                sex=info.sex,
                province=info.province,
                city=info.city,
                first_seen=_naive(when),
                last_seen=_naive(when),
            )
            self.m.PersonName.create(
                person=row.id, kind="nickname", name=info.nickname, since=_naive(when)
            )
            if info.remark:
                self.m.PersonName.create(
                    person=row.id, kind="remark", name=info.remark, since=_naive(when)
                )
        else:
            self._refresh_person(row, info, when)
        self.people[info.user_name] = row.id
        return row.id

    def _match_person(self, info: PersonInfo, chat_id: int | None):  # -> Person | None
        Person = self.m.Person
        base = Person.select().where(Person.account == self.account_id)
        row = base.where(Person.user_name == info.user_name, Person.session_sid == self.sid).first()
        if row is not None:
            return row
        if info.permanent_id:
            row = base.where(Person.permanent_id == info.permanent_id).first()
            if row is not None:
                return row
        if info.is_self:
            return base.where(Person.is_self == True).first()  # noqa: E712 - peewee expression
        taken = set(self.people.values())
        if info.is_friend:
            if info.remark:
                rows = [r for r in base.where(Person.remark == info.remark) if r.id not in taken]
                if len(rows) == 1:
                    return rows[0]
            rows = [
                r
                for r in base.where(Person.nickname == info.nickname, Person.is_friend == True)  # noqa: E712
                if r.id not in taken
            ]
            if info.alias:
                rows = [r for r in rows if r.alias in ("", info.alias)] or rows
            if len(rows) == 1:
                return rows[0]
        if chat_id is not None:
            M = self.m.Membership
            rows = [
                r
                for r in base.join(M, on=(M.person == Person.id)).where(
                    M.chat == chat_id, Person.nickname == info.nickname
                )
                if r.id not in taken
            ]
            if len(rows) == 1:
                return rows[0]
        return None

    def _refresh_person(self, row, info: PersonInfo, when: datetime) -> None:
        Person = self.m.Person
        updates = {
            Person.user_name: info.user_name,
            Person.session_sid: self.sid,
            Person.last_seen: _naive(when),
        }
        for kind in ("nickname", "remark"):
            value = getattr(info, kind)
            if value and value != getattr(row, kind):
                self.m.PersonName.create(person=row.id, kind=kind, name=value, since=_naive(when))
                updates[getattr(Person, kind)] = value
        if info.is_friend and not row.is_friend:
            updates[Person.is_friend] = True
        if info.permanent_id and info.permanent_id != row.permanent_id:
            updates[Person.permanent_id] = info.permanent_id
        Person.update(updates).where(Person.id == row.id).execute()

    # ------------------------------------------------------------------ memberships

    def sync_members(
        self, chat_id: int, members: list[tuple[PersonInfo, str]], when: datetime
    ) -> tuple[list[str], list[str]]:
        """Make the chat's active memberships equal ``members`` ((person, display name) pairs).

        Returns the names that joined and left since the archive last looked.
        """
        M = self.m.Membership
        existing = {row.person_id: row for row in M.select().where(M.chat == chat_id)}
        first_time = not existing
        seen: set[int] = set()
        joined: list[str] = []
        for info, display in members:
            pid = self.person_id(info, chat_id, when)
            seen.add(pid)
            row = existing.get(pid)
            shown = display or info.nickname
            if row is None:
                M.insert(
                    chat=chat_id,
                    person=pid,
                    display_name=display,
                    active=True,
                    joined_at=_naive(when),
                ).on_conflict_ignore().execute()
                if not first_time:
                    joined.append(shown)
            elif not row.active or row.display_name != display:
                if not row.active:
                    joined.append(shown)
                if display and display != row.display_name:
                    self.m.PersonName.create(
                        person=pid, kind="display", name=display, chat=chat_id, since=_naive(when)
                    )
                M.update(active=True, left_at=None, display_name=display).where(
                    M.id == row.id
                ).execute()
        left: list[str] = []
        gone = [row for pid, row in existing.items() if pid not in seen and row.active]
        if gone:
            ids = [row.id for row in gone]
            M.update(active=False, left_at=_naive(when)).where(M.id.in_(ids)).execute()
            names = {
                p.id: p.nickname
                for p in self.m.Person.select().where(
                    self.m.Person.id.in_([r.person_id for r in gone])
                )
            }
            left = [r.display_name or names.get(r.person_id, "") for r in gone]
        return joined, left
