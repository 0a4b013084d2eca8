"""Account-level operations behind ``login``, ``logout``, ``status`` and ``contacts``.

Each function takes explicit paths and config, so Python users can call them without the CLI.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from wxcli.client import ClientConfig, LoginEvents, WebWeChatClient
from wxcli.config import Config
from wxcli.contacts import ContactDirectory
from wxcli.errors import (
    EXIT_NETWORK,
    EXIT_PROTOCOL,
    ConfigError,
    NetworkError,
    ProtocolError,
    SessionExpiredError,
    SessionFileError,
)
from wxcli.fileutil import PidLock
from wxcli.health import Health, age_seconds, read_health
from wxcli.paths import ProfilePaths
from wxcli.protocol.hosts import push_login_base
from wxcli.protocol.models import Contact
from wxcli.session import SessionState, SessionStore

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
    try:
        return WebWeChatClient(cc, state=state)
    except ConfigError as exc:
        # Say where the bad value came from: the env var wins over the file.
        if os.environ.get("WXCLI_LOGIN_URL"):
            raise ConfigError(f"{exc} (from $WXCLI_LOGIN_URL)") from None
        if config.path is not None and exc.path is None:
            raise ConfigError(str(exc), path=str(config.path)) from None
        raise


def login(
    paths: ProfilePaths,
    config: Config,
    events: LoginEvents | None = None,
    *,
    timeout: float | None = None,
    desktop_mode: bool | None = None,
    push: bool = True,
) -> SessionState:
    """Log in (push login first when this profile had a session) and save the session file.

    Push login asks the phone of the previous session's account to confirm without a scan; it
    needs that session's cookies and goes to its web host. Without a previous session, with
    ``push=False``, or when the phone declines, a QR code is shown.
    """
    store = SessionStore(paths)
    previous = None
    if push:
        try:
            previous = store.load_optional()
        except SessionFileError as exc:  # a corrupt old file must not block a fresh login
            log.warning("ignoring the previous session file: %s", exc)
    client = make_client(config, desktop_mode=desktop_mode)
    if previous is not None and desktop_mode is None:
        client.config.desktop_mode = previous.desktop_mode
    push_base = None
    if previous is not None:
        push_base = push_login_base(previous.hosts, client.login_url)
        if push_base is None:
            log.info("previous session was on other servers; not trying push login")
        else:
            # Push login needs the old cookies (webwx_auth_ticket) of the old web host.
            client.import_cookies(previous.cookies)
    state = client.login(
        events,
        timeout=timeout,
        push_uin=previous.uin if push_base is not None and previous is not None else None,
        push_base=push_base,
    )
    state.cookies = client.export_cookies()
    store.save(state)
    return state


def contact_counts(state: SessionState) -> tuple[int, int]:
    """(friends, groups) of the account — its own entry in the directory is not a friend."""
    friends = sum(1 for c in state.contacts.friends() if c.user_name != state.user_name)
    return friends, len(state.contacts.groups())


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
    check_exit: int = 0  # exit status when the live check itself failed (4 protocol, 5 network)

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
    report.friends, report.groups = contact_counts(state)
    if not state.alive:
        report.alive, report.alive_source = False, "session file"
        code = state.ended_code or 1101
        report.problem = f"{code}: {SessionExpiredError(code).meaning}"
        return report
    health = report.health
    if health is not None and health.sid_hint and not state.sid.startswith(health.sid_hint):
        health = None  # the watch runs on an older login than the session file's
    if running and health is not None:
        fresh = age_seconds(health.updated_at)
        if fresh is not None and fresh < stale_after:
            report.alive_source = "watch"
            report.alive = health.state in ("running", "starting")
            if health.state == "session_lost":
                code = health.session_code or 1101
                report.problem = f"{code}: {SessionExpiredError(code).meaning}"
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
        report.problem = f"{exc.code}: {exc.meaning}"
        store.mark_ended(exc.code, sid=state.sid)
    except NetworkError as exc:
        report.alive = None
        report.problem = str(exc)
        report.check_exit = EXIT_NETWORK
    except ProtocolError as exc:  # includes DecodeError and 1205: the server said something odd
        report.alive = None
        report.problem = str(exc)
        report.check_exit = EXIT_PROTOCOL
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
