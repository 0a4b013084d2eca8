"""The DingTalk robot preset against a receiver that checks signatures as DingTalk does."""

from __future__ import annotations

import time

import pytest

from tests.helpers.channels import hook, login_alert, make_alert
from tests.helpers.servers import WebhookReceiver, dingtalk_expected_sign, dingtalk_responder
from wxcli.errors import AlertError


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


def test_image_url_with_unsafe_scheme_is_dropped():
    with WebhookReceiver(responder=dingtalk_responder()) as receiver:
        hook(receiver.url, "dingtalk").send(login_alert(image_url="javascript:alert(1)"))
        [req] = receiver.wait_for(1)
    assert "javascript" not in req.text
    assert "wxcli login" in req.text
