"""Alert channels against real local servers: SMTP (plain/STARTTLS/SSL, AUTH), robot webhooks."""

from __future__ import annotations

import hashlib
import hmac
import logging
import shutil
import time
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from tests.servers import (
    Reply,
    SilentServer,
    SMTPServer,
    WebhookReceiver,
    dingtalk_expected_sign,
    dingtalk_responder,
    feishu_expected_sign,
    feishu_responder,
    free_port,
    make_tls_files,
    verify_generic_signature,
    wecom_responder,
)
from wxcli.alerts.channels import (
    DINGTALK_MAX_TEXT_BYTES,
    FEISHU_MAX_BODY_BYTES,
    TRUNCATED,
    WECHAT_MAX_CHARS,
    WECOM_MAX_CONTENT_BYTES,
    EmailChannel,
    WebhookChannel,
    WeChatChannel,
    build_channel,
)
from wxcli.alerts.model import Alert, Attachment
from wxcli.errors import AlertError, ConfigError, NetworkError

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\x00IEND"
PASSWORD = "s3cret-pässword"
ENV = {"WX_SMTP_PW": PASSWORD}
#: A failure must be reported within this many seconds, with timeouts set well under it.
QUICK = 3.0


def make_alert(**overrides) -> Alert:
    values = dict(
        kind="keyword",
        title="[wxcli] 客服群1: keyword 退款",
        text="客户: 我要退款！\n第二行 <script>alert(1)</script>",
        fields={
            "chat": "客服群1",
            "sender": "张三 <zhang@example.com>",
            "message": "<b>退款</b> & 投诉",
        },
        created_at=datetime(2025, 3, 1, 8, 30, tzinfo=UTC),
        key="keyword:客服群1:退款",
    )
    values.update(overrides)
    return Alert(**values)


def login_alert(**overrides) -> Alert:
    values = dict(
        kind="login_needed",
        title="[wxcli] session lost: scan to log in",
        text="The WeChat session ended (1101).",
        attachments=[Attachment("登录二维码.png", PNG, "image/png")],
    )
    values.update(overrides)
    return make_alert(**values)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def email_spec(server: SMTPServer, **overrides) -> dict:
    spec = {
        "type": "email",
        "host": server.host,
        "port": server.port,
        "security": "none",
        "sender": "wxcli@example.com",
        "to": ["ops@example.com", "boss@example.com"],
        "timeout": 5,
    }
    spec.update(overrides)
    return spec


def parts_of(msg: EmailMessage) -> tuple[str, str, list[EmailMessage]]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content(), list(msg.iter_attachments())


# --- email -----------------------------------------------------------------------------------


def test_email_plain_smtp_delivers_full_message():
    with SMTPServer() as server:
        channel = build_channel("mail", email_spec(server), ENV)
        channel.send(login_alert())
        [msg] = server.wait_for(1)
        [env] = server.envelopes

    assert env.rcpt_tos == ["ops@example.com", "boss@example.com"]
    assert env.mail_from == "wxcli@example.com"
    assert env.login is None
    assert env.tls is False
    assert str(msg["Subject"]) == "[wxcli] session lost: scan to log in"
    assert msg["From"] == "wxcli@example.com"
    assert msg["To"] == "ops@example.com, boss@example.com"
    assert msg["Date"].datetime.tzinfo is not None
    assert msg["Message-ID"].startswith("<")
    assert msg["Message-ID"].endswith("@example.com>")
    assert msg["X-Wxcli-Kind"] == "login_needed"
    assert msg.get_content_type() == "multipart/mixed"
    assert [p.get_content_type() for p in msg.iter_parts()] == [
        "multipart/alternative",
        "image/png",
    ]
    text, html, attachments = parts_of(msg)
    assert "The WeChat session ended (1101)." in text
    assert "The QR code is attached (登录二维码.png)." in text
    assert "wxcli login" in text
    [att] = attachments
    assert att.get_filename() == "登录二维码.png"
    assert att.get_content_type() == "image/png"
    assert att.get_content() == PNG
    assert "wxcli login" in html


def test_email_subject_is_encoded_utf8_and_html_escapes_every_field():
    with SMTPServer() as server:
        build_channel("mail", email_spec(server), ENV).send(make_alert())
        [msg] = server.wait_for(1)

    # On the wire the Chinese subject is RFC 2047 encoded; parsed back it is exact.
    raw = msg.as_bytes()
    assert "客服群1".encode() not in raw.split(b"\n\n", 1)[0]
    assert b"=?utf-8?" in raw.split(b"\n\n", 1)[0].lower()
    assert str(msg["Subject"]) == "[wxcli] 客服群1: keyword 退款"
    text, html, attachments = parts_of(msg)
    assert attachments == []
    assert "message: <b>退款</b> & 投诉" in text
    assert "<script>" in text  # plain text shows the customer's words as they are
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<td" in html
    assert "&lt;b&gt;退款&lt;/b&gt; &amp; 投诉" in html
    assert "张三 &lt;zhang@example.com&gt;" in html
    assert "<b>" not in html


def test_email_links_the_qr_image_url():
    url = 'https://qr.example.com/qr.png?a=1&b="x"'
    with SMTPServer() as server:
        build_channel("mail", email_spec(server), ENV).send(login_alert(image_url=url))
        [msg] = server.wait_for(1)
    text, html, attachments = parts_of(msg)
    assert "QR code: https://qr.example.com/qr.png?a=1&b=%22x%22" in text
    assert '<img src="https://qr.example.com/qr.png?a=1&amp;b=%22x%22"' in html
    assert "wxcli login" not in text
    assert len(attachments) == 1  # the PNG still travels with the email


@pytest.mark.parametrize("tool", ["cryptography", "openssl"])
def test_email_starttls_auth_login_with_verified_certificate(tmp_path, tool):
    if tool == "openssl" and shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed")
    files = make_tls_files(tmp_path / tool, tool=tool)
    with SMTPServer(
        tls="starttls", auth=("bot", PASSWORD), auth_mechanisms=("LOGIN",), tls_files=files
    ) as server:
        spec = email_spec(
            server,
            security="starttls",
            username="bot",
            password_env="WX_SMTP_PW",
            ca_file=str(files.ca_cert),
        )
        channel = build_channel("mail", spec, ENV)
        assert isinstance(channel, EmailChannel)
        assert channel.verify_tls is True
        channel.send(make_alert())
        server.wait_for(1)
        [env] = server.envelopes

    assert server.auth_attempts == [("LOGIN", "bot", True)]
    assert env.login == "bot"
    assert env.tls is True


def test_email_implicit_ssl_auth_plain(tls_files):
    with SMTPServer(
        tls="ssl", auth=("bot", PASSWORD), auth_mechanisms=("PLAIN",), tls_files=tls_files
    ) as server:
        spec = email_spec(
            server, security="ssl", username="bot", password_env="WX_SMTP_PW", verify_tls=False
        )
        build_channel("mail", spec, ENV).send(login_alert())
        [msg] = server.wait_for(1)
        [env] = server.envelopes

    assert server.auth_attempts == [("PLAIN", "bot", True)]
    assert env.tls is True
    assert [a.get_content() for a in msg.iter_attachments()] == [PNG]


def test_email_starttls_rejects_untrusted_certificate(tls_files):
    with SMTPServer(tls="starttls", tls_files=tls_files) as server:
        channel = build_channel("mail", email_spec(server, security="starttls"), ENV)
        with pytest.raises(AlertError, match=r"certificate of 127.0.0.1:\d+ failed verification"):
            channel.send(make_alert())
        assert server.messages == []


def test_email_wrong_password_reports_535(tls_files):
    with SMTPServer(tls="starttls", auth=("bot", "right"), tls_files=tls_files) as server:
        spec = email_spec(
            server,
            security="starttls",
            username="bot",
            password_env="WX_SMTP_PW",
            ca_file=str(tls_files.ca_cert),
        )
        with pytest.raises(AlertError, match=r"^SMTP 535 authentication failed for user 'bot'"):
            build_channel("mail", spec, ENV).send(make_alert())
        assert server.messages == []
        assert server.auth_attempts[-1][1:] == ("bot", False)


def test_email_password_never_logged(caplog, tls_files):
    caplog.set_level(logging.DEBUG, logger="wxcli")
    with SMTPServer(tls="starttls", auth=("bot", "other"), tls_files=tls_files) as server:
        spec = email_spec(
            server,
            security="starttls",
            username="bot",
            password_env="WX_SMTP_PW",
            verify_tls=False,
        )
        channel = build_channel("mail", spec, ENV)
        with pytest.raises(AlertError) as info:
            channel.send(make_alert())
    assert PASSWORD not in caplog.text
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(channel)
    assert "does not verify" in caplog.text  # the verify_tls = false warning


def test_email_server_down_fails_fast():
    port = free_port()
    channel = build_channel(
        "mail",
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": port,
            "sender": "a@b.c",
            "to": ["x@y.z"],
            "security": "none",
        },
        ENV,
    )
    start = time.monotonic()
    with pytest.raises(AlertError, match=f"^connection refused to 127.0.0.1:{port}$"):
        channel.send(make_alert())
    assert time.monotonic() - start < QUICK


def test_email_sender_with_display_name():
    with SMTPServer() as server:
        spec = email_spec(server, sender="wxcli 告警 <alerts@example.com>")
        build_channel("mail", spec, ENV).send(make_alert())
        [msg] = server.wait_for(1)
        [env] = server.envelopes
    assert env.mail_from == "alerts@example.com"
    assert msg["From"].addresses[0].display_name == "wxcli 告警"
    assert msg["From"].addresses[0].addr_spec == "alerts@example.com"


def test_email_plain_auth_with_ascii_password():
    with SMTPServer(auth=("bot", "plain-ascii")) as server:
        spec = email_spec(server, username="bot", password_env="PW")
        build_channel("mail", spec, {"PW": "plain-ascii"}).send(make_alert())
        server.wait_for(1)
        [env] = server.envelopes
    assert env.login == "bot"
    assert [ok for _mech, _user, ok in server.auth_attempts] == [True]


@pytest.mark.parametrize("security", ["none", "starttls", "ssl"])
def test_email_silent_server_times_out(security):
    with SilentServer() as silent:
        channel = build_channel(
            "mail",
            {
                "type": "email",
                "host": silent.host,
                "port": silent.port,
                "security": security,
                "sender": "a@b.c",
                "to": ["x@y.z"],
                "timeout": 0.3,
            },
            ENV,
        )
        start = time.monotonic()
        with pytest.raises(
            AlertError, match=f"^timed out after 0.3 s talking to 127.0.0.1:{silent.port}$"
        ):
            channel.send(make_alert())
        assert time.monotonic() - start < QUICK


def test_email_starttls_not_offered():
    with SMTPServer() as server:
        channel = build_channel("mail", email_spec(server, security="starttls"), ENV)
        with pytest.raises(AlertError, match=r"does not offer STARTTLS"):
            channel.send(make_alert())
        assert server.messages == []


def test_email_ssl_against_plain_server_is_a_tls_error():
    with SMTPServer() as server:
        channel = build_channel("mail", email_spec(server, security="ssl", verify_tls=False), ENV)
        start = time.monotonic()
        with pytest.raises(AlertError, match=r"^TLS error with 127.0.0.1"):
            channel.send(make_alert())
        assert time.monotonic() - start < QUICK


def test_email_auth_not_offered_on_plain_connection(tls_files):
    # A STARTTLS server offers AUTH only after STARTTLS, as real servers do.
    with SMTPServer(tls="starttls", auth=("bot", PASSWORD), tls_files=tls_files) as server:
        spec = email_spec(server, security="none", username="bot", password_env="WX_SMTP_PW")
        with pytest.raises(AlertError, match=r'does not offer AUTH .*security = "starttls"'):
            build_channel("mail", spec, ENV).send(make_alert())


def test_email_all_recipients_refused():
    with SMTPServer(refuse=("ops@example.com", "boss@example.com")) as server:
        channel = build_channel("mail", email_spec(server), ENV)
        with pytest.raises(AlertError, match=r"refused every recipient: ops@example.com \(550"):
            channel.send(make_alert())
        assert server.messages == []


def test_email_some_recipients_refused_still_delivers(caplog):
    with SMTPServer(refuse=("boss@example.com",)) as server:
        build_channel("mail", email_spec(server), ENV).send(make_alert())
        server.wait_for(1)
        [env] = server.envelopes
    assert env.rcpt_tos == ["ops@example.com"]
    assert "refused boss@example.com (550)" in caplog.text


# --- webhooks --------------------------------------------------------------------------------


def hook(url: str, preset: str = "generic", env: dict | None = None, **extra) -> WebhookChannel:
    spec = {"type": "webhook", "url": url, "preset": preset, "timeout": 5, **extra}
    channel = build_channel("hook", spec, env or {})
    assert isinstance(channel, WebhookChannel)
    return channel


def test_generic_payload_and_hmac_signature():
    alert = login_alert(image_url="https://qr.example.com/login.png", severity="critical")
    with WebhookReceiver(body={"ok": True}) as receiver:
        channel = hook(
            receiver.url,
            env={"HOOK_SECRET": "k3y"},
            secret_env="HOOK_SECRET",
            headers={"X-Team": "support"},
        )
        channel.send(alert)
        [req] = receiver.wait_for(1)

    assert req.method == "POST"
    assert req.path == "/hook"
    assert req.headers["Content-Type"] == "application/json; charset=utf-8"
    assert req.headers["X-Team"] == "support"
    body = req.json
    assert body == {
        "version": 1,
        "source": "wxcli",
        "kind": "login_needed",
        "severity": "critical",
        "title": alert.title,
        "text": alert.text,
        "fields": alert.fields,
        "key": alert.key,
        "created_at": "2025-03-01T08:30:00+00:00",
        "image_url": "https://qr.example.com/login.png",
        "attachments": [
            {
                "filename": "登录二维码.png",
                "mime_type": "image/png",
                "size": len(PNG),
                "sha256": hashlib.sha256(PNG).hexdigest(),
            }
        ],
        "sent_at": int(req.headers["X-Wxcli-Timestamp"]),
    }
    assert abs(body["sent_at"] - time.time()) < 60
    assert verify_generic_signature(req, "k3y")
    assert not verify_generic_signature(req, "other")
    expected = hmac.new(b"k3y", req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-Wxcli-Signature"] == f"sha256={expected}"


def test_generic_without_secret_is_unsigned():
    with WebhookReceiver() as receiver:
        hook(receiver.url).send(make_alert())
        [req] = receiver.wait_for(1)
    assert "X-Wxcli-Signature" not in req.headers
    assert "X-Wxcli-Timestamp" not in req.headers
    assert req.json["kind"] == "keyword"


def test_generic_headers_cannot_override_signature():
    with WebhookReceiver() as receiver:
        channel = hook(
            receiver.url,
            env={"S": "k"},
            secret_env="S",
            headers={"X-Wxcli-Signature": "sha256=forged", "Content-Type": "text/plain"},
        )
        channel.send(make_alert())
        [req] = receiver.wait_for(1)
    assert verify_generic_signature(req, "k")
    assert req.headers["Content-Type"].startswith("application/json")


def test_dingtalk_markdown_and_signature():
    secret = "SEC0123456789abcdef"
    with WebhookReceiver(responder=dingtalk_responder(secret)) as receiver:
        channel = hook(
            receiver.url + "?access_token=tok123", "dingtalk", {"DT": secret}, secret_env="DT"
        )
        channel.send(make_alert())
        [req] = receiver.wait_for(1)

    # The server side, recomputed here from what arrived: the query keeps the token and adds
    # a millisecond timestamp and the URL-encoded base64 HMAC.
    assert req.query["access_token"] == "tok123"
    ts = req.query["timestamp"]
    assert len(ts) == 13
    assert abs(int(ts) / 1000 - time.time()) < 60
    assert req.query["sign"] == dingtalk_expected_sign(secret, ts)
    assert "sign=" in req.raw_query
    assert "+" not in req.raw_query.split("sign=")[1]
    body = req.json
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "[wxcli] 客服群1: keyword 退款"
    text = body["markdown"]["text"]
    assert text.startswith("#### ")
    assert "- **chat**: 客服群1" in text
    assert "客户: 我要退款！" in text


def test_dingtalk_wrong_secret_reports_errcode():
    with WebhookReceiver(responder=dingtalk_responder("SECright")) as receiver:
        channel = hook(receiver.url, "dingtalk", {"DT": "SECwrong"}, secret_env="DT")
        with pytest.raises(AlertError, match=r"^DingTalk errcode 310000: sign not match$"):
            channel.send(make_alert())


def test_dingtalk_unsigned_when_no_secret():
    with WebhookReceiver(responder=dingtalk_responder()) as receiver:
        hook(receiver.url + "?access_token=t", "dingtalk").send(make_alert())
        [req] = receiver.wait_for(1)
    assert set(req.query) == {"access_token"}


def test_wecom_markdown_shape():
    with WebhookReceiver(responder=wecom_responder()) as receiver:
        hook(receiver.url + "?key=abc", "wecom").send(make_alert(severity="info"))
        [req] = receiver.wait_for(1)
    body = req.json
    assert set(body) == {"msgtype", "markdown"}
    assert body["msgtype"] == "markdown"
    content = body["markdown"]["content"]
    assert content.startswith("### ")
    assert '<font color="info">info</font>' in content
    assert "- **sender**: 张三 ＜zhang@example.com＞" in content


def test_wecom_errcode_is_failure():
    reply = {"errcode": 93000, "errmsg": "invalid webhook url"}
    with WebhookReceiver(body=reply) as receiver:
        channel = hook(receiver.url, "wecom")
        with pytest.raises(AlertError, match=r"^WeCom errcode 93000: invalid webhook url$"):
            channel.send(make_alert())


def test_feishu_post_and_signature():
    secret = "fs-secret"
    alert = login_alert(image_url="https://qr.example.com/qr.png")
    with WebhookReceiver(responder=feishu_responder(secret)) as receiver:
        hook(receiver.url, "feishu", {"FS": secret}, secret_env="FS").send(alert)
        [req] = receiver.wait_for(1)

    body = req.json
    assert body["msg_type"] == "post"
    ts = body["timestamp"]
    assert abs(int(ts) - time.time()) < 60  # seconds, not milliseconds
    assert body["sign"] == feishu_expected_sign(secret, ts)
    post = body["content"]["post"]["zh_cn"]
    assert post["title"] == alert.title
    elements = [el for para in post["content"] for el in para]
    assert {
        "tag": "a",
        "text": "Scan to log in: open the QR code",
        "href": "https://qr.example.com/qr.png",
    } in elements
    assert {el["tag"] for el in elements} == {"text", "a"}
    texts = [el["text"] for el in elements if el["tag"] == "text"]
    assert "The WeChat session ended (1101)." in texts


def test_feishu_wrong_secret_reports_code():
    with WebhookReceiver(responder=feishu_responder("right")) as receiver:
        channel = hook(receiver.url, "feishu", {"FS": "wrong"}, secret_env="FS")
        with pytest.raises(AlertError, match=r"^Feishu code 19021: sign match fail"):
            channel.send(make_alert())


def test_feishu_legacy_status_code_is_failure():
    reply = {
        "StatusCode": 19001,
        "StatusMessage": "param invalid: incoming webhook access token invalid",
    }
    with WebhookReceiver(body=reply) as receiver:
        channel = hook(receiver.url, "feishu")
        with pytest.raises(AlertError, match=r"^Feishu code 19001: param invalid"):
            channel.send(make_alert())


def test_feishu_legacy_success_is_accepted():
    with WebhookReceiver(body={"StatusCode": 0, "StatusMessage": "success"}) as receiver:
        hook(receiver.url, "feishu").send(make_alert())
        receiver.wait_for(1)


def test_feishu_http_400_with_code():
    with WebhookReceiver(status=400, body={"code": 9499, "msg": "Bad Request"}) as receiver:
        channel = hook(receiver.url, "feishu")
        with pytest.raises(AlertError, match=r"^Feishu code 9499: Bad Request$"):
            channel.send(make_alert())


def test_non_2xx_reports_status_and_body_snippet():
    with WebhookReceiver(status=500, body="upstream\n  exploded " + "x" * 500) as receiver:
        channel = hook(receiver.url)
        with pytest.raises(
            AlertError, match=r"^webhook answered 500: upstream exploded x+$"
        ) as info:
            channel.send(make_alert())
    assert len(str(info.value)) < 260


def test_redirect_is_not_followed():
    with WebhookReceiver(responder=lambda req: Reply(302, "", {"Location": "/elsewhere"})) as r:
        with pytest.raises(AlertError, match=r"^webhook answered 302"):
            hook(r.url).send(make_alert())
        assert len(r.requests) == 1


@pytest.mark.parametrize("preset", ["dingtalk", "wecom", "feishu"])
def test_robot_reply_without_status_code_is_failure(preset):
    with WebhookReceiver(body="<html>portal login</html>") as receiver:
        channel = hook(receiver.url, preset)
        with pytest.raises(AlertError, match=r"answered 200 without a status code: <html>"):
            channel.send(make_alert())


def test_timeout_is_reported_quickly():
    with WebhookReceiver(delay=5) as receiver:
        channel = hook(receiver.url, timeout=0.3)
        start = time.monotonic()
        with pytest.raises(
            AlertError,
            match=f"^timed out after 0.3 s waiting for 127.0.0.1:{receiver.port} to answer$",
        ):
            channel.send(make_alert())
        assert time.monotonic() - start < QUICK
        receiver.wait_for(1)


def test_https_webhook_checks_the_certificate(tls_files, monkeypatch):
    with WebhookReceiver(responder=dingtalk_responder(), tls_files=tls_files) as receiver:
        channel = hook(receiver.url + "?access_token=TOPSECRET", "dingtalk")
        with pytest.raises(AlertError) as info:
            channel.send(make_alert())
        message = str(info.value)
        assert message.startswith(f"TLS error with 127.0.0.1:{receiver.port}: certificate")
        assert "TOPSECRET" not in message
        # A private CA is trusted the way requests documents: REQUESTS_CA_BUNDLE.
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_files.ca_cert))
        channel.send(make_alert())
        [req] = receiver.wait_for(1)
    assert req.query == {"access_token": "TOPSECRET"}


def test_connection_refused_does_not_leak_the_token():
    port = free_port()
    channel = hook(f"http://127.0.0.1:{port}/robot/send?access_token=TOPSECRET", "dingtalk")
    start = time.monotonic()
    with pytest.raises(AlertError) as info:
        channel.send(make_alert())
    assert str(info.value) == f"connection refused to 127.0.0.1:{port}"
    assert "TOPSECRET" not in repr(channel)
    assert time.monotonic() - start < QUICK


INJECTION = (
    "点这里 [领取退款](http://evil.example/x) ![t](http://evil.example/t.png) "
    '<font color="warning">假通知</font> <@all> **粗体** # 标题 `code` | a | b |\n> 引用'
)


@pytest.mark.parametrize(
    ("preset", "responder", "extract"),
    [
        ("dingtalk", dingtalk_responder(), lambda b: b["markdown"]["text"]),
        ("wecom", wecom_responder(), lambda b: b["markdown"]["content"]),
    ],
)
def test_markdown_presets_neutralise_customer_content(preset, responder, extract):
    alert = make_alert(
        title="[wxcli] 群[x](http://evil.example): keyword",
        text=INJECTION,
        fields={"message": INJECTION, "chat](http://evil": "v"},
    )
    with WebhookReceiver(responder=responder) as receiver:
        hook(receiver.url, preset).send(alert)
        [req] = receiver.wait_for(1)
    md = extract(req.json)
    assert "](" not in md
    assert "http://" not in md
    assert "evil.example" in md
    assert "<@" not in md
    assert '<font color="warning">假通知' not in md
    assert "**粗体**" not in md
    assert "\n> " not in md
    assert "\n# " not in md
    assert "假通知" in md
    assert "领取退款" in md


def test_feishu_text_elements_cannot_carry_tags_or_links():
    alert = make_alert(text=INJECTION, fields={"message": INJECTION})
    with WebhookReceiver(responder=feishu_responder()) as receiver:
        hook(receiver.url, "feishu").send(alert)
        [req] = receiver.wait_for(1)
    post = req.json["content"]["post"]["zh_cn"]
    elements = [el for para in post["content"] for el in para]
    assert all(el["tag"] == "text" for el in elements)
    assert not any("<" in el["text"] or "http://" in el["text"] for el in elements)


LONG = "客户的长消息。" * 20_000  # ~420 KB of UTF-8


@pytest.mark.parametrize(
    ("preset", "responder", "size"),
    [
        ("dingtalk", dingtalk_responder(), lambda r: len(r.json["markdown"]["text"].encode())),
        (
            "wecom",
            wecom_responder(WECOM_MAX_CONTENT_BYTES),
            lambda r: len(r.json["markdown"]["content"].encode()),
        ),
        ("feishu", feishu_responder(max_body=FEISHU_MAX_BODY_BYTES), lambda r: len(r.body)),
    ],
)
def test_long_messages_are_truncated_to_the_service_limit(preset, responder, size):
    limit = {
        "dingtalk": DINGTALK_MAX_TEXT_BYTES,
        "wecom": WECOM_MAX_CONTENT_BYTES,
        "feishu": FEISHU_MAX_BODY_BYTES,
    }[preset]
    alert = make_alert(text=LONG + "\nTHE END", fields={"message": LONG})
    with WebhookReceiver(responder=responder) as receiver:
        hook(receiver.url, preset).send(alert)
        [req] = receiver.wait_for(1)
    assert limit * 0.8 < size(req) <= limit  # cut to fit, not emptied
    assert "THE END" not in req.text
    assert "truncated" in req.text
    assert "- **message**:" in req.text or "message: " in req.text


def test_alert_too_large_without_text_is_reported():
    fields = {f"field {i}": "很长的值" * 100 for i in range(20)}
    with WebhookReceiver(responder=wecom_responder()) as receiver:
        channel = hook(receiver.url, "wecom")
        with pytest.raises(AlertError, match=r"^alert too large for WeCom even without its text"):
            channel.send(make_alert(fields=fields))
        assert receiver.requests == []


def test_feishu_many_short_lines_still_fit():
    alert = make_alert(text="\n".join(f"行{i}" for i in range(5000)))
    with WebhookReceiver(responder=feishu_responder(max_body=FEISHU_MAX_BODY_BYTES)) as r:
        hook(r.url, "feishu").send(alert)
        [req] = r.wait_for(1)
    assert FEISHU_MAX_BODY_BYTES * 0.95 < len(req.body) <= FEISHU_MAX_BODY_BYTES
    assert req.json["content"]["post"]["zh_cn"]["content"][-1][0]["text"] == TRUNCATED.strip()


@pytest.mark.parametrize(
    ("preset", "responder"),
    [
        ("dingtalk", dingtalk_responder()),
        ("wecom", wecom_responder()),
        ("feishu", feishu_responder()),
    ],
)
def test_login_alert_links_the_qr_or_says_how_to_get_it(preset, responder):
    url = "https://qr.example.com/qr/登录.png?v=(2)"
    with WebhookReceiver(responder=responder) as receiver:
        hook(receiver.url, preset).send(login_alert(image_url=url))
        hook(receiver.url, preset).send(login_alert())
        with_url, without = receiver.wait_for(2)
    encoded = "https://qr.example.com/qr/%E7%99%BB%E5%BD%95.png?v=%282%29"
    assert encoded in with_url.text
    assert "wxcli login" not in with_url.text
    if preset == "dingtalk":
        assert f"![Scan to log in]({encoded})" in with_url.text
    if preset == "wecom":
        assert f"[Scan to log in: open the image]({encoded})" in with_url.text
    assert "Run `wxcli login` on the watch host" in without.text
    assert "https://" not in without.text


def test_image_url_with_unsafe_scheme_is_dropped():
    with WebhookReceiver(responder=dingtalk_responder()) as receiver:
        hook(receiver.url, "dingtalk").send(login_alert(image_url="javascript:alert(1)"))
        [req] = receiver.wait_for(1)
    assert "javascript" not in req.text
    assert "wxcli login" in req.text


# --- WeChat ----------------------------------------------------------------------------------


def test_wechat_without_session_fails_clearly():
    channel = build_channel("wx", {"type": "wechat", "to": "filehelper"}, {})
    with pytest.raises(AlertError, match=r"^WeChat channel needs a live session$"):
        channel.send(make_alert())


def test_wechat_sends_plain_text_through_the_injected_sender():
    sent: list[tuple[str, str]] = []
    channel = build_channel(
        "wx",
        {"type": "wechat", "to": "客服主管群"},
        {},
        wechat_sender=lambda to, text: sent.append((to, text)),
    )
    assert isinstance(channel, WeChatChannel)
    channel.send(make_alert(text="x" * 10_000))
    [(to, text)] = sent
    assert to == "客服主管群"
    assert text.startswith("[wxcli] 客服群1: keyword 退款\n")
    assert len(text) == WECHAT_MAX_CHARS
    assert text.endswith(TRUNCATED)


def test_wechat_sender_errors_become_alert_errors():
    def broken(to: str, text: str) -> None:
        raise NetworkError("webwxsendmsg", "timed out")

    channel = WeChatChannel("wx", to="filehelper", send_text=broken)
    with pytest.raises(AlertError, match=r"^WeChat message to 'filehelper' failed: webwxsendmsg"):
        channel.send(make_alert())


# --- build_channel validation ----------------------------------------------------------------


GOOD_EMAIL = {
    "type": "email",
    "host": "smtp.example.com",
    "sender": "a@example.com",
    "to": ["b@example.com"],
}


@pytest.mark.parametrize(
    ("spec", "key", "words"),
    [
        ({**GOOD_EMAIL, "host": None}, "host", "missing"),
        ({k: v for k, v in GOOD_EMAIL.items() if k != "host"}, "host", "missing"),
        ({**GOOD_EMAIL, "password": "hunter2"}, "password", "password_env"),
        ({**GOOD_EMAIL, "security": "tls"}, "security", '"none", "starttls", "ssl"'),
        ({**GOOD_EMAIL, "port": "587"}, "port", "port number"),
        ({**GOOD_EMAIL, "port": True}, "port", "port number"),
        ({**GOOD_EMAIL, "to": []}, "to", "list of email addresses"),
        ({**GOOD_EMAIL, "to": ["not-an-address"]}, "to", "list of email addresses"),
        ({**GOOD_EMAIL, "sender": "nobody"}, "sender", "not an email address"),
        ({**GOOD_EMAIL, "to": ["a@b.c\nBcc: x@y.z"]}, "to", "list of email addresses"),
        ({**GOOD_EMAIL, "to": ["Ops <ops@example.com>"]}, "to", "list of email addresses"),
        ({**GOOD_EMAIL, "hots": "x"}, "hots", "did you mean 'host'"),
        ({**GOOD_EMAIL, "timeout": 0}, "timeout", "positive number"),
        ({**GOOD_EMAIL, "verify_tls": "no"}, "verify_tls", "true or false"),
        ({**GOOD_EMAIL, "username": "bot"}, "password_env", "no password_env"),
        (
            {**GOOD_EMAIL, "username": "bot", "password_env": "UNSET_VAR"},
            "password_env",
            "UNSET_VAR (named by password_env) is not set",
        ),
        ({**GOOD_EMAIL, "ca_file": "/nonexistent/ca.pem"}, "ca_file", "no such file"),
        (
            {"type": "webhook", "url": "https://x.example/h", "preset": "slack"},
            "preset",
            '"generic", "dingtalk", "wecom", "feishu"',
        ),
        ({"type": "webhook"}, "url", "missing"),
        ({"type": "webhook", "url": "ftp://x.example/h"}, "url", "http:// or https://"),
        ({"type": "webhook", "url": "https://x", "secret": "s"}, "secret", "secret_env"),
        (
            {"type": "webhook", "url": "https://x", "preset": "wecom", "secret_env": "S"},
            "secret_env",
            "no signing secret",
        ),
        (
            {"type": "webhook", "url": "https://x", "preset": "dingtalk", "headers": {"a": "b"}},
            "headers",
            'only the "generic" preset',
        ),
        ({"type": "webhook", "url": "https://x", "headers": {"a": 1}}, "headers", "table"),
        (
            {"type": "webhook", "url": "https://x", "headers": {"X-Team": "客服"}},
            "headers",
            "printable ASCII",
        ),
        (
            {"type": "webhook", "url": "https://x", "secret_env": "NOPE"},
            "secret_env",
            "NOPE (named by secret_env) is not set",
        ),
        ({"type": "wechat"}, "to", "missing"),
        ({"type": "wechat", "to": ""}, "to", "non-empty string"),
        ({"host": "x"}, "type", 'missing; one of "email", "webhook", "wechat"'),
        ({"type": "sms"}, "type", "'sms' is not a channel type"),
    ],
)
def test_build_channel_rejects_bad_config(spec, key, words):
    with pytest.raises(ConfigError) as info:
        build_channel("ops", spec, {"S": "x"})
    err = info.value
    assert err.key == f"alert.channels.ops.{key}"
    assert str(err).startswith(f"alert.channels.ops.{key}: ")
    assert words in str(err)
    assert err.exit_code == 2


def test_build_channel_error_names_the_config_file():
    with pytest.raises(ConfigError) as info:
        build_channel("ops", {**GOOD_EMAIL, "password": "x"}, {}, config_path="/etc/wxcli.toml")
    assert str(info.value).startswith("/etc/wxcli.toml: alert.channels.ops.password: ")


@pytest.mark.parametrize(("security", "port"), [("none", 25), ("starttls", 587), ("ssl", 465)])
def test_email_default_ports(security, port):
    channel = build_channel("m", {**GOOD_EMAIL, "security": security}, {})
    assert isinstance(channel, EmailChannel)
    assert channel.port == port
    assert channel.timeout == 10.0


def test_defaults_and_targets():
    email = build_channel("m", {**GOOD_EMAIL, "to": "b@example.com"}, {})
    assert isinstance(email, EmailChannel)
    assert email.security == "starttls"
    assert email.to == ["b@example.com"]
    assert email.target == "email to b@example.com via smtp.example.com:587 (starttls)"
    webhook = build_channel(
        "h", {"type": "webhook", "url": "https://oapi.example.com/robot/send?access_token=T0K"}, {}
    )
    assert isinstance(webhook, WebhookChannel)
    assert webhook.preset == "generic"
    assert webhook.timeout == 10.0
    assert webhook.target == "webhook at oapi.example.com"
    assert "T0K" not in repr(webhook)


# --- model -----------------------------------------------------------------------------------


def test_alert_model_checks_and_defaults():
    alert = Alert(kind="test", title="t", text="")
    assert alert.created_at.tzinfo is not None
    assert alert.severity == "warning"
    assert alert.fields == {}
    assert alert.attachments == []
    with pytest.raises(ValueError, match=r"timezone-aware"):
        Alert(kind="test", title="t", text="", created_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match=r"unknown alert kind"):
        Alert(kind="nope", title="t", text="")
    with pytest.raises(ValueError, match=r"unknown severity"):
        Alert(kind="test", title="t", text="", severity="fatal")
    att = Attachment("qr.png", PNG, "image/png")
    assert att.size == len(PNG)
    assert att.sha256 == hashlib.sha256(PNG).hexdigest()
