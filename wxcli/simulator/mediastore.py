"""Media the simulated server can hand out: message attachments and the client's uploads.

Messages register what the download endpoints serve for their MsgId (images are kept as a key
and re-made on demand, so a flood of pictures costs no memory); ``webwxuploadmedia`` chunks
are joined into uploads addressed by MediaId, which the send endpoints then refer to.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import urllib.parse
from typing import Any

from wxcli.simulator import media as media_mod
from wxcli.simulator.core import Core
from wxcli.simulator.session import WebSession


class MediaStore:
    """Downloadable media by MsgId (bounded by ``media_limit``) and uploads by MediaId."""

    def __init__(self, core: Core):
        self.core = core
        self.media: dict[str, dict[str, Any]] = {}  # msg id -> media description
        self.media_ids: dict[str, str] = {}  # file MediaId -> msg id
        self.uploads: dict[str, dict[str, Any]] = {}  # media id -> {data, name, mime}
        self.partial_uploads: dict[str, dict[str, Any]] = {}

    def add_media(self, msg_id: str, item: dict[str, Any]) -> None:
        """Register what the download endpoints serve for ``msg_id``; the oldest entries go
        once ``media_limit`` is reached, so endless traffic does not grow memory."""
        with self.core.lock:
            self.media[msg_id] = item
            if item.get("media_id"):
                self.media_ids[item["media_id"]] = msg_id
            while len(self.media) > max(self.core.settings.media_limit, 1):
                old_id = next(iter(self.media))
                old = self.media.pop(old_id)
                if old.get("media_id"):
                    self.media_ids.pop(old["media_id"], None)

    def media_item(self, msg_id: str) -> dict[str, Any] | None:
        """The media of a message with its bytes (images are re-made from their key)."""
        with self.core.lock:
            item = self.media.get(msg_id)
        if item is None:
            return None
        if "key" in item and "full" not in item:
            full, thumb, _w, _h = media_mod.photo(item["key"])
            item = {**item, "full": full, "thumb": thumb}
        return item

    def media_by_media_id(self, media_id: str) -> dict[str, Any] | None:
        with self.core.lock:
            msg_id = self.media_ids.get(media_id)
        return self.media_item(msg_id) if msg_id else None

    def upload_chunk(
        self, sess: WebSession, fields: dict[str, str], data: bytes, filename: str
    ) -> dict[str, Any]:
        """One webwxuploadmedia part; the MediaId comes with the last chunk (keyed by the
        client's ClientMediaId, file id, name and size, so parts may arrive in any order)."""
        try:
            req = json.loads(fields.get("uploadmediarequest", "{}"))
        except ValueError:
            req = {}
        total = int(fields.get("size") or req.get("TotalLen") or len(data))
        chunks = int(fields.get("chunks") or 1)
        chunk = int(fields.get("chunk") or 0)
        name = fields.get("name") or filename or "file"
        key = f"{req.get('ClientMediaId', '')}|{fields.get('id', '')}|{name}|{total}"
        with self.core.lock:
            part = self.partial_uploads.setdefault(key, {"chunks": {}, "total": total})
            part["chunks"][chunk] = data
            if len(part["chunks"]) < chunks:
                got = sum(len(c) for c in part["chunks"].values())
                return {"MediaId": "", "StartPos": got}
            del self.partial_uploads[key]
            blob = b"".join(part["chunks"][i] for i in range(chunks) if i in part["chunks"])
            if len(blob) != total or len(part["chunks"]) != chunks:
                return {"error": 1}
            media_id = f"@crypt_{secrets.token_hex(8)}_{secrets.token_hex(64)}"
            self.uploads[media_id] = {
                "data": blob,
                "name": name,
                "mime": fields.get("type") or "application/octet-stream",
                "mediatype": fields.get("mediatype", ""),
                "md5": hashlib.md5(blob).hexdigest(),  # noqa: S324 - protocol field, not security
            }
            return {
                "MediaId": media_id,
                "StartPos": len(blob),
                "CDNThumbImgHeight": 100,
                "CDNThumbImgWidth": 75,
                "EncryFileName": urllib.parse.quote(name),
            }
