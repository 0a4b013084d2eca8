"""Turn the raw wire fields of one Web WeChat message (an ``AddMsgList`` element) into clean fields.

Pure functions and frozen dataclasses, no I/O: the watch loop calls these for every message, so
plain text never touches an XML parser and every regex is compiled once at import.
"""

from __future__ import annotations

import html
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from wxcli.protocol import xmlutil

__all__ = [
    "AppMsgInfo",
    "CardInfo",
    "FriendRequestInfo",
    "LocationInfo",
    "MediaHints",
    "RecallInfo",
    "RosterEvent",
    "classify",
    "decode_emoji_spans",
    "find_mentions",
    "mentions_me",
    "parse_appmsg",
    "parse_card",
    "parse_friend_request",
    "parse_location",
    "parse_media_xml",
    "parse_recall",
    "parse_system_text",
    "split_group_prefix",
    "unescape_text",
]

# --------------------------------------------------------------------------------------------------
# Text: emoji spans, <br/>, HTML entities

# The suffix is matched loosely (anything up to the quote) so that a malformed span is still
# consumed instead of leaking markup into stored text; `>?` absorbs the server's missing-'>' glitch.
_EMOJI_SPAN_RE = re.compile(r'<span class="emoji emoji([^"<>]{0,32})"></span>?')
_HEX_RE = re.compile(r"[0-9a-f]+")
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)

# The server sends some cat faces where the sender typed the matching human face.
_CAT_FACE_FIX = {
    0x1F63C: 0x1F601,
    0x1F639: 0x1F602,
    0x1F63A: 0x1F603,
    0x1F4AB: 0x1F616,
    0x1F64D: 0x1F614,
    0x1F63B: 0x1F60D,
    0x1F63D: 0x1F618,
    0x1F64E: 0x1F621,
    0x1F63F: 0x1F622,
}


def _emoji_for(match: re.Match[str]) -> str:
    code = match.group(1).lower()
    n = len(code)
    if not _HEX_RE.fullmatch(code):
        return ""
    parts: tuple[str, ...]
    if n in (8, 10):  # two code points, e.g. flags and keycaps
        parts = (code[: n // 2], code[n // 2 :])
    elif n <= 6:
        parts = (code,)
    else:
        return ""
    chars = []
    for part in parts:
        cp = int(part, 16)
        cp = _CAT_FACE_FIX.get(cp, cp)
        if cp == 0 or cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
            return ""  # a surrogate or out-of-range value would poison every encoder downstream
        chars.append(chr(cp))
    return "".join(chars)


def decode_emoji_spans(s: str) -> str:
    """Replace ``<span class="emoji emoji1f600"></span>`` markup by the emoji it stands for.

    Spans with an invalid code point are dropped (never kept as markup, never an error).
    """
    if "emoji" not in s:
        return s
    return _EMOJI_SPAN_RE.sub(_emoji_for, s)


def unescape_text(s: str) -> str:
    """Wire text to plain text: ``<br/>`` to newline, emoji spans to emoji, then HTML entities.

    Spans are decoded before entities are resolved, so markup a *user* typed (which arrives as
    ``&lt;span …&gt;``) stays literal text.
    """
    if "<" in s:
        s = s.replace("<br/>", "\n")
        if "<br" in s or "<BR" in s:
            s = _BR_RE.sub("\n", s)
        s = decode_emoji_spans(s)
    if "&" in s:
        s = _unescape_entities(s)
    return s


def _unescape_entities(s: str) -> str:
    # XML payloads carry dozens of entities and html.unescape is slow on them; when every '&'
    # starts one of the five the server emits, plain replaces give the identical single-pass result
    # ('&amp;' last, so '&amp;lt;' becomes '&lt;').
    known = (
        s.count("&lt;") + s.count("&gt;") + s.count("&quot;") + s.count("&#39;") + s.count("&amp;")
    )
    if known != s.count("&"):
        return html.unescape(s)
    return (
        s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&#39;", "'")
        .replace("&amp;", "&")
    )


# --------------------------------------------------------------------------------------------------
# Group prefix and mentions

_GROUP_PREFIX_RE = re.compile(r"(@[0-9A-Za-z]+):(?:<br/>|\n)")


def split_group_prefix(content: str) -> tuple[str | None, str]:
    """Split ``@<UserName>:<br/>body`` into ``("@<UserName>", "body")``; else ``(None, content)``.

    Works on wire content (``<br/>``) and on already unescaped content (newline). Only call it for
    messages *received* in a group: messages you sent from another device carry no prefix, and a
    text you typed that starts with ``@abc:`` plus a line break would be split.
    """
    if not content.startswith("@"):
        return None, content
    m = _GROUP_PREFIX_RE.match(content)
    if m is None:
        return None, content
    return m.group(1), content[m.end() :]


# WeChat clients put U+2005 (four-per-em space) after a mention; hand-typed mentions end in a space.
_MENTION_MARK = "\u2005"
_SOFT_ENDS = " \u3000\n\r\t"
_MENTION_RE = re.compile(
    r"@([^@\u2005\n]{1,64})\u2005"
    # Without the marker, a name is one word, and a preceding ASCII letter/digit means an e-mail
    # address ("a@b.com"), not a mention.
    r"|(?<![0-9A-Za-z])@([^\s@]{1,64})(?=[ \u3000\n\r\t]|\Z)"
)


def find_mentions(text: str) -> list[str]:
    """Names @-mentioned in plain *text*, in order of appearance, without duplicates.

    ``@name`` counts when followed by U+2005 (then the name may contain spaces), or by a space,
    ideographic space or line break, or the end of the text (then the name is a single word).
    """
    if "@" not in text:
        return []
    found: dict[str, None] = {}
    for m in _MENTION_RE.finditer(text):
        name = (m.group(1) if m.group(1) is not None else m.group(2)).strip()
        if name:
            found[name] = None
    return list(found)


def _is_ascii_alnum(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def mentions_me(text: str, my_names: Iterable[str]) -> bool:
    """True when *text* @-mentions any of *my_names* (group display name, nickname…).

    Same rule as :func:`find_mentions`, except that a name containing spaces also counts when
    followed by a plain space.
    """
    if "@" not in text:
        return False
    names = {n.strip() for n in my_names if n and n.strip()}
    if not names:
        return False
    for name in find_mentions(text):
        if name in names:
            return True
    # Names the regex cannot express without the U+2005 marker (spaces or '@' inside).
    for name in names:
        if not any(c in name for c in " \u3000@\t\n"):
            continue
        needle = "@" + name
        start = text.find(needle)
        while start >= 0:
            end = start + len(needle)
            if end == len(text) or text[end] == _MENTION_MARK:
                return True
            if text[end] in _SOFT_ENDS and (start == 0 or not _is_ascii_alnum(text[start - 1])):
                return True
            start = text.find(needle, start + 1)
    return False


# --------------------------------------------------------------------------------------------------
# XML access that works the same on a parsed tree and on the regex fallback


class _Doc:
    """One payload: the parsed tree when well-formed, else regex look-ups on the raw text."""

    __slots__ = ("_found", "root", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.root: ET.Element | None = xmlutil.parse(text)
        self._found: dict[str, ET.Element | None] = {}

    def _element(self, tag: str) -> ET.Element | None:
        """First *tag* in document order (the root included); cached, parsers ask repeatedly."""
        try:
            return self._found[tag]
        except KeyError:
            pass
        assert self.root is not None
        el = self._found[tag] = next(self.root.iter(tag), None)
        return el

    def has(self, tag: str) -> bool:
        if self.root is not None:
            return self._element(tag) is not None
        return xmlutil.regex_attrs(self.text, tag) is not None

    def attrs(self, tag: str) -> dict[str, str] | None:
        if self.root is not None:
            el = self._element(tag)
            return dict(el.attrib) if el is not None else None
        return xmlutil.regex_attrs(self.text, tag)

    def text_of(self, parent: str, tag: str) -> str:
        """Stripped text of *tag* directly under the first *parent* ('' when absent)."""
        if self.root is not None:
            el = self._element(parent)
            value = el.findtext(tag) if el is not None else None
        else:
            value = xmlutil.regex_text(self.text, tag, after=parent)
        return value.strip() if value else ""


def _open(content: str) -> _Doc | None:
    prepared = xmlutil.prepare(content) if content else None
    if prepared is None:
        return None
    try:
        return _Doc(prepared)
    except xmlutil.UnsafeXMLError:
        return None  # a DTD or entity declaration: the payload is refused as a whole


def _fix_url(url: str) -> str:
    # URLs inside WeChat XML are often escaped twice; '&amp;' never belongs in a real URL. Only this
    # entity is undone: html.unescape would turn '&copy=1' into '©=1'.
    return url.replace("&amp;", "&") if "&amp;" in url else url


# --------------------------------------------------------------------------------------------------
# MsgType 49: app messages


@dataclass(frozen=True, slots=True)
class AppMsgInfo:
    """Fields of an app message (MsgType 49): link, file, music, mini-program, transfer, …"""

    app_msg_type: int
    title: str
    description: str
    url: str
    file_name: str
    file_size: int | None
    file_ext: str
    attach_id: str
    app_name: str


def parse_appmsg(content_plain: str) -> AppMsgInfo | None:
    """Parse the (unescaped) ``<msg><appmsg>…`` XML; ``None`` when there is no ``appmsg``.

    ``file_name`` is the title for attachments (AppMsgType 6) and empty otherwise; for official
    account pushes with an empty title the first ``mmreader`` item supplies title and URL.
    """
    doc = _open(content_plain)
    if doc is None or not doc.has("appmsg"):
        return None
    app_msg_type = xmlutil.to_int(doc.text_of("appmsg", "type")) or 0
    title = doc.text_of("appmsg", "title")
    url = doc.text_of("appmsg", "url")
    if not title and doc.has("mmreader"):
        title = doc.text_of("item", "title")
        url = url or doc.text_of("item", "url")
    size = xmlutil.to_int(doc.text_of("appattach", "totallen"))
    file_name = title if app_msg_type == 6 else ""
    file_ext = doc.text_of("appattach", "fileext").lstrip(".").lower()
    if not file_ext and file_name and "." in file_name:
        file_ext = file_name.rsplit(".", 1)[1].lower()
    return AppMsgInfo(
        app_msg_type=app_msg_type,
        title=title,
        description=doc.text_of("appmsg", "des"),
        url=_fix_url(url),
        file_name=file_name,
        file_size=size if size is not None and size >= 0 else None,
        file_ext=file_ext,
        attach_id=doc.text_of("appattach", "attachid"),
        app_name=doc.text_of("appinfo", "appname") or doc.text_of("appmsg", "sourcedisplayname"),
    )


# --------------------------------------------------------------------------------------------------
# MsgType 10002: recall


@dataclass(frozen=True, slots=True)
class RecallInfo:
    """A recall notice (MsgType 10002); ``msg_id`` is the ``MsgId`` of the recalled message."""

    msg_id: str
    old_msg_id: str
    session: str
    replace_text: str
    by_me: bool


_RECALLED_BY_ME_RE = re.compile(r"^(?:你撤回了|you(?:'ve| have)? recalled)", re.IGNORECASE)


def parse_recall(content_plain: str) -> RecallInfo | None:
    """Parse ``<sysmsg type="revokemsg"><revokemsg>…``; ``None`` for other 10002 payloads.

    A leading group prefix is tolerated. Without a ``<msgid>`` (or ``<newmsgid>``) the notice
    cannot be tied to a message, so it yields ``None`` too.
    """
    doc = _open(content_plain)
    if doc is None or not doc.has("revokemsg"):
        return None
    msg_id = doc.text_of("revokemsg", "msgid") or doc.text_of("revokemsg", "newmsgid")
    if not msg_id:
        return None
    replace_text = doc.text_of("revokemsg", "replacemsg")
    return RecallInfo(
        msg_id=msg_id,
        old_msg_id=doc.text_of("revokemsg", "oldmsgid"),
        session=doc.text_of("revokemsg", "session"),
        replace_text=replace_text,
        by_me=_RECALLED_BY_ME_RE.match(replace_text) is not None,
    )


# --------------------------------------------------------------------------------------------------
# Location


@dataclass(frozen=True, slots=True)
class LocationInfo:
    """A shared location; ``x`` is the latitude and ``y`` the longitude, as WeChat names them."""

    label: str
    poi_name: str
    x: float | None
    y: float | None
    url: str


_LOCATION_CONTENT_RE = re.compile(r"(.*):\n(/cgi-bin/mmwebwx-bin/webwxgetpubliclinkimg\S*)", re.S)


def _to_float(value: str | None) -> float | None:
    if not value:
        return None
    try:
        f = float(value)
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def parse_location(content_plain: str, ori_content: str, url: str) -> LocationInfo | None:
    """Location from ``OriContent``'s ``<location …/>`` (escaped or not), the ``Content`` text
    ``<place>:\\n/cgi-bin/…webwxgetpubliclinkimg…`` and the map ``Url``.

    The XML ``label`` wins over the place name in ``Content``; ``None`` when none of the three
    carries anything.
    """
    attrs: dict[str, str] | None = None
    for source in (ori_content, content_plain):
        if not source or "location" not in source:
            continue
        if "&lt;" in source:
            source = unescape_text(source)
        doc = _open(source)
        attrs = doc.attrs("location") if doc is not None else None
        if attrs is not None:
            break
    m = _LOCATION_CONTENT_RE.match(content_plain) if content_plain else None
    place = m.group(1).strip() if m else ""
    if attrs is None and not place and not url:
        return None
    attrs = attrs or {}
    return LocationInfo(
        label=(attrs.get("label") or "").strip() or place,
        poi_name=(attrs.get("poiname") or "").strip(),
        x=_to_float(attrs.get("x")),
        y=_to_float(attrs.get("y")),
        url=_fix_url(url or ""),
    )


# --------------------------------------------------------------------------------------------------
# MsgType 42 / 37: name card and friend request


def _info_str(info: Mapping[str, Any], key: str) -> str:
    value = info.get(key)
    return unescape_text(value).strip() if isinstance(value, str) and value else ""


def _info_int(info: Mapping[str, Any], key: str) -> int | None:
    value = info.get(key)
    if isinstance(value, bool):
        return int(value)
    return xmlutil.to_int(value) if isinstance(value, int | str) else None


@dataclass(frozen=True, slots=True)
class CardInfo:
    """A shared contact card (MsgType 42)."""

    user_name: str
    nickname: str
    alias: str
    province: str
    city: str
    sex: int
    is_official: bool


def parse_card(content_plain: str, recommend_info: Mapping[str, Any] | None) -> CardInfo | None:
    """Card from ``RecommendInfo`` (preferred: its ``UserName`` is the session id usable with the
    API) with the ``<msg username= nickname= …/>`` XML filling gaps; ``None`` if both are empty.

    ``is_official``: ``VerifyFlag & 8``, XML ``certflag & 8`` or a ``gh_`` user name.
    """
    info = recommend_info or {}
    doc = _open(content_plain)
    attrs = (doc.attrs("msg") if doc is not None else None) or {}

    def pick(key: str, attr: str) -> str:
        return _info_str(info, key) or (attrs.get(attr) or "").strip()

    user_name = pick("UserName", "username")
    nickname = pick("NickName", "nickname")
    if not user_name and not nickname:
        return None
    verify_flag = _info_int(info, "VerifyFlag") or 0
    cert_flag = xmlutil.to_int(attrs.get("certflag")) or 0
    sex = _info_int(info, "Sex") or xmlutil.to_int(attrs.get("sex")) or 0
    return CardInfo(
        user_name=user_name,
        nickname=nickname,
        alias=pick("Alias", "alias"),
        province=pick("Province", "province"),
        city=pick("City", "city"),
        sex=sex if sex in (0, 1, 2) else 0,
        is_official=bool(verify_flag & 8 or cert_flag & 8)
        or (attrs.get("username") or "").startswith("gh_"),
    )


@dataclass(frozen=True, slots=True)
class FriendRequestInfo:
    """A friend request (MsgType 37); accept it with ``ticket`` and ``user_name``."""

    from_nickname: str
    greeting: str
    ticket: str
    user_name: str
    scene: int


def parse_friend_request(
    content_plain: str, recommend_info: Mapping[str, Any] | None
) -> FriendRequestInfo | None:
    """Friend request from ``RecommendInfo`` (what ``webwxverifyuser`` needs), falling back to the
    ``<msg fromusername= fromnickname= content= ticket= scene=>`` XML; ``None`` when neither gives
    a user name or a ticket."""
    info = recommend_info or {}
    doc = _open(content_plain)
    attrs = (doc.attrs("msg") if doc is not None else None) or {}

    def attr(name: str) -> str:
        return (attrs.get(name) or "").strip()

    user_name = _info_str(info, "UserName") or attr("fromusername") or attr("encryptusername")
    ticket = _info_str(info, "Ticket") or attr("ticket")
    if not user_name and not ticket:
        return None
    scene = _info_int(info, "Scene") or xmlutil.to_int(attr("scene")) or 0
    return FriendRequestInfo(
        from_nickname=_info_str(info, "NickName") or attr("fromnickname"),
        greeting=_info_str(info, "Content") or attr("content"),
        ticket=ticket,
        user_name=user_name,
        scene=scene,
    )


# --------------------------------------------------------------------------------------------------
# MsgType 10000: group roster events


@dataclass(frozen=True, slots=True)
class RosterEvent:
    """A group membership change read from a grey system text (MsgType 10000)."""

    kind: str  # 'join' | 'invite' | 'leave' | 'remove' | 'rename' | 'other'
    actor: str | None
    actor_is_me: bool
    subjects: tuple[str, ...]
    new_name: str | None


_MAX_SYSTEM_TEXT = 8192
_QUOTED_RE = re.compile(r'"([^"]*)"|“([^”]*)”')
# Chinese texts quote every name; a name list is quoted names and '你' joined by separators.
_ZH_Q = r'(?:"[^"]*"|“[^”]*”)'
_ZH_ONE = rf"(?:你|{_ZH_Q})"
_ZH_NAMES = rf"(?P<subj>{_ZH_ONE}(?:\s*(?:、|，|,|和|及)\s*{_ZH_ONE})*)"
_ZH_ACTOR = rf"(?P<actor>{_ZH_ONE})"
# English texts quote names in some versions and not in others. An unquoted actor is capped at 64
# characters so that at most one unbounded lazy group per pattern keeps matching linear.
_EN_ACTOR = r'(?P<actor>You|you|"[^"]*"|“[^”]*”|[^"“”]{1,64}?)'
_EN_SUBJ = r"(?P<subj>.+?)"
_EN_CHAT = r"(?:the |a )?group chat"

# (kind, pattern, language); tried in order, first match wins: specific forms before general ones.
_ROSTER_PATTERNS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (kind, re.compile(pattern), lang)
    for kind, pattern, lang in (
        ("invite", rf"^\s*{_ZH_ACTOR}\s*邀请\s*{_ZH_NAMES}\s*加入了群聊", "zh"),
        ("join", rf"^\s*{_ZH_NAMES}\s*通过扫描\s*{_ZH_ACTOR}\s*分享的二维码加入群聊", "zh"),
        ("join", rf"^\s*{_ZH_NAMES}\s*通过扫描二维码加入了?群聊", "zh"),
        ("join", rf"^\s*{_ZH_NAMES}\s*加入了群聊", "zh"),
        ("remove", rf"^\s*{_ZH_ACTOR}\s*将\s*{_ZH_NAMES}\s*移出了?群聊", "zh"),
        ("remove", rf"^\s*(?P<subj>你)被\s*{_ZH_ACTOR}\s*移出了?群聊", "zh"),
        ("leave", rf"^\s*{_ZH_NAMES}\s*(?:已退出群聊|退出了群聊)", "zh"),
        ("rename", rf"^\s*{_ZH_ACTOR}\s*修改群名为(?P<name>.+)$", "zh"),
        ("other", rf"^\s*{_ZH_NAMES}\s*已成为新群主", "zh"),
        ("invite", rf"^\s*{_EN_ACTOR} invited {_EN_SUBJ} (?:to|to join) {_EN_CHAT}", "en"),
        (
            "join",
            rf"^\s*{_EN_SUBJ} joined {_EN_CHAT} via (?:the )?QR [Cc]ode shared by "
            rf"{_EN_ACTOR}\.?\s*$",
            "en",
        ),
        ("join", rf"^\s*{_EN_SUBJ} joined {_EN_CHAT}", "en"),
        ("remove", rf"^\s*(?P<subj>You) were removed from {_EN_CHAT} by {_EN_ACTOR}\.?\s*$", "en"),
        ("remove", rf"^\s*{_EN_ACTOR} removed {_EN_SUBJ} from {_EN_CHAT}", "en"),
        ("leave", rf"^\s*{_EN_SUBJ} (?:left|has left|quit) {_EN_CHAT}", "en"),
        ("rename", rf"^\s*{_EN_ACTOR} changed (?:the )?group name to (?P<name>.+)$", "en"),
    )
)
_ZH_BARE_SEP_RE = re.compile(r"、|，|,|和|及")
_EN_BARE_SEP_RE = re.compile(r",|、|\band\b")
_ME = frozenset({"你", "You", "you"})


def _names(s: str, lang: str) -> tuple[str, ...]:
    """Names in a subject list; one quoted block may hold several names joined by '、'."""
    bare_sep = _ZH_BARE_SEP_RE if lang == "zh" else _EN_BARE_SEP_RE
    out: list[str] = []
    pos = 0
    for m in _QUOTED_RE.finditer(s):
        out.extend(bare_sep.split(s[pos : m.start()]))
        inner = m.group(1) if m.group(1) is not None else m.group(2)
        out.extend(inner.split("、"))
        pos = m.end()
    out.extend(bare_sep.split(s[pos:]))
    return tuple(name for name in (n.strip() for n in out) if name)


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and (s[0], s[-1]) in (('"', '"'), ("“", "”")):
        s = s[1:-1]
    return s.strip()


def parse_system_text(text: str) -> RosterEvent | None:
    """Recognise invite/join/remove/leave/rename texts (Chinese and English clients).

    ``'你'``/``'You'`` as actor becomes ``actor=None, actor_is_me=True``; as a subject it is kept
    verbatim. A new group owner is reported as kind ``'other'``. Any other text gives ``None``.
    """
    if len(text) > _MAX_SYSTEM_TEXT or ("群" not in text and "group" not in text):
        return None
    for kind, pattern, lang in _ROSTER_PATTERNS:
        m = pattern.match(text)
        if m is None:
            continue
        groups = m.groupdict()
        subjects = _names(groups["subj"], lang) if groups.get("subj") else ()
        new_name = _unquote(groups["name"]) if groups.get("name") else None
        if kind == "rename" and not new_name:
            continue
        if kind != "rename" and not subjects:
            continue
        actor_raw = groups.get("actor")
        actor: str | None = None
        actor_is_me = False
        if actor_raw is not None:
            actor_raw = actor_raw.strip()
            if actor_raw in _ME:
                actor_is_me = True
            else:
                actor = _unquote(actor_raw) or None
                if actor is None:
                    continue
        return RosterEvent(kind, actor, actor_is_me, subjects, new_name)
    return None


# --------------------------------------------------------------------------------------------------
# Classification

#: Every ``kind`` a classified message can have: what the archive stores and what `history`,
#: the read API and feed filters accept.
MESSAGE_KINDS = (
    "text", "image", "voice", "video", "file", "link", "emoji", "card", "location",
    "recall", "system", "friend-request", "other",
)  # fmt: skip

_IGNORED_TYPES = frozenset({40, 50, 51, 52, 53, 9999})
_SIMPLE_TYPES = {
    3: "image",
    34: "voice",
    37: "friend-request",
    42: "card",
    43: "video",
    62: "video",
    47: "emoji",
    48: "location",
    10000: "system",
    10002: "recall",
}
_APP_TYPES = {
    2: "image",
    3: "link",  # music
    4: "link",  # video link
    5: "link",  # article / URL
    7: "link",  # open/Weibo share
    33: "link",  # mini-program
    36: "link",  # mini-program (newer clients)
    6: "file",
    8: "emoji",
    17: "system",  # "我发起了位置共享": no coordinates, a notice
    2000: "system",  # transfer; red packets arrive as 10000 text, so both are notices
    2001: "system",  # red packet
}


def classify(
    msg_type: int, app_msg_type: int = 0, sub_msg_type: int = 0, url: str = ""
) -> str | None:
    """Kind of a message for storage, or ``None`` for housekeeping that is not a chat message.

    * ``None``: 51 status notify, 50/52/53 voip, 9999 sysnotice, 40 friend recommendation.
    * 1: ``'location'`` with SubMsgType 48 or a non-empty ``Url`` (as ItChat does), else ``'text'``.
    * 3 image, 34 voice, 37 friend-request, 42 card, 43/62 video, 47 emoji, 48 location,
      10000 system, 10002 recall (its payload may also be another ``sysmsg``; see
      :func:`parse_recall`).
    * 49 by AppMsgType: 3 music, 4 video, 5 URL, 7 open, 33/36 mini-program → ``'link'``;
      6 → ``'file'``; 8 → ``'emoji'``; 2 → ``'image'``; 17 live location, 2000 transfer,
      2001 red packet → ``'system'`` (notices, not content); anything else (0 merged chat
      history, 1 app text, unknown) → ``'other'``.
    * Any unknown MsgType → ``'other'``.
    """
    if msg_type == 1:
        return "location" if sub_msg_type == 48 or url else "text"
    if msg_type in _IGNORED_TYPES:
        return None
    if msg_type == 49:
        return _APP_TYPES.get(app_msg_type, "other")
    return _SIMPLE_TYPES.get(msg_type, "other")


# --------------------------------------------------------------------------------------------------
# Media hints


@dataclass(frozen=True, slots=True)
class MediaHints:
    """What a media payload says about its file; everything is optional."""

    length: int | None
    width: int | None
    height: int | None
    voice_ms: int | None
    md5: str
    cdn_url: str


_NO_HINTS = MediaHints(None, None, None, None, "", "")
_MEDIA_TAGS = ("emoji", "voicemsg", "videomsg", "img")
_MD5_RE = re.compile(r"[0-9a-fA-F]{32}")


def _count(attrs: Mapping[str, str], key: str) -> int | None:
    value = xmlutil.to_int(attrs.get(key))
    return value if value is not None and value >= 0 else None


def parse_media_xml(content_plain: str) -> MediaHints:
    """Hints from an image ``<img>``, voice ``<voicemsg>``, emoticon ``<emoji>`` or video
    ``<videomsg>`` payload; opaque tokens and empty or broken payloads give all-empty hints.

    ``md5`` is kept only when it looks like one (32 hex digits, lowercased).
    """
    if "<" not in content_plain:
        return _NO_HINTS
    doc = _open(content_plain)
    if doc is None:
        return _NO_HINTS
    for tag in _MEDIA_TAGS:
        attrs = doc.attrs(tag)
        if attrs is not None:
            break
    else:
        return _NO_HINTS
    md5 = (attrs.get("md5") or "").strip()
    if tag == "emoji":
        length = _count(attrs, "len")
        width, height = _count(attrs, "width"), _count(attrs, "height")
        cdn_url = _fix_url((attrs.get("cdnurl") or "").strip())
    else:
        length = _count(attrs, "length")
        width = height = None
        cdn_url = ""
    return MediaHints(
        length=length,
        width=width,
        height=height,
        voice_ms=_count(attrs, "voicelength") if tag == "voicemsg" else None,
        md5=md5.lower() if _MD5_RE.fullmatch(md5) else "",
        cdn_url=cdn_url,
    )
