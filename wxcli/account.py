"""Account-level operations behind ``login``, ``logout``, ``status`` and ``contacts``.

Each function takes explicit paths and config, so Python users can call them without the CLI.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wxcli.client import ClientConfig, LoginEvents, WebWeChatClient
from wxcli.config import Config
from wxcli.contacts import ContactDirectory
from wxcli.errors import NetworkError, SessionExpiredError
from wxcli.fileutil import PidLock
from wxcli.paths import ProfilePaths
from wxcli.protocol.models import Contact
from wxcli.session import SessionState, SessionStore
from wxcli.watch.health import Health, age_seconds, read_health

log = logging.getLogger(__name__)


def make_client(
    config: Config, state: SessionState | None = None, **overrides: Any
) -> WebWeChatClient:
    """A client configured from ``[wechat]`` (plus keyword overrides of ClientConfig fields)."""
    cc = ClientConfig.from_config(config)
    for key, value in overrides.items():
        if value is not None:
            setattr(cc, key, value)
    if state is not None:
        cc.desktop_mode = state.desktop_mode
    return WebWeChatClient(cc, state=state)


def login(
    paths: ProfilePaths,
    config: Config,
    events: LoginEvents | None = None,
    *,
    timeout: float | None = None,
    desktop_mode: bool | None = None,
    push: bool = True,
) -> SessionState:
    """Log in (push login first when this profile had a session) and save the session file."""
    store = SessionStore(paths)
    previous = None
    if push:
        try:
            previous = store.load_optional()
        except Exception as exc:  # a corrupt old file must not block a fresh login
            log.warning("ignoring the previous session file: %s", exc)
    client = make_client(config, desktop_mode=desktop_mode)
    if previous is not None and desktop_mode is None:
        client.config.desktop_mode = previous.desktop_mode
    if previous is not None:
        # Push login needs the old cookies (webwx_auth_ticket) on the login host.
        client.import_cookies(previous.cookies)
    state = client.login(
        events, timeout=timeout, push_uin=previous.uin if previous is not None else None
    )
    state.cookies = client.export_cookies()
    store.save(state)
    return state


def logout(paths: ProfilePaths, config: Config) -> bool:
    """Log out on the server (if the session is still alive) and delete the session file."""
    store = SessionStore(paths)
    state = store.load_optional()
    if state is None:
        return False
    if state.alive:
        make_client(config, state).logout()
    store.delete()
    return True


@dataclass
class StatusReport:
    profile: str
    logged_in: bool
    nickname: str = ""
    uin: int = 0
    login_time: datetime | None = None
    alive: bool | None = None  # None = unknown (network trouble)
    alive_source: str = ""  # "probe" | "watch" | "session file"
    problem: str = ""
    watch_running: bool = False
    watch_pid: int | None = None
    health: Health | None = None
    friends: int = 0
    groups: int = 0

    @property
    def session_age_seconds(self) -> float | None:
        if self.login_time is None:
            return None
        return (datetime.now(UTC) - self.login_time).total_seconds()

    def to_json(self) -> dict[str, Any]:
        h = self.health
        return {
            "profile": self.profile,
            "logged_in": self.logged_in,
            "nickname": self.nickname,
            "uin": self.uin,
            "login_time": self.login_time.isoformat() if self.login_time else None,
            "session_age_seconds": self.session_age_seconds,
            "alive": self.alive,
            "alive_source": self.alive_source,
            "problem": self.problem,
            "watch_running": self.watch_running,
            "watch_pid": self.watch_pid,
            "friends": self.friends,
            "groups": self.groups,
            "watch": h.to_json() if h is not None else None,
        }


def watch_running(paths: ProfilePaths) -> tuple[bool, int | None]:
    lock = PidLock(paths.watch_lock)
    if lock.is_held():
        return True, lock.holder_pid()
    return False, None


def session_status(
    paths: ProfilePaths, config: Config, *, live: bool = True, stale_after: float = 120.0
) -> StatusReport:
    """Who is logged in and whether the session works right now.

    With a running ``watch``, its fresh health record answers (no second long poll on the
    same session); otherwise a cheap synccheck probe that does not move the sync position.
    """
    store = SessionStore(paths)
    state = store.load_optional()
    report = StatusReport(profile=paths.profile, logged_in=state is not None)
    running, pid = watch_running(paths)
    report.watch_running, report.watch_pid = running, pid
    report.health = read_health(paths.health)
    if state is None:
        return report
    report.nickname, report.uin, report.login_time = state.nickname, state.uin, state.login_time
    report.friends = len(state.contacts.friends())
    report.groups = len(state.contacts.groups())
    if not state.alive:
        report.alive, report.alive_source = False, "session file"
        report.problem = SessionExpiredError(state.ended_code or 1101).meaning
        return report
    health = report.health
    if running and health is not None:
        fresh = age_seconds(health.updated_at)
        if fresh is not None and fresh < stale_after:
            report.alive_source = "watch"
            report.alive = health.state in ("running", "starting")
            if health.state == "session_lost":
                report.problem = SessionExpiredError(health.session_code or 1101).meaning
            return report
    if not live:
        return report
    client = make_client(config, state)
    report.alive_source = "probe"
    try:
        client.probe()
        report.alive = True
    except SessionExpiredError as exc:
        report.alive = False
        report.problem = exc.meaning
        store.mark_ended(exc.code)
    except NetworkError as exc:
        report.alive = None
        report.problem = str(exc)
    return report


def list_contacts(
    paths: ProfilePaths, query: str | None = None, kind: str | None = None
) -> list[Contact]:
    """Contacts from the session file, filtered by a substring and a kind (group/friend/…)."""
    state = SessionStore(paths).load()
    directory: ContactDirectory = state.contacts
    out = []
    for c in directory:
        if c.user_name == state.user_name:
            continue
        if kind and c.kind != kind:
            continue
        if query and not any(query.lower() in (n or "").lower() for n in (c.nickname, c.remark)):
            continue
        out.append(c)
    order = {"group": 0, "friend": 1, "official": 2, "special": 3}
    out.sort(key=lambda c: (order.get(c.kind, 9), c.shown_name))
    return out
