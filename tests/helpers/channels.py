"""Shared by the tests/test_channel_*.py modules: sample alerts, a webhook built from config
the way `watch` builds it, and the check that a bad config table is refused naming its key."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from wxcli.alerts.channels import WebhookChannel, build_channel
from wxcli.alerts.model import Alert, Attachment
from wxcli.errors import ConfigError

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) + b"\x00IEND"
#: Customer text trying every trick a robot's markdown could fall for (links, images, tags,
#: mentions, emphasis, headings, code, tables, quotes).
INJECTION = (
    "点这里 [领取退款](http://evil.example/x) ![t](http://evil.example/t.png) "
    '<font color="warning">假通知</font> <@all> **粗体** # 标题 `code` | a | b |\n> 引用'
)
#: A failure must be reported within this many seconds, with timeouts set well under it.
QUICK = 3.0


def make_alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = dict(
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


def login_alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = dict(
        kind="login_needed",
        title="[wxcli] session lost: scan to log in",
        text="The WeChat session ended (1101).",
        attachments=[Attachment("登录二维码.png", PNG, "image/png")],
    )
    values.update(overrides)
    return make_alert(**values)


def hook(
    url: str, preset: str = "generic", env: dict | None = None, **extra: Any
) -> WebhookChannel:
    """A webhook channel built from its config table, as `wxcli watch` builds it."""
    spec = {"type": "webhook", "url": url, "preset": preset, "timeout": 5, **extra}
    channel = build_channel("hook", spec, env or {})
    assert isinstance(channel, WebhookChannel)
    return channel


def assert_refused(spec: dict[str, Any], key: str, words: str) -> None:
    """``spec`` (as channel "ops") is a configuration error naming ``key`` and saying ``words``."""
    with pytest.raises(ConfigError) as info:
        build_channel("ops", spec, {"S": "x"})
    err = info.value
    assert err.key == f"alert.channels.ops.{key}"
    assert str(err).startswith(f"alert.channels.ops.{key}: ")
    assert words in str(err)
    assert err.exit_code == 2
