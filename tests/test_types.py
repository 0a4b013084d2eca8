"""The type checker is part of the test suite: ``python -m pytest`` fails when mypy does.

The configuration is ``[tool.mypy]`` in pyproject.toml (strict for the protocol, the client,
the session file and the store). mypy's incremental cache lives in pytest's cache directory,
so a second run re-checks only what changed (about a second instead of ten).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_passes(pytestconfig, tmp_path_factory):
    cache = pytestconfig.cache
    cache_dir = cache.mkdir("mypy") if cache is not None else tmp_path_factory.mktemp("mypy")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache_dir),
            "--no-error-summary",
            "wxcli",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # (no mypy at all fails too: it is in the dev extras, which the README's test command installs)
    assert proc.returncode == 0, f"mypy found problems:\n{proc.stdout}{proc.stderr}"
