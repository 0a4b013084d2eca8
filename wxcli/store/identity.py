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
from typing import Any

import peewee as pw

from wxcli.store.bulk import bulk_insert
from wxcli.store.models import ArchiveModels, fit
from wxcli.timeutil import utc_naive

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

    def __post_init__(self) -> None:
        # Name columns are VARCHAR(255): cut here, loudly, once for every table they reach.
        self.name = fit(self.name, 255, "chat name")
        self.nickname = fit(self.nickname, 255, "chat name")
        self.remark = fit(self.remark, 255, "remark")


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

    def __post_init__(self) -> None:
        self.nickname = fit(self.nickname, 255, "nickname")
        self.remark = fit(self.remark, 255, "remark")


def _now() -> datetime:
    return datetime.now(UTC)


_naive = utc_naive


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

    def __init__(self, m: ArchiveModels, account_id: int, sid: str):
        self.m = m
        self.account_id = account_id
        self.sid = sid
        self.chats: dict[str, int] = {}
        self.people: dict[str, int] = {}
        self.claimed_chats: dict[int, str] = {}
        self.permanent: dict[str, str] = {}  # UserName -> permanent id (MsgType 51)
        self._index: _PeopleIndex | None = None
        self._groups_cache: dict[int, set[str]] | None = None
        self._members: dict[int, dict[int, list[Any]]] = {}

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
        chat_id: int = row.id
        self.chats[info.user_name] = chat_id
        self.claimed_chats[chat_id] = info.user_name
        return chat_id

    def _free(self, row_id: int, user_name: str) -> bool:
        owner = self.claimed_chats.get(row_id)
        return owner is None or owner == user_name

    def _match_chat(self, info: ChatInfo) -> Any:  # a Chat row or None
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

    def _match_group(self, info: ChatInfo) -> Any:  # a Chat row or None
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
        mine = set(sig.split("\x1f"))
        best_id, score = None, 0.0
        for gid, members in self._group_members().items():
            if not self._free(gid, info.user_name) or not members:
                continue
            s = len(mine & members) / max(len(mine), len(members))
            if s > score:
                best_id, score = gid, s
        if best_id is not None and score >= MEMBER_MATCH:
            best = Chat.get_by_id(best_id)
            log.info(
                "group %r matched to earlier %r by members (%.0f%%)",
                info.name,
                best.name,
                100 * score,
            )
            return best
        return None

    def _group_members(self) -> dict[int, set[str]]:
        """Member-name sets of the account's archived groups (loaded once per login)."""
        if self._groups_cache is None:
            Chat = self.m.Chat
            self._groups_cache = {
                gid: set(sig.split("\x1f")) - {""}
                for gid, sig in Chat.select(Chat.id, Chat.member_sig)
                .where(Chat.account == self.account_id, Chat.kind == "group")
                .tuples()
            }
        return self._groups_cache

    def _refresh_chat(self, row: Any, info: ChatInfo, when: datetime) -> None:
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
        new_name = fit(new_name, 255, "chat name")
        row = Chat.get_or_none(Chat.id == chat_id)
        if row is None or row.name == new_name:
            return chat_id
        self.m.ChatName.create(chat=chat_id, name=new_name, since=_naive(when))
        Chat.update(name=new_name).where(Chat.id == chat_id).execute()
        return chat_id

    # ------------------------------------------------------------------ people

    def _people_index(self) -> _PeopleIndex:
        if self._index is None:
            P, S = self.m.Person, self.m.SessionName
            rows = P.select(
                P.id, P.nickname, P.remark, P.alias, P.permanent_id, P.is_friend, P.is_self
            ).where(P.account == self.account_id)
            self._index = _PeopleIndex(rows.tuples())
            for user_name, person_id in (
                S.select(S.user_name, S.person)
                .join(P, on=(S.person == P.id))
                .where(S.sid == self.sid, P.account == self.account_id)
                .tuples()
            ):
                self.people[user_name] = person_id
        return self._index

    def _chat_members(self, chat_id: int) -> dict[int, list[Any]]:
        """person id -> [membership id, display name, active] for one chat (cached)."""
        members = self._members.get(chat_id)
        if members is None:
            M = self.m.Membership
            members = {
                pid: [mid, display, active]
                for mid, pid, display, active in M.select(M.id, M.person, M.display_name, M.active)
                .where(M.chat == chat_id)
                .tuples()
            }
            self._members[chat_id] = members
        return members

    def _match_person(self, info: PersonInfo, chat_id: int | None) -> _P | None:
        idx = self._people_index()
        taken = set(self.people.values())
        if info.permanent_id:
            for pid in idx.by_perm.get(info.permanent_id, []):
                return idx.by_id[pid]
        if info.is_self:
            return idx.by_id.get(idx.self_id) if idx.self_id else None
        if info.is_friend:
            if info.remark:
                ids = [i for i in idx.by_remark.get(info.remark, []) if i not in taken]
                if len(ids) == 1:
                    return idx.by_id[ids[0]]
            ids = [
                i
                for i in idx.by_nick.get(info.nickname, [])
                if i not in taken and idx.by_id[i].is_friend
            ]
            if info.alias:
                ids = [i for i in ids if idx.by_id[i].alias in ("", info.alias)] or ids
            if len(ids) == 1:
                return idx.by_id[ids[0]]
        if chat_id is not None:
            members = self._chat_members(chat_id)
            ids = [i for i in idx.by_nick.get(info.nickname, []) if i in members and i not in taken]
            if len(ids) == 1:
                return idx.by_id[ids[0]]
        return None

    def person_id(
        self, info: PersonInfo, chat_id: int | None = None, when: datetime | None = None
    ) -> int:
        """The stable id of a person seen in this login (matched, else created)."""
        self._people_index()
        cached = self.people.get(info.user_name)
        if cached is not None:
            return cached
        when = when or _now()
        info.permanent_id = info.permanent_id or self.permanent.get(info.user_name, "")
        found = self._match_person(info, chat_id)
        if found is None:
            pid = self._create_people([info], when)[0]
        else:
            pid = found.id
            self._refresh_person(found, info, when)
            self._remember([(info.user_name, pid)])
        return pid

    def _remember(self, pairs: list[tuple[str, int]]) -> None:
        """Record UserName -> person for this login (cache + SessionName rows, in bulk)."""
        new = [(u, p) for u, p in pairs if self.people.get(u) != p]
        for u, p in new:
            self.people[u] = p
        if new:
            rows = [{"sid": self.sid, "user_name": u, "person": p} for u, p in new]
            bulk_insert(self.m.db, self.m.SessionName, rows, ignore=True)

    def _create_people(self, infos: list[PersonInfo], when: datetime) -> list[int]:
        """Insert new people in bulk; returns their ids in order.

        Ids come from reading back rows above the previous maximum while person inserts are
        serialised (SQLite: the write lock of the surrounding transaction; MySQL: a named
        lock), so one executemany replaces thousands of single inserts at a big first login.
        """
        P = self.m.Person
        db = self.m.db
        mysql = isinstance(db, pw.MySQLDatabase)
        rows = [
            {
                "account": self.account_id,
                "nickname": info.nickname,
                "remark": info.remark,
                "alias": info.alias[:64],
                "permanent_id": info.permanent_id,
                "is_friend": info.is_friend,
                "is_self": info.is_self,
                "sex": info.sex,
                "province": info.province[:64],
                "city": info.city[:64],
                "first_seen": _naive(when),
                "last_seen": _naive(when),
            }
            for info in infos
        ]
        if mysql:
            db.execute_sql("SELECT GET_LOCK('wxcli_person_ids', 60)")
        try:
            before = P.select(pw.fn.MAX(P.id)).scalar() or 0
            bulk_insert(db, P, rows, ignore=False)
            ids = [
                pid
                for (pid,) in P.select(P.id)
                .where(P.id > before, P.account == self.account_id)
                .order_by(P.id)
                .limit(len(rows))
                .tuples()
            ]
        finally:
            if mysql:
                db.execute_sql("SELECT RELEASE_LOCK('wxcli_person_ids')")
        if len(ids) != len(rows):
            raise pw.IntegrityError("could not read back the ids of new people")
        idx = self._people_index()
        names = []
        for info, pid in zip(infos, ids, strict=True):
            idx.add(
                _P(
                    pid,
                    info.nickname,
                    info.remark,
                    info.alias,
                    info.permanent_id,
                    info.is_friend,
                    info.is_self,
                )
            )
            names.append(
                {
                    "person": pid,
                    "kind": "nickname",
                    "name": info.nickname,
                    "since": _naive(when),
                }
            )
            if info.remark:
                names.append(
                    {
                        "person": pid,
                        "kind": "remark",
                        "name": info.remark,
                        "since": _naive(when),
                    }
                )
        bulk_insert(db, self.m.PersonName, names, ignore=False)
        self._remember([(info.user_name, pid) for info, pid in zip(infos, ids, strict=True)])
        return ids

    def _refresh_person(self, row: _P, info: PersonInfo, when: datetime) -> None:
        P = self.m.Person
        updates: dict[Any, Any] = {}
        for kind in ("nickname", "remark"):
            value = getattr(info, kind)
            if value and value != getattr(row, kind):
                self.m.PersonName.create(person=row.id, kind=kind, name=value, since=_naive(when))
                updates[getattr(P, kind)] = value
        if info.is_friend and not row.is_friend:
            updates[P.is_friend] = True
        if info.permanent_id and info.permanent_id != row.permanent_id:
            updates[P.permanent_id] = info.permanent_id
        if updates:
            updates[P.last_seen] = _naive(when)
            P.update(updates).where(P.id == row.id).execute()
            self._people_index().update(
                row, **{f.name: v for f, v in updates.items() if f.name != "last_seen"}
            )

    # ------------------------------------------------------------------ memberships

    def sync_members(
        self, chat_id: int, members: list[tuple[PersonInfo, str]], when: datetime
    ) -> tuple[list[str], list[str]]:
        """Make the chat's active memberships equal ``members`` ((person, display name) pairs).

        Returns the names that joined and left since the archive last looked (nothing on the
        first look). Matching is in memory and newcomers are inserted in bulk, so a login with
        thousands of group members stays fast.
        """
        M = self.m.Membership
        self._people_index()
        existing = self._chat_members(chat_id)
        first_time = not existing
        resolved: list[tuple[int, PersonInfo, str]] = []
        fresh: list[tuple[PersonInfo, str]] = []
        for info, display in members:
            info.permanent_id = info.permanent_id or self.permanent.get(info.user_name, "")
            pid = self.people.get(info.user_name)
            if pid is None:
                found = self._match_person(info, chat_id)
                if found is not None:
                    pid = found.id
                    self._refresh_person(found, info, when)
                    self.people[info.user_name] = pid
            if pid is None:
                fresh.append((info, display))
            else:
                resolved.append((pid, info, display))
        self._remember([(i.user_name, p) for p, i, _ in resolved])
        if fresh:
            new_ids = self._create_people([i for i, _ in fresh], when)
            resolved += [(p, i, d) for p, (i, d) in zip(new_ids, fresh, strict=True)]
        joined: list[str] = []
        inserts = []
        seen: set[int] = set()
        for pid, info, display in resolved:
            seen.add(pid)
            row = existing.get(pid)
            display = fit(display, 255, "display name")
            shown = display or info.nickname
            if row is None:
                inserts.append(
                    {
                        "chat": chat_id,
                        "person": pid,
                        "display_name": display,
                        "active": True,
                        "joined_at": _naive(when),
                    }
                )
                if not first_time:
                    joined.append(shown)
            elif not row[2] or row[1] != display:
                if not row[2]:
                    joined.append(shown)
                if display and display != row[1]:
                    self.m.PersonName.create(
                        person=pid, kind="display", name=display, chat=chat_id, since=_naive(when)
                    )
                M.update(active=True, left_at=None, display_name=display).where(
                    M.id == row[0]
                ).execute()
                row[1], row[2] = display, True
        if inserts:
            bulk_insert(self.m.db, M, inserts, ignore=True)
        if inserts:
            self._members.pop(chat_id, None)  # reload ids next time
        left: list[str] = []
        gone = [(pid, row) for pid, row in existing.items() if pid not in seen and row[2]]
        if gone:
            M.update(active=False, left_at=_naive(when)).where(
                M.id.in_([row[0] for _, row in gone])
            ).execute()
            idx = self._people_index()
            for pid, row in gone:
                row[2] = False
                left.append(row[1] or idx.by_id[pid].nickname if pid in idx.by_id else row[1])
        return joined, left


@dataclass
class _P:
    id: int
    nickname: str
    remark: str
    alias: str
    permanent_id: str
    is_friend: bool
    is_self: bool


class _PeopleIndex:
    """All people of an account in memory, indexed the ways matching needs."""

    def __init__(self, rows: Iterable[tuple[Any, ...]]):
        self.by_id: dict[int, _P] = {}
        self.by_perm: dict[str, list[int]] = {}
        self.by_remark: dict[str, list[int]] = {}
        self.by_nick: dict[str, list[int]] = {}
        self.self_id = 0
        for row in rows:
            self.add(_P(*row))

    def add(self, p: _P) -> None:
        self.by_id[p.id] = p
        if p.permanent_id:
            self.by_perm.setdefault(p.permanent_id, []).append(p.id)
        if p.remark:
            self.by_remark.setdefault(p.remark, []).append(p.id)
        if p.nickname:
            self.by_nick.setdefault(p.nickname, []).append(p.id)
        if p.is_self:
            self.self_id = p.id

    def update(self, p: _P, **changes: Any) -> None:
        for key, index in (("nickname", self.by_nick), ("remark", self.by_remark)):
            if key in changes:
                old = getattr(p, key)
                if old and p.id in index.get(old, []):
                    index[old].remove(p.id)
                if changes[key]:
                    index.setdefault(changes[key], []).append(p.id)
        if changes.get("permanent_id"):
            self.by_perm.setdefault(changes["permanent_id"], []).append(p.id)
        for key, value in changes.items():
            if hasattr(p, key):
                setattr(p, key, value)
