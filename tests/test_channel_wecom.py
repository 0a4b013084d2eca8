"""The WeCom robot preset against a receiver that answers as WeCom does."""

from __future__ import annotations

import pytest

from tests.helpers.channels import assert_refused, hook, make_alert
from tests.helpers.servers import WebhookReceiver, wecom_responder
from wxcli.errors import AlertError


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


def test_alert_too_large_without_text_is_reported():
    fields = {f"field {i}": "很长的值" * 100 for i in range(20)}
    with WebhookReceiver(responder=wecom_responder()) as receiver:
        channel = hook(receiver.url, "wecom")
        with pytest.raises(AlertError, match=r"^alert too large for WeCom even without its text"):
            channel.send(make_alert(fields=fields))
        assert receiver.requests == []


def test_wecom_has_no_signing_secret():
    assert_refused(
        {"type": "webhook", "url": "https://x", "preset": "wecom", "secret_env": "S"},
        "secret_env",
        "WeCom group robots have no signing secret; remove it",
    )
