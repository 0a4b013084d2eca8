"""The CLI is documented: every command has help, is in the README, and `--help` stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from wxcli.cli import COMMANDS, cli

REPO = Path(__file__).resolve().parent.parent
HEAVY = (
    "jieba",
    "snownlp",
    "oss2",
    "peewee",
    "waitress",
    "tomlkit",
    "wxcli.store",
    "wxcli.simulator",
)


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), (*path, name))


def all_commands():
    return [(" ".join(p), c) for p, c in walk(cli) if p]


@pytest.mark.parametrize(("name", "command"), all_commands(), ids=lambda x: str(x))
def test_every_command_has_help(name, command):
    assert (command.help or "").strip(), f"`wxcli {name}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert (param.help or "").strip(), f"`wxcli {name} {param.opts[0]}` has no help"


def test_every_command_is_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert f"wxcli {name}" in readme, f"`wxcli {name}` is not mentioned in README.md"


@pytest.mark.parametrize("argv", [["--help"], ["send", "--help"], ["status", "--help"]])
def test_help_does_not_import_heavy_modules(argv):
    code = (
        "import sys, json\n"
        "from wxcli.cli import run\n"
        f"run({argv!r})\n"
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"`wxcli {' '.join(argv)}` imported {loaded}"


def test_only_the_cli_package_imports_click():
    offenders = []
    for path in (REPO / "wxcli").rglob("*.py"):
        if "cli" in path.relative_to(REPO / "wxcli").parts[:1]:
            continue
        text = path.read_text(encoding="utf-8")
        if "import click" in text or "from click" in text:
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []
