"""Reading one table of the ``[alert]`` configuration, with errors that name the key and file."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from wxcli.errors import ConfigError


class TableReader:
    """Shared by the channel and rule parsers: errors name ``<prefix>.<key>`` and the file."""

    def __init__(self, prefix: str, table: Mapping[str, Any], path: str | None):
        self.prefix = prefix
        self.table = table
        self.path = path

    def error(self, key: str, problem: str) -> ConfigError:
        dotted = f"{self.prefix}.{key}" if key else self.prefix
        if self.path:
            return ConfigError(problem, path=self.path, key=dotted)
        err = ConfigError(f"{dotted}: {problem}")
        err.key = dotted
        return err

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.table:
            if key not in allowed:
                near = difflib.get_close_matches(key, sorted(allowed), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise self.error(key, f"unknown key{hint} (allowed: {', '.join(sorted(allowed))})")
