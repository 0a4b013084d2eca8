"""The simulated account's world: who exists, who is a friend, which groups and members.

People and groups have *permanent* ids (``wxid_…``, ``…@chatroom``, ``gh_…``) as on the phone; the
session-scoped ``@…`` UserNames the web protocol shows are minted per login (``session``).
Worlds come from the built-in default, or from a TOML/JSON scenario file.
"""

from __future__ import annotations

import json
import random
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPECIAL_ACCOUNTS = {
    "filehelper": "文件传输助手",
    "weixin": "微信团队",
    "fmessage": "朋友推荐消息",
    "newsapp": "腾讯新闻",
}

SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = list(
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬鑫浩宇轩子涵欣怡梓晨"
)
EMOJI_NAMES = ["🌸", "🐟", "☀️", "🍀", "🌙", "🐱", "🎈", "🍊", "⭐", "🦋"]
PROVINCES = [
    ("广东", "深圳"),
    ("浙江", "杭州"),
    ("北京", "朝阳"),
    ("上海", "浦东"),
    ("四川", "成都"),
]


@dataclass
class Person:
    """Anyone with a WeChat id: friend, official account, or stranger met in a group."""

    pid: str
    nickname: str
    remark: str = ""
    friend: bool = False
    verify_flag: int = 0  # 8 = official account, 24 = verified service account
    sex: int = 0
    province: str = ""
    city: str = ""
    signature: str = ""
    alias: str = ""
    star: bool = False
    pinned: bool = False

    @property
    def official(self) -> bool:
        return bool(self.verify_flag & 8)


@dataclass
class Member:
    pid: str
    display_name: str = ""


@dataclass
class Group:
    gid: str
    name: str
    owner: str  # pid of the owner ("self" for the account)
    members: list[Member] = field(default_factory=list)
    saved: bool = True  # in the address book (else only webwxinit / sync reveal it)
    staff: list[str] = field(default_factory=list)  # pids that answer customers

    def member(self, pid: str) -> Member | None:
        for m in self.members:
            if m.pid == pid:
                return m
        return None


@dataclass
class Account:
    pid: str
    uin: int
    nickname: str
    alias: str = ""
    sex: int = 1
    signature: str = ""


@dataclass
class World:
    account: Account
    persons: dict[str, Person] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    traffic: dict[str, Any] = field(default_factory=dict)

    # -- lookups used by the control API (names are what people type) --

    def find_person(self, name: str) -> Person | None:
        """Find a person by pid, remark or nickname (first exact match, in that order)."""
        if name in self.persons:
            return self.persons[name]
        for attr in ("remark", "nickname"):
            for p in self.persons.values():
                if getattr(p, attr) == name:
                    return p
        return None

    def find_group(self, name: str) -> Group | None:
        if name in self.groups:
            return self.groups[name]
        for g in self.groups.values():
            if g.name == name:
                return g
        return None

    def find_member(self, group: Group, name: str) -> Person | None:
        """A member of ``group`` by pid, group display name, remark or nickname."""
        for m in group.members:
            p = self.persons.get(m.pid)
            if m.pid == name or m.display_name == name:
                return p
            if p and (p.nickname == name or (p.remark and p.remark == name)):
                return p
        return None

    def display_name(self, group: Group, pid: str) -> str:
        m = group.member(pid)
        if m and m.display_name:
            return m.display_name
        if pid == self.account.pid:
            return self.account.nickname
        p = self.persons.get(pid)
        return p.nickname if p else pid


class IdMaker:
    """Seeded generator of permanent ids and Chinese names."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()

    def wxid(self) -> str:
        while True:
            pid = "wxid_" + "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=14))
            if pid not in self.used:
                self.used.add(pid)
                return pid

    def chatroom(self) -> str:
        while True:
            gid = f"{self.rng.randint(10**9, 10**11)}@chatroom"
            if gid not in self.used:
                self.used.add(gid)
                return gid

    def gh(self) -> str:
        return "gh_" + "".join(self.rng.choices("0123456789abcdef", k=12))

    def name(self, emoji_chance: float = 0.1) -> str:
        name = self.rng.choice(SURNAMES) + "".join(
            self.rng.choices(GIVEN, k=self.rng.choice([1, 2, 2]))
        )
        if self.rng.random() < emoji_chance:
            e = self.rng.choice(EMOJI_NAMES)
            name = e + name if self.rng.random() < 0.5 else name + e
        return name


def _person(ids: IdMaker, spec: dict[str, Any] | str, friend: bool) -> Person:
    if isinstance(spec, str):
        spec = {"nickname": spec}
    prov, city = ids.rng.choice(PROVINCES)
    return Person(
        pid=spec.get("id") or (ids.gh() if spec.get("verify_flag") else ids.wxid()),
        nickname=spec["nickname"],
        remark=spec.get("remark", ""),
        friend=spec.get("friend", friend),
        verify_flag=int(spec.get("verify_flag", 0)),
        sex=int(spec.get("sex", ids.rng.choice([1, 2]))),
        province=spec.get("province", prov),
        city=spec.get("city", city),
        signature=spec.get("signature", ""),
        alias=spec.get("alias", ""),
        star=bool(spec.get("star", False)),
        pinned=bool(spec.get("pinned", False)),
    )


def build_world(spec: dict[str, Any], seed: int = 0) -> World:
    """Build a world from a scenario mapping (the parsed TOML/JSON)."""
    rng = random.Random(seed)
    ids = IdMaker(rng)
    acc = spec.get("account", {})
    account = Account(
        pid=acc.get("id") or ids.wxid(),
        uin=int(acc.get("uin") or rng.randint(10**9, 4 * 10**9)),
        nickname=acc.get("nickname", "云帆客服"),
        alias=acc.get("alias", ""),
        signature=acc.get("signature", ""),
    )
    world = World(account=account, timeline=list(spec.get("timeline", [])))
    world.traffic = dict(spec.get("traffic", {}))
    for f in spec.get("friends", []):
        p = _person(ids, f, friend=True)
        world.persons[p.pid] = p
    for o in spec.get("officials", []):
        if isinstance(o, str):
            o = {"nickname": o}
        o = {"verify_flag": 24, "sex": 0, **o}
        p = _person(ids, o, friend=True)
        p.sex = 0
        world.persons[p.pid] = p
    for gspec in spec.get("groups", []):
        add_group(world, ids, gspec)
    return world


def add_group(world: World, ids: IdMaker, gspec: dict[str, Any]) -> Group:
    """Add a group from its spec: named members (friends or strangers) plus random ones."""
    owner_name = gspec.get("owner", "self")
    group = Group(
        gid=gspec.get("id") or ids.chatroom(),
        name=gspec["name"],
        owner="",
        saved=bool(gspec.get("saved", True)),
    )
    group.members.append(Member(world.account.pid, gspec.get("self_display_name", "")))
    for mspec in gspec.get("members", []):
        if isinstance(mspec, str):
            mspec = {"nickname": mspec}
        person = world.find_person(mspec["nickname"]) if not mspec.get("id") else None
        if person is None:
            person = _person(ids, {**mspec, "friend": mspec.get("friend", False)}, friend=False)
            world.persons[person.pid] = person
        if group.member(person.pid) is None:
            group.members.append(Member(person.pid, mspec.get("display_name", "")))
    for _ in range(int(gspec.get("random_members", 0))):
        person = _person(ids, {"nickname": ids.name()}, friend=False)
        world.persons[person.pid] = person
        display = ""
        if ids.rng.random() < 0.2:
            display = ids.rng.choice(["", "采购-", "店长-", "财务-"]) + person.nickname[-2:]
        group.members.append(Member(person.pid, display))
    for staff_name in gspec.get("staff", []):
        p = world.find_person(staff_name)
        if p is not None:
            group.staff.append(p.pid)
    if owner_name == "self":
        group.owner = world.account.pid
    else:
        owner = world.find_person(owner_name)
        group.owner = owner.pid if owner else world.account.pid
    world.groups[group.gid] = group
    return group


def default_spec() -> dict[str, Any]:
    """The built-in world: a small company's customer-service account."""
    friends = [
        {"nickname": "王建国", "remark": "王总-云帆", "sex": 1},
        {"nickname": "小王🌸", "remark": "客服-小王", "sex": 2},
        {"nickname": "李娜", "remark": "客服-小李", "sex": 2},
        {"nickname": "张伟", "sex": 1},
        {"nickname": "陈静", "remark": "财务陈静", "sex": 2},
        {"nickname": "刘洋🐟", "sex": 1},
        {"nickname": "赵敏", "remark": "VIP-赵总", "sex": 2, "star": True},
        {"nickname": "周杰", "sex": 1},
        {"nickname": "Tom Lee", "remark": "海外代理Tom", "sex": 1},
        {"nickname": "孙悦", "sex": 2},
        {"nickname": "吴磊", "sex": 1, "pinned": True},
        {"nickname": "郑爽☀️", "sex": 2},
    ]
    staff = ["客服-小王", "客服-小李"]
    return {
        "account": {"nickname": "云帆客服中心", "uin": 2911234567},
        "friends": friends,
        "officials": [
            {"nickname": "云帆科技服务号", "verify_flag": 24},
            {"nickname": "物流通知", "verify_flag": 8},
        ],
        "groups": [
            {
                "name": "云帆Pro客服1群",
                "members": ["客服-小王", "客服-小李", "张伟", "VIP-赵总"],
                "random_members": 36,
                "staff": staff,
            },
            {
                "name": "云帆Pro客服2群",
                "members": ["客服-小王", "周杰"],
                "random_members": 118,
                "staff": staff,
            },
            {
                "name": "VIP客户群💎",
                "members": [
                    "客服-小李",
                    "VIP-赵总",
                    "王总-云帆",
                    {"nickname": "马丽", "display_name": "马丽-星辰贸易"},
                ],
                "random_members": 2,
                "staff": staff,
            },
            {
                "name": "售后问题反馈群",
                "members": ["客服-小王", "客服-小李"],
                "random_members": 197,
                "staff": staff,
                "owner": "王总-云帆",
            },
            {
                "name": "内部员工群",
                "members": ["客服-小王", "客服-小李", "王总-云帆", "财务陈静"],
                "staff": staff,
            },
            {
                "name": "临时对接群",
                "saved": False,
                "members": ["Tom Lee", {"nickname": "Jenny", "display_name": "Jenny (代理)"}],
                "random_members": 3,
            },
        ],
    }


def load_scenario(path: str | Path) -> dict[str, Any]:
    """Read a scenario file (TOML or JSON, by extension)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        return json.loads(text)
    return tomllib.loads(text)


def builtin_scenario(name: str) -> Path:
    """Path of a scenario shipped with the package (``company`` …)."""
    return Path(__file__).parent / "scenarios" / f"{name}.toml"
