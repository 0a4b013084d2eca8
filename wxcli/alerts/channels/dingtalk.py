"""DingTalk group robots (``preset = "dingtalk"``): a markdown card, signed in the query
(``timestamp`` in milliseconds and ``sign``) when the robot has a signing secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from wxcli.alerts.channels.base import b64, hmac_sha256
from wxcli.alerts.channels.render import md_fields, md_image, md_neutral, one_line
from wxcli.alerts.channels.robot import RobotChannel
from wxcli.alerts.model import Alert

#: DingTalk's markdown text is limited to about 20000 UTF-8 bytes (kept a little under).
DINGTALK_MAX_TEXT_BYTES = 19_000


def dingtalk_sign(secret: str, timestamp_ms: int) -> dict[str, str]:
    """DingTalk's robot signature: base64(HMAC-SHA256(key=secret, "<ms>\\n<secret>")).

    Returned as the ``timestamp`` and ``sign`` query parameters (URL-encoding is left to
    ``urlencode``, as the documentation asks for the base64 value URL-encoded).
    """
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    return {
        "timestamp": str(timestamp_ms),
        "sign": b64(hmac_sha256(secret.encode(), string_to_sign)),
    }


def _add_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


class DingTalkChannel(RobotChannel):
    """A DingTalk custom robot; the access token stays in the configured URL's query."""

    preset = "dingtalk"
    service = "DingTalk"
    code_word = "errcode"

    def robot_request(self, alert: Alert, now: float) -> tuple[str, bytes]:
        body = self.fit(alert, self.card, lambda p: p["markdown"]["text"], DINGTALK_MAX_TEXT_BYTES)
        url = self.url
        if self._secret:
            url = _add_query(url, dingtalk_sign(self._secret, int(now * 1000)))
        return url, body

    def card(self, alert: Alert, text: str) -> dict[str, Any]:
        blocks = [
            f"#### {md_neutral(one_line(alert.title))}",
            f"**{alert.severity}** · {alert.kind} · "
            f"{alert.created_at.isoformat(timespec='seconds')}",
        ]
        fields = md_fields(alert)
        if fields:
            blocks.append("\n".join(fields))
        blocks += md_image(alert)
        if text:
            # Two trailing spaces: a markdown hard line break, so the message keeps its lines.
            blocks.append("  \n".join(md_neutral(line) for line in text.split("\n")))
        return {
            "msgtype": "markdown",
            "markdown": {"title": one_line(alert.title)[:100], "text": "\n\n".join(blocks)},
        }

    def robot_status(self, data: Any) -> tuple[str, str] | None:
        if isinstance(data, dict) and "errcode" in data:
            return str(data["errcode"]), str(data.get("errmsg", ""))
        return None
