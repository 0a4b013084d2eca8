"""The message queues: what reaches the web session, and how webwxsync hands it out.

The mailbox appends messages and contact changes to the current session's event log, answers
synccheck (held until something waits) and webwxsync (a batch after the client's key), and
remembers injected messages for ``/_sim/injected`` and recalls. ``inject_group_texts`` is the
flood path: byte-identical to :meth:`Mailbox.inject`, at a fraction of the cost.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from wxcli.simulator import wire
from wxcli.simulator.core import Core
from wxcli.simulator.directory import Directory
from wxcli.simulator.faults import FaultBoard
from wxcli.simulator.messages import Composer, build_message, build_recall
from wxcli.simulator.session import Event, WebSession


class Mailbox:
    """Injected messages, contact changes, status notifications, synccheck and webwxsync."""

    def __init__(self, core: Core, faults: FaultBoard, directory: Directory, composer: Composer):
        self.core = core
        self.faults = faults
        self.directory = directory
        self.composer = composer
        # injected messages, newest last: (msg id, chat, MsgType, time)
        self.history: deque[tuple[str, str, int, float]] = deque(
            maxlen=max(core.settings.history_limit, 1)
        )
        self.sync_count = 0

    # ------------------------------------------------------------------ what arrives

    def find_injected(self, msg_id: str) -> tuple[str, str, int, float] | None:
        with self.core.lock:
            for entry in reversed(self.history):
                if entry[0] == msg_id:
                    return entry
        return None

    def injected_since(self, since: float) -> list[dict[str, Any]]:
        with self.core.lock:
            return [
                {"msg_id": mid, "chat": chat, "type": mtype, "time": t}
                for mid, chat, mtype, t in self.history
                if t >= since
            ]

    def deliver(self, msg: dict[str, Any], chat: str, injected: bool = True) -> None:
        """Queue a message for the session (if one is logged in) and remember it."""
        sess = self.core.live_session()
        if sess is not None:
            sess.append("msg", msg)
        if injected:
            self.history.append((msg["MsgId"], chat, msg["MsgType"], time.time()))
        self.core.cond.notify_all()

    def mod_contact(self, pid: str) -> None:
        """Queue a ModContactList entry: the contact or group as it is now."""
        sess = self.core.live_session()
        if sess is None:
            return
        contact = self.directory.contact_for_pid(sess, pid)
        if contact is None:
            return
        owner = ""
        g = self.core.world.groups.get(pid)
        if g is not None:
            owner = sess.name_for(g.owner, short=g.owner == self.core.world.account.pid)
        sess.append("mod", wire.mod_contact_object(contact, owner))
        self.core.cond.notify_all()

    def del_contact(self, pid: str) -> None:
        """Queue a DelContactList entry (the contact or group is gone from the address book)."""
        sess = self.core.live_session()
        if sess is None:
            return
        un = sess.name_for(pid, group=pid in self.core.world.groups)
        sess.append("del", {"UserName": un, "ContactFlag": 0})
        self.core.cond.notify_all()

    def inject_group_texts(self, items: list[tuple[str, str, str]]) -> list[str]:
        """Fast path for floods: plain group texts ``(group id, sender pid, text)``.

        Each (group, sender) pair is laid out once as a template with the MsgId, Content and
        CreateTime left open; a message is then one string format instead of building and
        encoding a 28-field object. The bytes are identical to :meth:`inject`'s."""
        core = self.core
        new_msg_id, groups = core.new_msg_id, core.world.groups
        with core.cond:
            sess = core.live_session()
            templates: dict[tuple[str, str], tuple[str, str, str]] = {}
            ids: list[str] = []
            now = int(time.time())
            for gid, sender, text in items:
                group = groups[gid]
                msg_id = new_msg_id()
                if sess is not None:
                    tpl = templates.get((gid, sender))
                    if tpl is None:
                        tpl = templates[(gid, sender)] = self._text_template(gid, sender)
                    template, prefix, _chat = tpl
                    content = json.encoder.encode_basestring(prefix + wire.escape_text(text))
                    raw = (template % (msg_id, content, now, msg_id)).encode("utf-8")
                    sess.append_raw("msg", raw, msg_id, now)
                else:  # nobody logged in: only the history remembers it
                    build_message(self.composer, {"group": gid, "sender": sender, "content": text})
                self.history.append((msg_id, group.name, 1, time.time()))
                ids.append(msg_id)
            core.cond.notify_all()
            return ids

    def _text_template(self, gid: str, sender: str) -> tuple[str, str, str]:
        """(%-template, sender prefix, chat name) of a group text; see inject_group_texts."""
        marker_id, marker_time = "1234567890123456789", 1111111111
        spec = {"group": gid, "sender": sender, "content": "", "create_time": marker_time}
        msg, chat = build_message(self.composer, spec)
        prefix = msg["Content"]
        msg = {**msg, "MsgId": marker_id, "NewMsgId": int(marker_id), "Content": "\x01"}
        text = wire.encode_lines(msg).decode("utf-8").replace("%", "%%")
        text = text.replace(f'"MsgId": "{marker_id}"', '"MsgId": "%s"', 1)
        text = text.replace('"Content": "\\u0001"', '"Content": %s', 1)
        text = text.replace(f'"CreateTime": {marker_time}', '"CreateTime": %d', 1)
        text = text.replace(f'"NewMsgId": {marker_id}', '"NewMsgId": %s', 1)
        return text, prefix, chat

    def inject(self, spec: dict[str, Any]) -> list[str]:
        """Add messages to the world (see the README's control API for the fields)."""
        with self.core.cond:
            out = []
            count = int(spec.get("count", 1))
            for i in range(count):
                one = dict(spec)
                if count > 1 and "content" in one and "{i}" in str(one["content"]):
                    one["content"] = str(one["content"]).replace("{i}", str(i))
                msg, chat = build_message(self.composer, one)
                self.deliver(msg, chat)
                out.append(msg["MsgId"])
            return out

    def recall(self, msg_id: str, by: str | None = None) -> str:
        with self.core.cond:
            msg, chat = build_recall(self.composer, msg_id, self.find_injected(msg_id))
            self.deliver(msg, chat)
            return msg["MsgId"]

    def status_notify(self, sess: WebSession, code: int, to_user: str) -> str:
        """webwxstatusnotify; Code 3 (inited) makes the phone push a MsgType 51 sync message."""
        with self.core.cond:
            msg_id = self.core.new_msg_id()
            if code == 3:
                recent_pids = ["filehelper"]
                recent_pids += [g.gid for g in list(self.core.world.groups.values())[:8]]
                recent_pids += [p.pid for p in self.core.world.persons.values() if p.friend][:5]
                groups = self.core.world.groups
                names = [sess.name_for(pid, group=pid in groups) for pid in recent_pids]
                chats = "".join(
                    f"<chat><username>{pid}</username><lastreadtime>{int(time.time()) - 60}"
                    f"</lastreadtime></chat>"
                    for pid in recent_pids[:3]
                )
                xml = (
                    f"<msg><op id='4'><username>{','.join(recent_pids)}</username>"
                    f"<unreadchatlist>{chats}</unreadchatlist><unreadfunctionlist>"
                    "</unreadfunctionlist></op></msg>"
                )
                msg = wire.message_object(
                    msg_id=self.core.new_msg_id(),
                    from_user=sess.user_name,
                    to_user=sess.user_name,
                    msg_type=51,
                    content=wire.escape_xml_payload(xml),
                    create_time=int(time.time()),
                    status_notify_code=4,
                    status_notify_user=",".join(names),
                )
                sess.append("msg", msg)
                self.core.cond.notify_all()
            return msg_id

    # ------------------------------------------------------------------ sync

    def wait_synccheck(
        self, sess: WebSession, key1: int | None, hold: float | None = None
    ) -> tuple[str, str]:
        """Hold until something is pending for this key (or the hold ends): (retcode, selector).

        The answer depends only on the key the client sends, so the same selector repeats
        until the client has called webwxsync and moved on to the new key."""
        hold = self.core.settings.synccheck_hold if hold is None else hold
        deadline = time.monotonic() + hold
        with self.core.cond:
            while True:
                if not sess.alive:
                    return str(sess.dead_code or 1101), "0"
                spin = self.faults.take("synccheck", {"spin"})
                if spin is not None:
                    return "0", spin.selector
                seq = sess.seq_of(key1)
                selector = sess.selector(sess.seq if seq is None else seq)
                if selector != "0":
                    return "0", selector
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.core.stopping.is_set():
                    return "0", "0"
                self.core.cond.wait(min(remaining, 1.0))

    def sync(self, sess: WebSession, key1: int | None) -> dict[str, Any] | None:
        """webwxsync: the events after the client's key, up to the batch size. None = bad key.

        The key a client sends acknowledges everything before it; events stay retained
        ``retention`` positions behind that, so a client that restarts from an older key it
        had saved gets the same messages again (at-least-once, like the real server)."""
        with self.core.cond:
            self.sync_count += 1
            seq = sess.seq_of(key1)
            if seq is None:
                return None
            if self.faults.take("webwxsync", {"spin"}) is not None:
                batch: list[Event] = []
            else:
                batch = sess.pending(seq, max(self.core.settings.sync_batch, 1))
            new_seq = batch[-1].seq if batch else seq
            if batch and self.faults.take("webwxsync", {"duplicate"}) is not None:
                new_seq = seq  # the key does not move: the same batch comes again next time
            sess.acked = max(sess.acked, seq)
            sess.prune(self.core.settings.retention)
            msgs = [wire.RawJSON(ev.raw) for ev in batch if ev.kind == "msg"]
            mods = [wire.RawJSON(ev.raw) for ev in batch if ev.kind == "mod"]
            dels = [wire.RawJSON(ev.raw) for ev in batch if ev.kind == "del"]
            key = sess.sync_key(seq=new_seq)
            return {
                "BaseResponse": wire.base_response(),
                "AddMsgCount": len(msgs),
                "AddMsgList": msgs,
                "ModContactCount": len(mods),
                "ModContactList": mods,
                "DelContactCount": len(dels),
                "DelContactList": dels,
                "ModChatRoomMemberCount": 0,
                "ModChatRoomMemberList": [],
                "Profile": wire.empty_profile(),
                "ContinueFlag": 0,
                "SyncKey": key,
                "SKey": "",
                "SyncCheckKey": key,
            }
