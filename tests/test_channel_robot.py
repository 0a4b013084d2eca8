"""What every chat-robot preset (DingTalk, WeCom, Feishu) shares, run against each: the answer
must carry a status, customer text is neutralised, long alerts are cut to the service's
limit, login alerts link the QR code or say how to get one."""

from __future__ import annotations

import pytest

from tests.helpers.channels import INJECTION, assert_refused, hook, login_alert, make_alert
from tests.helpers.servers import (
    WebhookReceiver,
    dingtalk_responder,
    feishu_responder,
    wecom_responder,
)
from wxcli.alerts.channels import (
    DINGTALK_MAX_TEXT_BYTES,
    FEISHU_MAX_BODY_BYTES,
    WECOM_MAX_CONTENT_BYTES,
    DingTalkChannel,
    FeishuChannel,
    WeComChannel,
)
from wxcli.errors import AlertError


@pytest.mark.parametrize("preset", ["dingtalk", "wecom", "feishu"])
def test_robot_reply_without_status_code_is_failure(preset):
    with WebhookReceiver(body="<html>portal login</html>") as receiver:
        channel = hook(receiver.url, preset)
        with pytest.raises(AlertError, match=r"answered 200 without a status code: <html>"):
            channel.send(make_alert())


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


@pytest.mark.parametrize(
    ("preset", "cls", "service"),
    [
        ("dingtalk", DingTalkChannel, "DingTalk"),
        ("wecom", WeComChannel, "WeCom"),
        ("feishu", FeishuChannel, "Feishu"),
    ],
)
def test_each_preset_builds_its_robot(preset, cls, service):
    channel = hook("https://robot.example.com/send?access_token=T0K", preset)
    assert type(channel) is cls
    assert channel.preset == preset
    assert channel.service == service
    assert channel.target == f"{service} robot at robot.example.com"
    assert "T0K" not in repr(channel)


@pytest.mark.parametrize("preset", ["dingtalk", "wecom", "feishu"])
def test_robots_take_no_headers(preset):
    spec = {"type": "webhook", "url": "https://x", "preset": preset, "headers": {"a": "b"}}
    assert_refused(spec, "headers", f'only the "generic" preset takes headers, not {preset!r}')
