"""WeCom (企业微信) group robots (``preset = "wecom"``): a markdown card. WeCom robots have
no signing secret; the ``key`` in the URL is the credential."""

from __future__ import annotations

from typing import Any, ClassVar

from wxcli.alerts.channels.render import md_fields, md_image, md_neutral, one_line, public_url
from wxcli.alerts.channels.robot import RobotChannel
from wxcli.alerts.model import Alert

#: WeCom documents 4096 UTF-8 bytes for markdown.content (errcode 40058 past it).
WECOM_MAX_CONTENT_BYTES = 4096

_COLOURS = {"info": "info", "warning": "warning", "critical": "warning"}


class WeComChannel(RobotChannel):
    """A WeCom group robot."""

    preset = "wecom"
    service = "WeCom"
    code_word = "errcode"
    signed: ClassVar[bool] = False

    def robot_request(self, alert: Alert, now: float) -> tuple[str, bytes]:
        body = self.fit(
            alert, self.card, lambda p: p["markdown"]["content"], WECOM_MAX_CONTENT_BYTES
        )
        return self.url, body

    def card(self, alert: Alert, text: str) -> dict[str, Any]:
        color = _COLOURS[alert.severity]
        blocks = [
            f"### {md_neutral(one_line(alert.title))}",
            f'<font color="{color}">{alert.severity}</font> · {alert.kind} · '
            f'<font color="comment">{alert.created_at.isoformat(timespec="seconds")}</font>',
        ]
        fields = md_fields(alert)
        if fields:
            blocks.append("\n".join(fields))
        image = md_image(alert)
        if image and public_url(alert.image_url):
            image = image[1:]  # WeCom markdown shows no inline images; keep the link
        blocks += image
        if text:
            blocks.append("\n".join(md_neutral(line) for line in text.split("\n")))
        return {"msgtype": "markdown", "markdown": {"content": "\n\n".join(blocks)}}

    def robot_status(self, data: Any) -> tuple[str, str] | None:
        if isinstance(data, dict) and "errcode" in data:
            return str(data["errcode"]), str(data.get("errmsg", ""))
        return None
