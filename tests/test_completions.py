"""The committed shell completions match what the current CLI generates."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_current(shell):
    env = dict(os.environ, _WXCLI_COMPLETE=f"{shell}_source")
    out = subprocess.run(
        [sys.executable, "-m", "wxcli"], env=env, capture_output=True, text=True, check=True
    ).stdout
    committed = (REPO / "completions" / f"wxcli.{shell}").read_text(encoding="utf-8")
    assert committed == out, (
        f"completions/wxcli.{shell} is stale: regenerate with "
        f"_WXCLI_COMPLETE={shell}_source wxcli > completions/wxcli.{shell}"
    )


def test_completion_offers_subcommands():
    env = dict(os.environ, _WXCLI_COMPLETE="bash_complete", COMP_WORDS="wxcli st", COMP_CWORD="1")
    out = subprocess.run(
        [sys.executable, "-m", "wxcli"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "plain,stats" in out and "plain,status" in out
