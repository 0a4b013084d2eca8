"""Per-invocation state shared by subcommands: profile, config, paths, logging."""

from __future__ import annotations

import logging
import re
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from wxcli.config import Config, default_config_path, load_config
from wxcli.logutil import RedactingFilter
from wxcli.paths import ProfilePaths, check_profile, home_dir

if TYPE_CHECKING:
    from wxcli.session import SessionStore


_SECRETISH = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|KEY", re.IGNORECASE)


def _env_names(node: object) -> set[str]:
    """Values of every ``*_env`` key anywhere in the raw config (names of secret variables)."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and str(key).endswith("_env"):
                found.add(value)
            else:
                found |= _env_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= _env_names(item)
    return found


class AppContext:
    def __init__(
        self, config_path: str | None, profile: str, verbose: int = 0, debug: bool = False
    ):
        self.profile = check_profile(profile)
        self.explicit_config = config_path
        self.verbose = verbose
        self.debug = debug

    @cached_property
    def home(self) -> Path:
        return home_dir()

    @cached_property
    def paths(self) -> ProfilePaths:
        return ProfilePaths(self.profile, self.home)

    @cached_property
    def config_file(self) -> Path:
        if self.explicit_config:
            return Path(self.explicit_config).expanduser()
        return default_config_path(self.home)

    @cached_property
    def config(self) -> Config:
        return load_config(self.config_file, required=bool(self.explicit_config))

    @cached_property
    def sessions(self) -> SessionStore:
        from wxcli.session import SessionStore

        return SessionStore(self.paths)

    def _configured_secrets(self) -> list[str]:
        """Literal values the log filter masks: every ``*_env`` variable the config names (SMTP
        and database passwords, OSS and signing secrets), wxcli's own secret-looking variables,
        and the alert channels' URLs and headers, whose tokens may sit anywhere in them."""
        import os

        from wxcli.errors import WxError

        try:
            raw = self.config.raw
        except WxError:  # the command reports a broken config itself
            raw = {}
        names = {n for n in os.environ if n.startswith("WXCLI_") and _SECRETISH.search(n)}
        names.update(_env_names(raw))
        values = [os.environ[n] for n in names if os.environ.get(n)]
        channels = raw.get("alert", {}).get("channels", {}) if isinstance(raw, dict) else {}
        for table in channels.values() if isinstance(channels, dict) else ():
            if not isinstance(table, dict):
                continue
            if isinstance(table.get("url"), str):
                values.append(table["url"])
            headers = table.get("headers")
            if isinstance(headers, dict):
                values.extend(str(v) for v in headers.values())
        return values

    def setup_logging(self) -> None:
        level = logging.WARNING
        if self.verbose == 1:
            level = logging.INFO
        elif self.verbose >= 2 or self.debug:
            level = logging.DEBUG
        root = logging.getLogger()
        # One handler per invocation: a second run() in the same process (tests, the demo) gets
        # its own stream and the secrets of its own config, not the first one's.
        for old in [h for h in root.handlers if getattr(h, "_wxcli", False)]:
            root.removeHandler(old)
        handler = logging.StreamHandler(sys.stderr)
        # A marker the next run looks for; logging handlers take no such attribute by design.
        handler._wxcli = True  # type: ignore[attr-defined]
        redacting = RedactingFilter()
        handler.addFilter(redacting)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)
        # Set both ways: an earlier run() in this process may have quietened it.
        logging.getLogger("urllib3").setLevel(
            logging.WARNING if level > logging.DEBUG else logging.NOTSET
        )
        # peewee logs every statement with its parameters at DEBUG: session ids, sync keys and
        # customer messages no pattern can tell apart. -vv is for the protocol, not the SQL.
        logging.getLogger("peewee").setLevel(logging.INFO)
        # After the handler is in place, so warnings the config load logs are shown.
        for value in self._configured_secrets():
            redacting.add_secret(value)
