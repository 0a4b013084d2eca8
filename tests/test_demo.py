"""`wxcli demo` end to end: simulator, login, watch, analysis, alerts, summary."""

from __future__ import annotations

import shutil

import pytest

from wxcli.cli import run


@pytest.mark.slow
def test_demo_archives_analyses_and_alerts(wx_home, analysis_cache, capsys):
    # Reuse the session's model caches (the first build of the sentiment tables takes ~10 s).
    shutil.copytree(analysis_cache, wx_home / "cache", dirs_exist_ok=True)
    code = run(["demo", "--duration", "12", "--rate", "6"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "Archived" in out.out and "Top words" in out.out
    assert "Alerts:" in out.out and "session_lost 1" in out.out and "keyword" in out.out
    db = wx_home / "demo" / "wxcli.db"
    assert db.exists()
    # Afterwards the read commands show the demo archive until a real one exists.
    assert run(["history", "--json", "--limit", "3"]) == 0
    history = capsys.readouterr()
    assert history.out.count("\n") == 3 and "demo archive" in history.err
    assert run(["alert", "history", "--json"]) == 0
    assert "session_lost" in capsys.readouterr().out
