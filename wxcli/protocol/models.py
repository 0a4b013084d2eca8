"""Typed objects for what the server sends: contacts, group members, messages, sync results.

Wire PascalCase becomes snake_case here, at the boundary; nothing above the protocol layer sees
the server's raw dicts (a message keeps its raw JSON only as text, for archiving).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: Session-independent accounts that are not people (protocol §4.4).
SPECIAL_ACCOUNTS = frozenset(
    """newsapp fmessage filehelper weibo qqmail tmessage qmessage qqsync floatbottle lbsapp
    shakeapp medianote qqfriend readerapp blogapp facebookapp masssendapp meishiapp feedsapp
    voip blogappweixin weixin brandsessionholder weixinreminder wxid_novlwrv3lqwv11
    gh_22b87fa7cb3c officialaccounts notification_messages wxitil userexperience_alarm
    notifymessage""".split()  # noqa: SIM905 - a readable block of names
)


def _s(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return "" if value is None else str(value)


def _i(obj: dict[str, Any], key: str) -> int:
    try:
        return int(obj.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def _name(obj: dict[str, Any], key: str) -> str:
    text = _s(obj, key)
    if "emoji" not in text:  # the common case; and keeps wxcli.protocol.content off start-up
        return text
    from wxcli.protocol.content import decode_emoji_spans

    return decode_emoji_spans(text)


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a group as listed in the group's MemberList."""

    user_name: str
    nickname: str
    display_name: str = ""  # the member's name inside this group (may be empty)
    attr_status: int = 0

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Member:
        return cls(
            user_name=_s(obj, "UserName"),
            nickname=_name(obj, "NickName"),
            display_name=_name(obj, "DisplayName"),
            attr_status=_i(obj, "AttrStatus"),
        )

    @property
    def shown_name(self) -> str:
        return self.display_name or self.nickname


@dataclass(frozen=True, slots=True)
class Contact:
    """A friend, official account, special account or group (protocol §4.4)."""

    user_name: str
    nickname: str
    remark: str = ""
    sex: int = 0
    verify_flag: int = 0
    contact_flag: int = 0
    province: str = ""
    city: str = ""
    signature: str = ""
    alias: str = ""
    star: bool = False
    head_img_url: str = ""
    member_count: int = 0
    members: tuple[Member, ...] = ()
    encry_chat_room_id: str = ""
    owner_user_name: str = ""
    is_owner: bool = False
    key_word: str = ""
    uin: int = 0

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> Contact:
        members = obj.get("MemberList") or []
        return cls(
            user_name=_s(obj, "UserName"),
            nickname=_name(obj, "NickName"),
            remark=_name(obj, "RemarkName"),
            sex=_i(obj, "Sex"),
            verify_flag=_i(obj, "VerifyFlag"),
            contact_flag=_i(obj, "ContactFlag"),
            province=_s(obj, "Province"),
            city=_s(obj, "City"),
            signature=_name(obj, "Signature"),
            alias=_s(obj, "Alias"),
            star=bool(_i(obj, "StarFriend")),
            head_img_url=_s(obj, "HeadImgUrl"),
            member_count=_i(obj, "MemberCount"),
            members=tuple(Member.from_wire(m) for m in members if isinstance(m, dict)),
            encry_chat_room_id=_s(obj, "EncryChatRoomId"),
            owner_user_name=_s(obj, "ChatRoomOwner"),
            is_owner=bool(_i(obj, "IsOwner")),
            key_word=_s(obj, "KeyWord"),
            uin=_i(obj, "Uin"),
        )

    @property
    def is_group(self) -> bool:
        return self.user_name.startswith("@@")

    @property
    def is_official(self) -> bool:
        return bool(self.verify_flag & 8)

    @property
    def is_special(self) -> bool:
        return self.user_name in SPECIAL_ACCOUNTS

    @property
    def kind(self) -> str:
        """group | official | special | friend (the chat kinds of the archive)."""
        if self.is_group:
            return "group"
        if self.is_special:
            return "special"
        if self.is_official:
            return "official"
        return "friend"

    @property
    def shown_name(self) -> str:
        """What a person would call this chat: remark, else nickname."""
        return self.remark or self.nickname

    @property
    def members_known(self) -> bool:
        """Groups from webwxinit carry stub members with empty names; those don't count."""
        return any(m.nickname for m in self.members)


@dataclass(frozen=True, slots=True)
class Message:
    """One AddMsgList entry (protocol §7.1), fields as sent, names in snake_case."""

    msg_id: str
    from_user: str
    to_user: str
    msg_type: int
    content: str
    create_time: int
    status: int = 0
    img_status: int = 0
    voice_length: int = 0
    play_length: int = 0
    file_name: str = ""
    file_size: str = ""
    media_id: str = ""
    url: str = ""
    app_msg_type: int = 0
    status_notify_code: int = 0
    status_notify_user: str = ""
    has_product_id: int = 0
    img_width: int = 0
    img_height: int = 0
    sub_msg_type: int = 0
    new_msg_id: int = 0
    ori_content: str = ""
    encry_file_name: str = ""
    recommend_info: dict[str, Any] = field(default_factory=dict)
    raw_json: str = ""

    @classmethod
    def from_wire(cls, obj: dict[str, Any], keep_raw: bool = True) -> Message:
        """Parse one AddMsgList entry. Written for speed (the watch loop calls it for every
        message): well-typed values pass straight through, anything else is converted."""
        get = obj.get
        values: list[Any] = []
        for key, kind in _MESSAGE_FIELDS:
            v = get(key)
            if kind is str:
                values.append(v if type(v) is str else ("" if v is None else str(v)))
            elif type(v) is int:
                values.append(v)
            else:
                try:
                    values.append(int(v or 0))
                except (TypeError, ValueError):
                    values.append(0)
        if not values[0]:
            values[0] = str(get("NewMsgId") or "")
        rec = get("RecommendInfo")
        make: Callable[..., Message] = cls  # positional fields in _MESSAGE_FIELDS order
        return make(
            *values,
            recommend_info=dict(rec) if type(rec) is dict else {},
            raw_json=raw_text(obj) if keep_raw else "",
        )


#: Wire keys in the order of Message's fields (up to ``recommend_info``), with their types.
_MESSAGE_FIELDS: tuple[tuple[str, type], ...] = (
    ("MsgId", str),
    ("FromUserName", str),
    ("ToUserName", str),
    ("MsgType", int),
    ("Content", str),
    ("CreateTime", int),
    ("Status", int),
    ("ImgStatus", int),
    ("VoiceLength", int),
    ("PlayLength", int),
    ("FileName", str),
    ("FileSize", str),
    ("MediaId", str),
    ("Url", str),
    ("AppMsgType", int),
    ("StatusNotifyCode", int),
    ("StatusNotifyUserName", str),
    ("HasProductId", int),
    ("ImgWidth", int),
    ("ImgHeight", int),
    ("SubMsgType", int),
    ("NewMsgId", int),
    ("OriContent", str),
    ("EncryFileName", str),
)


_NESTED = ("RecommendInfo", "AppInfo")


def raw_text(obj: dict[str, Any]) -> str:
    """The wire message as compact JSON, leaving out fields that only hold their empty
    default ("", 0, an object of empties): a third of the size, nothing of substance lost."""
    kept = {k: v for k, v in obj.items() if v}
    for key in _NESTED:
        nested = kept.get(key)
        if isinstance(nested, dict) and not any(nested.values()):
            del kept[key]
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


SyncKey = tuple[tuple[int, int], ...]


def sync_key_from_wire(obj: Any) -> SyncKey:
    """The ``{"Count": n, "List": [{"Key": k, "Val": v}]}`` object as a tuple of pairs."""
    if not isinstance(obj, dict):
        return ()
    pairs = []
    for item in obj.get("List") or []:
        if isinstance(item, dict):
            try:
                pairs.append((int(item["Key"]), int(item["Val"])))
            except (KeyError, TypeError, ValueError):
                continue
    return tuple(pairs)


def sync_key_to_wire(key: SyncKey) -> dict[str, Any]:
    return {"Count": len(key), "List": [{"Key": k, "Val": v} for k, v in key]}


def sync_key_text(key: SyncKey) -> str:
    """The ``synckey`` query form: ``1_698325105|2_698325109|...``."""
    return "|".join(f"{k}_{v}" for k, v in key)


@dataclass(frozen=True, slots=True)
class InitResult:
    user: Contact
    contacts: tuple[Contact, ...]
    sync_key: SyncKey
    chat_set: tuple[str, ...]
    skey: str
    system_time: int
    invite_start_count: int


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One webwxsync answer."""

    messages: tuple[Message, ...]
    modified: tuple[Contact, ...]
    deleted: tuple[str, ...]
    sync_key: SyncKey
    sync_check_key: SyncKey
    skey: str = ""
    continue_flag: int = 0

    @property
    def empty(self) -> bool:
        return not (self.messages or self.modified or self.deleted)


@dataclass(frozen=True, slots=True)
class SyncCheck:
    retcode: int
    selector: int


@dataclass(frozen=True, slots=True)
class SendResult:
    msg_id: str
    local_id: str
