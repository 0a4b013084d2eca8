"""What every part of the simulated server shares, and nothing more.

One :class:`Core` holds the lock (and its condition variable, on which every long poll waits),
the settings, the seeded random source, the world with its id maker, the MsgId counter and the
slot of the current web session. The parts (login desk, directory, mailbox, outbox, media
store, fault board) each keep their own state and reach each other only through the
:class:`~wxcli.simulator.engine.Engine` that composes them.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any

from wxcli.simulator.session import WebSession
from wxcli.simulator.world import IdMaker, World, build_world, default_spec

MSG_ID_SPAN = 8 * 10**18  # MsgIds are 10**18 + [0, span)
MSG_ID_FACTOR = 6364136223846793007  # odd and not a multiple of 5: a bijection mod the span


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


class Core:
    """The shared kernel: lock and condition, settings, rng, world, MsgIds, the session slot.

    The lock and the condition outlive :meth:`reset` (threads may be waiting on them); the
    seeded state is rebuilt by it, in the order that keeps a seed's output stable."""

    def __init__(self, spec: dict[str, Any] | None, seed: int, settings: Settings | None):
        self.spec = spec if spec is not None else default_spec()
        self.seed = seed
        self.settings = settings or Settings()
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.stopping = threading.Event()
        self.reset()

    def reset(self) -> None:
        """A fresh seeded world and random source, and no session (call under the lock)."""
        self.rng = random.Random(self.seed)
        self.world: World = build_world(self.spec, self.seed)
        self.ids = IdMaker(random.Random(self.seed + 1))
        for pid in list(self.world.persons) + list(self.world.groups):
            self.ids.used.add(pid)
        self.session: WebSession | None = None
        # MsgIds are a bijective scramble of a counter: unique without remembering them.
        self.msg_counter = self.rng.randrange(MSG_ID_SPAN)

    def live_session(self) -> WebSession | None:
        """The current web session if it is still logged in."""
        sess = self.session
        return sess if sess is not None and sess.alive else None

    def new_msg_id(self) -> str:
        """A fresh 19-digit MsgId. Multiplying a counter by a constant prime to the span is a
        bijection, so ids look random yet never repeat (and no set of used ids is kept)."""
        with self.lock:
            self.msg_counter = (self.msg_counter + 1) % MSG_ID_SPAN
            return str(10**18 + (self.msg_counter * MSG_ID_FACTOR) % MSG_ID_SPAN)
