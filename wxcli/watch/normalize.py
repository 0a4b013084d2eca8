"""From wire messages to archive rows: who said what, in which chat, as plain text.

Names are resolved from the contact directory at the moment the message arrives (group display
name > remark > nickname). A group member the directory does not know yet is fetched once with
``webwxbatchgetcontact`` — the archive never says "unknown".
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from wxcli.contacts import ContactDirectory
from wxcli.protocol import content as pc
from wxcli.protocol.models import Contact, Member, Message
from wxcli.store.records import ChatMessage, RosterChange

log = logging.getLogger(__name__)

MEDIA_KINDS = {
    "image": "image",
    "emoji": "emoji",
    "voice": "voice",
    "video": "video",
    "file": "file",
}


@dataclass
class StatusHints:
    """What a MsgType 51 (code 4) tells: session UserName → permanent id for recent chats."""

    permanent_ids: dict[str, str]


def permanent_ids_from_51(msg: Message) -> StatusHints | None:
    if msg.msg_type != 51 or msg.status_notify_code != 4 or not msg.status_notify_user:
        return None
    text = pc.unescape_text(msg.content)
    start = text.find("<username>")
    end = text.find("</username>", start)
    if start < 0 or end < 0:
        return None
    perm = [p for p in text[start + len("<username>") : end].split(",")]
    sess = msg.status_notify_user.split(",")
    if len(perm) != len(sess):
        return None
    return StatusHints({s: p for s, p in zip(sess, perm, strict=True) if s and p})


class Normalizer:
    """Turns wire messages into :class:`ChatMessage` rows for one logged-in account."""

    def __init__(
        self,
        directory: ContactDirectory,
        self_user: str,
        *,
        fetch_contacts: Callable[[list[tuple[str, str]]], list[Contact]] | None = None,
        keep_raw: bool = True,
        media_kinds: frozenset[str] = frozenset({"image", "emoji"}),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.directory = directory
        self.self_user = self_user
        self.fetch_contacts = fetch_contacts
        self.keep_raw = keep_raw
        self.media_kinds = media_kinds
        self.clock = clock
        self._tried: set[tuple[str, str]] = set()  # fetches already attempted (fetch once)
        self._group_fetched: dict[str, datetime] = {}

    # -- names ----------------------------------------------------------------------------

    @property
    def my_nickname(self) -> str:
        me = self.directory.get(self.self_user)
        return me.nickname if me else ""

    def _fetch(self, items: list[tuple[str, str]]) -> list[Contact]:
        todo = [i for i in items if i not in self._tried]
        if not todo or self.fetch_contacts is None:
            return []
        self._tried.update(todo)
        try:
            return self.fetch_contacts(todo)
        except Exception as exc:  # a failed lookup must not lose the message
            log.warning("could not fetch contact details: %s", exc)
            return []

    def prefetch(self, messages: tuple[Message, ...]) -> None:
        """Look up, in one batch, the chats of a sync batch that the directory lacks (e.g. new
        groups), instead of one request per chat."""
        wanted = []
        for m in messages:
            user = m.to_user if m.from_user == self.self_user else m.from_user
            if not user.startswith("@") or (user, "") in self._tried:
                continue
            c = self.directory.get(user)
            if c is None or (c.is_group and not c.members_known):
                wanted.append((user, ""))
        wanted = list(dict.fromkeys(wanted))
        if wanted:
            for found in self._fetch(wanted):
                self.directory.upsert(found)

    def chat(self, user_name: str) -> Contact | None:
        c = self.directory.get(user_name)
        if c is None or (c.is_group and not c.members_known):
            for found in self._fetch([(user_name, "")]):
                self.directory.upsert(found)
            c = self.directory.get(user_name)
        return c

    def _refetch_group(self, group_user: str) -> None:
        """Reload a group's member list (it carries display names); at most once a minute."""
        now = self.clock()
        last = self._group_fetched.get(group_user)
        if last is not None and (now - last).total_seconds() < 60:
            return
        self._group_fetched[group_user] = now
        if self.fetch_contacts is None:
            return
        try:
            found = self.fetch_contacts([(group_user, "")])
        except Exception as exc:  # a failed lookup must not lose the message
            log.warning("could not reload group members: %s", exc)
            return
        for c in found:
            self.directory.upsert(c)

    def member_name(self, group: Contact | None, group_user: str, member_user: str) -> str:
        """group DisplayName > remark > nickname; an unknown member is looked up (the group's
        list first, since only it has display names; then the member alone, once)."""
        member = self.directory.member(group_user, member_user)
        if member is None and group is not None:
            self._refetch_group(group_user)
            member = self.directory.member(group_user, member_user)
        if member is None and group is not None:
            found = self._fetch([(member_user, group.encry_chat_room_id or group_user)])
            for c in found:
                if c.user_name == member_user:
                    member = Member(c.user_name, c.nickname)
                    self.directory.add_member(group_user, member)
        friend = self.directory.get(member_user)
        if member is not None and member.display_name:
            return member.display_name
        if friend is not None and friend.remark:
            return friend.remark
        if member is not None and member.nickname:
            return member.nickname
        if friend is not None and friend.nickname:
            return friend.nickname
        if member_user == self.self_user:
            return self.my_nickname
        return member_user  # never "unknown": at worst the session id itself

    def chat_name(self, chat: Contact | None, user_name: str) -> str:
        if user_name == "filehelper":
            return "文件传输助手"
        if chat is None:
            return user_name
        return chat.shown_name or chat.nickname or user_name

    def my_names(self, group_user: str) -> list[str]:
        names = [self.my_nickname]
        me = self.directory.member(group_user, self.self_user)
        if me is not None and me.display_name:
            names.append(me.display_name)
        return [n for n in names if n]

    # -- messages -------------------------------------------------------------------------

    def normalize(self, m: Message) -> ChatMessage | None:
        """The archive row for ``m``, or None for housekeeping (MsgType 51, voip…)."""
        kind = pc.classify(m.msg_type, m.app_msg_type, m.sub_msg_type, m.url)
        if kind is None:
            return None
        is_self = m.from_user == self.self_user
        chat_user = m.to_user if is_self else m.from_user
        if m.msg_type == 37:
            chat_user = "fmessage"
        is_group = chat_user.startswith("@@")
        body = m.content
        sender_user = ""
        if is_group:
            if is_self:
                sender_user = self.self_user
            elif m.msg_type != 10000:
                prefix_user, rest = pc.split_group_prefix(body)
                if prefix_user is not None:
                    sender_user, body = prefix_user, rest
        elif m.msg_type != 10000:
            sender_user = self.self_user if is_self else chat_user
        chat = self.chat(chat_user)
        if chat_user == self.self_user:
            chat_kind = "self"
        elif chat is not None:
            chat_kind = chat.kind
        else:
            chat_kind = (
                "group" if is_group else ("special" if chat_user == "fmessage" else "friend")
            )
        if is_group and sender_user:
            sender_name = self.member_name(chat, chat_user, sender_user)
        elif sender_user == self.self_user:
            sender_name = self.my_nickname
        elif sender_user:
            sender_name = self.chat_name(chat, sender_user)
        else:
            sender_name = ""
        text = pc.unescape_text(body)
        row = ChatMessage(
            msg_id=m.msg_id,
            chat_user=chat_user,
            chat_kind=chat_kind,
            chat_name=self.chat_name(chat, chat_user),
            sender_user=sender_user,
            sender_name=sender_name,
            is_self=is_self,
            kind=kind,
            msg_type=m.msg_type,
            app_msg_type=m.app_msg_type,
            text=text,
            created_at=datetime.fromtimestamp(m.create_time or 0, UTC),
            received_at=self.clock(),
            raw=m.raw_json if self.keep_raw else None,
        )
        self._details(row, m, text)
        return row

    def _details(self, row: ChatMessage, m: Message, text: str) -> None:
        kind = row.kind
        if kind == "text":
            row.mentions = pc.find_mentions(text)
            if row.chat_kind == "group" and not row.is_self:
                row.mentions_me = pc.mentions_me(text, self.my_names(row.chat_user))
        elif kind == "location":
            loc = pc.parse_location(text, pc.unescape_text(m.ori_content), m.url)
            if loc is not None:
                row.text = loc.poi_name or loc.label
                row.title = loc.label
                row.url = loc.url
        elif kind in ("link", "file", "other") and m.msg_type == 49:
            app = pc.parse_appmsg(text)
            if app is not None:
                row.title = app.title
                row.url = app.url or pc.unescape_text(m.url)
                row.file_name = app.file_name or (m.file_name if kind == "file" else "")
                row.file_size = app.file_size
                row.text = app.title if not app.description else f"{app.title}\n{app.description}"
            else:
                row.title = pc.unescape_text(m.file_name)
                row.text = row.title
            if kind == "file" and row.file_size is None and m.file_size.isdigit():
                row.file_size = int(m.file_size)
        elif kind == "card":
            card = pc.parse_card(text, m.recommend_info)
            row.text = card.nickname if card is not None else ""
        elif kind == "friend-request":
            req = pc.parse_friend_request(text, m.recommend_info)
            if req is not None:
                row.text = req.greeting
                row.sender_name = req.from_nickname
        elif kind == "recall":
            rec = pc.parse_recall(text)
            if rec is not None:
                row.recall_of = rec.msg_id
                row.text = rec.replace_text
        elif kind == "system":
            if row.chat_kind == "group":
                ev = pc.parse_system_text(text)
                if ev is not None:
                    subjects = list(ev.subjects)
                    row.roster = RosterChange(
                        kind=ev.kind,
                        actor="你" if ev.actor_is_me else (ev.actor or ""),
                        subjects=subjects,
                        new_name=ev.new_name or "",
                    )
                    if ev.kind == "rename" and ev.new_name:
                        # Later messages of this batch already carry the new name; the
                        # ModContactList that confirms it comes in a separate list.
                        group = self.directory.get(row.chat_user)
                        if group is not None:
                            self.directory.upsert(replace(group, nickname=ev.new_name))
        elif kind in ("image", "voice", "video", "emoji"):
            row.text = ""
        media = MEDIA_KINDS.get(kind, "")
        if media and media in self.media_kinds:
            row.media = media

    def apply_contacts(
        self, modified: tuple[Contact, ...], deleted: tuple[str, ...]
    ) -> list[tuple[Contact | None, Contact]]:
        """Apply ModContactList/DelContactList; returns (old, new) pairs for roster diffs."""
        changes = []
        for c in modified:
            old = self.directory.get(c.user_name)
            new = self.directory.upsert(c)
            changes.append((old, new))
            self._tried = {t for t in self._tried if t[0] != c.user_name}
        for user in deleted:
            self.directory.remove(user)
        return changes


def raw_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
