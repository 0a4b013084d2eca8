"""Session loss inside ``watch``: record it, tell the sinks, then either stop (exit 3) or —
with ``--relogin`` — log in again (push login first, else a QR code written to a PNG and
sent with the ``login_needed`` event) and resume receiving with the new login.

How to log in is handed in (``login``): logging in belongs to the account layer above watch
(``wxcli.account.login``, which also saves the session file); this module only drives it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from wxcli.client import LoginEvents
from wxcli.errors import SessionExpiredError, WxError
from wxcli.session import SessionState
from wxcli.watch.context import WatchContext
from wxcli.watch.events import EventBus, LoginNeeded, ReloginOk, SessionLost
from wxcli.watch.live import LiveSession

log = logging.getLogger(__name__)

#: Logs in (telling ``events`` of QR codes and confirmations) and returns the saved session.
Login = Callable[[LoginEvents], SessionState]


class WatchLoginEvents:
    """Login progress during a relogin: to the log, and the QR code to a file and the sinks
    (an alert channel can then send it to someone who can scan it)."""

    def __init__(self, qr_path: Path, events: EventBus):
        self.qr_path = qr_path
        self.events = events

    def qr_ready(self, uuid: str, url: str) -> None:
        from wxcli.fileutil import atomic_write_bytes
        from wxcli.qr import qr_png

        png = qr_png(url)
        atomic_write_bytes(self.qr_path, png, mode=0o600)
        self.events.emit(LoginNeeded(qr_path=str(self.qr_path), qr_png=png, url=url))

    def push_sent(self) -> None:
        log.warning("asked the phone to confirm a new login")

    def push_failed(self, reason: str) -> None:
        log.warning("push login failed: %s", reason)

    def scanned(self, avatar: str) -> None:
        log.warning("QR code scanned")

    def confirmed(self) -> None:
        log.warning("login confirmed")

    def qr_expired(self) -> None:
        log.warning("QR code expired; a new one was written")

    def loading(self, what: str) -> None:
        pass


class Relogin:
    """Decides what happens when WeChat ends the session; :attr:`exit_code` says how watch
    should exit when it does not go on."""

    def __init__(
        self,
        ctx: WatchContext,
        live: LiveSession,
        *,
        enabled: bool,
        login: Login | None,
        drain: Callable[[], None],
        resume: Callable[[SessionState], None],
        write_health: Callable[[], None],
    ):
        """``drain`` waits until the writer stored what it holds; ``resume`` adopts the new
        login everywhere (client, normaliser, ingestor) with the writer idle."""
        self.ctx = ctx
        self.live = live
        self.enabled = enabled
        self.login = login
        self.drain = drain
        self.resume = resume
        self.write_health = write_health
        self.exit_code = 0

    def session_lost(self, exc: SessionExpiredError) -> bool:
        """Record, tell, and either log in again (True: keep receiving) or stop (False)."""
        health = self.ctx.health
        log.error("session ended: %s", exc)
        self.drain()
        health.state = "session_lost"
        health.session_code = exc.code
        health.add_error("session", str(exc))
        self.live.lost(exc.code)
        self.ctx.events.emit(SessionLost(code=exc.code, meaning=exc.meaning, endpoint=exc.endpoint))
        self.write_health()
        if not self.enabled:
            self.exit_code = exc.exit_code
            return False
        if self.login is None:
            log.error("relogin is on, but this watch was started without a way to log in")
            self.exit_code = exc.exit_code
            return False
        return self._relogin()

    def _relogin(self) -> bool:
        assert self.login is not None
        ctx = self.ctx
        qr_path = ctx.options.qr_png or ctx.paths.qr_png
        ctx.health.state = "relogin"
        self.write_health()
        try:
            state = self.login(WatchLoginEvents(qr_path, ctx.events))
        except WxError as exc:
            log.error("relogin failed: %s", exc)
            ctx.health.add_error("relogin", str(exc))
            self.exit_code = exc.exit_code
            return False
        self.drain()
        with ctx.lock:
            self.resume(state)
        ctx.health.state = "running"
        ctx.events.emit(ReloginOk(nickname=state.nickname))
        self.write_health()
        return True
