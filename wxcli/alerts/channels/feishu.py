"""Feishu / Lark custom bots (``preset = "feishu"``): a rich-text ``post``, signed in the body
(``timestamp`` in seconds and ``sign``) when the bot has a signing secret."""

from __future__ import annotations

from typing import Any

from wxcli.alerts.channels.base import b64, hmac_sha256
from wxcli.alerts.channels.render import LOGIN_HINT, one_line, plain_neutral, public_url, short
from wxcli.alerts.channels.robot import RobotChannel
from wxcli.alerts.model import Alert

#: Feishu documents 20 KB for the whole request body.
FEISHU_MAX_BODY_BYTES = 20_000


def feishu_sign(secret: str, timestamp_s: int) -> tuple[str, str]:
    """Feishu's custom-bot signature: base64(HMAC-SHA256(key="<s>\\n<secret>", msg=b"")).

    Note the key is the timestamp-and-secret string and the message is empty, unlike DingTalk.
    """
    key = f"{timestamp_s}\n{secret}".encode()
    return str(timestamp_s), b64(hmac_sha256(key, b""))


class FeishuChannel(RobotChannel):
    """A Feishu custom bot; it answers ``code``/``msg`` (``StatusCode``/``StatusMessage`` on
    older deployments)."""

    preset = "feishu"
    service = "Feishu"
    code_word = "code"

    def robot_request(self, alert: Alert, now: float) -> tuple[str, bytes]:
        sign = feishu_sign(self._secret, int(now)) if self._secret else None
        body = self.fit(
            alert, lambda a, text: self.card(a, text, sign), None, FEISHU_MAX_BODY_BYTES
        )
        return self.url, body

    def card(self, alert: Alert, text: str, sign: tuple[str, str] | None) -> dict[str, Any]:
        def para(s: str) -> list[dict[str, str]]:
            return [{"tag": "text", "text": s}]

        content: list[list[dict[str, str]]] = [
            para(
                f"{alert.severity} · {alert.kind} · "
                f"{alert.created_at.isoformat(timespec='seconds')}"
            )
        ]
        content += [
            para(f"{plain_neutral(k)}: {plain_neutral(short(v))}") for k, v in alert.fields.items()
        ]
        url = public_url(alert.image_url)
        if url:
            # A custom bot cannot upload images (img needs an image_key), so link the QR instead.
            label = "Scan to log in: open the QR code" if alert.is_login else "Open the image"
            content.append([{"tag": "a", "text": label, "href": url}])
        elif alert.is_login:
            content.append(para(LOGIN_HINT))
        if text:
            content += [para(plain_neutral(line)) for line in text.split("\n")]
        payload: dict[str, Any] = {}
        if sign:
            payload["timestamp"], payload["sign"] = sign
        payload["msg_type"] = "post"
        payload["content"] = {
            "post": {"zh_cn": {"title": plain_neutral(one_line(alert.title)), "content": content}}
        }
        return payload

    def robot_status(self, data: Any) -> tuple[str, str] | None:
        if isinstance(data, dict) and ("code" in data or "StatusCode" in data):
            code = data.get("code", data.get("StatusCode"))
            return str(code), str(data.get("msg") or data.get("StatusMessage") or "")
        return None
