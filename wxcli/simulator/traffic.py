"""Realistic customer-service chatter, scenario timelines and floods for the simulator.

The generator is seeded, so the same seed gives the same conversation: questions, complaints,
thanks, emoji, images, staff answers, the odd @mention and recall. Everything here drives the
simulator from outside, through the few calls a :class:`Driver` offers (the engine is one),
exactly as the control API would.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Protocol

from wxcli.simulator.world import World

log = logging.getLogger(__name__)

PRODUCTS = ["云帆Pro", "云帆Mini", "云帆Max", "智能音箱", "扫地机器人", "会员年卡"]
QUESTIONS = [
    "请问{p}怎么开发票？",
    "{p}的保修期是多久啊",
    "我的订单什么时候发货？订单号{n}",
    "{p}支持七天无理由退货吗",
    "有没有人知道{p}怎么连wifi",
    "{p}现在有优惠活动吗？",
    "请问客服在吗？",
    "物流显示已签收但是我没收到",
    "可以修改收货地址吗",
    "{p}和{q}有什么区别",
]
COMPLAINTS = [
    "等了三天还没发货，太慢了！",
    "{p}用了两天就坏了，质量太差了，我要退款",
    "客服一直不回复，什么态度啊",
    "收到的{p}外壳有划痕，很失望",
    "再不处理我就投诉了😡",
    "说好的赠品没有收到，差评",
    "退款申请提交一周了还没到账",
    "这个{p}充电特别慢，是不是有问题",
]
PRAISE = [
    "{p}很好用，推荐👍",
    "谢谢客服，问题解决了[微笑]",
    "物流很快，包装也不错",
    "好的，谢谢！",
    "收到了，非常满意😊",
    "客服小王态度很好，点赞",
]
CHATTER = ["哈哈哈", "👍👍", "[强]", "收到", "好的", "同问", "+1", "在吗", "早上好☀️", "🙏"]
STAFF_ANSWERS = [
    "您好，已经帮您登记了，请稍等",
    "亲，发票可以在订单详情里申请哦",
    "非常抱歉给您带来不便，马上为您处理",
    "您好，{p}保修一年，七天无理由退换",
    "已为您加急处理，预计明天发出",
    "请私聊我订单号，我帮您查一下",
]


class Driver(Protocol):
    """What traffic, timelines and floods need of the simulator (the engine provides it)."""

    # Read-only: the engine hands out its core's seed and stop event, it never lets them be
    # replaced (a plain attribute here would demand a setter).
    @property
    def seed(self) -> int: ...

    @property
    def stopping(self) -> threading.Event: ...

    @property
    def world(self) -> World: ...

    def inject(self, spec: dict[str, Any]) -> list[str]: ...

    def inject_group_texts(self, items: list[tuple[str, str, str]]) -> list[str]: ...

    def recall(self, msg_id: str, by: str | None = None) -> str: ...

    def add_contacts(self, spec: dict[str, Any]) -> dict[str, list[str]]: ...

    def rename_group(self, group: str, new_name: str, by: str | None = None) -> str: ...

    def add_members(
        self, group: str, members: list[Any], inviter: str | None = None, notify: bool = True
    ) -> list[str]: ...

    def remove_members(
        self, group: str, members: list[str], by: str | None = None, announce: bool = False
    ) -> list[str]: ...

    def add_fault(self, spec: dict[str, Any]) -> Any: ...

    def start_traffic(self, spec: dict[str, Any]) -> dict[str, Any]: ...


class Chatter:
    """Seeded text generator."""

    def __init__(self, seed: int = 0):
        self.rng = random.Random(seed)

    def fill(self, template: str) -> str:
        p, q = self.rng.sample(PRODUCTS, 2)
        return template.format(p=p, q=q, n=self.rng.randint(10**11, 10**12 - 1))

    def customer_text(self) -> str:
        r = self.rng.random()
        if r < 0.35:
            pool = QUESTIONS
        elif r < 0.6:
            pool = COMPLAINTS
        elif r < 0.8:
            pool = PRAISE
        else:
            pool = CHATTER
        return self.fill(self.rng.choice(pool))

    def staff_text(self) -> str:
        return self.fill(self.rng.choice(STAFF_ANSWERS))


class Traffic:
    """A background thread that injects chatter at a steady rate."""

    def __init__(self, engine: Driver, spec: dict[str, Any]):
        self.engine = engine
        self.rate = float(spec.get("rate", 1.0))
        self.duration = spec.get("duration")
        self.image_share = float(spec.get("images", 0.08))
        self.recall_share = float(spec.get("recalls", 0.01))
        self.chatter = Chatter(int(spec.get("seed", engine.seed)))
        self.groups = self._groups(int(spec.get("groups", 0)), int(spec.get("members", 30)))
        self.injected = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-traffic", daemon=True)
        self._recent: list[str] = []

    def _groups(self, count: int, members: int) -> list[str]:
        world = self.engine.world
        existing = [g.gid for g in world.groups.values() if g.member(world.account.pid)]
        if count <= 0:
            return existing
        if count <= len(existing):
            return existing[:count]
        specs = [
            {"name": f"客服{i + 1}群", "random_members": members, "announce": False}
            for i in range(len(existing), count)
        ]
        added = self.engine.add_contacts({"groups": specs, "announce": False})
        return existing + added["groups"]

    def describe(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "groups": len(self.groups),
            "injected": self.injected,
            "running": self._thread.is_alive(),
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def one(self) -> None:
        engine = self.engine
        rng = self.chatter.rng
        gid = rng.choice(self.groups)
        group = engine.world.groups.get(gid)
        if group is None or len(group.members) < 2:
            return
        r = rng.random()
        if r < self.recall_share and self._recent:
            try:
                engine.recall(self._recent.pop(rng.randrange(len(self._recent))))
            except Exception:  # the message may already be gone; traffic goes on
                return
            self.injected += 1
            return
        staff = [pid for pid in group.staff if group.member(pid)]
        if staff and rng.random() < 0.2:
            sender = rng.choice(staff)
            text = self.chatter.staff_text()
        else:
            customers = [m.pid for m in group.members[1:] if m.pid not in staff]
            sender = rng.choice(customers or [m.pid for m in group.members[1:]])
            text = self.chatter.customer_text()
        spec: dict[str, Any] = {"group": gid, "sender": sender, "type": "text", "content": text}
        if rng.random() < self.image_share:
            spec = {"group": gid, "sender": sender, "type": "image"}
        elif staff and rng.random() < 0.05:
            spec["mentions"] = [engine.world.display_name(group, rng.choice(staff))]
        ids = engine.inject(spec)
        self._recent = (self._recent + ids)[-50:]
        self.injected += 1

    def _run(self) -> None:
        start = time.monotonic()
        interval = 1.0 / self.rate if self.rate > 0 else 1.0
        next_at = start
        while not self._stop.is_set() and not self.engine.stopping.is_set():
            if self.duration is not None and time.monotonic() - start >= float(self.duration):
                break
            try:
                self.one()
            except Exception:  # a bad draw (e.g. no session yet) must not stop the traffic
                log.debug("traffic step failed", exc_info=True)
            next_at += interval
            self._stop.wait(max(next_at - time.monotonic(), 0.0))


class Timeline:
    """Runs a scenario's timeline: messages, roster changes and faults at given offsets."""

    def __init__(self, engine: Driver, entries: list[dict[str, Any]]):
        self.engine = engine
        self.entries = sorted(entries, key=lambda e: float(e.get("at", 0)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sim-timeline", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        start = time.monotonic()
        for entry in self.entries:
            delay = float(entry.get("at", 0)) - (time.monotonic() - start)
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            try:
                apply_entry(self.engine, entry)
            except Exception:  # one bad scenario line must not end the rest of the timeline
                log.warning("scenario timeline entry failed: %r", entry, exc_info=True)


def apply_entry(engine: Driver, entry: dict[str, Any]) -> Any:
    """One timeline step: {fault = {...}} | {action = "rename", ...} | a message spec."""
    entry = {k: v for k, v in entry.items() if k != "at"}
    if "fault" in entry:
        return engine.add_fault(dict(entry["fault"]))
    action = entry.pop("action", None)
    if action == "rename":
        return engine.rename_group(entry["group"], entry["new_name"], entry.get("by"))
    if action == "join":
        return engine.add_members(
            entry["group"], entry["members"], entry.get("inviter"), entry.get("notify", True)
        )
    if action == "leave":
        return engine.remove_members(entry["group"], entry["members"], entry.get("by"))
    if action == "recall":
        return engine.recall(str(entry["msg_id"]))
    if action == "traffic":
        return engine.start_traffic(entry)
    return engine.inject(entry)


def flood(engine: Driver, spec: dict[str, Any]) -> dict[str, Any]:
    """Queue ``count`` text messages at once over ``groups`` groups (for throughput benches)."""
    count = int(spec.get("count", 1000))
    groups = int(spec.get("groups", 0))
    members = int(spec.get("members", 30))
    chatter = Chatter(int(spec.get("seed", engine.seed)))
    gids = Traffic(engine, {"groups": groups, "members": members}).groups
    ids: list[str] = []
    for start in range(0, count, 1000):
        # In chunks: a client syncing meanwhile starts on the first messages instead of
        # waiting seconds for the engine lock.
        items = []
        for i in range(start, min(start + 1000, count)):
            g = engine.world.groups[gids[i % len(gids)]]
            roster = g.members
            sender = roster[1 + (i * 7) % (len(roster) - 1)].pid if len(roster) > 1 else ""
            items.append((g.gid, sender, f"{chatter.customer_text()} #{i}"))
        ids.extend(engine.inject_group_texts(items))
    return {"count": len(ids), "first": ids[0] if ids else None, "last": ids[-1] if ids else None}
