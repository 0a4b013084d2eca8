"""Every command at ``-vv`` against the simulator, with known secrets configured: none of them
(session credentials and cookies, robot tokens and signing secrets, SMTP password) appears in
what the user sees or what the log handler writes."""

from __future__ import annotations

import json

from tests.helpers.cli import run_cli
from tests.helpers.servers import SMTPServer, WebhookReceiver, dingtalk_responder
from tests.test_cli_account import FAST_TOML
from tests.test_cli_account import module_sim as module_sim
from tests.test_cli_account import sim as sim
from wxcli.logutil import redact
from wxcli.paths import ProfilePaths

DING_TOKEN = "d1n9t0kenABCDEF0123456789abcdef"
DING_SECRET = "SEC0123456789abcdef0123456789abcdef0123456789abcdef"
SMTP_PASSWORD = "hunter2-smtp-pw"
OSS_SECRET = "oss-AccessKeySecret-zzz999"

SESSION_SECRET_KEYS = {"skey", "sid", "wxsid", "pass_ticket", "webwx_data_ticket", "uin", "wxuin"}


def _session_secrets(home) -> dict[str, str]:
    """Values of the credential fields and cookies of the profile's session file."""
    data = json.loads(ProfilePaths("default", home).session.read_text("utf-8"))
    found: dict[str, str] = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("name") in SESSION_SECRET_KEYS and "value" in node:  # a cookie
                found[f"cookie {node['name']}"] = str(node["value"])
            for key, value in node.items():
                if key in SESSION_SECRET_KEYS and isinstance(value, (str, int)):
                    found[key] = str(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(data)
    return {k: v for k, v in found.items() if len(v) >= 4}


def test_no_secret_reaches_the_output_of_any_command_at_vv(sim, wx_home, capsys, monkeypatch):
    monkeypatch.setenv("WX_DING_SECRET", DING_SECRET)
    monkeypatch.setenv("WX_SMTP_PW", SMTP_PASSWORD)
    monkeypatch.setenv("WXCLI_OSS_SECRET", OSS_SECRET)
    with (
        SMTPServer() as smtp,
        WebhookReceiver(responder=dingtalk_responder(DING_SECRET), path="/robot/send") as hook,
    ):
        (wx_home / "wxcli.toml").write_text(
            FAST_TOML
            + f"""
[alert.channels.ding]
type = "webhook"
preset = "dingtalk"
url = "{hook.url}?access_token={DING_TOKEN}"
secret_env = "WX_DING_SECRET"

[alert.channels.mail]
type = "email"
host = "{smtp.host}"
port = {smtp.port}
security = "none"
sender = "bot@example.com"
to = ["ops@example.com"]
username = "bot"
password_env = "WX_SMTP_PW"
""",
            encoding="utf-8",
        )
        outputs: dict[str, str] = {}
        code, out, err = run_cli(capsys, "-vv", "login", "--no-qr")
        assert code == 0, err
        outputs["login"] = out + err
        secrets = _session_secrets(wx_home)
        assert {"skey", "sid", "pass_ticket"} <= set(secrets), secrets
        for args in (
            ["status"],
            ["contacts"],
            ["send", "text", "--to", "filehelper", "hello"],
            ["keepalive", "--ping"],
            ["watch", "--once", "--no-analysis", "--no-media"],
            ["alert", "list"],
            ["alert", "test"],
            ["logout"],
        ):
            code, out, err = run_cli(capsys, "-vv", *args)
            outputs[" ".join(args)] = out + "\n" + err
        # -vv really logged the traffic (urllib3 logs full URLs with skey and pass_ticket).
        assert (
            "DEBUG urllib3" in outputs["login"]
            and "DEBUG" in outputs["watch --once --no-analysis --no-media"]
        )
        assert (
            hook.requests and hook.requests[0].query["access_token"] == DING_TOKEN
        )  # the token was really used

    known = dict(secrets)
    known.update(ding_token=DING_TOKEN, ding_secret=DING_SECRET, smtp=SMTP_PASSWORD, oss=OSS_SECRET)
    uin = known.pop("uin", None)
    for key in [k for k in known if k.endswith("uin")]:
        known.pop(key)
    for command, text in outputs.items():
        for what, value in known.items():
            assert value not in text, f"{what} appears in the output of `wxcli -vv {command}`"
        # The uin is shown on purpose (`Logged in as … (uin N)`, `status`), never as a credential.
        if uin:
            for shape in (f"uin={uin}", f"wxuin={uin}", f"Uin%22%3A{uin}"):
                assert shape not in text, f"{shape} in the output of `wxcli -vv {command}`"


def test_redact_covers_every_secret_shape():
    cases = {
        "GET /cgi-bin/mmwebwx-bin/webwxinit?r=1&skey=@crypt_1a2b_3c&pass_ticket=P%2BT": "P%2BT",
        "Cookie: wxsid=abcd; wxuin=123456; webwx_data_ticket=gSdata": "gSdata",
        "https://oapi.dingtalk.com/robot/send?access_token=tok123456&sign=s1gn%3D": "tok123456",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693axxx-uuid": "693axxx-uuid",
        "https://open.feishu.cn/open-apis/bot/v2/hook/2c9a11ee-feishu": "2c9a11ee-feishu",
        "Authorization: Bearer app1:AppKeyAppKey": "AppKeyAppKey",
        "X-Signature: 9f86d081884c7d65": "9f86d081884c7d65",
        "X-Wxcli-Signature: sha256=9f86d081884c7d659a2feaa0c55ad015": "9f86d081884c7d659a2",
        '{"password": "smtp-pw-1"}': "smtp-pw-1",
        "Authorization: OSS LTAIid:c2lnbmF0dXJl": "c2lnbmF0dXJl",
        "secret SEC0123456789abcdef0123456789abcdef quoted": "SEC0123456789abcdef0123",
        "<error><ret>0</ret><skey>@crypt_9f</skey><wxsid>wxs1d</wxsid>": "wxs1d",
        "webwxnewloginpage?ticket=AbCdEf_ticket&uuid=x": "AbCdEf_ticket",
    }
    for line, secret in cases.items():
        assert secret not in redact(line), line
    assert "hunter2" not in redact("login failed for hunter2!", ["hunter2"])
    assert redact("monkey=3 sort_key=1 uinfo") == "monkey=3 sort_key=1 uinfo"  # names, not parts
