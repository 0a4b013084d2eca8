"""Builds AddMsgList entries for every MsgType of §7, as the server would send them.

Input is a control-API spec such as ``{"group": "客服群1", "sender": "张三", "type": "text",
"content": "..."}``; output is the wire message (for the current session's UserNames) plus the
chat's name. The builders see the rest of the simulator only through a :class:`Composer`: the
world, fresh MsgIds, the media store (attachments stay downloadable) and the session's names.
"""

from __future__ import annotations

import hashlib
import time
import urllib.parse
from typing import Any, TypedDict

from wxcli.simulator import media, wire
from wxcli.simulator.core import Core, Settings, SimError
from wxcli.simulator.mediastore import MediaStore
from wxcli.simulator.session import WebSession
from wxcli.simulator.world import SPECIAL_ACCOUNTS, Group, IdMaker, Person, World, _person

MENTION_SPACE = "\u2005"

MESSAGE_TYPES = (
    "text",
    "image",
    "voice",
    "video",
    "emoji",
    "file",
    "link",
    "music",
    "transfer",
    "miniprogram",
    "history",
    "app",
    "article",
    "card",
    "location",
    "friend_request",
    "system",
    "red_packet",
    "status_notify",
)


def _err(msg: str) -> Exception:
    return SimError(msg)


class Composer:
    """What the builders need from the simulator, and nothing more."""

    def __init__(self, core: Core, media_store: MediaStore):
        self.core = core
        self.new_msg_id = core.new_msg_id
        self.add_media = media_store.add_media
        # Friend requests awaiting an answer: ticket -> pid (webwxverifyuser consumes them).
        self.pending_requests: dict[str, str] = {}

    @property
    def world(self) -> World:
        return self.core.world

    @property
    def ids(self) -> IdMaker:
        return self.core.ids

    @property
    def settings(self) -> Settings:
        return self.core.settings

    @property
    def session(self) -> WebSession | None:
        return self.core.session


class _Route:
    """Where a message goes: From/To UserNames, the group prefix and the chat's name."""

    def __init__(self, from_user: str, to_user: str, prefix: str, chat: str):
        self.from_user = from_user
        self.to_user = to_user
        self.prefix = prefix
        self.chat = chat


def _session_names(ctx: Composer) -> WebSession | None:
    return ctx.core.live_session()


def _name(ctx: Composer, pid: str, group: bool = False) -> str:
    """Session UserName for a pid; a placeholder when nobody is logged in."""
    sess = _session_names(ctx)
    if sess is None:
        return "@" + hashlib.sha256(pid.encode()).hexdigest()[:32]
    short = pid == ctx.world.account.pid
    return sess.name_for(pid, short=short, group=group)


def _route(ctx: Composer, spec: dict[str, Any]) -> tuple[_Route, Person | None, Group | None]:
    world = ctx.world
    me = _name(ctx, world.account.pid)
    if spec.get("self"):
        target = str(spec.get("to", "filehelper"))
        g = world.find_group(target)
        if g is not None:
            return _Route(me, _name(ctx, g.gid, group=True), "", g.name), None, g
        if target in SPECIAL_ACCOUNTS:
            return _Route(me, target, "", SPECIAL_ACCOUNTS[target]), None, None
        p = world.find_person(target)
        if p is None:
            raise _err(f"no chat named {target!r}")
        return _Route(me, _name(ctx, p.pid), "", p.remark or p.nickname), p, None
    if "group" in spec:
        g = world.find_group(str(spec["group"]))
        if g is None:
            raise _err(f"no group named {spec['group']!r}")
        if g.member(world.account.pid) is None:
            raise _err(f"the account is not in group {g.name!r}")
        sender_name = str(spec.get("sender", ""))
        gname = _name(ctx, g.gid, group=True)
        if sender_name in ("self", ""):
            if sender_name == "self":
                return _Route(me, gname, "", g.name), None, g
            raise _err("a group message needs a sender (member name, or 'self')")
        p = world.find_member(g, sender_name)
        if p is None:
            raise _err(f"{sender_name!r} is not a member of {g.name!r}")
        prefix = _name(ctx, p.pid) + ":<br/>"
        return _Route(gname, me, prefix, g.name), p, g
    if "from" in spec:
        who = str(spec["from"])
        if who in SPECIAL_ACCOUNTS:
            return _Route(who, me, "", SPECIAL_ACCOUNTS[who]), None, None
        p = world.find_person(who)
        if p is None:
            raise _err(f"no contact named {who!r}")
        return _Route(_name(ctx, p.pid), me, "", p.remark or p.nickname), p, None
    raise _err("say where the message comes from: 'group' + 'sender', 'from', or 'self' + 'to'")


def _text_with_mentions(ctx: Composer, spec: dict[str, Any], group: Group | None) -> str:
    text = str(spec.get("content", ""))
    names = list(spec.get("mentions", []))
    if spec.get("mention_me") and group is not None:
        names.append(ctx.world.display_name(group, ctx.world.account.pid))
    if names:
        text = "".join(f"@{n}{MENTION_SPACE}" for n in names) + text
    return text


class _Base(TypedDict):
    """The fields every built message shares, typed so ``**base`` reaches
    :func:`wire.message_object` as its real keyword arguments."""

    msg_id: str
    from_user: str
    to_user: str
    create_time: int


def build_message(ctx: Composer, spec: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The wire message for a control-API spec, and the chat name it belongs to."""
    kind = str(spec.get("type", "text"))
    if kind not in MESSAGE_TYPES:
        raise _err(f"unknown message type {kind!r}; one of {', '.join(MESSAGE_TYPES)}")
    if kind == "friend_request":
        return _friend_request(ctx, spec), "fmessage"
    route, _sender, group = _route(ctx, spec)
    msg_id = ctx.new_msg_id()
    now = int(spec.get("create_time") or time.time())
    base: _Base = {
        "msg_id": msg_id,
        "from_user": route.from_user,
        "to_user": route.to_user,
        "create_time": now,
    }
    builder = _BUILDERS[kind]
    msg = builder(ctx, spec, route, base, group)
    return msg, route.chat


def _text(ctx, spec, route, base, group):
    text = _text_with_mentions(ctx, spec, group)
    return wire.message_object(msg_type=1, content=route.prefix + wire.escape_text(text), **base)


def _image(ctx, spec, route, base, group):
    key = str(spec.get("image") or base["msg_id"])
    full, thumb, width, height = media.photo(key)
    ctx.add_media(base["msg_id"], {"kind": "image", "key": key})  # bytes re-made on demand
    if ctx.settings.image_token:
        payload = wire.escape_text("@" + hashlib.sha256(full).hexdigest() * 2)
    else:
        xml = (
            f'<?xml version="1.0"?><msg><img aeskey="" encryver="1" cdnthumblength="{len(thumb)}"'
            f' cdnthumbheight="{height // 4}" cdnthumbwidth="{width // 4}" length="{len(full)}"'
            f' hdlength="0" md5="{hashlib.md5(full).hexdigest()}" />'  # noqa: S324
            "<commenturl></commenturl></msg>"
        )
        payload = wire.escape_xml_payload(xml)
    return wire.message_object(
        msg_type=3,
        content=route.prefix + payload,
        img_status=2,
        img_height=height // 4,
        img_width=width // 4,
        **base,
    )


def _voice(ctx, spec, route, base, group):
    data = media.asset("voice.mp3")
    ms = int(spec.get("seconds", 3) * 1000)
    ctx.add_media(base["msg_id"], {"kind": "voice", "data": data})
    xml = (
        f'<msg><voicemsg endflag="1" cancelflag="0" forwardflag="0" voiceformat="4" '
        f'voicelength="{ms}" length="{len(data)}" bufid="0" clientmsgid="{base["msg_id"]}" '
        'fromusername="" /></msg>'
    )
    return wire.message_object(
        msg_type=34, content=route.prefix + wire.escape_xml_payload(xml), voice_length=ms, **base
    )


def _video(ctx, spec, route, base, group):
    data = media.asset("video.mp4")
    key = f"video:{base['msg_id']}"
    _full, thumb, width, height = media.photo(key)
    ctx.add_media(base["msg_id"], {"kind": "video", "data": data, "key": key})
    seconds = int(spec.get("seconds", 12))
    xml = (
        f'<?xml version="1.0"?><msg><videomsg aeskey="" cdnthumbaeskey="" cdnvideourl="" '
        f'cdnthumburl="" length="{len(data)}" playlength="{seconds}" cdnthumblength="{len(thumb)}"'
        f' cdnthumbwidth="{width}" cdnthumbheight="{height}" fromusername="" md5="" '
        'newmd5="" isad="0" /></msg>'
    )
    return wire.message_object(
        msg_type=43,
        content=route.prefix + wire.escape_xml_payload(xml),
        play_length=seconds,
        img_width=width,
        img_height=height,
        img_status=1,
        **base,
    )


def _emoji(ctx, spec, route, base, group):
    data = media.asset("sticker.gif")
    ctx.add_media(base["msg_id"], {"kind": "emoji", "full": data, "thumb": data})
    md5 = hashlib.md5(data).hexdigest()  # noqa: S324
    xml = (
        f'<msg><emoji fromusername="" tousername="" type="2" idbuffer="media:0_0" md5="{md5}" '
        f'len="{len(data)}" productid="" androidmd5="{md5}" androidlen="{len(data)}" '
        f's60v3md5="{md5}" s60v3len="{len(data)}" s60v5md5="{md5}" s60v5len="{len(data)}" '
        'cdnurl="http://emoji.qpic.cn/wx_emoji/sim/" designerid="" thumburl="" encrypturl="" '
        'aeskey="" externurl="" externmd5="" width="64" height="64"></emoji>'
        '<gameext type="0" content="0"></gameext></msg>'
    )
    return wire.message_object(
        msg_type=47,
        content=route.prefix + wire.escape_xml_payload(xml),
        img_status=2,
        img_width=64,
        img_height=64,
        **base,
    )


def _appmsg(app_type: int, title: str, extra: str, des: str = "", url: str = "") -> str:
    return (
        f'<msg><appmsg appid="" sdkver="0"><title>{wire.html.escape(title)}</title>'
        f"<des>{wire.html.escape(des)}</des><action></action><type>{app_type}</type>"
        f"<showtype>0</showtype><content></content><url>{wire.html.escape(url)}</url>"
        f"{extra}</appmsg><fromusername></fromusername><scene>0</scene>"
        "<appinfo><version>1</version><appname></appname></appinfo><commenturl></commenturl></msg>"
    )


def _file(ctx, spec, route, base, group):
    name = str(spec.get("file_name", "发票.pdf"))
    data = spec.get("data")
    blob = data.encode() if isinstance(data, str) else media.asset("invoice.pdf")
    size = int(spec.get("size", len(blob)))
    if size > len(blob):
        blob = blob + b"\0" * (size - len(blob))
    media_id = "@crypt_" + hashlib.sha256(base["msg_id"].encode()).hexdigest() * 2
    ctx.add_media(
        base["msg_id"], {"kind": "file", "data": blob, "media_id": media_id, "name": name}
    )
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    extra = (
        f"<appattach><totallen>{size}</totallen><attachid>{media_id}</attachid>"
        f"<fileext>{ext}</fileext></appattach><md5>{hashlib.md5(blob).hexdigest()}</md5>"  # noqa: S324
    )
    xml = _appmsg(6, name, extra)
    return wire.message_object(
        msg_type=49,
        app_msg_type=6,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name=name,
        file_size=str(size),
        media_id=media_id,
        encry_file_name=urllib.parse.quote(name),
        **base,
    )


def _link(ctx, spec, route, base, group):
    title = str(spec.get("title", "云帆Pro 使用指南"))
    url = str(spec.get("url", "https://example.com/guide?id=1&from=wx"))
    des = str(spec.get("description", ""))
    xml = _appmsg(5, title, "<appattach><totallen>0</totallen></appattach>", des, url)
    return wire.message_object(
        msg_type=49,
        app_msg_type=5,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name=title,
        url=url.replace("&", "&amp;"),
        img_status=2,
        **base,
    )


def _music(ctx, spec, route, base, group):
    title = str(spec.get("title", "晴天"))
    url = str(spec.get("url", "https://music.example.com/song/1"))
    extra = f"<dataurl>{url}</dataurl><lowdataurl>{url}</lowdataurl>"
    xml = _appmsg(3, title, extra, str(spec.get("description", "周杰伦")), url)
    return wire.message_object(
        msg_type=49,
        app_msg_type=3,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name=title,
        url=url,
        **base,
    )


def _transfer(ctx, spec, route, base, group):
    amount = str(spec.get("amount", "88.00"))
    extra = (
        f"<wcpayinfo><paysubtype>1</paysubtype><feedesc><![CDATA[￥{amount}]]></feedesc>"
        f"<pay_memo><![CDATA[{spec.get('memo', '')}]]></pay_memo></wcpayinfo>"
    )
    xml = _appmsg(2000, "微信转账", extra, f"收到转账{amount}元。如需收钱，请点此升级至最新版本")
    return wire.message_object(
        msg_type=49,
        app_msg_type=2000,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name="微信转账",
        **base,
    )


def _miniprogram(ctx, spec, route, base, group):
    title = str(spec.get("title", "云帆商城 - 下单有礼"))
    extra = "<weappinfo><username>gh_miniapp@app</username><appid>wx0000000000</appid></weappinfo>"
    xml = _appmsg(33, title, extra, "", "https://mp.weixin.qq.com/")
    return wire.message_object(
        msg_type=49,
        app_msg_type=33,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name=title,
        url="https://mp.weixin.qq.com/",
        **base,
    )


def _history(ctx, spec, route, base, group):
    title = str(spec.get("title", "群聊的聊天记录"))
    xml = _appmsg(19, title, "", "张三: 发票什么时候开\n李四: 明天")
    # The appmsg XML says type 19, but the web server reports merged chat history as
    # AppMsgType 0 (§7.5; ItChat turns it into a Note).
    return wire.message_object(
        msg_type=49,
        app_msg_type=0,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name=title,
        **base,
    )


def _app(ctx, spec, route, base, group):
    """Any other AppMsgType (§7.5): 17 location sharing, 2001 red envelope, 8 app emoji, …"""
    app_type = int(spec.get("app_msg_type", 1))
    title = str(spec.get("title", spec.get("file_name", "")))
    url = str(spec.get("url", ""))
    xml = _appmsg(app_type, title, "", str(spec.get("description", "")), url)
    return wire.message_object(
        msg_type=49,
        app_msg_type=app_type,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name=title,
        url=url.replace("&", "&amp;"),
        **base,
    )


def _article(ctx, spec, route, base, group):
    """An official account's article push: AppMsgType 5 with an <mmreader> item list."""
    title = str(spec.get("title", "云帆Pro 新品发布会回顾"))
    url = str(spec.get("url", "https://mp.weixin.qq.com/s?__biz=MzA&mid=1&idx=1"))
    digest = str(spec.get("description", "点击查看发布会精彩内容"))
    cover = "https://mmbiz.qpic.cn/sim/cover.jpg"
    esc = wire.html.escape
    reader = (
        '<mmreader><category type="20" count="1"><name>'
        f"{esc(spec.get('account', ''))}</name><topnew><cover>{cover}</cover><width>0</width>"
        f"<height>0</height><digest>{esc(digest)}</digest></topnew><item><itemshowtype>0"
        f"</itemshowtype><title>{esc(title)}</title><url>{esc(url)}</url><shorturl></shorturl>"
        f"<longurl></longurl><pub_time>{base['create_time']}</pub_time><cover>{cover}</cover>"
        f"<digest>{esc(digest)}</digest></item></category></mmreader>"
    )
    xml = _appmsg(5, title, reader, digest, url)
    return wire.message_object(
        msg_type=49,
        app_msg_type=5,
        content=route.prefix + wire.escape_xml_payload(xml),
        file_name=title,
        url=url.replace("&", "&amp;"),
        img_status=2,
        **base,
    )


def _card(ctx, spec, route, base, group):
    target = ctx.world.find_person(str(spec.get("card", "")))
    if target is None:
        raise _err("a card message needs 'card': the nickname of the person shared")
    xml = (
        f'<?xml version="1.0"?><msg bigheadimgurl="" smallheadimgurl="" username="{target.pid}" '
        f'nickname="{wire.html.escape(target.nickname)}" shortpy="" alias="{target.alias}" '
        f'imagestatus="3" scene="17" province="{target.province}" city="{target.city}" sign="" '
        f'sex="{target.sex}" certflag="0" certinfo="" brandIconUrl="" brandHomeUrl="" '
        'brandSubscriptConfigUrl="" brandFlags="0" regionCode="CN" />'
    )
    info = dict(wire.EMPTY_RECOMMEND)
    info.update(
        {
            "UserName": _name(ctx, target.pid),
            "NickName": wire.escape_name(target.nickname),
            "Province": target.province,
            "City": target.city,
            "Alias": target.alias,
            "Sex": target.sex,
            "VerifyFlag": target.verify_flag,
            "Scene": 17,
        }
    )
    return wire.message_object(
        msg_type=42,
        content=route.prefix + wire.escape_xml_payload(xml),
        recommend_info=info,
        **base,
    )


def _location(ctx, spec, route, base, group):
    label = str(spec.get("label", "广东省深圳市南山区科技园"))
    poi = str(spec.get("poiname", "云帆大厦"))
    x, y = float(spec.get("x", 22.540503)), float(spec.get("y", 113.934528))
    url = f"https://apis.map.qq.com/uri/v1/geocoder?coord={x},{y}&referer=wexinmp_profile"
    ctx.add_media(base["msg_id"], {"kind": "map", "full": media.asset("map.jpg")})
    content = (
        f"{wire.escape_text(poi)}:<br/>/cgi-bin/mmwebwx-bin/webwxgetpubliclinkimg?url=xxx"
        f"&amp;msgid={base['msg_id']}&amp;pictype=location"
    )
    ori = (
        f'<?xml version="1.0"?>\n<msg>\n\t<location x="{x}" y="{y}" scale="16" '
        f'label="{wire.html.escape(label)}" maptype="0" poiname="{wire.html.escape(poi)}" '
        'poiid="" />\n</msg>\n'
    )
    return wire.message_object(
        msg_type=1,
        sub_msg_type=48,
        content=route.prefix + content,
        url=url,
        ori_content=ori,
        **base,
    )


def _system(ctx, spec, route, base, group):
    text = str(spec.get("content", ""))
    return wire.message_object(
        msg_type=10000, content=wire.escape_text(text), status=4, **_no_prefix(route, base)
    )


def _red_packet(ctx, spec, route, base, group):
    return wire.message_object(
        msg_type=10000,
        content=wire.escape_text("收到红包，请在手机上查看"),
        status=4,
        **_no_prefix(route, base),
    )


def _status_notify(ctx, spec, route, base, group):
    """The phone opened a chat: MsgType 51, code 2, the chat's UserName, empty content."""
    me = _name(ctx, ctx.world.account.pid)
    chat_user = route.from_user if route.from_user != me else route.to_user
    out = dict(base, from_user=me, to_user=chat_user)
    return wire.message_object(
        msg_type=51, content="", status_notify_code=2, status_notify_user=chat_user, **out
    )


def _no_prefix(route: _Route, base: dict[str, Any]) -> dict[str, Any]:
    return base


_BUILDERS = {
    "text": _text,
    "image": _image,
    "voice": _voice,
    "video": _video,
    "emoji": _emoji,
    "file": _file,
    "link": _link,
    "music": _music,
    "transfer": _transfer,
    "miniprogram": _miniprogram,
    "history": _history,
    "app": _app,
    "article": _article,
    "card": _card,
    "location": _location,
    "system": _system,
    "red_packet": _red_packet,
    "status_notify": _status_notify,
}


def _friend_request(ctx: Composer, spec: dict[str, Any]) -> dict[str, Any]:
    """A stranger asks to be a friend: From = fmessage, RecommendInfo with the ticket."""
    nickname = str(spec.get("nickname", "新客户"))
    greeting = str(spec.get("greeting", spec.get("content", "你好，我是来咨询云帆Pro的")))
    p = ctx.world.find_person(nickname)
    if p is None:
        p = _person(ctx.ids, {"nickname": nickname}, friend=False)
        ctx.world.persons[p.pid] = p
    ticket = "v2_" + hashlib.sha256(p.pid.encode()).hexdigest()[:48] + "@stranger"
    ctx.pending_requests[ticket] = p.pid
    un = _name(ctx, p.pid)
    encrypted = "v1_" + hashlib.sha256(p.pid.encode()).hexdigest()[:40]
    xml = (
        f'<msg fromusername="{p.pid}" encryptusername="{encrypted}'
        f'@stranger" fromnickname="{wire.html.escape(nickname)}" '
        f'content="{wire.html.escape(greeting)}" shortpy="" imagestatus="3" scene="30" '
        f'country="CN" province="{p.province}" city="{p.city}" sign="" percard="1" sex="{p.sex}" '
        f'alias="" weibo="" albumflag="0" albumstyle="0" albumbgimgid="" snsflag="1" '
        f'ticket="{ticket}" opcode="2" googlecontact="" qrticket="" chatroomusername="" '
        'sourceusername="" sourcenickname=""><brandlist count="0" ver="0"></brandlist></msg>'
    )
    info = dict(wire.EMPTY_RECOMMEND)
    info.update(
        {
            "UserName": un,
            "NickName": wire.escape_name(nickname),
            "Province": p.province,
            "City": p.city,
            "Content": greeting,
            "Sex": p.sex,
            "Scene": 30,
            "Ticket": ticket,
            "OpCode": 2,
        }
    )
    me = _name(ctx, ctx.world.account.pid)
    return wire.message_object(
        msg_id=ctx.new_msg_id(),
        from_user="fmessage",
        to_user=me,
        msg_type=37,
        content=wire.escape_xml_payload(xml),
        create_time=int(spec.get("create_time") or time.time()),
        recommend_info=info,
        status=3,
    )


def system_message(
    ctx: Composer, text: str, group: Group | None = None, person: Person | None = None
) -> tuple[dict[str, Any], str]:
    """A grey MsgType 10000 notice in a group or a friend chat (no sender prefix)."""
    me = _name(ctx, ctx.world.account.pid)
    if group is not None:
        frm, chat = _name(ctx, group.gid, group=True), group.name
    elif person is not None:
        frm, chat = _name(ctx, person.pid), person.remark or person.nickname
    else:
        frm, chat = "weixin", "微信团队"
    msg = wire.message_object(
        msg_id=ctx.new_msg_id(),
        from_user=frm,
        to_user=me,
        msg_type=10000,
        content=wire.escape_text(text),
        create_time=int(time.time()),
        status=4,
    )
    return msg, chat


def build_recall(
    ctx: Composer, msg_id: str, original: tuple[str, str, int, float] | None
) -> tuple[dict[str, Any], str]:
    """The 10002 message that recalls an earlier injected message (by its MsgId);
    ``original`` is its history entry (msg id, chat, MsgType, time), if still remembered."""
    sess = _session_names(ctx)
    if original is None or sess is None:
        raise _err(f"no delivered message with MsgId {msg_id}")
    ev = next((e for e in reversed(sess.events) if e.kind == "msg" and e.msg_id == msg_id), None)
    if ev is None:
        raise _err(f"message {msg_id} is no longer retained; recall it sooner")
    orig = ev.data
    frm = orig["FromUserName"]
    prefix = ""
    sender_pid = sess.pids.get(frm, "")
    who = ""
    if frm.startswith("@@"):
        member_un = orig["Content"].split(":<br/>", 1)[0]
        prefix = member_un + ":<br/>"
        g = ctx.world.groups.get(sess.pids.get(frm, ""))
        member_pid = sess.pids.get(member_un, "")
        who = ctx.world.display_name(g, member_pid) if g else member_un
        session_id = sess.pids.get(frm, "")
    else:
        p = ctx.world.persons.get(sender_pid)
        who = p.nickname if p else frm
        session_id = sender_pid
    xml = (
        '<sysmsg type="revokemsg"><revokemsg>'
        f"<session>{session_id}</session>"
        f"<oldmsgid>{int(msg_id) % 10**10}</oldmsgid>"
        f"<msgid>{msg_id}</msgid>"
        f'<replacemsg><![CDATA["{who}" 撤回了一条消息]]></replacemsg>'
        "</revokemsg></sysmsg>"
    )
    msg = wire.message_object(
        msg_id=ctx.new_msg_id(),
        from_user=frm,
        to_user=orig["ToUserName"],
        msg_type=10002,
        content=prefix + wire.escape_xml_payload(xml),
        create_time=int(time.time()),
        status=4,
    )
    return msg, original[1]


def self_recall(ctx: Composer, sess: WebSession, msg_id: str, to: str) -> dict[str, Any]:
    session_id = sess.pids.get(to, to)
    xml = (
        '<sysmsg type="revokemsg"><revokemsg>'
        f"<session>{session_id}</session><oldmsgid>{int(msg_id) % 10**10}</oldmsgid>"
        f"<msgid>{msg_id}</msgid><replacemsg><![CDATA[你撤回了一条消息]]></replacemsg>"
        "</revokemsg></sysmsg>"
    )
    return wire.message_object(
        msg_id=ctx.new_msg_id(),
        from_user=sess.user_name,
        to_user=to,
        msg_type=10002,
        content=wire.escape_xml_payload(xml),
        create_time=int(time.time()),
        status=4,
    )


def echo_of_send(
    ctx: Composer,
    sess: WebSession,
    endpoint: str,
    msg: dict[str, Any],
    msg_id: str,
    upload: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """What a web send looks like when it comes back through webwxsync (From = self)."""
    base: _Base = {
        "msg_id": msg_id,
        "from_user": sess.user_name,
        "to_user": str(msg.get("ToUserName", "")),
        "create_time": int(time.time()),
    }
    if endpoint == "webwxsendmsg":
        mtype = int(msg.get("Type", 1) or 1)
        content = str(msg.get("Content", ""))
        if mtype == 1:
            return wire.message_object(msg_type=1, content=wire.escape_text(content), **base)
        return wire.message_object(msg_type=mtype, content=wire.escape_xml_payload(content), **base)
    if endpoint == "webwxsendmsgimg" and upload is not None:
        data = upload["data"]
        ctx.add_media(msg_id, {"kind": "image", "full": data, "thumb": data})
        xml = f'<msg><img length="{len(data)}" hdlength="0" /><commenturl></commenturl></msg>'
        return wire.message_object(
            msg_type=3, content=wire.escape_xml_payload(xml), img_status=2, **base
        )
    if endpoint == "webwxsendemoticon":
        data = upload["data"] if upload is not None else media.asset("sticker.gif")
        ctx.add_media(msg_id, {"kind": "emoji", "full": data, "thumb": data})
        md5 = str(msg.get("EMoticonMd5") or hashlib.md5(data).hexdigest())  # noqa: S324
        xml = f'<msg><emoji md5="{md5}" len="{len(data)}" type="2" /></msg>'
        return wire.message_object(
            msg_type=47, content=wire.escape_xml_payload(xml), img_status=2, **base
        )
    if endpoint == "webwxsendvideomsg" and upload is not None:
        ctx.add_media(msg_id, {"kind": "video", "data": upload["data"]})
        xml = f'<msg><videomsg length="{len(upload["data"])}" playlength="1" /></msg>'
        return wire.message_object(msg_type=43, content=wire.escape_xml_payload(xml), **base)
    if endpoint == "webwxsendappmsg" and upload is not None:
        ctx.add_media(msg_id, {"kind": "file", "data": upload["data"], "name": upload["name"]})
        return wire.message_object(
            msg_type=49,
            app_msg_type=6,
            content=wire.escape_xml_payload(str(msg.get("Content", ""))),
            file_name=upload["name"],
            file_size=str(len(upload["data"])),
            **base,
        )
    return None
