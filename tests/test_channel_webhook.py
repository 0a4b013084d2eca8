"""The webhook channel against a real HTTP receiver: the generic payload and its HMAC signature,
and the transport every preset shares (status, redirects, timeouts, TLS, no token in errors)."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from tests.helpers.channels import PNG, QUICK, assert_refused, hook, login_alert, make_alert
from tests.helpers.servers import (
    Reply,
    WebhookReceiver,
    dingtalk_responder,
    free_port,
    verify_generic_signature,
)
from wxcli.alerts.channels import WebhookChannel, build_channel
from wxcli.errors import AlertError


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


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "key", "words"),
    [
        (
            {"type": "webhook", "url": "https://x.example/h", "preset": "slack"},
            "preset",
            '"generic", "dingtalk", "wecom", "feishu"',
        ),
        ({"type": "webhook"}, "url", "missing"),
        ({"type": "webhook", "url": "ftp://x.example/h"}, "url", "http:// or https://"),
        ({"type": "webhook", "url": "https://x", "secret": "s"}, "secret", "secret_env"),
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
        ({"type": "webhook", "url": "https://x", "urll": "y"}, "urll", "did you mean 'url'"),
    ],
)
def test_bad_webhook_config_is_refused(spec, key, words):
    assert_refused(spec, key, words)


def test_webhook_defaults_and_target():
    webhook = build_channel(
        "h", {"type": "webhook", "url": "https://oapi.example.com/robot/send?access_token=T0K"}, {}
    )
    assert type(webhook) is WebhookChannel
    assert webhook.kind == "webhook"
    assert webhook.preset == "generic"
    assert webhook.timeout == 10.0
    assert webhook.target == "webhook at oapi.example.com"
    assert "T0K" not in repr(webhook)
