"""Roster changes: friends, official accounts and groups come, change and go.

Each change updates the world and queues what the web client would see: a ModContactList or
DelContactList entry, and the grey system notice WeChat shows in the chat ("…邀请…加入了群聊",
"你修改群名为…"). Driven by the control API, scenario timelines and the §9 endpoints.
"""

from __future__ import annotations

from typing import Any

from wxcli.simulator.core import Core, SimError
from wxcli.simulator.mailbox import Mailbox
from wxcli.simulator.messages import Composer, system_message
from wxcli.simulator.world import Group, Member, _person, add_group


class Roster:
    """Changes to who the account knows, announced through the mailbox."""

    def __init__(self, core: Core, mailbox: Mailbox, composer: Composer):
        self.core = core
        self.mailbox = mailbox
        self.composer = composer

    def add_contacts(self, spec: dict[str, Any]) -> dict[str, list[str]]:
        """New friends, official accounts and groups (announced unless ``announce`` is false)."""
        added: dict[str, list[str]] = {"friends": [], "officials": [], "groups": []}
        with self.core.cond:
            world = self.core.world
            for f in spec.get("friends", []):
                f = {"nickname": f} if isinstance(f, str) else f
                p = world.find_person(f["nickname"])
                if p is None:
                    p = _person(self.core.ids, f, friend=True)
                    world.persons[p.pid] = p
                p.friend = True
                p.remark = f.get("remark", p.remark)
                added["friends"].append(p.pid)
                self.mailbox.mod_contact(p.pid)
                if spec.get("announce", True):
                    text = f"你已添加了{p.nickname}，现在可以开始聊天了。"
                    self.mailbox.deliver(*system_message(self.composer, text, person=p))
            for o in spec.get("officials", []):
                o = {"nickname": o} if isinstance(o, str) else o
                p = _person(self.core.ids, {"verify_flag": 24, **o}, friend=True)
                p.sex = 0
                world.persons[p.pid] = p
                added["officials"].append(p.pid)
                self.mailbox.mod_contact(p.pid)
            for gspec in spec.get("groups", []):
                g = add_group(world, self.core.ids, gspec)
                added["groups"].append(g.gid)
                self.mailbox.mod_contact(g.gid)
                inviter = world.persons.get(g.owner)
                if inviter is not None and spec.get("announce", True):
                    others = "、".join(
                        world.display_name(g, m.pid) for m in g.members[1:4] if m.pid != inviter.pid
                    )
                    text = f'"{inviter.nickname}"邀请你和"{others}"加入了群聊'
                    self.mailbox.deliver(*system_message(self.composer, text, group=g))
            return added

    def update_contact(self, spec: dict[str, Any]) -> str:
        with self.core.cond:
            world = self.core.world
            p = world.find_person(spec["name"])
            if p is None:
                raise SimError(f"no contact named {spec['name']!r}")
            for key in ("nickname", "remark", "signature", "province", "city"):
                if key in spec:
                    setattr(p, key, spec[key])
            self.mailbox.mod_contact(p.pid)
            return p.pid

    def remove_contact(self, name: str) -> str:
        with self.core.cond:
            world = self.core.world
            p = world.find_person(name)
            if p is not None:
                p.friend = False
                self.mailbox.del_contact(p.pid)
                return p.pid
            g = world.find_group(name)
            if g is not None:
                g.members = [m for m in g.members if m.pid != world.account.pid]
                self.mailbox.del_contact(g.gid)
                return g.gid
            raise SimError(f"no contact or group named {name!r}")

    def _group(self, name: str) -> Group:
        g = self.core.world.find_group(name)
        if g is None:
            raise SimError(f"no group named {name!r}")
        return g

    def rename_group(self, group: str, new_name: str, by: str | None = None) -> str:
        with self.core.cond:
            world = self.core.world
            g = self._group(group)
            g.name = new_name
            self.mailbox.mod_contact(g.gid)
            if by in (None, "", "self"):
                text = f"你修改群名为“{new_name}”"
            else:
                actor = world.find_member(g, by) or world.find_person(by)
                who = world.display_name(g, actor.pid) if actor else by
                text = f'"{who}"修改群名为“{new_name}”'
            self.mailbox.deliver(*system_message(self.composer, text, group=g))
            return g.gid

    def add_members(
        self,
        group: str,
        members: list[Any],
        inviter: str | None = None,
        notify: bool = True,
    ) -> list[str]:
        """New members join; ``notify=False`` joins silently (no ModContactList, no notice),
        as happens in big groups: the client then meets an unknown sender."""
        with self.core.cond:
            world = self.core.world
            g = self._group(group)
            pids = []
            names = []
            for mspec in members:
                mspec = {"nickname": mspec} if isinstance(mspec, str) else mspec
                p = world.find_person(mspec["nickname"])
                if p is None:
                    pspec = {**mspec, "friend": mspec.get("friend", False)}
                    p = _person(self.core.ids, pspec, False)
                    world.persons[p.pid] = p
                if g.member(p.pid) is None:
                    g.members.append(Member(p.pid, mspec.get("display_name", "")))
                pids.append(p.pid)
                names.append(p.nickname)
            if notify:
                self.mailbox.mod_contact(g.gid)
                joined = "、".join(names)
                if inviter in (None, ""):
                    text = f'"{joined}"通过扫描二维码加入群聊'
                elif inviter == "self":
                    text = f'你邀请"{joined}"加入了群聊'
                else:
                    actor = world.find_member(g, inviter) or world.find_person(inviter)
                    who = world.display_name(g, actor.pid) if actor else inviter
                    text = f'"{who}"邀请"{joined}"加入了群聊'
                self.mailbox.deliver(*system_message(self.composer, text, group=g))
            return pids

    def remove_members(
        self, group: str, members: list[str], by: str | None = None, announce: bool = False
    ) -> list[str]:
        """Members leave (by=None) or are removed. WeChat only tells the remover, so a notice
        appears when the account removes them, or when ``announce`` asks for one."""
        with self.core.cond:
            world = self.core.world
            g = self._group(group)
            removed = []
            for name in members:
                p = world.find_member(g, name)
                if p is None:
                    raise SimError(f"{name!r} is not a member of {g.name!r}")
                removed.append((p.pid, world.display_name(g, p.pid)))
            g.members = [m for m in g.members if m.pid not in {pid for pid, _ in removed}]
            self.mailbox.mod_contact(g.gid)
            names = "、".join(n for _, n in removed)
            text = None
            if by == "self":
                text = f'你将"{names}"移出了群聊'
            elif by:
                text = f'"{by}"将"{names}"移出了群聊'
            elif announce:
                text = f'"{names}"退出了群聊'
            if text:
                self.mailbox.deliver(*system_message(self.composer, text, group=g))
            return [pid for pid, _ in removed]
