"""Sending: what the web client sends, the server's send limit, echoes and revokes.

Every send endpoint goes through :meth:`Outbox.send`: the target must be a known UserName and a
friend (1204 otherwise), media must have been uploaded first, and a token bucket gives the
1205 "too frequent" answer beyond a burst. Each attempt is recorded for ``GET /_sim/sent``;
accepted sends come back through webwxsync as the phone would echo them.
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

from wxcli.simulator.core import Core
from wxcli.simulator.mediastore import MediaStore
from wxcli.simulator.messages import Composer, echo_of_send, self_recall
from wxcli.simulator.session import WebSession
from wxcli.simulator.world import SPECIAL_ACCOUNTS

TOO_FREQUENT = "操作太频繁，请稍后再试。"
REVOKE_INTRO = "你可以撤回2分钟内发送的消息（部分旧版本微信不支持这个功能）。"


class Outbox:
    """The sends of the web client: limits, records, echoes, revokes."""

    def __init__(self, core: Core, media: MediaStore, composer: Composer):
        self.core = core
        self.media = media
        self.composer = composer
        self.sent: list[dict[str, Any]] = []

    def take_send_token(self, sess: WebSession) -> bool:
        """Token bucket of the server's send limit: burst, then a sustained rate."""
        now = time.monotonic()
        sess.tokens = min(
            float(self.core.settings.send_burst),
            sess.tokens + (now - sess.token_time) * self.core.settings.send_rate,
        )
        sess.token_time = now
        if sess.tokens >= 1.0:
            sess.tokens -= 1.0
            return True
        return False

    def record_send(
        self,
        sess: WebSession,
        endpoint: str,
        msg: dict[str, Any],
        ret: int,
        media_info: dict[str, Any] | None = None,
        msg_id: str = "",
    ) -> None:
        to = str(msg.get("ToUserName", ""))
        pid = sess.pids.get(to, "")
        name = ""
        if pid in self.core.world.groups:
            name = self.core.world.groups[pid].name
        elif pid in self.core.world.persons:
            name = self.core.world.persons[pid].remark or self.core.world.persons[pid].nickname
        elif pid in SPECIAL_ACCOUNTS:
            name = SPECIAL_ACCOUNTS[pid]
        self.sent.append(
            {
                "time": time.time(),
                "endpoint": endpoint,
                "type": msg.get("Type"),
                "to_user_name": to,
                "to_name": name,
                "to_id": pid,
                "text": msg.get("Content", "") if msg.get("Type") in (1, "1") else "",
                "content": msg.get("Content", ""),
                "media": media_info,
                "msg_id": msg_id,
                "local_id": str(msg.get("LocalID", "")),
                "client_msg_id": str(msg.get("ClientMsgId", "")),
                "ret": ret,
            }
        )

    def send(self, sess: WebSession, endpoint: str, msg: dict[str, Any]) -> tuple[int, str, str]:
        """Common path of every send endpoint: (ret, errmsg, MsgID)."""
        with self.core.cond:
            to = str(msg.get("ToUserName", ""))
            pid = sess.pids.get(to)
            media_info = None
            if pid is None:
                self.record_send(sess, endpoint, msg, 1)
                return 1, "", ""
            person = self.core.world.persons.get(pid)
            if person is not None and not person.friend:
                self.record_send(sess, endpoint, msg, 1204)
                return 1204, "", ""
            media_id = str(msg.get("MediaId", ""))
            if endpoint == "webwxsendappmsg":
                m = re.search(r"<attachid>(.*?)</attachid>", str(msg.get("Content", "")))
                media_id = m.group(1) if m else media_id
            upload = None
            if media_id:
                upload = self.media.uploads.get(media_id)
                if upload is None:
                    self.record_send(sess, endpoint, msg, 1)
                    return 1, "", ""
                media_info = {
                    "media_id": media_id,
                    "sha256": hashlib.sha256(upload["data"]).hexdigest(),
                    "size": len(upload["data"]),
                    "name": upload["name"],
                    "mime": upload["mime"],
                    "mediatype": upload["mediatype"],
                }
            elif endpoint in ("webwxsendmsgimg", "webwxsendvideomsg") or (
                endpoint == "webwxsendemoticon" and not msg.get("EMoticonMd5")
            ):
                self.record_send(sess, endpoint, msg, 1)
                return 1, "", ""
            if not self.take_send_token(sess):
                self.record_send(sess, endpoint, msg, 1205, media_info)
                return 1205, TOO_FREQUENT, ""
            msg_id = self.core.new_msg_id()
            sess.sent_ids[msg_id] = (time.time(), to, str(msg.get("ClientMsgId", "")))
            self.record_send(sess, endpoint, msg, 0, media_info, msg_id)
            if self.core.settings.echo_sends:
                echo = echo_of_send(self.composer, sess, endpoint, msg, msg_id, upload)
                if echo is not None:
                    sess.append("msg", echo)
                    self.core.cond.notify_all()
            return 0, "", msg_id

    def revoke(self, sess: WebSession, svr_msg_id: str, to: str) -> int:
        """webwxrevokemsg: 0 for the sender's own message within two minutes, else 1."""
        with self.core.cond:
            info = sess.sent_ids.get(svr_msg_id)
            if info is None or info[1] != to:
                return 1
            if time.time() - info[0] > 120:
                return 1
            del sess.sent_ids[svr_msg_id]
            msg = self_recall(self.composer, sess, svr_msg_id, to)
            sess.append("msg", msg)
            self.core.cond.notify_all()
            return 0
