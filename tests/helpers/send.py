"""Helpers shared by the send/serve/pacer/keepalive tests (no tests here).

A logged-in profile against the simulator, a config file written into the test home (so
in-process code and ``wxcli`` subprocesses read the same settings), small images, and a way to
run the CLI in a subprocess.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wxcli import account
from wxcli.config import Config, load_config
from wxcli.paths import ProfilePaths

ASSETS = Path(__file__).resolve().parents[2] / "wxcli" / "simulator" / "assets"
JPEG = (ASSETS / "photo1.jpg").read_bytes()
GIF = (ASSETS / "sticker.gif").read_bytes()
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00" + bytes(24)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A valid tiny PNG, built by hand (no Pillow needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG = png_bytes()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def write_config(home: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """Write ``<home>/wxcli.toml`` from ``{section: {key: value}}``."""
    lines = []
    for section, keys in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{k} = {_toml_value(v)}" for k, v in keys.items())
        lines.append("")
    path = home / "wxcli.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


#: Pacing for tests: fast but proportionate to the simulator budget the test sets.
FAST_SEND = {"burst": 50, "rate": 1000.0, "jitter": 0.0, "retries": 2, "backoff": 0.01}


@dataclass
class Profile:
    """A logged-in profile: paths, the config as read from the test home, the simulator."""

    home: Path
    paths: ProfilePaths
    config: Config
    sim: Any

    def env(self) -> dict[str, str]:
        return {**os.environ, "WXCLI_HOME": str(self.home), "WXCLI_LOGIN_URL": self.sim.base_url}

    def reload(self, **sections: dict[str, Any]) -> Config:
        """Rewrite the config file with these sections (plus the simulator URL) and reload."""
        merged = {"wechat": {"login_url": self.sim.base_url}, **sections}
        write_config(self.home, merged)
        self.config = load_config(self.home / "wxcli.toml")
        return self.config


def logged_in(sim: Any, home: Path, **sections: dict[str, Any]) -> Profile:
    """Log the default profile in to ``sim`` (auto-confirm) with the given config sections."""
    sim.control.auto_confirm(True)
    sections = {"send": dict(FAST_SEND), **sections}
    write_config(home, {"wechat": {"login_url": sim.base_url}, **sections})
    config = load_config(home / "wxcli.toml")
    paths = ProfilePaths("default", home)
    account.login(paths, config)
    return Profile(home, paths, config, sim)


def run_cli(
    profile: Profile, *args: str, input: str | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``python -m wxcli ARGS`` in a subprocess against the profile's home."""
    return subprocess.run(
        [sys.executable, "-m", "wxcli", *args],
        env=profile.env(),
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sent_rets(sim: Any) -> list[int]:
    return [int(s["ret"]) for s in sim.control.sent()]
