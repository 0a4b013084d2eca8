"""`wxcli alert …` in-process against real local servers, plus the wiring of alerts into
`wxcli watch` and `wxcli keepalive`."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.send import logged_in
from tests.helpers.servers import SMTPServer, WebhookReceiver, dingtalk_responder, free_port
from wxcli.alerts.history import AlertHistoryStore
from wxcli.health import Health, write_health
from wxcli.store.archive import Archive

COMMENTED = """\
# my wxcli settings
[alert]
digest_seconds = 0  # no digests in tests
retry_seconds = 0.01
"""


@pytest.fixture
def config_file(wx_home):
    path = wx_home / "wxcli.toml"
    path.write_text(COMMENTED, encoding="utf-8")
    return path


def test_add_list_remove_round_trip_keeps_comments(capsys, config_file, monkeypatch):
    monkeypatch.setenv("WX_DING", "SEC")
    code, out, err = run_cli(
        capsys, "alert", "add-channel", "webhook", "ding", "--preset", "dingtalk",
        "--url", "https://oapi.dingtalk.com/robot/send?access_token=t", "--secret-env", "WX_DING",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "Channel 'ding' saved" in out
    code, out, err = run_cli(
        capsys, "alert", "add-channel", "email", "mail", "--host", "smtp.example.com",
        "--sender", "wxcli <bot@example.com>", "--to", "a@example.com", "--to", "b@example.com",
        "--username", "bot", "--password-env", "WX_SMTP_UNSET",
    )  # fmt: skip
    assert code == 0
    assert "WX_SMTP_UNSET is not set here" in err
    code, out, _ = run_cli(
        capsys, "alert", "add-rule", "keyword", "complaints", "--channel", "ding",
        "--chat", "客服*", "--pattern", "退款|投诉|差评", "--quiet-hours", "23:00-07:00",
    )  # fmt: skip
    assert code == 0
    assert "Rule 'complaints' (keyword → ding)" in out
    code, out, _ = run_cli(
        capsys, "alert", "add-rule", "unanswered", "waiting", "--minutes", "20", "--staff", "小王"
    )
    assert code == 0
    assert "every channel" in out
    text = config_file.read_text(encoding="utf-8")
    assert text.startswith(COMMENTED)
    assert 'pattern = "退款|投诉|差评"' in text
    assert "minutes = 20\n" in text

    code, out, _ = run_cli(capsys, "alert", "list")
    assert code == 0
    assert "ding  webhook  DingTalk robot at oapi.dingtalk.com" in out
    assert "email to a@example.com, b@example.com via smtp.example.com:587" in out
    assert "[env var WX_SMTP_UNSET is not set]" in out
    assert "complaints  keyword" in out
    assert "pattern /退款|投诉|差评/" in out
    assert "quiet 23:00-07:00" in out
    code, out, _ = run_cli(capsys, "alert", "list", "--json")
    data = json.loads(out)
    assert [r["name"] for r in data["rules"]] == ["complaints", "waiting"]
    assert data["rules"][1]["channels"] == ["(all)"]
    assert "access_token" not in json.dumps(data)  # the robot's token is never shown

    code, _, err = run_cli(capsys, "alert", "remove", "ding")
    assert code == 2
    assert "used by rule(s) complaints" in err
    for name in ("complaints", "waiting", "ding", "mail"):
        assert run_cli(capsys, "alert", "remove", name)[0] == 0
    assert config_file.read_text(encoding="utf-8").rstrip() == COMMENTED.rstrip()


def test_bad_rule_options_are_refused_with_the_key(capsys, config_file):
    code, _, err = run_cli(capsys, "alert", "add-rule", "negative", "mood", "--pattern", "x")
    assert code == 2
    assert "alert.rules.mood.pattern: unknown key" in err
    code, _, err = run_cli(capsys, "alert", "add-rule", "keyword", "kw", "--pattern", "(")
    assert code == 2
    assert "not a valid regular expression" in err
    assert config_file.read_text(encoding="utf-8") == COMMENTED


def test_alert_test_reports_success_and_the_exact_failure(capsys, config_file, wx_home):
    Archive(f"sqlite:///{wx_home / 'wxcli.db'}", wx_home).close()  # an archive exists
    dead = free_port()
    with SMTPServer() as smtp, WebhookReceiver(responder=dingtalk_responder("SEC")) as hook:
        for args in (
            ["email", "mail", "--host", smtp.host, "--port", str(smtp.port), "--security",
             "none", "--sender", "bot@example.com", "--to", "ops@example.com"],
            ["webhook", "ding", "--preset", "dingtalk", "--url", hook.url, "--secret-env",
             "WX_DING_SECRET"],
            ["email", "down", "--host", "127.0.0.1", "--port", str(dead), "--security", "none",
             "--sender", "bot@example.com", "--to", "ops@example.com"],
        ):  # fmt: skip
            assert run_cli(capsys, "alert", "add-channel", *args)[0] == 0
        code, out, err = run_cli(capsys, "alert", "test", "mail")
        assert code == 0
        assert out.startswith("mail: delivered in ")
        [msg] = smtp.wait_for(1)
        assert msg["X-Wxcli-Kind"] == "test"
        code, out, err = run_cli(capsys, "alert", "test")
        assert code == 1
        # The secret env var is not set: this channel cannot even be built.
        assert "ding: FAILED: " in err
        assert "environment variable WX_DING_SECRET" in err
        assert f"down: FAILED: connection refused to 127.0.0.1:{dead}" in err
        assert "mail: delivered" in out
        assert "NOT delivered" not in err  # the failure is reported once, not logged again
        code, _, err = run_cli(capsys, "alert", "test", "nope")
        assert code == 2
        assert "no channel named 'nope'" in err
    code, out, _ = run_cli(capsys, "alert", "history", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["channel"], r["status"]) for r in rows] == [
        ("mail", "delivered"),
        ("mail", "delivered"),
        ("down", "failed"),
    ]
    assert rows[2]["error"] == f"connection refused to 127.0.0.1:{dead}"
    code, out, _ = run_cli(capsys, "alert", "history", "--status", "failed")
    assert code == 0
    assert "connection refused" in out
    assert "down" in out


def test_alert_test_without_channels_says_how_to_add_one(capsys, config_file):
    code, _, err = run_cli(capsys, "alert", "test")
    assert code == 2
    assert "wxcli alert add-channel" in err


def test_watch_command_raises_alerts(capsys, sim, wx_home):
    profile = logged_in(sim, wx_home)
    with WebhookReceiver() as hook:
        path = wx_home / "wxcli.toml"
        path.write_text(
            path.read_text()
            + f"""
[alert]
digest_seconds = 0

[alert.channels.hook]
type = "webhook"
url = "{hook.url}"

[alert.rules.kw]
kind = "keyword"
words = ["投诉"]
""",
            encoding="utf-8",
        )
        sim.control.message(group="云帆Pro客服1群", sender="张伟", content="我要投诉！")
        code, _, err = run_cli(capsys, "watch", "--duration", "1.5", "--no-analysis", "--no-media")
        assert code == 0, err
        [post] = hook.requests  # delivered before watch returned
    assert post.json["fields"]["matched"] == "投诉"
    store = AlertHistoryStore(Archive(f"sqlite:///{profile.paths.default_db}", wx_home))
    assert [(r.rule, r.status) for r in store.query()] == [("kw", "delivered")]
    store.archive().close()


def test_keepalive_alerts_once_on_session_loss_and_when_watch_is_down(capsys, sim, wx_home):
    profile = logged_in(sim, wx_home, wechat={"login_url": sim.base_url, "retries": 0})
    Archive(f"sqlite:///{profile.paths.default_db}", wx_home).close()
    with SMTPServer() as smtp:
        path = wx_home / "wxcli.toml"
        path.write_text(
            path.read_text()
            + f"""
[alert]
digest_seconds = 0

[alert.channels.mail]
type = "email"
host = "{smtp.host}"
port = {smtp.port}
security = "none"
sender = "bot@example.com"
to = ["ops@example.com"]
""",
            encoding="utf-8",
        )
        assert run_cli(capsys, "keepalive")[0] == 0
        assert smtp.messages == []
        sim.control.logout(1100)
        code, out, _ = run_cli(capsys, "keepalive")
        assert code == 3
        [msg] = smtp.wait_for(1)
        assert msg["Subject"] == "[wxcli] default: WeChat session lost (1100)"
        assert "noticed by:" in msg.get_body(("plain",)).get_content()
        assert run_cli(capsys, "keepalive")[0] == 3
        # A watch that died without a clean stop leaves a "running" health record behind.
        write_health(profile.paths.health, Health(pid=999999, state="running", started_at="x"))
        run_cli(capsys, "keepalive")
        mails = smtp.wait_for(2)
    assert len(mails) == 2  # the session loss was alerted once
    assert mails[1]["Subject"] == "[wxcli] default: watch is down"
    assert "crashed or killed" in mails[1].get_body(("plain",)).get_content()
    store = AlertHistoryStore(Archive(f"sqlite:///{profile.paths.default_db}", wx_home))
    assert [r.rule for r in store.query()] == ["session_lost", "watch_down"]
    store.archive().close()


def test_every_alert_command_and_option_has_help():
    import click

    from wxcli.cli.alert import alert

    def walk(cmd, path):
        assert cmd.help, f"{path} has no help text"
        for param in cmd.params:
            if isinstance(param, click.Option):
                assert param.help, f"{path} {param.opts[0]} has no help text"
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}")

    walk(alert, "wxcli alert")
