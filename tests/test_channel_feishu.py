"""The Feishu robot preset against a receiver that checks signatures as Feishu does."""

from __future__ import annotations

import time

import pytest

from tests.helpers.channels import INJECTION, hook, login_alert, make_alert
from tests.helpers.servers import WebhookReceiver, feishu_expected_sign, feishu_responder
from wxcli.alerts.channels import FEISHU_MAX_BODY_BYTES, TRUNCATED
from wxcli.errors import AlertError


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


def test_feishu_text_elements_cannot_carry_tags_or_links():
    alert = make_alert(text=INJECTION, fields={"message": INJECTION})
    with WebhookReceiver(responder=feishu_responder()) as receiver:
        hook(receiver.url, "feishu").send(alert)
        [req] = receiver.wait_for(1)
    post = req.json["content"]["post"]["zh_cn"]
    elements = [el for para in post["content"] for el in para]
    assert all(el["tag"] == "text" for el in elements)
    assert not any("<" in el["text"] or "http://" in el["text"] for el in elements)


def test_feishu_many_short_lines_still_fit():
    alert = make_alert(text="\n".join(f"行{i}" for i in range(5000)))
    with WebhookReceiver(responder=feishu_responder(max_body=FEISHU_MAX_BODY_BYTES)) as r:
        hook(r.url, "feishu").send(alert)
        [req] = r.wait_for(1)
    assert FEISHU_MAX_BODY_BYTES * 0.95 < len(req.body) <= FEISHU_MAX_BODY_BYTES
    assert req.json["content"]["post"]["zh_cn"]["content"][-1][0]["text"] == TRUNCATED.strip()
