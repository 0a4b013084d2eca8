"""`wxcli watch` as a new user runs it: no wxcli.toml at all, the analysis worker process it
starts must still find the archive and count words (it used to exit at once with
"wxcli.toml: file not found", so nothing was ever analysed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from tests.helpers.cli import REPO, wxcli_process
from tests.helpers.known_archive import shared_engines
from tests.helpers.waiting import wait_until


def test_watch_without_a_config_file_analyses_what_it_stores(sim, tmp_path, request, monkeypatch):
    monkeypatch.delenv("WXCLI_CONFIG", raising=False)
    home = tmp_path / "home"
    shared_engines(request, tmp_path).seed_home(home)  # jieba and sentiment caches: fast start
    env = {"WXCLI_HOME": str(home), "WXCLI_LOGIN_URL": sim.base_url}
    sim.control.auto_confirm(True)
    login = wxcli_process("login", env=env)
    assert login.returncode == 0, login.stderr
    assert not (home / "wxcli.toml").exists()
    full_env = dict(os.environ) | env
    watch = subprocess.Popen(
        [sys.executable, "-m", "wxcli", "watch", "--no-media"],
        env=full_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for i in range(5):
            sim.control.message(group="云帆Pro客服1群", sender="张伟", content=f"退款 发货 第{i}次")

        def counted() -> bool:
            out = wxcli_process("stats", "words", "--format", "json", env=env)
            return out.returncode == 0 and "退款" in out.stdout

        wait_until(counted, timeout=60, interval=0.5, message="words counted by watch's worker")
    finally:
        watch.send_signal(signal.SIGTERM)
        _, err = watch.communicate(timeout=30)
    assert "file not found" not in err, err
    out = wxcli_process("stats", "words", "--format", "json", env=env).stdout
    words = {w["word"]: w["count"] for w in map(json.loads, out.splitlines())}
    assert words["退款"] == 5 and words["发货"] == 5
