"""`wxcli keepalive`: with and without a running watch, hooks, recording, --ping, exit codes."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.send import logged_in, run_cli
from wxcli import keepalive as ka
from wxcli.fileutil import PidLock
from wxcli.health import Health, write_health
from wxcli.session import SessionStore


@pytest.fixture
def profile(sim, wx_home):
    return logged_in(sim, wx_home, wechat={"login_url": sim.base_url, "retries": 0})


class Hooks:
    def __init__(self) -> None:
        self.lost: list[tuple[int, str]] = []
        self.down: list[float | None] = []

    def session_lost(self, code: int, meaning: str) -> None:
        self.lost.append((code, meaning))

    def watch_down(self, age: float | None) -> None:
        self.down.append(age)


def check(profile, hooks: Hooks | None = None, **kw):
    hooks = hooks or Hooks()
    return ka.keepalive(
        profile.paths,
        profile.config,
        on_session_lost=hooks.session_lost,
        on_watch_down=hooks.watch_down,
        **kw,
    )


def records(profile) -> list[dict]:
    path = ka.log_path(profile.paths)
    return [json.loads(line) for line in path.read_text().splitlines()]


def synccheck_count(sim) -> int:
    return len(sim.control.requests("synccheck"))


@pytest.fixture
def watch(profile):
    """Pretend a watch runs: hold its lock and let the test write health records."""
    lock = PidLock(profile.paths.watch_lock)
    assert lock.acquire()
    yield lock
    lock.release()


def test_alive_without_watch_uses_a_probe(profile):
    before = synccheck_count(profile.sim)
    result = check(profile)
    assert (result.alive, result.source, result.exit_code) == (True, "probe", 0)
    assert synccheck_count(profile.sim) == before + 1
    [rec] = records(profile)
    assert rec["alive"] is True
    assert rec["source"] == "probe"
    assert stat.S_IMODE(ka.log_path(profile.paths).stat().st_mode) == 0o600


def test_probe_leaves_the_sync_position_alone(profile):
    before = SessionStore(profile.paths).load().sync_key
    check(profile)
    assert SessionStore(profile.paths).load().sync_key == before
    assert profile.sim.control.requests("webwxsync") == []


def test_running_watch_answers_from_its_health_record(profile, watch):
    write_health(profile.paths.health, Health(state="running", last_sync_at="x"))
    before = synccheck_count(profile.sim)
    hooks = Hooks()
    result = check(profile, hooks)
    assert (result.alive, result.source, result.watch_running) == (True, "watch", True)
    assert result.watch_stale is False
    assert hooks.down == []
    assert synccheck_count(profile.sim) == before  # no second long poll on the session


def test_watch_reports_session_lost_and_the_hook_fires_once(profile, watch):
    write_health(profile.paths.health, Health(state="session_lost", session_code=1101))
    hooks = Hooks()
    first = check(profile, hooks)
    assert (first.alive, first.code, first.exit_code, first.alerted) == (False, 1101, 3, True)
    assert hooks.lost == [(1101, ka.SESSION_CODE_MEANINGS[1101])]
    second = check(profile, hooks)
    assert second.alive is False
    assert second.alerted is False
    assert len(hooks.lost) == 1  # cron every 5 minutes does not repeat the alert


def test_stale_health_record_falls_back_to_a_probe(profile, watch):
    write_health(profile.paths.health, Health(state="running"))
    data = json.loads(profile.paths.health.read_text())
    data["updated_at"] = (datetime.now(UTC) - timedelta(minutes=30)).isoformat()
    profile.paths.health.write_text(json.dumps(data))
    hooks = Hooks()
    result = check(profile, hooks)
    assert (result.alive, result.source, result.watch_stale) == (True, "probe", True)
    assert hooks.down
    assert hooks.down[0] > 25 * 60


def test_expired_session_without_watch(profile):
    profile.sim.control.logout(1100)
    hooks = Hooks()
    result = check(profile, hooks)
    assert (result.alive, result.code, result.source, result.exit_code) == (False, 1100, "probe", 3)
    assert hooks.lost == [(1100, ka.SESSION_CODE_MEANINGS[1100])]
    assert SessionStore(profile.paths).load().alive is False
    # Next run: known from the session file, no alert again.
    again = check(profile, hooks)
    assert (again.alive, again.source) == (False, "session file")
    assert len(hooks.lost) == 1


def test_alert_again_after_a_new_login(profile):
    from wxcli import account

    hooks = Hooks()
    profile.sim.control.logout(1101)
    check(profile, hooks)
    account.login(profile.paths, profile.config)
    assert check(profile, hooks).alive is True
    profile.sim.control.logout(1101)
    check(profile, hooks)
    assert [code for code, _ in hooks.lost] == [1101, 1101]


def test_a_failing_hook_does_not_hide_the_result(profile, caplog):
    profile.sim.control.logout(1101)

    def broken(code: int, meaning: str) -> None:
        raise RuntimeError("smtp down")

    result = ka.keepalive(profile.paths, profile.config, on_session_lost=broken)
    assert result.alive is False
    assert result.exit_code == 3
    assert "hook failed" in caplog.text
    assert records(profile)[-1]["alive"] is False


def test_not_logged_in(wx_home):
    from wxcli.config import defaults
    from wxcli.paths import ProfilePaths

    hooks = Hooks()
    result = ka.keepalive(
        ProfilePaths("default", wx_home), defaults(), on_session_lost=hooks.session_lost
    )
    assert (result.alive, result.logged_in, result.exit_code) == (False, False, 3)
    assert hooks.lost == []


def test_network_trouble_is_exit_5(profile):
    profile.sim.control.fault("drop", "synccheck", times=5)
    result = check(profile)
    assert result.alive is None
    assert result.exit_code == 5


def test_ping_goes_to_file_transfer_through_the_pacer(profile):
    result = check(profile, ping=True, ping_text="keepalive")
    assert result.alive is True
    assert result.ping_msg_id
    [sent] = profile.sim.control.sent()
    assert (sent["to_user_name"], sent["text"]) == ("filehelper", "keepalive")
    assert json.loads(profile.paths.pacer_state.read_text())["sent"] == 1


def test_ping_is_skipped_when_expired(profile):
    profile.sim.control.logout(1101)
    result = check(profile, ping=True)
    assert result.alive is False
    assert result.ping_msg_id == ""
    assert profile.sim.control.sent() == []


def test_failed_ping_sets_the_exit_status(profile):
    profile.sim.control.fault("ret", "webwxsendmsg", code=1204)
    result = check(profile, ping=True)
    assert result.alive is True
    assert result.ping_error
    assert result.exit_code == 4


def test_log_is_trimmed(profile, monkeypatch):
    monkeypatch.setattr(ka, "LOG_MAX_BYTES", 2000)
    monkeypatch.setattr(ka, "LOG_KEEP_LINES", 3)
    for _ in range(12):
        ka.append_record(ka.log_path(profile.paths), {"alive": True, "pad": "x" * 200})
    kept = records(profile)
    assert 3 <= len(kept) < 12  # trimmed to the last 3 once over 2000 bytes, then appended
    assert ka.log_path(profile.paths).stat().st_size <= 2000 + 300


def test_cli(profile):
    p = run_cli(profile, "keepalive")
    assert p.returncode == 0, p.stderr
    assert "alive" in p.stdout
    p = run_cli(profile, "keepalive", "--ping", "--json")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["alive"] is True
    assert out["ping_msg_id"]
    profile.sim.control.logout(1102)
    p = run_cli(profile, "keepalive")
    assert p.returncode == 3
    assert "1102" in p.stdout
    assert "wxcli login" in p.stdout
    assert "session has ended" in p.stderr  # the default hook: an error in the log
    p = run_cli(profile, "keepalive", "--quiet")
    assert p.returncode == 3
    assert p.stdout == ""


def test_cli_with_watch_running(profile, watch):
    write_health(profile.paths.health, Health(state="running"))
    p = run_cli(profile, "keepalive")
    assert p.returncode == 0, p.stderr
    assert "from watch" in p.stdout
    assert "watch pid" in p.stdout
