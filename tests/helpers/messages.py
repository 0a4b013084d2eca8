"""Plain archive messages for tests: ``msg(i, text)`` is message ``5000 + i`` in 客服1群 from
张伟, ``ago`` hours before the test session started."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from wxcli.store.records import ChatMessage

NOW = datetime.now(UTC).replace(microsecond=0)


def msg(
    i: int,
    text: str,
    *,
    chat: str = "@@g1",
    chat_name: str = "客服1群",
    sender: str = "@u1",
    name: str = "张伟",
    ago: float = 0,
    **kw: Any,
) -> ChatMessage:
    when = NOW - timedelta(hours=ago)
    return ChatMessage(
        msg_id=str(5000 + i),
        chat_user=chat,
        chat_kind="group",
        chat_name=chat_name,
        sender_user=sender,
        sender_name=name,
        is_self=False,
        kind=kw.pop("kind", "text"),
        msg_type=kw.pop("msg_type", 1),
        app_msg_type=0,
        text=text,
        created_at=when,
        received_at=when,
        **kw,
    )
