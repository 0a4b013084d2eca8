"""A WeChat text (``type = "wechat"``) to a group or 'filehelper' through the live session.

The channel holds no session of its own: ``wxcli watch`` injects a sender (paced like every
other send), so the channel cannot carry the alerts that say that session is gone.
"""

from __future__ import annotations

from typing import ClassVar, Self

from wxcli.alerts.channels.base import BuildContext, Channel, ChannelTable, WeChatSender
from wxcli.alerts.channels.render import TRUNCATED, render_text
from wxcli.alerts.model import LOGIN_KINDS, Alert
from wxcli.errors import AlertError, WxError

#: Longest WeChat text we send; longer alerts are cut (the history pointer says where the rest is).
WECHAT_MAX_CHARS = 2000


class WeChatChannel(Channel):
    """A text message to a WeChat group or 'filehelper' through the live watch session."""

    kind = "wechat"
    config_keys: ClassVar[frozenset[str]] = frozenset({"type", "to"})

    def __init__(self, name: str, *, to: str, send_text: WeChatSender | None = None) -> None:
        super().__init__(name)
        self.to = to
        self._send_text = send_text

    @classmethod
    def from_config(cls, table: ChannelTable, ctx: BuildContext) -> Self:
        table.check_keys(set(cls.config_keys))
        to = table.required("to", 'to = "filehelper" or a group name')
        return cls(table.name, to=to, send_text=ctx.wechat_sender)

    @property
    def target(self) -> str:
        return f"WeChat to {self.to!r}"

    def skip_reason(self, alert: Alert) -> str | None:
        if alert.kind in LOGIN_KINDS:
            return "a WeChat channel cannot deliver this: it needs the session that was lost"
        return None

    def send(self, alert: Alert) -> None:
        if self._send_text is None:
            raise AlertError("WeChat channel needs a live session")
        text = render_text(alert)
        if len(text) > WECHAT_MAX_CHARS:
            text = text[: WECHAT_MAX_CHARS - len(TRUNCATED)] + TRUNCATED
        try:
            self._send_text(self.to, text)
        except AlertError:
            raise
        except WxError as exc:
            raise AlertError(f"WeChat message to {self.to!r} failed: {exc}") from exc
