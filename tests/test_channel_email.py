"""The email channel against a real SMTP server (aiosmtpd): plain, STARTTLS and implicit TLS,
AUTH (also with a non-ASCII password), and every way delivery fails, each reported exactly."""

from __future__ import annotations

import logging
import shutil
import time
from email.message import EmailMessage

import pytest

from tests.helpers.channels import PNG, QUICK, assert_refused, login_alert, make_alert
from tests.helpers.servers import SilentServer, SMTPServer, free_port, make_tls_files
from wxcli.alerts.channels import EmailChannel, build_channel
from wxcli.errors import AlertError, ConfigError

PASSWORD = "s3cret-pässword"
ENV = {"WX_SMTP_PW": PASSWORD}


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


# --- configuration ---------------------------------------------------------------------------


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
    ],
)
def test_bad_email_config_is_refused(spec, key, words):
    assert_refused(spec, key, words)


def test_literal_password_is_refused_with_the_fix():
    with pytest.raises(ConfigError) as info:
        build_channel("ops", {**GOOD_EMAIL, "password": "x"}, {})
    assert str(info.value) == (
        "alert.channels.ops.password: do not put the password in the config file; store it in "
        "an environment variable and name that variable instead, e.g. "
        'password_env = "WXCLI_SMTP_PASSWORD"'
    )


@pytest.mark.parametrize(("security", "port"), [("none", 25), ("starttls", 587), ("ssl", 465)])
def test_email_default_ports(security, port):
    channel = build_channel("m", {**GOOD_EMAIL, "security": security}, {})
    assert isinstance(channel, EmailChannel)
    assert channel.port == port
    assert channel.timeout == 10.0


def test_email_defaults_and_target():
    email = build_channel("m", {**GOOD_EMAIL, "to": "b@example.com"}, {})
    assert isinstance(email, EmailChannel)
    assert email.kind == "email"
    assert email.security == "starttls"
    assert email.to == ["b@example.com"]
    assert email.target == "email to b@example.com via smtp.example.com:587 (starttls)"
    assert email.skip_reason(login_alert()) is None
