"""The simulated WeChat server's state and rules, independent of HTTP.

One :class:`Engine` holds the world, the QR logins, the web session (one at a time, as on the
real service: a new web login ends the old one with 1101), its event log and sync keys, the
sent-message record, the request log and the injected faults. Every public method takes the
engine lock; long polls wait on its condition variable.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import threading
import time
import urllib.parse
import zlib
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from wxcli.simulator import media as media_mod
from wxcli.simulator import wire
from wxcli.simulator.world import (
    SPECIAL_ACCOUNTS,
    Group,
    IdMaker,
    Member,
    Person,
    World,
    build_world,
    default_spec,
)

SYSTEM_MESSAGES_1203 = (
    "为了你的帐号安全，此微信号不能登录网页微信。你可以使用Windows微信或Mac微信在电脑端登录。"
    "Windows微信下载地址：https://pc.weixin.qq.com  Mac微信下载地址：https://mac.weixin.qq.com"
)
MSG_ID_SPAN = 8 * 10**18  # MsgIds are 10**18 + [0, span)
MSG_ID_FACTOR = 6364136223846793007  # odd and not a multiple of 5: a bijection mod the span
TOO_FREQUENT = "操作太频繁，请稍后再试。"
REVOKE_INTRO = "你可以撤回2分钟内发送的消息（部分旧版本微信不支持这个功能）。"


def _attr_status(pid: str) -> int:
    """A friend-like AttrStatus bit field, stable per person (and across runs)."""
    return (zlib.crc32(pid.encode()) & 0x3FFFF) | 0x21000


class SimError(Exception):
    """A control-API request the simulator cannot carry out (answered with HTTP 400)."""


@dataclass
class Settings:
    """Knobs of the simulated server; all changeable at run time via ``POST /_sim/settings``."""

    synccheck_hold: float = 25.0  # seconds synccheck holds when nothing is pending
    login_hold: float = 25.0  # seconds a login poll holds before 408
    qr_ttl: float = 300.0  # a QR uuid expires (400) after this
    ticket_ttl: float = 300.0  # the redirect ticket stays usable this long
    sync_batch: int = 100  # max AddMsgList entries per webwxsync
    contact_page_size: int = 100  # webwxgetcontact page size (Seq != 0 while more)
    send_burst: int = 60  # sends allowed back to back before 1205
    send_rate: float = 1.0  # sustained sends per second
    echo_sends: bool = True  # web sends come back through webwxsync with From = self
    auto_confirm: bool = False  # the phone scans and confirms every QR by itself
    web_host: str = ""  # "" = answer on whatever host was used; e.g. "wx2.qq.com" = vhost mode
    login_forbidden: str = ""  # "" | "web" (1203 unless desktop mode) | "all"
    desktop_301: bool = True  # desktop-mode newloginpage: HTTP 301 without Location (False: 200)
    group_counts: bool = False  # True: old form, real MemberCount for groups in getcontact/init
    json_style: str = "lines"  # "lines" (official capture layout) | "compact"
    hang_seconds: float = 120.0  # how long a "hang" fault holds a request
    image_token: bool = False  # image Content as an opaque @hex token instead of <img> XML
    request_log: int = 5000  # requests kept for GET /_sim/requests
    retention: int = 5000  # events kept behind the client's acknowledged sync position
    history_limit: int = 100_000  # injected messages remembered for /_sim/injected and recall
    media_limit: int = 100_000  # messages whose media stay downloadable

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise SimError(f"unknown setting {key!r}")
            current = getattr(self, key)
            if isinstance(current, bool):
                value = bool(value)
            elif isinstance(current, int):
                value = int(value)
            elif isinstance(current, float):
                value = float(value)
            setattr(self, key, value)


@dataclass
class QrLogin:
    uuid: str
    created: float
    desktop: bool
    push: bool = False
    state: str = "waiting"  # waiting | scanned | confirmed | expired | used
    ticket: str = ""
    confirmed_at: float = 0.0
    polls: int = 0
    reported_scan: bool = False
    cancels: int = 0  # times the user cancelled on the phone (wakes held polls with 408)


class Event:
    """One entry of a session's event log, kept encoded (``lines`` layout) to be cheap to hold
    and to send: a flood of 100,000 messages is 100,000 byte strings, not dict trees."""

    __slots__ = ("kind", "msg_id", "raw", "seq")

    def __init__(self, seq: int, kind: str, raw: bytes, msg_id: str = ""):
        self.seq = seq
        self.kind = kind  # "msg" | "mod" | "del"
        self.raw = raw
        self.msg_id = msg_id

    @property
    def data(self) -> dict[str, Any]:
        """The decoded object (for the rare readers: recall, tests)."""
        return json.loads(self.raw)


@dataclass
class Fault:
    kind: str
    endpoint: str = "*"
    times: int | None = 1  # None = until cleared
    code: int = 0
    status: int = 500
    seconds: float = 0.0
    body: str = "truncated"
    selector: str = "2"
    fid: int = 0

    def public(self) -> dict[str, Any]:
        return asdict(self)


FAULT_KINDS = {
    "retcode",  # synccheck answers retcode=<code>
    "ret",  # JSON endpoint answers BaseResponse.Ret=<code> (or 1203 XML on newloginpage)
    "http",  # HTTP <status> with an HTML error page
    "delay",  # answer after <seconds>
    "hang",  # hold the request past any client timeout
    "drop",  # close the connection without answering
    "malformed",  # body: truncated | garbage | empty | js | xml
    "spin",  # synccheck keeps answering <selector>, webwxsync returns nothing
    "duplicate",  # the next webwxsync batch is delivered twice
    "logout",  # the session ends now; synccheck answers retcode <code>
    "expire",  # the current QR expires (login poll answers 400)
}


class WebSession:
    """One logged-in web session: credentials, session-scoped UserNames, the event log."""

    def __init__(self, engine: Engine, desktop: bool, host: str):
        rng = engine.rng
        world = engine.world
        self.uin = world.account.uin
        self.sid = "".join(
            rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", k=16)
        )
        self.skey = f"@crypt_{rng.getrandbits(32):08x}_{rng.getrandbits(128):032x}"
        ticket_raw = base64.b64encode(rng.randbytes(48)).decode()
        self.pass_ticket = urllib.parse.quote(ticket_raw, safe="")  # as sent in the XML
        self.data_ticket = base64.b64encode(rng.randbytes(36)).decode()
        self.auth_ticket = base64.b64encode(rng.randbytes(36)).decode()
        self.uvid = f"{rng.getrandbits(128):032x}"
        self.desktop = desktop
        self.host = host
        self.created = time.time()
        self.load_time = int(self.created)
        self.alive = True
        self.dead_code = 0
        self.init_done = False
        self.names: dict[str, str] = {}  # pid -> @UserName
        self.pids: dict[str, str] = {}  # @UserName -> pid
        self.encry: dict[str, str] = {}  # gid -> EncryChatRoomId
        self.events: list[Event] = []
        self.seq = 0
        self.acked = 0
        self.base = {k: rng.randint(6 * 10**8, 7 * 10**8) for k in (1, 2, 3, 11)}
        self.last_msg_time = int(self.created)
        self.tokens = float(engine.settings.send_burst)
        self.token_time = time.monotonic()
        self.sent_ids: dict[str, tuple[float, str, str]] = {}  # msgid -> (time, to, localid)
        self.rng = rng
        self.user_name = self.name_for(world.account.pid, short=True)
        for special in SPECIAL_ACCOUNTS:
            self.names[special] = special
            self.pids[special] = special

    def name_for(self, pid: str, short: bool = False, group: bool = False) -> str:
        """The session UserName of a permanent id, minted on first use."""
        if pid in self.names:
            return self.names[pid]
        if group:
            name = "@@" + f"{self.rng.getrandbits(256):064x}"
        elif short:
            name = "@" + f"{self.rng.getrandbits(128):032x}"
        else:
            name = "@" + f"{self.rng.getrandbits(256):064x}"
        self.names[pid] = name
        self.pids[name] = pid
        return name

    def encry_id(self, gid: str) -> str:
        if gid not in self.encry:
            self.encry[gid] = "@" + f"{self.rng.getrandbits(128):032x}"
        return self.encry[gid]

    def sync_key(self, full: bool = True, seq: int | None = None) -> dict[str, Any]:
        """The SyncKey for event position ``seq`` (default: the newest). webwxinit hands out the
        short 4-entry form, webwxsync the 7-entry one (keys 1, 2, 3, 11, 201, 1000, 1001)."""
        seq = self.seq if seq is None else seq
        items = [
            {"Key": 1, "Val": self.base[1] + seq},
            {"Key": 2, "Val": self.base[2] + seq},
            {"Key": 3, "Val": self.base[3] + seq // 7},
        ]
        if full:
            items.append({"Key": 11, "Val": self.base[11] + seq})
            items.append({"Key": 201, "Val": self.last_msg_time})
        items.append({"Key": 1000, "Val": self.load_time})
        if full:
            items.append({"Key": 1001, "Val": self.load_time + 73})
        return {"Count": len(items), "List": items}

    def seq_of(self, key1: int | None) -> int | None:
        """Event position encoded in a client's Key 1, or None when it is not ours."""
        if key1 is None:
            return None
        seq = key1 - self.base[1]
        if seq > self.seq:
            return None  # from the future: never issued
        return max(seq, 0)  # older (e.g. a previous session's key) → from our start

    def append(self, kind: str, data: dict[str, Any]) -> Event:
        return self.append_raw(
            kind, wire.encode_lines(data), str(data.get("MsgId", "")), data.get("CreateTime")
        )

    def append_raw(
        self, kind: str, raw: bytes, msg_id: str = "", create_time: int | None = None
    ) -> Event:
        """Log an already encoded event (``lines`` layout)."""
        self.seq += 1
        ev = Event(self.seq, kind, raw, msg_id)
        self.events.append(ev)
        if kind == "msg" and create_time:
            self.last_msg_time = max(self.last_msg_time, int(create_time))
        return ev

    def retire(self) -> None:
        """Drop what only a live session needs (a dead one answers its code before any sync),
        so a flood left in an ended session does not stay in memory."""
        self.events = []
        self.sent_ids.clear()

    def _start(self, seq: int) -> int:
        """Index in ``events`` of the first event after position ``seq``."""
        if not self.events:
            return 0
        return min(max(seq + 1 - self.events[0].seq, 0), len(self.events))

    def pending(self, seq: int, limit: int | None = None) -> list[Event]:
        """Events after position ``seq`` still retained (at most ``limit``)."""
        if seq >= self.seq:
            return []
        start = self._start(seq)
        end = len(self.events) if limit is None else start + limit
        return self.events[start:end]

    def selector(self, seq: int) -> str:
        """synccheck's selector for a client at ``seq``: 2 when a message waits, 4 when only
        contact changes do, 0 when nothing does. Stops at the first message (no full scan)."""
        if seq >= self.seq or not self.events:
            return "0"
        start = self._start(seq)
        if start >= len(self.events):
            return "0"
        for i in range(start, len(self.events)):
            if self.events[i].kind == "msg":
                return "2"
        return "4"

    def prune(self, retention: int) -> None:
        """Forget events more than ``retention`` behind the acknowledged position. Done in
        chunks: deleting from the front of a list moves the rest."""
        if not self.events:
            return
        drop = self.acked - retention - self.events[0].seq + 1
        if drop >= 256 or (drop > 0 and drop >= len(self.events) // 2):
            del self.events[:drop]


class Engine:
    """All server-side state and behaviour of the simulator (thread-safe)."""

    def __init__(
        self,
        spec: dict[str, Any] | None = None,
        seed: int = 0,
        settings: Settings | None = None,
    ):
        self.spec = spec if spec is not None else default_spec()
        self.seed = seed
        self.settings = settings or Settings()
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self._traffic: Any = None
        self._timeline: Any = None
        self.reset(keep_settings=True)

    # ------------------------------------------------------------------ lifecycle

    def reset(self, keep_settings: bool = True) -> None:
        with self.cond:
            if self._traffic is not None:
                self._traffic.stop()
                self._traffic = None
            if self._timeline is not None:
                self._timeline.stop()
                self._timeline = None
            if not keep_settings:
                self.settings = Settings()
            self.rng = random.Random(self.seed)
            self.world: World = build_world(self.spec, self.seed)
            self.ids = IdMaker(random.Random(self.seed + 1))
            for pid in list(self.world.persons) + list(self.world.groups):
                self.ids.used.add(pid)
            self.qr: dict[str, QrLogin] = {}
            self.tickets: dict[str, QrLogin] = {}
            self.session: WebSession | None = None
            self.old_sessions: dict[str, WebSession] = {}
            self.auth_tickets: set[str] = set()
            self.faults: list[Fault] = []
            self.fault_seq = 0
            self.sent: list[dict[str, Any]] = []
            self.requests: deque[dict[str, Any]] = deque(maxlen=self.settings.request_log)
            # MsgIds are a bijective scramble of a counter: unique without remembering them.
            self.msg_counter = self.rng.randrange(MSG_ID_SPAN)
            self.media: dict[str, dict[str, Any]] = {}  # msg id -> media description
            self.media_ids: dict[str, str] = {}  # file MediaId -> msg id
            self.uploads: dict[str, dict[str, Any]] = {}  # media id -> {data, name, mime}
            self.partial_uploads: dict[str, dict[str, Any]] = {}
            # injected messages, newest last: (msg id, chat, MsgType, time)
            self.history: deque[tuple[str, str, int, float]] = deque(
                maxlen=max(self.settings.history_limit, 1)
            )
            self.pending_requests: dict[str, str] = {}  # friend-request ticket -> pid
            self.login_count = 0
            self.sync_count = 0
            self.cond.notify_all()

    def stop(self, wait: float = 0.5) -> None:
        """Wake every held long poll (they answer at once) and end the background threads."""
        self.stopping.set()
        with self.cond:
            workers = [w for w in (self._traffic, self._timeline) if w is not None]
            for worker in workers:
                worker.stop()
            self.cond.notify_all()
        deadline = time.monotonic() + wait
        for worker in workers:  # joined outside the lock: they may be waiting for it
            worker.join(max(deadline - time.monotonic(), 0.0))

    def resume(self) -> None:
        """Undo :meth:`stop` so a stopped simulator can be started again."""
        self.stopping.clear()

    # ------------------------------------------------------------------ faults

    def add_fault(self, spec: dict[str, Any]) -> Fault:
        kind = spec.get("kind", "")
        if kind not in FAULT_KINDS:
            raise SimError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        times = spec.get("times", 1)
        with self.cond:
            self.fault_seq += 1
            fault = Fault(
                kind=kind,
                endpoint=spec.get("endpoint", "*"),
                times=None if times in (None, 0, "always") else int(times),
                code=int(spec.get("code", 0)),
                status=int(spec.get("status", 500)),
                seconds=float(spec.get("seconds", 0.0)),
                body=str(spec.get("body", "truncated")),
                selector=str(spec.get("selector", "2")),
                fid=self.fault_seq,
            )
            if kind == "logout":
                self.end_session(fault.code or 1100)
                return fault
            if kind == "expire":
                for qr in self.qr.values():
                    if qr.state in ("waiting", "scanned"):
                        qr.state = "expired"
                self.cond.notify_all()
                return fault
            self.faults.append(fault)
            self.cond.notify_all()
            return fault

    def take_fault(self, endpoint: str, kinds: set[str] | None = None) -> Fault | None:
        """Consume one firing of the first matching fault, if any."""
        if not self.faults:  # the common case, checked without the lock
            return None
        with self.lock:
            for fault in self.faults:
                if fault.endpoint not in ("*", endpoint):
                    continue
                if kinds is not None and fault.kind not in kinds:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
            return None

    def peek_fault(self, endpoint: str, kind: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind == kind and fault.endpoint in ("*", endpoint):
                    return fault
            return None

    def clear_faults(self) -> None:
        with self.cond:
            self.faults.clear()
            self.cond.notify_all()

    # ------------------------------------------------------------------ login

    def new_uuid(self, desktop: bool, push: bool = False) -> QrLogin:
        with self.cond:
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            uuid = "".join(self.rng.choices(alphabet, k=10)) + "=="
            qr = QrLogin(uuid=uuid, created=time.monotonic(), desktop=desktop, push=push)
            if push:
                qr.state = "scanned"  # the phone shows the confirmation prompt right away
            self.qr[uuid] = qr
            return qr

    def _qr(self, uuid: str) -> QrLogin:
        qr = self.qr.get(uuid)
        if qr is None:
            raise SimError(f"unknown uuid {uuid!r}")
        return qr

    def current_qr(self) -> QrLogin:
        """The newest QR login still in play (for the control API's scan/confirm)."""
        with self.lock:
            for qr in reversed(list(self.qr.values())):
                if qr.state in ("waiting", "scanned"):
                    self._expire_if_old(qr)
                    if qr.state in ("waiting", "scanned"):
                        return qr
            raise SimError("no QR code is waiting to be scanned")

    def _expire_if_old(self, qr: QrLogin) -> None:
        if qr.state in ("waiting", "scanned") and (
            time.monotonic() - qr.created > self.settings.qr_ttl
        ):
            qr.state = "expired"

    def scan(self, uuid: str | None = None) -> QrLogin:
        with self.cond:
            qr = self._qr(uuid) if uuid else self.current_qr()
            if qr.state == "waiting":
                qr.state = "scanned"
            self.cond.notify_all()
            return qr

    def confirm(self, uuid: str | None = None) -> QrLogin:
        with self.cond:
            qr = self._qr(uuid) if uuid else self.current_qr()
            if qr.state in ("waiting", "scanned"):
                qr.state = "confirmed"
                qr.ticket = "".join(
                    self.rng.choices(
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_", k=24
                    )
                )
                qr.confirmed_at = time.monotonic()
                self.tickets[qr.ticket] = qr
            self.cond.notify_all()
            return qr

    def cancel(self, uuid: str | None = None) -> QrLogin:
        """The user taps cancel on the phone: a QR goes back to waiting; a push prompt dies."""
        with self.cond:
            qr = self._qr(uuid) if uuid else self.current_qr()
            qr.state = "expired" if qr.push else "waiting"
            qr.reported_scan = False
            qr.cancels += 1
            self.cond.notify_all()
            return qr

    def poll(self, uuid: str, hold: float | None = None) -> tuple[int, QrLogin | None]:
        """Long-poll the login state: returns (window.code, qr).

        201 is reported once, by the first poll after the scan; later polls hold until the
        phone confirms (200), the QR expires (400) or the hold ends (408).
        """
        hold = self.settings.login_hold if hold is None else hold
        deadline = time.monotonic() + hold
        with self.cond:
            qr = self.qr.get(uuid)
            if qr is None:
                return 400, None
            qr.polls += 1
            cancels = qr.cancels
            if self.settings.auto_confirm and qr.state in ("waiting", "scanned"):
                # The phone scans at the first poll and confirms at the next one.
                if qr.state == "waiting":
                    qr.state = "scanned"
                if not qr.reported_scan:
                    qr.reported_scan = True
                    return 201, qr
                self.confirm(uuid)
            while True:
                self._expire_if_old(qr)
                if qr.state in ("expired", "used"):
                    return 400, qr
                if qr.state == "confirmed":
                    return 200, qr
                if qr.state == "scanned" and not qr.reported_scan:
                    qr.reported_scan = True
                    return 201, qr
                if qr.cancels != cancels:
                    return 408, qr  # cancelled on the phone: the QR stays usable
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0 or self.stopping.is_set():
                    return 408, qr
                expires_in = qr.created + self.settings.qr_ttl - now
                self.cond.wait(max(min(remaining, expires_in + 0.01, 1.0), 0.01))

    def redeem_ticket(self, ticket: str, uuid: str, host: str) -> WebSession | None:
        """webwxnewloginpage: trade the one-time ticket for a new web session."""
        with self.cond:
            qr = self.tickets.get(ticket)
            if qr is None or qr.uuid != uuid or qr.state != "confirmed":
                return None
            if time.monotonic() - qr.confirmed_at > self.settings.ticket_ttl:
                return None
            qr.state = "used"
            del self.tickets[ticket]
            old = self.session
            if old is not None:
                if old.alive:
                    # One web session per account: the older one is logged out elsewhere.
                    old.alive = False
                    old.dead_code = 1101
                old.retire()
                self.old_sessions[old.sid] = old
                while len(self.old_sessions) > 32:  # enough to answer stale clients
                    del self.old_sessions[next(iter(self.old_sessions))]
            sess = WebSession(self, qr.desktop, host)
            self.session = sess
            self.auth_tickets.add(sess.auth_ticket)
            self.login_count += 1
            self.cond.notify_all()
            return sess

    def push_login(self, uin: str, auth_ticket: str | None, desktop: bool) -> QrLogin | None:
        with self.cond:
            if str(self.world.account.uin) != str(uin):
                return None
            if not auth_ticket or auth_ticket not in self.auth_tickets:
                return None
            return self.new_uuid(desktop=desktop, push=True)

    def end_session(self, code: int) -> None:
        """The phone ends the web session (logout fault, or `webwxlogout`)."""
        with self.cond:
            if self.session is not None and self.session.alive:
                self.session.alive = False
                self.session.dead_code = code
                self.session.retire()
            self.cond.notify_all()

    # ------------------------------------------------------------------ session lookup

    def session_by_sid(self, sid: str | None) -> WebSession | None:
        with self.lock:
            if self.session is not None and sid == self.session.sid:
                return self.session
            return self.old_sessions.get(sid or "")

    def check_base_request(self, base: Any) -> tuple[WebSession | None, int]:
        """Validate a BaseRequest: (session, ret). Uin may be a number or a string; DeviceID and
        an empty Skey are tolerated (itchat-uos sends Skey ""), a wrong Skey or Uin is not."""
        if not isinstance(base, dict):
            return None, 1101
        sess = self.session_by_sid(str(base.get("Sid", "")))
        if sess is None:
            return None, 1101
        if not sess.alive:
            return sess, sess.dead_code or 1101
        if str(base.get("Uin", "")).strip() != str(sess.uin):
            return sess, 1100
        skey = base.get("Skey", "")
        if skey and skey != sess.skey:
            return sess, 1100
        return sess, 0

    # ------------------------------------------------------------------ objects

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
                mun = sess.name_for(m.pid, short=m.pid == self.world.account.pid)
                if members == "stub":
                    member_list.append(wire.member_object(mun, "", "", 0))
                    continue
                p = self.world.persons.get(m.pid)
                nick = (
                    self.world.account.nickname
                    if m.pid == self.world.account.pid
                    else (p.nickname if p else "")
                )
                attr = _attr_status(m.pid)
                member_list.append(wire.member_object(mun, nick, m.display_name, attr))
        owner_is_me = g.owner == self.world.account.pid
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
        if pid in self.world.groups:
            return self.group_contact(sess, self.world.groups[pid])
        p = self.world.persons.get(pid)
        if p is not None:
            return self.person_contact(sess, p)
        return None

    def self_contact(self, sess: WebSession) -> dict[str, Any]:
        acc = self.world.account
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

    # ------------------------------------------------------------------ init / contacts

    def init_payload(self, sess: WebSession) -> dict[str, Any]:
        with self.lock:
            w = self.world
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
            init_members = "stub" if self.settings.group_counts else "zero"
            for g in list(w.groups.values())[:8]:
                recent.append(self.group_contact(sess, g, members=init_members))
            chat_set = ",".join(c["UserName"] for c in recent) + ","
            sess.init_done = True
            if self._timeline is None and self.world.timeline:
                from wxcli.simulator.traffic import Timeline

                self._timeline = Timeline(self, self.world.timeline)
                self._timeline.start()
            if self._traffic is None and self.world.traffic.get("rate"):
                self.start_traffic(dict(self.world.traffic))
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
        with self.lock:
            out = [self.special_contact(sess, name) for name in ("filehelper", "weixin")]
            for p in self.world.persons.values():
                if p.friend:
                    out.append(self.person_contact(sess, p))
            for g in self.world.groups.values():
                if g.saved and g.member(self.world.account.pid):
                    # Real webwxgetcontact: MemberCount 0, MemberList [] (§4.2).
                    members = "none" if self.settings.group_counts else "zero"
                    out.append(self.group_contact(sess, g, members=members))
            return out

    def batch_contacts(self, sess: WebSession, items: list[Any]) -> list[dict[str, Any]]:
        out = []
        with self.lock:
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

    def status_notify(self, sess: WebSession, code: int, to_user: str) -> str:
        """webwxstatusnotify; Code 3 (inited) makes the phone push a MsgType 51 sync message."""
        with self.cond:
            msg_id = self.new_msg_id()
            if code == 3:
                recent_pids = ["filehelper"]
                recent_pids += [g.gid for g in list(self.world.groups.values())[:8]]
                recent_pids += [p.pid for p in self.world.persons.values() if p.friend][:5]
                names = [sess.name_for(pid, group=pid in self.world.groups) for pid in recent_pids]
                chats = "".join(
                    f"<chat><username>{pid}</username><lastreadtime>{int(time.time()) - 60}"
                    f"</lastreadtime></chat>"
                    for pid in recent_pids[:3]
                )
                xml = (
                    f"<msg><op id='4'><username>{','.join(recent_pids)}</username>"
                    f"<unreadchatlist>{chats}</unreadchatlist><unreadfunctionlist>"
                    "</unreadfunctionlist></op></msg>"
                )
                msg = wire.message_object(
                    msg_id=self.new_msg_id(),
                    from_user=sess.user_name,
                    to_user=sess.user_name,
                    msg_type=51,
                    content=wire.escape_xml_payload(xml),
                    create_time=int(time.time()),
                    status_notify_code=4,
                    status_notify_user=",".join(names),
                )
                sess.append("msg", msg)
                self.cond.notify_all()
            return msg_id

    # ------------------------------------------------------------------ sync

    def wait_synccheck(
        self, sess: WebSession, key1: int | None, hold: float | None = None
    ) -> tuple[str, str]:
        """Hold until something is pending for this key (or the hold ends): (retcode, selector).

        The answer depends only on the key the client sends, so the same selector repeats
        until the client has called webwxsync and moved on to the new key."""
        hold = self.settings.synccheck_hold if hold is None else hold
        deadline = time.monotonic() + hold
        with self.cond:
            while True:
                if not sess.alive:
                    return str(sess.dead_code or 1101), "0"
                spin = self.take_fault("synccheck", {"spin"})
                if spin is not None:
                    return "0", spin.selector
                seq = sess.seq_of(key1)
                selector = sess.selector(sess.seq if seq is None else seq)
                if selector != "0":
                    return "0", selector
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.stopping.is_set():
                    return "0", "0"
                self.cond.wait(min(remaining, 1.0))

    def sync(self, sess: WebSession, key1: int | None) -> dict[str, Any] | None:
        """webwxsync: the events after the client's key, up to the batch size. None = bad key.

        The key a client sends acknowledges everything before it; events stay retained
        ``retention`` positions behind that, so a client that restarts from an older key it
        had saved gets the same messages again (at-least-once, like the real server)."""
        with self.cond:
            self.sync_count += 1
            seq = sess.seq_of(key1)
            if seq is None:
                return None
            if self.take_fault("webwxsync", {"spin"}) is not None:
                batch: list[Event] = []
            else:
                batch = sess.pending(seq, max(self.settings.sync_batch, 1))
            new_seq = batch[-1].seq if batch else seq
            if batch and self.take_fault("webwxsync", {"duplicate"}) is not None:
                new_seq = seq  # the key does not move: the same batch comes again next time
            sess.acked = max(sess.acked, seq)
            sess.prune(self.settings.retention)
            msgs = [wire.RawJSON(ev.raw) for ev in batch if ev.kind == "msg"]
            mods = [wire.RawJSON(ev.raw) for ev in batch if ev.kind == "mod"]
            dels = [wire.RawJSON(ev.raw) for ev in batch if ev.kind == "del"]
            key = sess.sync_key(seq=new_seq)
            return {
                "BaseResponse": wire.base_response(),
                "AddMsgCount": len(msgs),
                "AddMsgList": msgs,
                "ModContactCount": len(mods),
                "ModContactList": mods,
                "DelContactCount": len(dels),
                "DelContactList": dels,
                "ModChatRoomMemberCount": 0,
                "ModChatRoomMemberList": [],
                "Profile": wire.empty_profile(),
                "ContinueFlag": 0,
                "SyncKey": key,
                "SKey": "",
                "SyncCheckKey": key,
            }

    # ------------------------------------------------------------------ messages

    def new_msg_id(self) -> str:
        """A fresh 19-digit MsgId. Multiplying a counter by a constant prime to the span is a
        bijection, so ids look random yet never repeat (and no set of used ids is kept)."""
        with self.lock:
            self.msg_counter = (self.msg_counter + 1) % MSG_ID_SPAN
            return str(10**18 + (self.msg_counter * MSG_ID_FACTOR) % MSG_ID_SPAN)

    def add_media(self, msg_id: str, item: dict[str, Any]) -> None:
        """Register what the download endpoints serve for ``msg_id``; the oldest entries go
        once ``media_limit`` is reached, so endless traffic does not grow memory."""
        with self.lock:
            self.media[msg_id] = item
            if item.get("media_id"):
                self.media_ids[item["media_id"]] = msg_id
            while len(self.media) > max(self.settings.media_limit, 1):
                old_id = next(iter(self.media))
                old = self.media.pop(old_id)
                if old.get("media_id"):
                    self.media_ids.pop(old["media_id"], None)

    def media_item(self, msg_id: str) -> dict[str, Any] | None:
        """The media of a message with its bytes (images are re-made from their key)."""
        with self.lock:
            item = self.media.get(msg_id)
        if item is None:
            return None
        if "key" in item and "full" not in item:
            full, thumb, _w, _h = media_mod.photo(item["key"])
            item = {**item, "full": full, "thumb": thumb}
        return item

    def media_by_media_id(self, media_id: str) -> dict[str, Any] | None:
        with self.lock:
            msg_id = self.media_ids.get(media_id)
        return self.media_item(msg_id) if msg_id else None

    def find_injected(self, msg_id: str) -> tuple[str, str, int, float] | None:
        with self.lock:
            for entry in reversed(self.history):
                if entry[0] == msg_id:
                    return entry
        return None

    def injected_since(self, since: float) -> list[dict[str, Any]]:
        with self.lock:
            return [
                {"msg_id": mid, "chat": chat, "type": mtype, "time": t}
                for mid, chat, mtype, t in self.history
                if t >= since
            ]

    def _deliver(self, msg: dict[str, Any], chat: str, injected: bool = True) -> None:
        if self.session is not None and self.session.alive:
            self.session.append("msg", msg)
        if injected:
            self.history.append((msg["MsgId"], chat, msg["MsgType"], time.time()))
        self.cond.notify_all()

    def _mod_contact(self, pid: str) -> None:
        sess = self.session
        if sess is None or not sess.alive:
            return
        contact = self.contact_for_pid(sess, pid)
        if contact is None:
            return
        owner = ""
        g = self.world.groups.get(pid)
        if g is not None:
            owner = sess.name_for(g.owner, short=g.owner == self.world.account.pid)
        sess.append("mod", wire.mod_contact_object(contact, owner))
        self.cond.notify_all()

    def _del_contact(self, pid: str) -> None:
        sess = self.session
        if sess is None or not sess.alive:
            return
        un = sess.name_for(pid, group=pid in self.world.groups)
        sess.append("del", {"UserName": un, "ContactFlag": 0})
        self.cond.notify_all()

    def inject_group_texts(self, items: list[tuple[str, str, str]]) -> list[str]:
        """Fast path for floods: plain group texts ``(group id, sender pid, text)``.

        Each (group, sender) pair is laid out once as a template with the MsgId, Content and
        CreateTime left open; a message is then one string format instead of building and
        encoding a 28-field object. The bytes are identical to :meth:`inject`'s."""
        from wxcli.simulator.messages import build_message

        with self.cond:
            sess = self.session if self.session is not None and self.session.alive else None
            templates: dict[tuple[str, str], tuple[str, str, str]] = {}
            ids: list[str] = []
            now = int(time.time())
            for gid, sender, text in items:
                group = self.world.groups[gid]
                msg_id = self.new_msg_id()
                if sess is not None:
                    tpl = templates.get((gid, sender))
                    if tpl is None:
                        tpl = templates[(gid, sender)] = self._text_template(gid, sender)
                    template, prefix, _chat = tpl
                    content = json.encoder.encode_basestring(prefix + wire.escape_text(text))
                    raw = (template % (msg_id, content, now, msg_id)).encode("utf-8")
                    sess.append_raw("msg", raw, msg_id, now)
                else:  # nobody logged in: only the history remembers it
                    build_message(self, {"group": gid, "sender": sender, "content": text})
                self.history.append((msg_id, group.name, 1, time.time()))
                ids.append(msg_id)
            self.cond.notify_all()
            return ids

    def _text_template(self, gid: str, sender: str) -> tuple[str, str, str]:
        """(%-template, sender prefix, chat name) of a group text; see inject_group_texts."""
        from wxcli.simulator.messages import build_message

        marker_id, marker_time = "1234567890123456789", 1111111111
        msg, chat = build_message(
            self, {"group": gid, "sender": sender, "content": "", "create_time": marker_time}
        )
        prefix = msg["Content"]
        msg = {**msg, "MsgId": marker_id, "NewMsgId": int(marker_id), "Content": "\x01"}
        text = wire.encode_lines(msg).decode("utf-8").replace("%", "%%")
        text = text.replace(f'"MsgId": "{marker_id}"', '"MsgId": "%s"', 1)
        text = text.replace('"Content": "\\u0001"', '"Content": %s', 1)
        text = text.replace(f'"CreateTime": {marker_time}', '"CreateTime": %d', 1)
        text = text.replace(f'"NewMsgId": {marker_id}', '"NewMsgId": %s', 1)
        return text, prefix, chat

    def inject(self, spec: dict[str, Any]) -> list[str]:
        """Add messages to the world (see the README's control API for the fields)."""
        from wxcli.simulator.messages import build_message

        with self.cond:
            out = []
            count = int(spec.get("count", 1))
            for i in range(count):
                one = dict(spec)
                if count > 1 and "content" in one and "{i}" in str(one["content"]):
                    one["content"] = str(one["content"]).replace("{i}", str(i))
                msg, chat = build_message(self, one)
                self._deliver(msg, chat)
                out.append(msg["MsgId"])
            return out

    def recall(self, msg_id: str, by: str | None = None) -> str:
        from wxcli.simulator.messages import build_recall

        with self.cond:
            msg, chat = build_recall(self, msg_id)
            self._deliver(msg, chat)
            return msg["MsgId"]

    # ------------------------------------------------------------------ roster changes

    def add_contacts(self, spec: dict[str, Any]) -> dict[str, list[str]]:
        from wxcli.simulator.messages import system_message
        from wxcli.simulator.world import _person, add_group

        added: dict[str, list[str]] = {"friends": [], "officials": [], "groups": []}
        with self.cond:
            for f in spec.get("friends", []):
                f = {"nickname": f} if isinstance(f, str) else f
                p = self.world.find_person(f["nickname"])
                if p is None:
                    p = _person(self.ids, f, friend=True)
                    self.world.persons[p.pid] = p
                p.friend = True
                p.remark = f.get("remark", p.remark)
                added["friends"].append(p.pid)
                self._mod_contact(p.pid)
                if spec.get("announce", True):
                    text = f"你已添加了{p.nickname}，现在可以开始聊天了。"
                    self._deliver(*system_message(self, text, person=p))
            for o in spec.get("officials", []):
                o = {"nickname": o} if isinstance(o, str) else o
                p = _person(self.ids, {"verify_flag": 24, **o}, friend=True)
                p.sex = 0
                self.world.persons[p.pid] = p
                added["officials"].append(p.pid)
                self._mod_contact(p.pid)
            for gspec in spec.get("groups", []):
                g = add_group(self.world, self.ids, gspec)
                added["groups"].append(g.gid)
                self._mod_contact(g.gid)
                inviter = self.world.persons.get(g.owner)
                if inviter is not None and spec.get("announce", True):
                    others = "、".join(
                        self.world.display_name(g, m.pid)
                        for m in g.members[1:4]
                        if m.pid != inviter.pid
                    )
                    text = f'"{inviter.nickname}"邀请你和"{others}"加入了群聊'
                    self._deliver(*system_message(self, text, group=g))
            return added

    def update_contact(self, spec: dict[str, Any]) -> str:
        with self.cond:
            p = self.world.find_person(spec["name"])
            if p is None:
                raise SimError(f"no contact named {spec['name']!r}")
            for key in ("nickname", "remark", "signature", "province", "city"):
                if key in spec:
                    setattr(p, key, spec[key])
            self._mod_contact(p.pid)
            return p.pid

    def remove_contact(self, name: str) -> str:
        with self.cond:
            p = self.world.find_person(name)
            if p is not None:
                p.friend = False
                self._del_contact(p.pid)
                return p.pid
            g = self.world.find_group(name)
            if g is not None:
                g.members = [m for m in g.members if m.pid != self.world.account.pid]
                self._del_contact(g.gid)
                return g.gid
            raise SimError(f"no contact or group named {name!r}")

    def _group(self, name: str) -> Group:
        g = self.world.find_group(name)
        if g is None:
            raise SimError(f"no group named {name!r}")
        return g

    def rename_group(self, group: str, new_name: str, by: str | None = None) -> str:
        from wxcli.simulator.messages import system_message

        with self.cond:
            g = self._group(group)
            g.name = new_name
            self._mod_contact(g.gid)
            if by in (None, "", "self"):
                text = f"你修改群名为“{new_name}”"
            else:
                actor = self.world.find_member(g, by) or self.world.find_person(by)
                who = self.world.display_name(g, actor.pid) if actor else by
                text = f'"{who}"修改群名为“{new_name}”'
            self._deliver(*system_message(self, text, group=g))
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
        from wxcli.simulator.messages import system_message
        from wxcli.simulator.world import _person

        with self.cond:
            g = self._group(group)
            pids = []
            names = []
            for mspec in members:
                mspec = {"nickname": mspec} if isinstance(mspec, str) else mspec
                p = self.world.find_person(mspec["nickname"])
                if p is None:
                    p = _person(self.ids, {**mspec, "friend": mspec.get("friend", False)}, False)
                    self.world.persons[p.pid] = p
                if g.member(p.pid) is None:
                    g.members.append(Member(p.pid, mspec.get("display_name", "")))
                pids.append(p.pid)
                names.append(p.nickname)
            if notify:
                self._mod_contact(g.gid)
                joined = "、".join(names)
                if inviter in (None, ""):
                    text = f'"{joined}"通过扫描二维码加入群聊'
                elif inviter == "self":
                    text = f'你邀请"{joined}"加入了群聊'
                else:
                    actor = self.world.find_member(g, inviter) or self.world.find_person(inviter)
                    who = self.world.display_name(g, actor.pid) if actor else inviter
                    text = f'"{who}"邀请"{joined}"加入了群聊'
                self._deliver(*system_message(self, text, group=g))
            return pids

    def remove_members(
        self, group: str, members: list[str], by: str | None = None, announce: bool = False
    ) -> list[str]:
        """Members leave (by=None) or are removed. WeChat only tells the remover, so a notice
        appears when the account removes them, or when ``announce`` asks for one."""
        from wxcli.simulator.messages import system_message

        with self.cond:
            g = self._group(group)
            removed = []
            for name in members:
                p = self.world.find_member(g, name)
                if p is None:
                    raise SimError(f"{name!r} is not a member of {g.name!r}")
                removed.append((p.pid, self.world.display_name(g, p.pid)))
            g.members = [m for m in g.members if m.pid not in {pid for pid, _ in removed}]
            self._mod_contact(g.gid)
            names = "、".join(n for _, n in removed)
            text = None
            if by == "self":
                text = f'你将"{names}"移出了群聊'
            elif by:
                text = f'"{by}"将"{names}"移出了群聊'
            elif announce:
                text = f'"{names}"退出了群聊'
            if text:
                self._deliver(*system_message(self, text, group=g))
            return [pid for pid, _ in removed]

    # ------------------------------------------------------------------ sending

    def take_send_token(self, sess: WebSession) -> bool:
        """Token bucket of the server's send limit: burst, then a sustained rate."""
        now = time.monotonic()
        sess.tokens = min(
            float(self.settings.send_burst),
            sess.tokens + (now - sess.token_time) * self.settings.send_rate,
        )
        sess.token_time = now
        if sess.tokens >= 1.0:
            sess.tokens -= 1.0
            return True
        return False

    def record_send(
        self,
        sess: WebSession,
        endpoint: str,
        msg: dict[str, Any],
        ret: int,
        media_info: dict[str, Any] | None = None,
        msg_id: str = "",
    ) -> None:
        to = str(msg.get("ToUserName", ""))
        pid = sess.pids.get(to, "")
        name = ""
        if pid in self.world.groups:
            name = self.world.groups[pid].name
        elif pid in self.world.persons:
            name = self.world.persons[pid].remark or self.world.persons[pid].nickname
        elif pid in SPECIAL_ACCOUNTS:
            name = SPECIAL_ACCOUNTS[pid]
        self.sent.append(
            {
                "time": time.time(),
                "endpoint": endpoint,
                "type": msg.get("Type"),
                "to_user_name": to,
                "to_name": name,
                "to_id": pid,
                "text": msg.get("Content", "") if msg.get("Type") in (1, "1") else "",
                "content": msg.get("Content", ""),
                "media": media_info,
                "msg_id": msg_id,
                "local_id": str(msg.get("LocalID", "")),
                "client_msg_id": str(msg.get("ClientMsgId", "")),
                "ret": ret,
            }
        )

    def send(self, sess: WebSession, endpoint: str, msg: dict[str, Any]) -> tuple[int, str, str]:
        """Common path of every send endpoint: (ret, errmsg, MsgID)."""
        from wxcli.simulator.messages import echo_of_send

        with self.cond:
            to = str(msg.get("ToUserName", ""))
            pid = sess.pids.get(to)
            media_info = None
            if pid is None:
                self.record_send(sess, endpoint, msg, 1)
                return 1, "", ""
            person = self.world.persons.get(pid)
            if person is not None and not person.friend:
                self.record_send(sess, endpoint, msg, 1204)
                return 1204, "", ""
            media_id = str(msg.get("MediaId", ""))
            if endpoint == "webwxsendappmsg":
                import re as _re

                m = _re.search(r"<attachid>(.*?)</attachid>", str(msg.get("Content", "")))
                media_id = m.group(1) if m else media_id
            upload = None
            if media_id:
                upload = self.uploads.get(media_id)
                if upload is None:
                    self.record_send(sess, endpoint, msg, 1)
                    return 1, "", ""
                media_info = {
                    "media_id": media_id,
                    "sha256": hashlib.sha256(upload["data"]).hexdigest(),
                    "size": len(upload["data"]),
                    "name": upload["name"],
                    "mime": upload["mime"],
                    "mediatype": upload["mediatype"],
                }
            elif endpoint in ("webwxsendmsgimg", "webwxsendvideomsg") or (
                endpoint == "webwxsendemoticon" and not msg.get("EMoticonMd5")
            ):
                self.record_send(sess, endpoint, msg, 1)
                return 1, "", ""
            if not self.take_send_token(sess):
                self.record_send(sess, endpoint, msg, 1205, media_info)
                return 1205, TOO_FREQUENT, ""
            msg_id = self.new_msg_id()
            sess.sent_ids[msg_id] = (time.time(), to, str(msg.get("ClientMsgId", "")))
            self.record_send(sess, endpoint, msg, 0, media_info, msg_id)
            if self.settings.echo_sends:
                echo = echo_of_send(self, sess, endpoint, msg, msg_id, upload)
                if echo is not None:
                    sess.append("msg", echo)
                    self.cond.notify_all()
            return 0, "", msg_id

    def revoke(self, sess: WebSession, svr_msg_id: str, to: str) -> int:
        from wxcli.simulator.messages import self_recall

        with self.cond:
            info = sess.sent_ids.get(svr_msg_id)
            if info is None or info[1] != to:
                return 1
            if time.time() - info[0] > 120:
                return 1
            del sess.sent_ids[svr_msg_id]
            msg = self_recall(self, sess, svr_msg_id, to)
            sess.append("msg", msg)
            self.cond.notify_all()
            return 0

    # ------------------------------------------------------------------ upload

    def upload_chunk(
        self, sess: WebSession, fields: dict[str, str], data: bytes, filename: str
    ) -> dict[str, Any]:
        import json as _json

        try:
            req = _json.loads(fields.get("uploadmediarequest", "{}"))
        except ValueError:
            req = {}
        total = int(fields.get("size") or req.get("TotalLen") or len(data))
        chunks = int(fields.get("chunks") or 1)
        chunk = int(fields.get("chunk") or 0)
        name = fields.get("name") or filename or "file"
        key = f"{req.get('ClientMediaId', '')}|{fields.get('id', '')}|{name}|{total}"
        with self.lock:
            part = self.partial_uploads.setdefault(key, {"chunks": {}, "total": total})
            part["chunks"][chunk] = data
            if len(part["chunks"]) < chunks:
                got = sum(len(c) for c in part["chunks"].values())
                return {"MediaId": "", "StartPos": got}
            del self.partial_uploads[key]
            blob = b"".join(part["chunks"][i] for i in range(chunks) if i in part["chunks"])
            if len(blob) != total or len(part["chunks"]) != chunks:
                return {"error": 1}
            media_id = f"@crypt_{secrets.token_hex(8)}_{secrets.token_hex(64)}"
            self.uploads[media_id] = {
                "data": blob,
                "name": name,
                "mime": fields.get("type") or "application/octet-stream",
                "mediatype": fields.get("mediatype", ""),
                "md5": hashlib.md5(blob).hexdigest(),  # noqa: S324 - protocol field, not security
            }
            return {
                "MediaId": media_id,
                "StartPos": len(blob),
                "CDNThumbImgHeight": 100,
                "CDNThumbImgWidth": 75,
                "EncryFileName": urllib.parse.quote(name),
            }

    # ------------------------------------------------------------------ traffic

    def start_traffic(self, spec: dict[str, Any]) -> dict[str, Any]:
        from wxcli.simulator.traffic import Traffic

        with self.cond:
            if self._traffic is not None:
                self._traffic.stop()
            self._traffic = Traffic(self, spec)
            self._traffic.start()
            return self._traffic.describe()

    def stop_traffic(self) -> None:
        with self.cond:
            if self._traffic is not None:
                self._traffic.stop()
                self._traffic = None

    def flood(self, spec: dict[str, Any]) -> dict[str, Any]:
        from wxcli.simulator.traffic import flood

        return flood(self, spec)

    # ------------------------------------------------------------------ introspection

    def state(self) -> dict[str, Any]:
        with self.lock:
            sess = self.session
            return {
                "logged_in": bool(sess and sess.alive),
                "account": {
                    "nickname": self.world.account.nickname,
                    "uin": self.world.account.uin,
                    "id": self.world.account.pid,
                },
                "session": None
                if sess is None
                else {
                    "alive": sess.alive,
                    "dead_code": sess.dead_code,
                    "user_name": sess.user_name,
                    "desktop": sess.desktop,
                    "events": sess.seq,
                    "acked": sess.acked,
                    "pending": max(sess.seq - sess.acked, 0),
                },
                "logins": self.login_count,
                "syncs": self.sync_count,
                "friends": sum(1 for p in self.world.persons.values() if p.friend),
                "groups": [
                    {"name": g.name, "id": g.gid, "members": len(g.members), "saved": g.saved}
                    for g in self.world.groups.values()
                ],
                "qr": [
                    {"uuid": q.uuid, "state": q.state, "push": q.push, "desktop": q.desktop}
                    for q in self.qr.values()
                ],
                "faults": [f.public() for f in self.faults],
                "sent": len(self.sent),
                "injected": len(self.history),
                "traffic": self._traffic.describe() if self._traffic else None,
                "settings": asdict(self.settings),
            }
