"""``wxcli keepalive``: a cron-sized check that the profile's session still works.

With a running ``watch`` its health record answers (no second long poll on the session);
otherwise a synccheck probe that does not move the sync position. Each run appends one line to
``<home>/keepalive[.<profile>].jsonl``; a session found dead calls the ``on_session_lost`` hook
once per loss (not on every cron run), which is where alerting plugs in.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wxcli.errors import (
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_SESSION,
    SESSION_CODE_MEANINGS,
    SessionExpiredError,
    WxError,
)
from wxcli.fileutil import atomic_write_bytes, locked
from wxcli.sending import profile_file

if TYPE_CHECKING:
    from wxcli.config import Config
    from wxcli.paths import ProfilePaths
    from wxcli.sending import Sender

log = logging.getLogger(__name__)

#: Called with (code, meaning) when a check finds the session ended (1100/1101/1102).
SessionLostHook = Callable[[int, str], None]
#: Called with the age in seconds of a running watch's stale health record (None: no record).
WatchDownHook = Callable[[float | None], None]

LOG_MAX_BYTES = 1024 * 1024
LOG_KEEP_LINES = 2000


@dataclass
class KeepaliveResult:
    """One check: alive (True/False/None = could not tell), how we know, what was done."""

    profile: str
    alive: bool | None
    source: str  # "watch" | "probe" | "session file" | "none"
    logged_in: bool = True
    code: int = 0
    problem: str = ""
    watch_running: bool = False
    watch_pid: int | None = None
    watch_stale: bool = False
    watch_age_seconds: float | None = None
    ping_msg_id: str = ""
    ping_error: str = ""
    ping_exit: int = 0  # exit status of a failed --ping (the session itself was alive)
    alerted: bool = False
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def exit_code(self) -> int:
        if self.alive is True:
            return self.ping_exit or EXIT_OK
        if self.alive is None:
            return EXIT_NETWORK
        return EXIT_SESSION

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "profile": self.profile,
            "alive": self.alive,
            "source": self.source,
            "logged_in": self.logged_in,
            "code": self.code,
            "problem": self.problem,
            "watch_running": self.watch_running,
            "watch_pid": self.watch_pid,
            "watch_stale": self.watch_stale,
            "watch_age_seconds": self.watch_age_seconds,
            "ping_msg_id": self.ping_msg_id,
            "ping_error": self.ping_error,
            "alerted": self.alerted,
        }


def log_path(paths: ProfilePaths) -> Path:
    return profile_file(paths, "keepalive", "jsonl")


def last_record(path: Path) -> dict[str, Any] | None:
    """The newest line of the keepalive log (read from the end; the file may be large)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(size - 8192, 0))
            tail = fh.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(tail):
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            return data
    return None


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line (0600); trim the file to its last lines when it grows large."""
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
    with locked(path.with_name(path.name + ".lock")):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > LOG_MAX_BYTES:
            lines = path.read_bytes().splitlines(keepends=True)[-LOG_KEEP_LINES:]
            atomic_write_bytes(path, b"".join(lines), mode=0o600)


def log_session_lost(code: int, meaning: str) -> None:
    """The default hook until alert channels are configured: an error in the log."""
    log.error("the WeChat session has ended (%d: %s); run `wxcli login`", code, meaning)


def keepalive(
    paths: ProfilePaths,
    config: Config,
    *,
    ping: bool = False,
    ping_text: str | None = None,
    on_session_lost: SessionLostHook | None = None,
    on_watch_down: WatchDownHook | None = None,
    sender: Sender | None = None,
) -> KeepaliveResult:
    """Check the session once, record the result and fire the hooks; never raises WxError
    for a dead session (that is a result, not an error)."""
    from wxcli.account import session_status

    stale = config.settings.keepalive.stale_minutes * 60
    report = session_status(paths, config, live=True, stale_after=stale)
    result = KeepaliveResult(
        profile=paths.profile,
        alive=report.alive if report.logged_in else False,
        source=report.alive_source or "none",
        logged_in=report.logged_in,
        problem=report.problem if report.logged_in else "not logged in",
        watch_running=report.watch_running,
        watch_pid=report.watch_pid,
    )
    if report.watch_running:
        from wxcli.health import age_seconds

        age = age_seconds(report.health.updated_at) if report.health is not None else None
        result.watch_age_seconds = age
        result.watch_stale = age is None or age >= stale
    if result.alive is False and report.logged_in:
        result.code = _session_code(paths, report)
    if ping and result.alive:
        _ping(paths, config, result, ping_text, sender)

    path = log_path(paths)
    previous = last_record(path)
    lost_before = previous is not None and previous.get("alive") is False
    if result.alive is False and report.logged_in and not lost_before and result.code:
        result.alerted = True
        hook = on_session_lost or log_session_lost
        meaning = SESSION_CODE_MEANINGS.get(result.code, "the session is no longer valid")
        try:
            hook(result.code, meaning)
        except Exception:  # an alert that fails must not hide the check's own result
            log.exception("the session-lost hook failed")
    if result.watch_stale and on_watch_down is not None:
        try:
            on_watch_down(result.watch_age_seconds)
        except Exception:
            log.exception("the watch-down hook failed")
    append_record(path, result.to_json())
    return result


def _session_code(paths: ProfilePaths, report: Any) -> int:
    """The 1100/1101/1102 code behind a dead session, from wherever it was learned."""
    if report.health is not None and report.health.session_code:
        return int(report.health.session_code)
    from wxcli.session import SessionStore

    try:
        state = SessionStore(paths).load_optional()
    except WxError:
        state = None
    if state is not None and state.ended_code:
        return int(state.ended_code)
    return 1101


def _ping(
    paths: ProfilePaths,
    config: Config,
    result: KeepaliveResult,
    text: str | None,
    sender: Sender | None,
) -> None:
    """The seed's behaviour: a short text to File Transfer, through the pacer."""
    from wxcli.sending import Sender

    sender = sender or Sender(paths, config)
    message = text or f"wxcli keepalive {datetime.now(UTC).astimezone():%Y-%m-%d %H:%M}"
    try:
        outcome = sender.send_text(message, to_id="filehelper", app="keepalive")
        result.ping_msg_id = outcome.msg_id
    except SessionExpiredError as exc:
        result.alive = False
        result.code = exc.code
        result.problem = exc.meaning
        result.source = "ping"
    except WxError as exc:
        result.ping_error = str(exc)
        result.ping_exit = exc.exit_code
        log.warning("keepalive ping failed: %s", exc)
