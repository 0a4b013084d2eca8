"""The simulated WeChat server's state and rules, independent of HTTP: a thin facade.

:class:`Engine` composes the parts (see the package docstring for who owns what) over one
:class:`~wxcli.simulator.core.Core`, and is what the HTTP handlers, the ``/_sim/`` control API,
scenario timelines, traffic, tests and ``wxcli sim`` talk to. It adds only what needs more
than one part: reset and stop, faults that act at once (``logout``, ``expire``), webwxinit
starting a scenario's timeline and traffic, and the state report. Every public method takes the
engine lock; long polls wait on its condition variable.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict
from typing import Any

from wxcli.simulator.core import Core, Settings, SimError
from wxcli.simulator.directory import Directory
from wxcli.simulator.faults import Fault, FaultBoard
from wxcli.simulator.login import LoginDesk, QrLogin
from wxcli.simulator.mailbox import Mailbox
from wxcli.simulator.mediastore import MediaStore
from wxcli.simulator.messages import Composer
from wxcli.simulator.outbox import Outbox
from wxcli.simulator.roster import Roster
from wxcli.simulator.session import WebSession
from wxcli.simulator.traffic import Timeline, Traffic, flood
from wxcli.simulator.world import Group, IdMaker, Person, World

__all__ = ["Engine", "Settings", "SimError"]


class Engine:
    """All server-side state and behaviour of the simulator (thread-safe)."""

    def __init__(
        self,
        spec: dict[str, Any] | None = None,
        seed: int = 0,
        settings: Settings | None = None,
    ):
        self.core = Core(spec, seed, settings)
        self._traffic: Traffic | None = None
        self._timeline: Timeline | None = None
        with self.core.cond:
            self._build_parts()

    def _build_parts(self) -> None:
        """Fresh parts over the core (the parts' constructors are their reset)."""
        core = self.core
        self.board = FaultBoard(core.lock)
        self.login = LoginDesk(core)
        self.directory = Directory(core)
        self.mediastore = MediaStore(core)
        self.composer = Composer(core, self.mediastore)
        self.mailbox = Mailbox(core, self.board, self.directory, self.composer)
        self.roster = Roster(core, self.mailbox, self.composer)
        self.outbox = Outbox(core, self.mediastore, self.composer)
        self.requests: deque[dict[str, Any]] = deque(maxlen=core.settings.request_log)

    # ------------------------------------------------------------------ shared state

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self.core.settings = value

    @property
    def lock(self) -> threading.RLock:
        return self.core.lock

    @property
    def cond(self) -> threading.Condition:
        return self.core.cond

    @property
    def stopping(self) -> threading.Event:
        return self.core.stopping

    @property
    def seed(self) -> int:
        return self.core.seed

    @property
    def spec(self) -> dict[str, Any]:
        return self.core.spec

    @property
    def world(self) -> World:
        return self.core.world

    @property
    def ids(self) -> IdMaker:
        return self.core.ids

    @property
    def session(self) -> WebSession | None:
        """The current web session (alive or ended), None before the first login."""
        return self.core.session

    @property
    def qr(self) -> dict[str, QrLogin]:
        return self.login.qr

    @property
    def faults(self) -> list[Fault]:
        return self.board.faults

    @property
    def sent(self) -> list[dict[str, Any]]:
        return self.outbox.sent

    @property
    def uploads(self) -> dict[str, dict[str, Any]]:
        return self.mediastore.uploads

    @property
    def history(self) -> deque[tuple[str, str, int, float]]:
        return self.mailbox.history

    @property
    def pending_requests(self) -> dict[str, str]:
        return self.composer.pending_requests

    # ------------------------------------------------------------------ lifecycle

    def reset(self, keep_settings: bool = True) -> None:
        with self.cond:
            self.stop_traffic()
            if self._timeline is not None:
                self._timeline.stop()
                self._timeline = None
            if not keep_settings:
                self.core.settings = Settings()
            self.core.reset()
            self._build_parts()
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
        """Arm a fault; ``logout`` and ``expire`` act at once instead."""
        with self.cond:
            fault = self.board.make(spec)
            if fault.kind == "logout":
                self.login.end_session(fault.code or 1100)
            elif fault.kind == "expire":
                self.login.expire_all()
            else:
                self.board.arm(fault)
                self.cond.notify_all()
            return fault

    def take_fault(self, endpoint: str, kinds: set[str] | None = None) -> Fault | None:
        return self.board.take(endpoint, kinds)

    def peek_fault(self, endpoint: str, kind: str) -> Fault | None:
        return self.board.peek(endpoint, kind)

    def clear_faults(self) -> None:
        with self.cond:
            self.board.clear()
            self.cond.notify_all()

    # ------------------------------------------------------------------ login

    def new_uuid(self, desktop: bool, push: bool = False) -> QrLogin:
        return self.login.new_uuid(desktop, push)

    def current_qr(self) -> QrLogin:
        return self.login.current_qr()

    def scan(self, uuid: str | None = None) -> QrLogin:
        return self.login.scan(uuid)

    def confirm(self, uuid: str | None = None) -> QrLogin:
        return self.login.confirm(uuid)

    def cancel(self, uuid: str | None = None) -> QrLogin:
        return self.login.cancel(uuid)

    def poll(self, uuid: str, hold: float | None = None) -> tuple[int, QrLogin | None]:
        return self.login.poll(uuid, hold)

    def redeem_ticket(self, ticket: str, uuid: str, host: str) -> WebSession | None:
        return self.login.redeem_ticket(ticket, uuid, host)

    def push_login(self, uin: str, auth_ticket: str | None, desktop: bool) -> QrLogin | None:
        return self.login.push_login(uin, auth_ticket, desktop)

    def end_session(self, code: int) -> None:
        self.login.end_session(code)

    def session_by_sid(self, sid: str | None) -> WebSession | None:
        return self.login.session_by_sid(sid)

    def check_base_request(self, base: Any) -> tuple[WebSession | None, int]:
        return self.login.check_base_request(base)

    # ------------------------------------------------------------------ contacts

    def init_payload(self, sess: WebSession) -> dict[str, Any]:
        """webwxinit. The first one also starts the scenario's timeline and traffic (before
        the SyncKey is taken, so what they queue at once is already behind it)."""
        with self.lock:
            recent = self.directory.init_contacts(sess)
            chat_set = ",".join(c["UserName"] for c in recent) + ","
            sess.init_done = True
            if self._timeline is None and self.world.timeline:
                self._timeline = Timeline(self, self.world.timeline)
                self._timeline.start()
            if self._traffic is None and self.world.traffic.get("rate"):
                self.start_traffic(dict(self.world.traffic))
            return self.directory.init_answer(sess, recent, chat_set)

    def head_url(self, sess: WebSession, user_name: str, group: bool = False) -> str:
        return self.directory.head_url(sess, user_name, group)

    def person_contact(self, sess: WebSession, p: Person) -> dict[str, Any]:
        return self.directory.person_contact(sess, p)

    def special_contact(self, sess: WebSession, name: str) -> dict[str, Any]:
        return self.directory.special_contact(sess, name)

    def group_contact(self, sess: WebSession, g: Group, members: str = "full") -> dict[str, Any]:
        return self.directory.group_contact(sess, g, members)

    def contact_for_pid(self, sess: WebSession, pid: str) -> dict[str, Any] | None:
        return self.directory.contact_for_pid(sess, pid)

    def self_contact(self, sess: WebSession) -> dict[str, Any]:
        return self.directory.self_contact(sess)

    def address_book(self, sess: WebSession) -> list[dict[str, Any]]:
        return self.directory.address_book(sess)

    def batch_contacts(self, sess: WebSession, items: list[Any]) -> list[dict[str, Any]]:
        return self.directory.batch_contacts(sess, items)

    # ------------------------------------------------------------------ messages and sync

    def new_msg_id(self) -> str:
        return self.core.new_msg_id()

    def status_notify(self, sess: WebSession, code: int, to_user: str) -> str:
        return self.mailbox.status_notify(sess, code, to_user)

    def wait_synccheck(
        self, sess: WebSession, key1: int | None, hold: float | None = None
    ) -> tuple[str, str]:
        return self.mailbox.wait_synccheck(sess, key1, hold)

    def sync(self, sess: WebSession, key1: int | None) -> dict[str, Any] | None:
        return self.mailbox.sync(sess, key1)

    def inject(self, spec: dict[str, Any]) -> list[str]:
        return self.mailbox.inject(spec)

    def inject_group_texts(self, items: list[tuple[str, str, str]]) -> list[str]:
        return self.mailbox.inject_group_texts(items)

    def recall(self, msg_id: str, by: str | None = None) -> str:
        return self.mailbox.recall(msg_id, by)

    def find_injected(self, msg_id: str) -> tuple[str, str, int, float] | None:
        return self.mailbox.find_injected(msg_id)

    def injected_since(self, since: float) -> list[dict[str, Any]]:
        return self.mailbox.injected_since(since)

    def mod_contact(self, pid: str) -> None:
        """Queue a ModContactList entry for ``pid`` (after changing it in the world)."""
        with self.cond:
            self.mailbox.mod_contact(pid)

    # ------------------------------------------------------------------ media

    def add_media(self, msg_id: str, item: dict[str, Any]) -> None:
        self.mediastore.add_media(msg_id, item)

    def media_item(self, msg_id: str) -> dict[str, Any] | None:
        return self.mediastore.media_item(msg_id)

    def media_by_media_id(self, media_id: str) -> dict[str, Any] | None:
        return self.mediastore.media_by_media_id(media_id)

    def upload_chunk(
        self, sess: WebSession, fields: dict[str, str], data: bytes, filename: str
    ) -> dict[str, Any]:
        return self.mediastore.upload_chunk(sess, fields, data, filename)

    # ------------------------------------------------------------------ roster changes

    def add_contacts(self, spec: dict[str, Any]) -> dict[str, list[str]]:
        return self.roster.add_contacts(spec)

    def update_contact(self, spec: dict[str, Any]) -> str:
        return self.roster.update_contact(spec)

    def remove_contact(self, name: str) -> str:
        return self.roster.remove_contact(name)

    def rename_group(self, group: str, new_name: str, by: str | None = None) -> str:
        return self.roster.rename_group(group, new_name, by)

    def add_members(
        self,
        group: str,
        members: list[Any],
        inviter: str | None = None,
        notify: bool = True,
    ) -> list[str]:
        return self.roster.add_members(group, members, inviter, notify)

    def remove_members(
        self, group: str, members: list[str], by: str | None = None, announce: bool = False
    ) -> list[str]:
        return self.roster.remove_members(group, members, by, announce)

    # ------------------------------------------------------------------ sending

    def take_send_token(self, sess: WebSession) -> bool:
        return self.outbox.take_send_token(sess)

    def send(self, sess: WebSession, endpoint: str, msg: dict[str, Any]) -> tuple[int, str, str]:
        return self.outbox.send(sess, endpoint, msg)

    def revoke(self, sess: WebSession, svr_msg_id: str, to: str) -> int:
        return self.outbox.revoke(sess, svr_msg_id, to)

    # ------------------------------------------------------------------ traffic

    def start_traffic(self, spec: dict[str, Any]) -> dict[str, Any]:
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

    def traffic(self) -> dict[str, Any]:
        """The running traffic generator, for ``GET /_sim/traffic``."""
        with self.lock:
            t = self._traffic
            return t.describe() if t else {"running": False}

    def flood(self, spec: dict[str, Any]) -> dict[str, Any]:
        return flood(self, spec)

    # ------------------------------------------------------------------ introspection

    def state(self) -> dict[str, Any]:
        with self.lock:
            sess = self.session
            world = self.world
            return {
                "logged_in": bool(sess and sess.alive),
                "account": {
                    "nickname": world.account.nickname,
                    "uin": world.account.uin,
                    "id": world.account.pid,
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
                "logins": self.login.login_count,
                "syncs": self.mailbox.sync_count,
                "friends": sum(1 for p in world.persons.values() if p.friend),
                "groups": [
                    {"name": g.name, "id": g.gid, "members": len(g.members), "saved": g.saved}
                    for g in world.groups.values()
                ],
                "qr": self.login.describe(),
                "faults": [f.public() for f in self.faults],
                "sent": len(self.sent),
                "injected": len(self.history),
                "traffic": self._traffic.describe() if self._traffic else None,
                "settings": asdict(self.settings),
            }
