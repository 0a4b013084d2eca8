"""The address book as a session sees it: contact objects for people, groups and specials.

Everything here is read-only over the world and depends on the session only for the UserNames
it mints (first use of a permanent id mints its ``@…`` name). Used by webwxinit,
webwxgetcontact, webwxbatchgetcontact and by the ModContactList entries the mailbox queues.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

from wxcli.simulator import wire
from wxcli.simulator.core import Core
from wxcli.simulator.session import WebSession
from wxcli.simulator.world import SPECIAL_ACCOUNTS, Group, Person


def _attr_status(pid: str) -> int:
    """A friend-like AttrStatus bit field, stable per person (and across runs)."""
    return (zlib.crc32(pid.encode()) & 0x3FFFF) | 0x21000


class Directory:
    """Contact objects (§4) for one session's UserNames, over the core's world."""

    def __init__(self, core: Core):
        self.core = core

    def head_url(self, sess: WebSession, user_name: str, group: bool = False) -> str:
        seq = zlib.crc32(user_name.encode()) % 10**9  # stable across runs
        if group:
            return f"/cgi-bin/mmwebwx-bin/webwxgetheadimg?seq={seq}&username={user_name}&skey="
        return f"/cgi-bin/mmwebwx-bin/webwxgeticon?seq={seq}&username={user_name}&skey={sess.skey}"

    def person_contact(self, sess: WebSession, p: Person) -> dict[str, Any]:
        un = sess.name_for(p.pid)
        flag = 3 if p.friend else 0
        if p.pinned:
            flag |= 2048
        if p.star:
            flag |= 64
        return wire.contact_object(
            user_name=un,
            nickname=p.nickname,
            remark=p.remark if p.friend else "",
            sex=p.sex,
            verify_flag=p.verify_flag,
            contact_flag=flag,
            province=p.province,
            city=p.city,
            signature=p.signature,
            alias=p.alias,
            keyword="gh_" if p.official else "",
            star=p.star,
            head_img_url=self.head_url(sess, un),
            attr_status=0 if p.official else _attr_status(p.pid),
        )

    def special_contact(self, sess: WebSession, name: str) -> dict[str, Any]:
        return wire.contact_object(
            user_name=name,
            nickname=SPECIAL_ACCOUNTS[name],
            contact_flag=3 if name == "filehelper" else 1,
            keyword=name[:3],
            verify_flag=56 if name == "weixin" else 0,
            head_img_url=self.head_url(sess, name),
        )

    def group_contact(self, sess: WebSession, g: Group, members: str = "full") -> dict[str, Any]:
        """A group object; ``members`` is full (batchgetcontact), stub (old webwxinit form),
        none (real size, no list) or zero (MemberCount 0, no list: what WeChat sends)."""
        un = sess.name_for(g.gid, group=True)
        member_list: list[dict[str, Any]] = []
        if members not in ("none", "zero"):
            for m in g.members:
                mun = sess.name_for(m.pid, short=m.pid == self.core.world.account.pid)
                if members == "stub":
                    member_list.append(wire.member_object(mun, "", "", 0))
                    continue
                p = self.core.world.persons.get(m.pid)
                nick = (
                    self.core.world.account.nickname
                    if m.pid == self.core.world.account.pid
                    else (p.nickname if p else "")
                )
                attr = _attr_status(m.pid)
                member_list.append(wire.member_object(mun, nick, m.display_name, attr))
        owner_is_me = g.owner == self.core.world.account.pid
        return wire.contact_object(
            user_name=un,
            nickname=g.name,
            contact_flag=3 if g.saved else 2,
            head_img_url=self.head_url(sess, un, group=True),
            member_list=member_list,
            member_count=0 if members == "zero" else len(g.members),
            encry_chat_room_id=sess.encry_id(g.gid) if members == "full" else "",
            is_owner=1 if owner_is_me else 0,
            statues=1 if g.saved else 0,
        )

    def contact_for_pid(self, sess: WebSession, pid: str) -> dict[str, Any] | None:
        if pid in SPECIAL_ACCOUNTS:
            return self.special_contact(sess, pid)
        if pid in self.core.world.groups:
            return self.group_contact(sess, self.core.world.groups[pid])
        p = self.core.world.persons.get(pid)
        if p is not None:
            return self.person_contact(sess, p)
        return None

    def self_contact(self, sess: WebSession) -> dict[str, Any]:
        acc = self.core.world.account
        user = wire.contact_object(
            user_name=sess.user_name,
            nickname=acc.nickname,
            sex=acc.sex,
            signature=acc.signature,
            contact_flag=0,
            head_img_url=self.head_url(sess, sess.user_name),
            uin=acc.uin,
        )
        keep = [
            "Uin",
            "UserName",
            "NickName",
            "HeadImgUrl",
            "RemarkName",
            "PYInitial",
            "PYQuanPin",
            "RemarkPYInitial",
            "RemarkPYQuanPin",
            "HideInputBarFlag",
            "StarFriend",
            "Sex",
            "Signature",
            "AppAccountFlag",
            "VerifyFlag",
            "ContactFlag",
        ]
        out = {k: user[k] for k in keep}
        out.update({"WebWxPluginSwitch": 0, "HeadImgFlag": 1, "SnsFlag": 17})
        return out

    def init_contacts(self, sess: WebSession) -> list[dict[str, Any]]:
        """webwxinit's ContactList: filehelper, pinned/starred friends, one official account,
        the first eight groups."""
        w = self.core.world
        recent: list[dict[str, Any]] = [self.special_contact(sess, "filehelper")]
        for p in w.persons.values():
            if p.friend and (p.pinned or p.star) and not p.official:
                recent.append(self.person_contact(sess, p))
        for p in w.persons.values():
            if p.official:
                recent.append(self.person_contact(sess, p))
                break
        # Recorded answers (wechat4u test/response/webwxinit) list groups with
        # MemberCount 0 and no members; group_counts restores the older stub form.
        init_members = "stub" if self.core.settings.group_counts else "zero"
        for g in list(w.groups.values())[:8]:
            recent.append(self.group_contact(sess, g, members=init_members))
        return recent

    def init_answer(
        self, sess: WebSession, recent: list[dict[str, Any]], chat_set: str
    ) -> dict[str, Any]:
        """The webwxinit body around its ContactList (SyncKey: the short 4-entry form)."""
        return {
            "BaseResponse": wire.base_response(),
            "Count": len(recent),
            "ContactList": recent,
            "SyncKey": sess.sync_key(full=False),
            "User": self.self_contact(sess),
            "ChatSet": chat_set,
            "SKey": sess.skey,
            "ClientVersion": 385876258,
            "SystemTime": int(time.time()),
            "GrayScale": 1,
            "InviteStartCount": 40,
            "MPSubscribeMsgCount": 0,
            "MPSubscribeMsgList": [],
            "ClickReportInterval": 600000,
        }

    def address_book(self, sess: WebSession) -> list[dict[str, Any]]:
        with self.core.lock:
            out = [self.special_contact(sess, name) for name in ("filehelper", "weixin")]
            for p in self.core.world.persons.values():
                if p.friend:
                    out.append(self.person_contact(sess, p))
            for g in self.core.world.groups.values():
                if g.saved and g.member(self.core.world.account.pid):
                    # Real webwxgetcontact: MemberCount 0, MemberList [] (§4.2).
                    members = "none" if self.core.settings.group_counts else "zero"
                    out.append(self.group_contact(sess, g, members=members))
            return out

    def batch_contacts(self, sess: WebSession, items: list[Any]) -> list[dict[str, Any]]:
        out = []
        with self.core.lock:
            for item in items:
                if not isinstance(item, dict):
                    continue
                un = str(item.get("UserName", ""))
                pid = sess.pids.get(un)
                if pid is None:
                    continue
                contact = self.contact_for_pid(sess, pid)
                if contact is not None:
                    out.append(contact)
        return out
