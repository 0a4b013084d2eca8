"""The WeChat channel: plain text through the injected live-session sender."""

from __future__ import annotations

import pytest

from tests.helpers.channels import assert_refused, login_alert, make_alert
from wxcli.alerts.channels import TRUNCATED, WECHAT_MAX_CHARS, WeChatChannel, build_channel
from wxcli.errors import AlertError, NetworkError


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


@pytest.mark.parametrize(
    ("spec", "key", "words"),
    [
        ({"type": "wechat"}, "to", "missing"),
        ({"type": "wechat", "to": ""}, "to", "non-empty string"),
        ({"type": "wechat", "to": "filehelper", "secret_env": "S"}, "secret_env", "unknown key"),
    ],
)
def test_bad_wechat_config_is_refused(spec, key, words):
    assert_refused(spec, key, words)


def test_wechat_cannot_carry_the_alerts_about_its_own_lost_session():
    channel = build_channel("wx", {"type": "wechat", "to": "filehelper"}, {})
    assert channel.target == "WeChat to 'filehelper'"
    assert channel.skip_reason(make_alert()) is None
    for kind in ("session_lost", "login_needed"):
        reason = channel.skip_reason(login_alert(kind=kind))
        assert reason == "a WeChat channel cannot deliver this: it needs the session that was lost"
