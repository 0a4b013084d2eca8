"""How the simulated server writes things on the wire: escaping, emoji spans, JSON layout, objects.

Kept separate from wxcli's client-side parsing on purpose: the simulator is an independent
reading of the protocol file, so a misreading on one side shows up as a failing test.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

# Code point ranges the server turns into <span class="emoji emojiXXXX"></span>.
_EMOJI_RE = re.compile(
    "([\U0001f1e6-\U0001f1ff]{2})"  # flags: two regional indicators -> one 10-hex span
    "|([\U0001f000-\U0001faff\u2600-\u27bf\u2b50\u2b55\u231a\u231b\u23e9-\u23fa])\ufe0f?"
)


def emoji_span(code: str) -> str:
    return f'<span class="emoji emoji{code}"></span>'


def encode_emoji(text: str) -> str:
    """Replace emoji by the spans the web server sends (lowercase hex, flags as 10 hex)."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return emoji_span("".join(f"{ord(c):x}" for c in m.group(1)))
        return emoji_span(f"{ord(m.group(2)):x}")

    return _EMOJI_RE.sub(repl, text)


def escape_text(text: str) -> str:
    """Plain text as it appears in Content: HTML-escaped, newlines as <br/>, emoji as spans."""
    escaped = html.escape(text, quote=False)
    return encode_emoji(escaped).replace("\r\n", "\n").replace("\n", "<br/>")


def escape_name(text: str) -> str:
    """Names (NickName, RemarkName, DisplayName) carry emoji spans but are not HTML-escaped."""
    return encode_emoji(text)


_BETWEEN_ELEMENTS = re.compile(r"(?<!\]\])&gt;&lt;(?!!\[CDATA\[)")


def escape_xml_payload(xml: str) -> str:
    """XML payloads in Content arrive escaped, with <br/> (and tabs) between elements (but a
    CDATA section stays on its element's line, as in the recall capture)."""
    escaped = html.escape(xml, quote=False)
    return _BETWEEN_ELEMENTS.sub("&gt;<br/>\t&lt;", escaped)


class RawJSON:
    """An already-encoded JSON value (``lines`` layout, UTF-8) spliced into a response as is.

    Messages are encoded once when they enter the event log, so a webwxsync answer is mostly a
    join of ready bytes, and a re-delivered message is byte-identical to its first delivery.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


_escape = json.encoder.encode_basestring  # the C string quoter (non-ASCII kept as is)
_KEY_PREFIX: dict[str, str] = {}  # '"MsgId": ' per key (the key set is small)
_SHARED_TEXT: dict[int, str] = {}  # layout of the shared constant objects below
_CACHE_LIMIT = 4096


def wechat_json(obj: Any, style: str = "lines") -> bytes:
    """Serialise like the server does.

    ``lines`` is the layout of raw captures: one key per line, no indentation, every object
    closed by ``}`` on its own line followed by a newline (so a nested object is followed by a
    lone ``,`` line, and list elements by ``\n,{``). ``compact`` is the other captured form,
    ``{"BaseResponse": {"Ret": 0,"ErrMsg": ""},"MsgID": "…"}``: the same text without the line
    breaks (JSON strings never hold a raw newline, so every newline is layout).
    """
    data = encode_lines(obj)
    if style == "compact":
        return data.replace(b"\n", b"")
    return data


def encode_lines(obj: Any) -> bytes:
    """``obj`` in the ``lines`` layout, as UTF-8 bytes; :class:`RawJSON` values (directly, or
    as elements of a list value) are spliced in without re-encoding."""
    t = type(obj)
    if t is RawJSON:
        return obj.data
    if t is dict and any(_holds_raw(v) for v in obj.values()):
        parts = [_key(k).encode("utf-8") + encode_lines(v) for k, v in obj.items()]
        return b"{\n" + b",\n".join(parts) + b"\n}\n"
    if t is list and any(type(v) is RawJSON for v in obj):
        return b"[" + b",".join([encode_lines(v) for v in obj]) + b"]"
    return _lines(obj).encode("utf-8")


def _holds_raw(value: Any) -> bool:
    t = type(value)
    return t is RawJSON or (t is list and any(type(v) is RawJSON for v in value))


def _key(k: str) -> str:
    prefix = _KEY_PREFIX.get(k)
    if prefix is None:
        prefix = _escape(k) + ": "
        if len(_KEY_PREFIX) < _CACHE_LIMIT:
            _KEY_PREFIX[k] = prefix
    return prefix


def _scalar(v: Any) -> str:
    t = type(v)
    if t is str:
        return _escape(v)
    if t is int:
        return int.__repr__(v)
    # bool, None, float, and str/int subclasses: exactly what the json module writes
    return json.dumps(v, ensure_ascii=False)


def _nested(v: dict[str, Any]) -> str:
    """A nested object. The shared empty RecommendInfo/AppInfo of most messages are laid out
    once (they are module constants, never mutated)."""
    if v is EMPTY_RECOMMEND or v is EMPTY_APP_INFO:
        text = _SHARED_TEXT.get(id(v))
        if text is None:
            text = _SHARED_TEXT[id(v)] = _lines(v)
        return text
    return _lines(v)


def _lines(
    obj: Any,
    _esc: Any = _escape,
    _prefixes: dict[str, str] = _KEY_PREFIX,
    _int: Any = int.__repr__,
) -> str:
    """The layout built directly, strings quoted by the C quoter: a few µs per message (the
    stdlib's C encoder is slower here, joining thousands of mixed-width string pieces).
    The defaults bind hot globals as locals."""
    t = type(obj)
    if t is dict:
        if not obj:
            return "{}"
        parts: list[str] = []
        append = parts.append
        for k, v in obj.items():
            prefix = _prefixes.get(k) or _key(k)
            tv = type(v)
            if tv is str:
                append(prefix + _esc(v))
            elif tv is int:
                append(prefix + _int(v))
            elif tv is dict:
                append(prefix + (_nested(v) if v else "{}"))
            elif tv is list or tv is RawJSON:
                append(prefix + _lines(v))
            else:
                append(prefix + _scalar(v))
        return "{\n" + ",\n".join(parts) + "\n}\n"
    if t is list:
        return "[" + ",".join([_lines(v) for v in obj]) + "]"
    if t is RawJSON:
        return obj.data.decode("utf-8")
    return _scalar(obj)


BASE_OK = {"Ret": 0, "ErrMsg": ""}


def empty_profile() -> dict[str, Any]:
    """webwxsync's ``Profile`` when the account's own profile did not change."""
    return {
        "BitFlag": 0,
        "UserName": {"Buff": ""},
        "NickName": {"Buff": ""},
        "BindUin": 0,
        "BindEmail": {"Buff": ""},
        "BindMobile": {"Buff": ""},
        "Status": 0,
        "Sex": 0,
        "PersonalCard": 0,
        "Alias": "",
        "HeadImgUpdateFlag": 0,
        "HeadImgUrl": "",
        "Signature": "",
    }


def base_response(ret: int = 0, err: str = "") -> dict[str, Any]:
    return {"Ret": ret, "ErrMsg": err}


def contact_object(
    *,
    user_name: str,
    nickname: str,
    remark: str = "",
    sex: int = 0,
    verify_flag: int = 0,
    contact_flag: int = 3,
    province: str = "",
    city: str = "",
    signature: str = "",
    alias: str = "",
    keyword: str = "",
    star: bool = False,
    head_img_url: str = "",
    member_list: list[dict[str, Any]] | None = None,
    member_count: int = 0,
    encry_chat_room_id: str = "",
    is_owner: int = 0,
    owner_uin: int = 0,
    attr_status: int = 0,
    statues: int = 0,
    uin: int = 0,
) -> dict[str, Any]:
    """A full contact object (§4.4) in the server's field order."""
    return {
        "Uin": uin,
        "UserName": user_name,
        "NickName": escape_name(nickname),
        "HeadImgUrl": head_img_url,
        "ContactFlag": contact_flag,
        "MemberCount": member_count,
        "MemberList": member_list if member_list is not None else [],
        "RemarkName": escape_name(remark),
        "HideInputBarFlag": 0,
        "Sex": sex,
        "Signature": escape_name(signature),
        "VerifyFlag": verify_flag,
        "OwnerUin": owner_uin,
        "PYInitial": "",
        "PYQuanPin": "",
        "RemarkPYInitial": "",
        "RemarkPYQuanPin": "",
        "StarFriend": 1 if star else 0,
        "AppAccountFlag": 0,
        "Statues": statues,
        "AttrStatus": attr_status,
        "Province": province,
        "City": city,
        "Alias": alias,
        "SnsFlag": 17 if not verify_flag and not user_name.startswith("@@") else 0,
        "UniFriend": 0,
        "DisplayName": "",
        "ChatRoomId": 0,
        "KeyWord": keyword,
        "EncryChatRoomId": encry_chat_room_id,
        "IsOwner": is_owner,
    }


def member_object(user_name: str, nickname: str, display_name: str, attr: int) -> dict[str, Any]:
    """A group member inside MemberList (§4.3 member shape)."""
    return {
        "Uin": 0,
        "UserName": user_name,
        "NickName": escape_name(nickname),
        "AttrStatus": attr,
        "PYInitial": "",
        "PYQuanPin": "",
        "RemarkPYInitial": "",
        "RemarkPYQuanPin": "",
        "MemberStatus": 0,
        "DisplayName": escape_name(display_name),
        "KeyWord": "",
    }


def mod_contact_object(full: dict[str, Any], owner_user_name: str = "") -> dict[str, Any]:
    """The slightly different contact shape used inside ModContactList (§4.4)."""
    return {
        "UserName": full["UserName"],
        "NickName": full["NickName"],
        "Sex": full["Sex"],
        "HeadImgUpdateFlag": 1,
        "ContactType": 0,
        "Alias": full["Alias"],
        "ChatRoomOwner": owner_user_name,
        "HeadImgUrl": full["HeadImgUrl"],
        "ContactFlag": full["ContactFlag"],
        "MemberCount": full["MemberCount"],
        "MemberList": full["MemberList"],
        "HideInputBarFlag": 0,
        "Signature": full["Signature"],
        "VerifyFlag": full["VerifyFlag"],
        "RemarkName": full["RemarkName"],
        "Statues": full["Statues"],
        "AttrStatus": full["AttrStatus"],
        "Province": full["Province"],
        "City": full["City"],
        "SnsFlag": full["SnsFlag"],
        "KeyWord": full["KeyWord"],
    }


EMPTY_APP_INFO = {"AppID": "", "Type": 0}
EMPTY_RECOMMEND = {
    "UserName": "",
    "NickName": "",
    "QQNum": 0,
    "Province": "",
    "City": "",
    "Content": "",
    "Signature": "",
    "Alias": "",
    "Scene": 0,
    "VerifyFlag": 0,
    "AttrStatus": 0,
    "Sex": 0,
    "Ticket": "",
    "OpCode": 0,
}


def message_object(
    *,
    msg_id: str,
    from_user: str,
    to_user: str,
    msg_type: int,
    content: str,
    create_time: int,
    status: int = 3,
    img_status: int = 1,
    voice_length: int = 0,
    play_length: int = 0,
    file_name: str = "",
    file_size: str = "",
    media_id: str = "",
    url: str = "",
    app_msg_type: int = 0,
    status_notify_code: int = 0,
    status_notify_user: str = "",
    recommend_info: dict[str, Any] | None = None,
    has_product_id: int = 0,
    img_height: int = 0,
    img_width: int = 0,
    sub_msg_type: int = 0,
    ori_content: str = "",
    encry_file_name: str = "",
) -> dict[str, Any]:
    """A full AddMsgList element (§7.1) in the server's field order."""
    return {
        "MsgId": msg_id,
        "FromUserName": from_user,
        "ToUserName": to_user,
        "MsgType": msg_type,
        "Content": content,
        "Status": status,
        "ImgStatus": img_status,
        "CreateTime": create_time,
        "VoiceLength": voice_length,
        "PlayLength": play_length,
        "FileName": file_name,
        "FileSize": file_size,
        "MediaId": media_id,
        "Url": url,
        "AppMsgType": app_msg_type,
        "StatusNotifyCode": status_notify_code,
        "StatusNotifyUserName": status_notify_user,
        "RecommendInfo": recommend_info or EMPTY_RECOMMEND,  # shared: never mutated
        "ForwardFlag": 0,
        "AppInfo": EMPTY_APP_INFO,
        "HasProductId": has_product_id,
        "Ticket": "",
        "ImgHeight": img_height,
        "ImgWidth": img_width,
        "SubMsgType": sub_msg_type,
        "NewMsgId": int(msg_id),
        "OriContent": ori_content,
        "EncryFileName": encry_file_name,
    }
