"""The alerts' import edges go one way: nothing below alerts imports them, alerts never import
the CLI, and inside ``alerts.channels`` the shared core imports no channel and no channel
imports another (robot presets build on ``robot``/``webhook`` only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

WXCLI = Path(__file__).resolve().parent.parent / "wxcli"
#: Layers under alerts (README/issue 15 order: protocol → client/session → store → … → alerts).
BELOW_ALERTS = ("protocol", "client.py", "session.py", "store", "errors.py", "timeutil.py")
CORE = {"base", "render"}
PRESET_BASES = {"robot", "webhook"}


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function (lazy imports count)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules_under(*parts: str) -> list[Path]:
    out: list[Path] = []
    for part in parts:
        path = WXCLI / part
        out += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return out


@pytest.mark.parametrize("path", modules_under(*BELOW_ALERTS), ids=lambda p: p.name)
def test_lower_layers_do_not_import_alerts(path):
    upward = {m for m in imported_modules(path) if m.startswith("wxcli.alerts")}
    assert upward == set(), f"{path.relative_to(WXCLI)} imports {upward}"


@pytest.mark.parametrize("path", modules_under("alerts"), ids=lambda p: p.name)
def test_alerts_do_not_import_the_cli(path):
    upward = {m for m in imported_modules(path) if m == "wxcli.cli" or m.startswith("wxcli.cli.")}
    assert upward == set(), f"{path.relative_to(WXCLI)} imports {upward}"


def channel_siblings(path: Path) -> set[str]:
    prefix = "wxcli.alerts.channels."
    return {m[len(prefix) :] for m in imported_modules(path) if m.startswith(prefix)}


@pytest.mark.parametrize(
    "path",
    [p for p in modules_under("alerts/channels") if p.stem != "__init__"],
    ids=lambda p: p.stem,
)
def test_channel_modules_import_one_way(path):
    siblings = channel_siblings(path)
    if path.stem == "base":
        allowed: set[str] = set()
    elif path.stem == "render":
        allowed = {"base"}
    elif path.stem == "robot":
        allowed = CORE | {"webhook"}
    else:  # a channel; robot presets may build on robot and webhook
        allowed = CORE | PRESET_BASES
    assert siblings <= allowed, f"channels.{path.stem} imports {siblings - allowed}"
    assert imported_modules(path).isdisjoint({"wxcli.alerts.engine", "wxcli.alerts.dispatcher"})
