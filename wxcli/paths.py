"""Where wxcli keeps its files: one home directory, per-profile files inside it.

The home is ``$WXCLI_HOME`` if set, else click's per-user app dir (computed here without
importing click so the library stays click-free). Nothing is ever written to the working directory.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

PROFILE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _default_app_dir() -> Path:
    # Mirrors click.get_app_dir("wxcli") (non-roaming, POSIX style off) so both agree.
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.expanduser("~")
        return Path(base) / "wxcli"
    if sys.platform == "darwin":
        return Path(os.path.expanduser("~/Library/Application Support")) / "wxcli"
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "wxcli"


def home_dir(create: bool = True) -> Path:
    """The wxcli home directory, created 0700 on first use."""
    env = os.environ.get("WXCLI_HOME")
    path = Path(env).expanduser() if env else _default_app_dir()
    if create and not path.exists():
        path.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return path


def check_profile(name: str) -> str:
    """Profile names become file names, so keep them to a safe alphabet."""
    from wxcli.errors import UsageError

    if not PROFILE_RE.match(name):
        raise UsageError(
            f"invalid profile name {name!r}: use letters, digits, '_', '-' or '.' (max 64)"
        )
    return name


class ProfilePaths:
    """All per-profile file locations in one place."""

    def __init__(self, profile: str = "default", home: Path | None = None):
        self.profile = check_profile(profile)
        self.home = home if home is not None else home_dir()
        suffix = "" if profile == "default" else f".{profile}"
        self.session = self.home / f"session{suffix}.json"
        self.watch_lock = self.home / f"watch{suffix}.lock"
        self.health = self.home / f"health{suffix}.json"
        self.pacer_state = self.home / f"pacer{suffix}.json"
        self.spool = self.home / f"spool{suffix}.jsonl"
        self.qr_png = self.home / f"login-qr{suffix}.png"
        self.apps = self.home / "apps.json"
        # used request-signing nonces, shared by every serve process of this home (like apps)
        self.nonces = self.home / "nonces.sqlite"
        self.media_dir = self.home / "media"
        self.default_db = self.home / "wxcli.db"
        self.config = self.home / "wxcli.toml"
