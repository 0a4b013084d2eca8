"""The [alert] section: validation with errors that name the key, time windows, built-in
rules, and in-place edits of wxcli.toml that keep the user's comments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from wxcli.alerts.settings import (
    AlertConfigFile,
    TimeWindows,
    load_alert_settings,
    parse_alert_settings,
    parse_rule,
)
from wxcli.config import load_config
from wxcli.errors import ConfigError

SH = ZoneInfo("Asia/Shanghai")
HOOK = {"type": "webhook", "url": "https://example.com/hook"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# --- time windows ------------------------------------------------------------------------------


def test_time_windows_days_overnight_and_contains():
    w = TimeWindows.parse("mon-fri 09:00-18:00, sat 10:00-14:00")
    assert w.contains(at("2026-03-09 09:00"), SH)  # Monday
    assert not w.contains(at("2026-03-09 18:00"), SH)  # end is exclusive
    assert w.contains(at("2026-03-14 13:59"), SH)  # Saturday
    assert not w.contains(at("2026-03-15 12:00"), SH)  # Sunday
    night = TimeWindows.parse("22:00-07:00")
    assert night.contains(at("2026-03-09 23:30"), SH)
    assert night.contains(at("2026-03-10 06:59"), SH)
    assert not night.contains(at("2026-03-10 07:00"), SH)
    weekend_night = TimeWindows.parse("fri 22:00-02:00")
    assert weekend_night.contains(at("2026-03-14 01:00"), SH)  # Saturday morning, from Friday
    assert not weekend_night.contains(at("2026-03-10 01:00"), SH)
    assert TimeWindows.parse("sat-sun 00:00-24:00").contains(at("2026-03-15 23:59"), SH)


def test_working_seconds_between_skip_nights_and_weekends():
    w = TimeWindows.parse("mon-fri 09:00-18:00")
    friday = at("2026-03-06 17:55")
    assert w.seconds_between(friday, at("2026-03-09 09:10"), SH) == 15 * 60
    assert w.seconds_between(at("2026-03-07 10:00"), at("2026-03-08 10:00"), SH) == 0
    assert w.seconds_between(at("2026-03-09 08:00"), at("2026-03-10 08:00"), SH) == 9 * 3600
    overlapping = TimeWindows.parse("09:00-12:00, 11:00-13:00")  # merged, not counted twice
    assert (
        overlapping.seconds_between(at("2026-03-09 00:00"), at("2026-03-10 00:00"), SH) == 4 * 3600
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("9-18", "cannot read"),
        ("09:00-09:00", "empty"),
        ("25:00-26:00", "impossible"),
        ("mon-fry 09:00-18:00", "unknown day"),
        (" , ", "no time window"),
    ],
)
def test_time_windows_errors(text, problem):
    with pytest.raises(ValueError, match=problem):
        TimeWindows.parse(text)


# --- validation --------------------------------------------------------------------------------


def section(**rules):
    return {"channels": {"ops": HOOK}, "rules": rules}


@pytest.mark.parametrize(
    ("rule", "key", "problem"),
    [
        ({"kind": "keywords", "words": ["x"]}, "alert.rules.r.kind", "not a rule kind"),
        ({"kind": "keyword"}, "alert.rules.r.pattern", "missing"),
        ({"kind": "keyword", "pattern": "("}, "alert.rules.r.pattern", "not a valid regular"),
        ({"kind": "keyword", "pattern": "x|"}, "alert.rules.r.pattern", "empty string"),
        ({"kind": "keyword", "words": ["x"], "chat": ["a"]}, "alert.rules.r.chat", "'chats'"),
        ({"kind": "keyword", "words": ["x"], "channels": ["opz"]}, "alert.rules.r.channels",
         "did you mean 'ops'"),
        ({"kind": "negative", "threshold": 3}, "alert.rules.r.threshold", "between 0 and 1"),
        ({"kind": "negative", "share": 0.4}, "alert.rules.r.window_minutes", "need a window"),
        ({"kind": "unanswered", "minutes": "15"}, "alert.rules.r.minutes", "must be a number"),
        ({"kind": "unanswered", "quiet_hours": "night"}, "alert.rules.r.quiet_hours",
         "cannot read"),
        ({"kind": "error", "sources": ["disk"]}, "alert.rules.r.sources", "not one of"),
        ({"kind": "watch_down", "severity": "high"}, "alert.rules.r.severity", "one of"),
    ],
)  # fmt: skip
def test_rule_errors_name_the_key(rule, key, problem):
    with pytest.raises(ConfigError, match=problem) as info:
        parse_alert_settings(section(r=rule), path="/etc/wxcli.toml")
    assert info.value.key == key
    assert str(info.value).startswith(f"/etc/wxcli.toml: {key}: ")


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"timezone": "Mars/Base"}, "alert.timezone"),
        ({"working_hours": "always"}, "alert.working_hours"),
        ({"qr_url_base": "ftp://x/"}, "alert.qr_url_base"),
        ({"staff": [""]}, "alert.staff"),
        ({"retries": 0}, "alert.retries"),
    ],
)
def test_scalar_errors_name_the_key(values, key):
    with pytest.raises(ConfigError) as info:
        parse_alert_settings(values)
    assert info.value.key == key


def test_names_must_be_unique_across_channels_and_rules():
    with pytest.raises(ConfigError, match="same name"):
        parse_alert_settings(section(ops={"kind": "session_lost"}))


def test_defaults_and_built_in_rules():
    s = parse_alert_settings({"channels": {"ops": HOOK}})
    assert [r.kind for r in s.rules] == ["session_lost", "login_needed", "watch_down", "error"]
    assert all(r.implicit and r.channels == () for r in s.rules)
    down = s.rules[2]
    assert (down.minutes, down.cooldown_seconds) == (10.0, 3600.0)
    assert parse_alert_settings({}).rules == []  # no channel: alerts are off
    assert not parse_alert_settings({}).enabled
    r = parse_rule("w", {"kind": "unanswered"})
    assert (r.minutes, r.cooldown_seconds) == (15.0, 4 * 86400)


def test_load_from_a_real_file_with_the_generic_loader(tmp_path):
    path = tmp_path / "wxcli.toml"
    path.write_text(
        """
[analysis]
negative_threshold = 0.25

[alert]
staff = ["客服-小王"]
working_hours = "09:00-18:00"
retry_seconds = 2

[alert.channels.ding]
type = "webhook"
url = "https://oapi.dingtalk.com/robot/send?access_token=x"
preset = "dingtalk"

[alert.rules.mood]
kind = "negative"
channels = ["ding"]
""",
        encoding="utf-8",
    )
    config = load_config(path)
    assert config.warnings == []
    s = load_alert_settings(config)
    assert s.staff == ("客服-小王",)
    assert s.retry_seconds == 2
    assert s.negative_threshold == 0.25
    assert s.in_working_hours(at("2026-03-09 10:00"))
    assert not s.in_working_hours(at("2026-03-09 19:00"))
    [mood] = s.rules
    assert mood.channels == ("ding",)
    assert s.working_seconds(at("2026-03-09 17:00"), at("2026-03-10 10:00")) == 2 * 3600


def test_no_working_hours_means_always():
    s = parse_alert_settings({})
    now = datetime.now(UTC)
    assert s.in_working_hours(now)
    assert s.working_seconds(now, now + timedelta(minutes=3)) == 180


# --- editing the file --------------------------------------------------------------------------

ORIGINAL = """\
# wxcli configuration — my notes stay here
[wechat]
login_url = "https://login.weixin.qq.com"  # the real one

[alert]
# how long a burst is collected
digest_seconds = 60
staff = ["客服-小王"]  # who answers customers

[alert.rules.complaints]  # keep this rule
kind = "keyword"
pattern = "退款|投诉"
"""


def test_edits_keep_comments_and_layout(tmp_path):
    path = tmp_path / "wxcli.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    f = AlertConfigFile(path)
    ding = {"type": "webhook", "url": "https://oapi.dingtalk.com/x", "preset": "dingtalk"}
    f.add_channel("ding", {**ding, "secret_env": "DING_SECRET", "timeout": 10.0})
    f.add_rule(
        "waiting",
        {"kind": "unanswered", "channels": ["ding"], "chats": ["客服*"], "minutes": 15.0},
    )
    f.save()
    text = path.read_text(encoding="utf-8")
    assert text.startswith(ORIGINAL)  # every original line, comment and blank is untouched
    assert "[alert.channels.ding]" in text
    assert 'secret_env = "DING_SECRET"' in text
    assert "minutes = 15\n" in text  # written as a person would
    assert "timeout = 10\n" in text
    config = load_config(path)
    s = load_alert_settings(config)
    assert [r.name for r in s.rules] == ["complaints", "waiting"]
    # Removing puts the file back as it was.
    f = AlertConfigFile(path)
    f.remove("waiting")
    f.remove("ding")
    f.save()
    assert path.read_text(encoding="utf-8").rstrip() == ORIGINAL.rstrip()


def test_edits_are_validated_before_anything_is_written(tmp_path, monkeypatch):
    path = tmp_path / "wxcli.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    f = AlertConfigFile(path)
    with pytest.raises(ConfigError, match="do not put the password"):
        f.add_channel("mail", {"type": "email", "host": "h", "sender": "a@b.c", "to": ["x@y.z"],
                               "password": "hunter2"})  # fmt: skip
    with pytest.raises(ConfigError, match=r"alert\.channels\.hook\.url"):
        f.add_channel("hook", {"type": "webhook", "url": "file:///etc/passwd"})
    with pytest.raises(ConfigError, match="no channel named 'nope'"):
        f.add_rule("r", {"kind": "keyword", "words": ["x"], "channels": ["nope"]})
    with pytest.raises(ConfigError, match="exists already"):
        f.add_rule("complaints", {"kind": "keyword", "words": ["x"]})
    with pytest.raises(ConfigError, match="not allowed"):
        f.add_rule("a.b", {"kind": "keyword", "words": ["x"]})
    with pytest.raises(ConfigError, match=r"no channel or rule named 'complaint'.*'complaints'"):
        f.remove("complaint")
    assert path.read_text(encoding="utf-8") == ORIGINAL
    # A secret that is not set here is fine when adding (it is set where wxcli runs).
    monkeypatch.delenv("DING_SECRET", raising=False)
    f.add_channel("ding", {"type": "webhook", "url": "https://x/y", "secret_env": "DING_SECRET"})
    f.add_rule("complaints", {"kind": "keyword", "words": ["差评"], "channels": ["ding"]},
               replace=True)  # fmt: skip
    with pytest.raises(ConfigError, match="used by rule"):
        f.remove("ding")


def test_a_new_file_is_created_private(tmp_path):
    path = tmp_path / "sub" / "wxcli.toml"
    f = AlertConfigFile(path)
    f.add_channel("ops", {"type": "wechat", "to": "filehelper"})
    f.save()
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_alert_settings(load_config(path)).channels == {
        "ops": {"type": "wechat", "to": "filehelper"}
    }
