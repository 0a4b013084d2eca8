"""One logged-in web session: its credentials, its UserNames, its event log and sync keys.

A :class:`WebSession` is pure bookkeeping, with no lock of its own: the engine's lock guards it.
Events are kept encoded; :meth:`WebSession.pending` and :meth:`WebSession.selector` answer
webwxsync and synccheck for any position a client sends, and the log is pruned only behind the
position the client has acknowledged.
"""

from __future__ import annotations

import base64
import json
import random
import time
import urllib.parse
from typing import Any

from wxcli.simulator import wire
from wxcli.simulator.world import SPECIAL_ACCOUNTS, Account


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


class WebSession:
    """One logged-in web session: credentials, session-scoped UserNames, the event log."""

    def __init__(
        self, rng: random.Random, account: Account, send_burst: int, desktop: bool, host: str
    ):
        self.uin = account.uin
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
        self.tokens = float(send_burst)
        self.token_time = time.monotonic()
        self.sent_ids: dict[str, tuple[float, str, str]] = {}  # msgid -> (time, to, localid)
        self.rng = rng
        self.user_name = self.name_for(account.pid, short=True)
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
