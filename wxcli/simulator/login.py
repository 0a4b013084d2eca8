"""Accounts and login state: QR codes, the phone's scan and confirm, tickets, web sessions.

The path of a login (reference §1): ``jslogin`` makes a :class:`QrLogin` (a uuid); the phone
scans and confirms it (control API, or ``auto_confirm``); the login poll reports 408/201/200/400;
the confirmed QR carries a one-time ticket that ``webwxnewloginpage`` trades for a
:class:`~wxcli.simulator.session.WebSession`. One web session per account: a new one ends the
old with 1101. A push login (``webwxpushloginurl``) needs the ``webwx_auth_ticket`` cookie of an
earlier session and starts already scanned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from wxcli.simulator.core import Core, SimError
from wxcli.simulator.session import WebSession

SYSTEM_MESSAGES_1203 = (
    "为了你的帐号安全，此微信号不能登录网页微信。你可以使用Windows微信或Mac微信在电脑端登录。"
    "Windows微信下载地址：https://pc.weixin.qq.com  Mac微信下载地址：https://mac.weixin.qq.com"
)


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


class LoginDesk:
    """QR logins, tickets and the web sessions they open; the current one sits in the core."""

    def __init__(self, core: Core):
        self.core = core
        self.qr: dict[str, QrLogin] = {}
        self.tickets: dict[str, QrLogin] = {}
        self.old_sessions: dict[str, WebSession] = {}
        self.auth_tickets: set[str] = set()
        self.login_count = 0

    # ------------------------------------------------------------------ QR codes

    def new_uuid(self, desktop: bool, push: bool = False) -> QrLogin:
        core = self.core
        with core.cond:
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            uuid = "".join(core.rng.choices(alphabet, k=10)) + "=="
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
        with self.core.lock:
            for qr in reversed(list(self.qr.values())):
                if qr.state in ("waiting", "scanned"):
                    self._expire_if_old(qr)
                    if qr.state in ("waiting", "scanned"):
                        return qr
            raise SimError("no QR code is waiting to be scanned")

    def _expire_if_old(self, qr: QrLogin) -> None:
        if qr.state in ("waiting", "scanned") and (
            time.monotonic() - qr.created > self.core.settings.qr_ttl
        ):
            qr.state = "expired"

    def expire_all(self) -> None:
        """Every QR still in play expires (the ``expire`` fault)."""
        with self.core.cond:
            for qr in self.qr.values():
                if qr.state in ("waiting", "scanned"):
                    qr.state = "expired"
            self.core.cond.notify_all()

    # ------------------------------------------------------------------ the phone

    def scan(self, uuid: str | None = None) -> QrLogin:
        with self.core.cond:
            qr = self._qr(uuid) if uuid else self.current_qr()
            if qr.state == "waiting":
                qr.state = "scanned"
            self.core.cond.notify_all()
            return qr

    def confirm(self, uuid: str | None = None) -> QrLogin:
        core = self.core
        with core.cond:
            qr = self._qr(uuid) if uuid else self.current_qr()
            if qr.state in ("waiting", "scanned"):
                qr.state = "confirmed"
                qr.ticket = "".join(
                    core.rng.choices(
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_", k=24
                    )
                )
                qr.confirmed_at = time.monotonic()
                self.tickets[qr.ticket] = qr
            core.cond.notify_all()
            return qr

    def cancel(self, uuid: str | None = None) -> QrLogin:
        """The user taps cancel on the phone: a QR goes back to waiting; a push prompt dies."""
        with self.core.cond:
            qr = self._qr(uuid) if uuid else self.current_qr()
            qr.state = "expired" if qr.push else "waiting"
            qr.reported_scan = False
            qr.cancels += 1
            self.core.cond.notify_all()
            return qr

    def poll(self, uuid: str, hold: float | None = None) -> tuple[int, QrLogin | None]:
        """Long-poll the login state: returns (window.code, qr).

        201 is reported once, by the first poll after the scan; later polls hold until the
        phone confirms (200), the QR expires (400) or the hold ends (408).
        """
        core = self.core
        settings = core.settings
        hold = settings.login_hold if hold is None else hold
        deadline = time.monotonic() + hold
        with core.cond:
            qr = self.qr.get(uuid)
            if qr is None:
                return 400, None
            qr.polls += 1
            cancels = qr.cancels
            if settings.auto_confirm and qr.state in ("waiting", "scanned"):
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
                if remaining <= 0 or core.stopping.is_set():
                    return 408, qr
                expires_in = qr.created + core.settings.qr_ttl - now
                core.cond.wait(max(min(remaining, expires_in + 0.01, 1.0), 0.01))

    # ------------------------------------------------------------------ sessions

    def redeem_ticket(self, ticket: str, uuid: str, host: str) -> WebSession | None:
        """webwxnewloginpage: trade the one-time ticket for a new web session."""
        core = self.core
        with core.cond:
            qr = self.tickets.get(ticket)
            if qr is None or qr.uuid != uuid or qr.state != "confirmed":
                return None
            if time.monotonic() - qr.confirmed_at > core.settings.ticket_ttl:
                return None
            qr.state = "used"
            del self.tickets[ticket]
            old = core.session
            if old is not None:
                if old.alive:
                    # One web session per account: the older one is logged out elsewhere.
                    old.alive = False
                    old.dead_code = 1101
                old.retire()
                self.old_sessions[old.sid] = old
                while len(self.old_sessions) > 32:  # enough to answer stale clients
                    del self.old_sessions[next(iter(self.old_sessions))]
            sess = WebSession(
                core.rng, core.world.account, core.settings.send_burst, qr.desktop, host
            )
            core.session = sess
            self.auth_tickets.add(sess.auth_ticket)
            self.login_count += 1
            core.cond.notify_all()
            return sess

    def push_login(self, uin: str, auth_ticket: str | None, desktop: bool) -> QrLogin | None:
        with self.core.cond:
            if str(self.core.world.account.uin) != str(uin):
                return None
            if not auth_ticket or auth_ticket not in self.auth_tickets:
                return None
            return self.new_uuid(desktop=desktop, push=True)

    def end_session(self, code: int) -> None:
        """The phone ends the web session (logout fault, or `webwxlogout`)."""
        core = self.core
        with core.cond:
            sess = core.session
            if sess is not None and sess.alive:
                sess.alive = False
                sess.dead_code = code
                sess.retire()
            core.cond.notify_all()

    def session_by_sid(self, sid: str | None) -> WebSession | None:
        with self.core.lock:
            sess = self.core.session
            if sess is not None and sid == sess.sid:
                return sess
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

    def describe(self) -> list[dict[str, Any]]:
        """The QR logins, for ``GET /_sim/state``."""
        return [
            {"uuid": q.uuid, "state": q.state, "push": q.push, "desktop": q.desktop}
            for q in self.qr.values()
        ]
