"""What a sink receives: one JSON object per message or roster event (version 1).

Every message carries its ``msg_id`` (WeChat's MsgId, unique per account): the idempotency key
a consumer uses to drop the duplicates at-least-once delivery allows. ``seq`` is the archive's
storage order, increasing within one archive.
"""

from __future__ import annotations

from typing import Any

from wxcli.store.history import HistoryRow

PAYLOAD_VERSION = 1


def message_payload(row: HistoryRow) -> dict[str, Any]:
    out = {"type": "message", "seq": row.row_id, **row.to_json()}
    out["chat_id"] = row.chat_id
    out["media_status"] = row.media_status
    return out


def roster_payload(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "roster",
        "seq": row["id"],
        "event_id": f"roster-{row['id']}",
        "msg_id": row["msg_id"] or None,
        "chat": row["chat"],
        "chat_id": row["chat_id"],
        "kind": row["kind"],
        "actor": row["actor"],
        "subject": row["subject"],
        "new_name": row["new_name"],
        "created_at": row["created_at"].isoformat(),
    }
