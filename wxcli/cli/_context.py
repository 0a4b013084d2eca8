"""Per-invocation state shared by subcommands: profile, config, paths, logging."""

from __future__ import annotations

import logging
import sys
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from wxcli.config import Config, default_config_path, load_config
from wxcli.logutil import RedactingFilter
from wxcli.paths import ProfilePaths, check_profile, home_dir

if TYPE_CHECKING:
    from wxcli.session import SessionStore


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

    def setup_logging(self) -> None:
        level = logging.WARNING
        if self.verbose == 1:
            level = logging.INFO
        elif self.verbose >= 2 or self.debug:
            level = logging.DEBUG
        root = logging.getLogger()
        if any(getattr(h, "_wxcli", False) for h in root.handlers):
            return
        handler = logging.StreamHandler(sys.stderr)
        handler._wxcli = True  # type: ignore[attr-defined]
        handler.addFilter(RedactingFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(level)
        if level > logging.DEBUG:
            logging.getLogger("urllib3").setLevel(logging.WARNING)
