"""The session file: one JSON file per profile, shared by every wxcli process of that profile.

It holds what a later process needs to act as the logged-in web client — credentials, cookies,
hosts, sync keys and the contact directory — with a format version so older files can be
upgraded and newer ones refused clearly. Writes are atomic (temp file + rename, 0600) and go
through an exclusive lock; readers never see half a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wxcli import __version__
from wxcli.contacts import ContactDirectory
from wxcli.errors import NotLoggedInError, SessionExpiredError, SessionFileError
from wxcli.fileutil import atomic_write_json, locked, remove_temp_files
from wxcli.paths import ProfilePaths
from wxcli.protocol.hosts import Hosts
from wxcli.protocol.models import SyncKey

FORMAT_VERSION = 1


@dataclass
class SessionState:
    """Everything needed to act as the logged-in web client."""

    uin: int
    user_name: str
    nickname: str
    skey: str
    sid: str
    pass_ticket: str
    hosts: Hosts
    desktop_mode: bool = True
    cookies: list[dict[str, Any]] = field(default_factory=list)
    sync_key: SyncKey = ()
    sync_check_key: SyncKey = ()
    login_time: datetime = field(default_factory=lambda: datetime.now(UTC))
    invite_start_count: int = 40
    contacts: ContactDirectory = field(default_factory=ContactDirectory)
    profile: str = "default"
    alive: bool = True  # False once the server ended it (kept for push login)
    ended_code: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "written_by": f"wxcli {__version__}",
            "saved_at": datetime.now(UTC).isoformat(),
            "profile": self.profile,
            "account": {"uin": self.uin, "user_name": self.user_name, "nickname": self.nickname},
            "credentials": {"skey": self.skey, "sid": self.sid, "pass_ticket": self.pass_ticket},
            "hosts": self.hosts.to_dict(),
            "desktop_mode": self.desktop_mode,
            "login_time": self.login_time.isoformat(),
            "alive": self.alive,
            "ended_code": self.ended_code,
            "invite_start_count": self.invite_start_count,
            "sync": {
                "sync_key": [list(p) for p in self.sync_key],
                "sync_check_key": [list(p) for p in self.sync_check_key],
            },
            "cookies": self.cookies,
            "contacts": self.contacts.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionState:
        acc = data["account"]
        cred = data["credentials"]
        sync = data.get("sync", {})
        return cls(
            uin=int(acc["uin"]),
            user_name=str(acc["user_name"]),
            nickname=str(acc.get("nickname", "")),
            skey=str(cred["skey"]),
            sid=str(cred["sid"]),
            pass_ticket=str(cred.get("pass_ticket", "")),
            hosts=Hosts.from_dict(data["hosts"]),
            desktop_mode=bool(data.get("desktop_mode", True)),
            cookies=list(data.get("cookies", [])),
            sync_key=tuple((int(k), int(v)) for k, v in sync.get("sync_key", [])),
            sync_check_key=tuple((int(k), int(v)) for k, v in sync.get("sync_check_key", [])),
            login_time=datetime.fromisoformat(data["login_time"]),
            invite_start_count=int(data.get("invite_start_count", 40)),
            contacts=ContactDirectory.from_json(data.get("contacts", [])),
            profile=str(data.get("profile", "default")),
            alive=bool(data.get("alive", True)),
            ended_code=int(data.get("ended_code", 0)),
        )


def _upgrade(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """Bring an older format up to the current one (none yet: version 1 is the first)."""
    version = data.get("version")
    if not isinstance(version, int):
        raise SessionFileError(str(path), "no format version; not a wxcli session file")
    if version > FORMAT_VERSION:
        raise SessionFileError(
            str(path),
            f"written by a newer wxcli (format {version}, this one reads {FORMAT_VERSION}); "
            "upgrade wxcli or log in again with this version",
        )
    return data


class SessionStore:
    """Load/save the session file of one profile."""

    def __init__(self, paths: ProfilePaths):
        self.paths = paths
        self.path = paths.session
        self.lock_path = paths.session.with_name(paths.session.name + ".lock")

    def exists(self) -> bool:
        return self.path.exists()

    def _read(self) -> SessionState | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SessionFileError(str(self.path), f"cannot read ({exc.strerror})")
        except UnicodeDecodeError:
            raise SessionFileError(
                str(self.path), "corrupt (not UTF-8 text); delete it and run `wxcli login`"
            )
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            raise SessionFileError(
                str(self.path), "corrupt (not JSON); delete it and run `wxcli login`"
            )
        if not isinstance(data, dict):
            raise SessionFileError(str(self.path), "corrupt (not a JSON object)")
        data = _upgrade(data, self.path)
        try:
            return SessionState.from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise SessionFileError(
                str(self.path), f"corrupt ({type(exc).__name__}: {exc}); run `wxcli login`"
            )

    def _read_sid(self) -> str | None:
        """The sid of the login in the file, without building the whole state (cheap: watch
        checks it before every save)."""
        try:
            data = json.loads(self.path.read_bytes())
            return str(data["credentials"]["sid"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def load(self, require_alive: bool = False) -> SessionState:
        """The saved session; NotLoggedInError when there is none (or it ended, if asked)."""
        state = self._read()
        if state is None:
            raise NotLoggedInError(self.paths.profile)
        if require_alive and not state.alive:
            raise SessionExpiredError(state.ended_code or 1101, "session file")
        return state

    def load_optional(self) -> SessionState | None:
        return self._read()

    def save(self, state: SessionState) -> None:
        """Replace the file with ``state`` (used by login)."""
        state.profile = self.paths.profile
        with locked(self.lock_path):
            self._write(state)

    def update(
        self, state: SessionState, apply: Callable[[SessionState], None] | None = None
    ) -> bool:
        """Write this process's progress (keys, cookies, contacts) if the file still holds the
        same login; returns False when someone has logged in anew since, or logged out (the
        file is gone) — then nothing is written, so a stale process never clobbers a fresh
        session nor resurrects a deleted one.

        ``apply`` runs under the lock, after the check, just before the write: a
        read-modify-write there cannot interleave with another process's update.
        """
        with locked(self.lock_path):
            if self._read_sid() != state.sid:
                return False
            if apply is not None:
                apply(state)
            self._write(state)
            return True

    def mark_ended(self, code: int, sid: str | None = None) -> bool:
        """Record that the server ended the session (keep cookies: push login needs them).

        With ``sid``, only that login is marked (a newer login in the file is left alone).
        Returns True when the file was changed.
        """
        with locked(self.lock_path):
            current = self._read()
            if current is None or (sid is not None and current.sid != sid):
                return False
            current.alive = False
            current.ended_code = code
            self._write(current)
            return True

    def _write(self, state: SessionState) -> None:
        # Under the lock no other writer is mid-write, so any temp file of the session file is
        # a crashed writer's leftover, holding credentials: remove it.
        atomic_write_json(self.path, state.to_json(), compact=True)
        remove_temp_files(self.path)

    def delete(self) -> bool:
        """Delete the session file and any temp copy a crashed writer left (logout)."""
        with locked(self.lock_path):
            remove_temp_files(self.path)
            try:
                self.path.unlink()
                return True
            except FileNotFoundError:
                return False
