"""The contact directory: who each session UserName is, and name → chat resolution for `send`.

It travels in the session file so a second process (``wxcli send`` while ``watch`` runs) can
resolve "客服1群" to ``@@…`` without syncing or touching the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from wxcli.errors import AmbiguousRecipientError, RecipientNotFoundError
from wxcli.protocol.models import Contact, Member

#: Names people use for the File Transfer assistant (compared case-insensitively).
FILEHELPER_NAMES = {"filehelper", "文件传输助手", "File Transfer", "file transfer"}
_FILEHELPER_KEYS = {n.casefold() for n in FILEHELPER_NAMES} | {"file transfer assistant"}


def is_filehelper_name(name: str) -> bool:
    """True for the names of the File Transfer assistant ("文件传输助手", "filehelper", …)."""
    return name.strip().casefold() in _FILEHELPER_KEYS


_FIELDS = (
    ("nickname", "nickname", ""),
    ("remark", "remark", ""),
    ("sex", "sex", 0),
    ("verify_flag", "verify_flag", 0),
    ("contact_flag", "contact_flag", 0),
    ("province", "province", ""),
    ("city", "city", ""),
    ("alias", "alias", ""),
    ("star", "star", False),
    ("member_count", "member_count", 0),
    ("encry_chat_room_id", "encry_chat_room_id", ""),
    ("owner_user_name", "owner_user_name", ""),
    ("is_owner", "is_owner", False),
    ("key_word", "key_word", ""),
)


def contact_to_json(c: Contact) -> dict[str, Any]:
    out: dict[str, Any] = {"user_name": c.user_name}
    for key, attr, default in _FIELDS:
        value = getattr(c, attr)
        if value != default:
            out[key] = value
    if c.members:
        out["members"] = [[m.user_name, m.nickname, m.display_name] for m in c.members]
    return out


def contact_from_json(d: dict[str, Any]) -> Contact:
    kwargs = {attr: d.get(key, default) for key, attr, default in _FIELDS}
    members = tuple(
        Member(user_name=str(m[0]), nickname=str(m[1]), display_name=str(m[2]))
        for m in d.get("members", [])
    )
    return Contact(user_name=str(d["user_name"]), members=members, **kwargs)


class ContactDirectory:
    """UserName → Contact, with name lookups. Not thread-safe; one owner per process."""

    def __init__(self, contacts: Iterable[Contact] = ()):
        self._by_user: dict[str, Contact] = {}
        # group UserName -> (the Contact it was built from, member index); rebuilt when the
        # group object is replaced, so it can never go stale.
        self._members: dict[str, tuple[Contact, dict[str, Member]]] = {}
        for c in contacts:
            self.upsert(c)

    def __len__(self) -> int:
        return len(self._by_user)

    def __iter__(self) -> Iterator[Contact]:
        return iter(self._by_user.values())

    def __contains__(self, user_name: object) -> bool:
        return user_name in self._by_user

    def get(self, user_name: str) -> Contact | None:
        return self._by_user.get(user_name)

    def upsert(self, contact: Contact) -> Contact:
        """Add or replace a contact; a group update without members keeps the known members."""
        old = self._by_user.get(contact.user_name)
        if old is not None and contact.is_group:
            if not contact.members_known and old.members_known:
                contact = replace(contact, members=old.members)
            if not contact.encry_chat_room_id and old.encry_chat_room_id:
                contact = replace(contact, encry_chat_room_id=old.encry_chat_room_id)
            if not contact.remark and old.remark:
                contact = replace(contact, remark=old.remark)
        self._by_user[contact.user_name] = contact
        return contact

    def add_member(self, group_user: str, member: Member) -> None:
        """Record a member learned one at a time (webwxbatchgetcontact with EncryChatRoomId)."""
        group = self._by_user.get(group_user)
        if group is None:
            return
        members = [m for m in group.members if m.user_name != member.user_name]
        old = next((m for m in group.members if m.user_name == member.user_name), None)
        if old is not None and not member.display_name:
            member = replace(member, display_name=old.display_name)
        members.append(member)
        self._by_user[group_user] = replace(group, members=tuple(members))

    def remove(self, user_name: str) -> Contact | None:
        return self._by_user.pop(user_name, None)

    def groups(self) -> list[Contact]:
        return [c for c in self._by_user.values() if c.is_group]

    def friends(self) -> list[Contact]:
        return [c for c in self._by_user.values() if c.kind == "friend"]

    def member(self, group_user: str, member_user: str) -> Member | None:
        """O(1): the watch loop asks this for every group message."""
        group = self._by_user.get(group_user)
        if group is None:
            return None
        index = self._members.get(group_user)
        if index is None or index[0] is not group:
            index = (group, {m.user_name: m for m in group.members})
            self._members[group_user] = index
        return index[1].get(member_user)

    def find(self, name: str) -> list[Contact]:
        """Chats whose group name, remark or nickname equals ``name`` exactly (an ``@…`` session
        id also finds its chat)."""
        if is_filehelper_name(name):
            helper = self._by_user.get("filehelper")
            return [helper or Contact(user_name="filehelper", nickname="文件传输助手")]
        if name.startswith("@") and name in self._by_user:
            return [self._by_user[name]]
        found = [
            c
            for c in self._by_user.values()
            if name in (c.remark, c.nickname) and (c.remark or c.nickname)
        ]
        # A friend met through remark and nickname at once is one chat, not two.
        seen: set[str] = set()
        out = []
        for c in found:
            if c.user_name not in seen:
                seen.add(c.user_name)
                out.append(c)
        return out

    def resolve(self, name: str) -> Contact:
        """Exactly one chat for ``name``, else a clear error (never the first of several)."""
        found = self.find(name)
        if len(found) == 1:
            return found[0]
        if not found:
            raise RecipientNotFoundError(name, self.near(name))
        raise AmbiguousRecipientError(name, [describe(c) for c in found])

    def near(self, name: str, limit: int = 5) -> list[str]:
        """Names that look like ``name`` (typos, a part of a longer name), best first."""
        import difflib

        names = {n for c in self._by_user.values() for n in (c.remark, c.nickname) if n}
        close = difflib.get_close_matches(name, list(names), n=limit, cutoff=0.5)
        if len(close) < limit:
            close += sorted(n for n in names if name and name in n and n not in close)
        return close[:limit]

    def to_json(self) -> list[dict[str, Any]]:
        return [contact_to_json(c) for c in self._by_user.values()]

    @classmethod
    def from_json(cls, data: Iterable[dict[str, Any]]) -> ContactDirectory:
        return cls(contact_from_json(d) for d in data)


def describe(c: Contact) -> str:
    """One line naming a chat unambiguously, for error messages and listings."""
    label = c.remark or c.nickname or c.user_name
    extra = f" (nickname {c.nickname})" if c.remark and c.nickname != c.remark else ""
    count = f", {c.member_count} members" if c.is_group else ""
    return f"{label}{extra} [{c.kind}{count}, id {c.user_name[:14]}…]"
