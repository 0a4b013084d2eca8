"""In-place edits of wxcli.toml with tomlkit: the user's comments and layout survive, and the
file is written atomically with its permission bits kept (new files are 0600).

``wxcli alert`` and ``wxcli feed`` both edit named sub-tables (``[alert.channels.<name>]``,
``[feed.sinks.<name>]``); each validates its own tables before saving.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wxcli.errors import ConfigError


class TomlFile:
    """One wxcli.toml, parsed with tomlkit (imported only when a command edits the file)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.doc = self._load()

    def _load(self) -> Any:
        import tomlkit

        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return tomlkit.document()
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror}", path=str(self.path)) from None
        try:
            return tomlkit.parse(text)
        except Exception as exc:  # tomlkit raises its own ParseError family
            raise ConfigError(f"not valid TOML: {exc}", path=str(self.path)) from None

    def plain(self, section: str) -> dict[str, Any]:
        """``[section]`` as plain Python values ({} when absent)."""
        table = self.doc.get(section)
        return table.unwrap() if table is not None else {}

    def _sub(self, section: str, name: str) -> Any:
        import tomlkit

        if section not in self.doc:
            if self.doc.body:
                self.doc.add(tomlkit.nl())
            self.doc.add(section, tomlkit.table(is_super_table=True))
        top = self.doc[section]
        if name not in top:
            top.add(name, tomlkit.table(is_super_table=True))
        return top[name]

    def put(self, section: str, table: str, name: str, values: Mapping[str, Any]) -> None:
        """Set ``[section.table.name]`` to ``values`` (replacing what was there)."""
        import tomlkit

        sub = self._sub(section, table)
        item = tomlkit.table()
        for key, value in values.items():
            item.add(key, tidy(value))
        if name in sub:
            sub[name] = item
        else:
            sub.add(name, item)

    def delete(self, section: str, table: str, name: str) -> None:
        del self.doc[section][table][name]

    def text(self) -> str:
        import tomlkit

        return tomlkit.dumps(self.doc)

    def save(self) -> None:
        """Write the file atomically, keeping its permission bits (new files are 0600)."""
        from wxcli.fileutil import atomic_write_bytes

        try:
            mode = self.path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
        atomic_write_bytes(self.path, self.text().encode("utf-8"), mode=mode)


def tidy(value: Any) -> Any:
    """15.0 → 15, so the file reads as a person would write it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
