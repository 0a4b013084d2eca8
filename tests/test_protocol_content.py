"""Tests for wxcli.protocol.content: wire text/XML of one message to clean fields.

Payloads marked "§n" are the examples of /work/shared/protocol/web-wechat-protocol.md (with the
"…" placeholders filled in); ``wire()`` escapes them the way the server does.
"""

from __future__ import annotations

import html
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wxcli.protocol import xmlutil
from wxcli.protocol.content import (
    AppMsgInfo,
    CardInfo,
    FriendRequestInfo,
    LocationInfo,
    MediaHints,
    RecallInfo,
    RosterEvent,
    classify,
    decode_emoji_spans,
    find_mentions,
    mentions_me,
    parse_appmsg,
    parse_card,
    parse_friend_request,
    parse_location,
    parse_media_xml,
    parse_recall,
    parse_system_text,
    split_group_prefix,
    unescape_text,
)

NO_HINTS = MediaHints(None, None, None, None, "", "")
SENDER32 = "@f88c48e531bc7de94072a206729750ff"
SENDER64 = "@" + "0123456789abcdef" * 4


def wire(xml: str) -> str:
    """Escape *xml* as Web WeChat puts it in ``Content`` (entities, ``<br/>`` for newlines)."""
    escaped = xml.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("\n", "<br/>")


def plain(xml: str) -> str:
    """What a caller hands the parsers: the wire form run through ``unescape_text``."""
    return unescape_text(wire(xml))


def span(code: str) -> str:
    return f'<span class="emoji emoji{code}"></span>'


# --------------------------------------------------------------------------------------------------
# Emoji spans (§11.1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(span("1f600"), "😀", id="single"),
        pytest.param("hi " + span("1f600") + " there", "hi 😀 there", id="inside-text"),
        pytest.param(span("1f1e81f1f3"), "🇨🇳", id="flag-10-hex"),
        pytest.param(span("002320e3"), "#\u20e3", id="keycap-8-hex"),
        pytest.param(span("263a"), "☺", id="4-hex"),
        pytest.param(span("1f600") + span("1f44d"), "😀👍", id="adjacent"),
        pytest.param('<span class="emoji emoji1f450"></span', "👐", id="glitch-missing-gt"),
        pytest.param('<span class="emoji emoji1f450"></spanab', "👐ab", id="glitch-followed"),
        pytest.param(span("1F600"), "😀", id="uppercase-tolerated"),
        pytest.param(span("zz12"), "", id="not-hex-dropped"),
        pytest.param(span("d800"), "", id="surrogate-dropped"),
        pytest.param(span("110000"), "", id="out-of-range-dropped"),
        pytest.param(span("1f6001"), "", id="6-hex-out-of-range-dropped"),
        pytest.param(span("1234567"), "", id="7-hex-dropped"),
        pytest.param(span(""), "", id="empty-dropped"),
        pytest.param("[微笑][撇嘴]", "[微笑][撇嘴]", id="builtin-smileys-stay-text"),
        pytest.param("no spans", "no spans", id="plain"),
    ],
)
def test_decode_emoji_spans(raw: str, expected: str) -> None:
    assert decode_emoji_spans(raw) == expected


@pytest.mark.parametrize(
    ("sent", "meant"),
    [
        ("1f63c", "1f601"),
        ("1f639", "1f602"),
        ("1f63a", "1f603"),
        ("1f4ab", "1f616"),
        ("1f64d", "1f614"),
        ("1f63b", "1f60d"),
        ("1f63d", "1f618"),
        ("1f64e", "1f621"),
        ("1f63f", "1f622"),
    ],
)
def test_cat_face_substitutions_are_mapped_back(sent: str, meant: str) -> None:
    assert decode_emoji_spans(span(sent)) == chr(int(meant, 16))


def test_unmapped_cat_face_is_kept() -> None:
    assert decode_emoji_spans(span("1f638")) == "\U0001f638"


# --------------------------------------------------------------------------------------------------
# unescape_text (§11.1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("a&lt;b &amp; &quot;c&quot;", 'a<b & "c"', id="user-typed-specials"),
        pytest.param("it&#39;s &#x4e2d;&#20013;", "it's 中中", id="numeric-entities"),
        pytest.param("line1<br/>line2<br>line3<br />4", "line1\nline2\nline3\n4", id="br-forms"),
        pytest.param("好" + span("1f600") + "<br/>&gt;_&lt;", "好😀\n>_<", id="mixed"),
        pytest.param(
            "&lt;span class=&quot;emoji emoji1f600&quot;&gt;&lt;/span&gt;",
            '<span class="emoji emoji1f600"></span>',
            id="typed-span-stays-literal",
        ),
        pytest.param("&lt;br/&gt;", "<br/>", id="typed-br-stays-literal"),
        pytest.param("&amp;lt;", "&lt;", id="single-unescape-only"),
        pytest.param("R&D a&b", "R&D a&b", id="bare-ampersand"),
        pytest.param("", "", id="empty"),
        pytest.param("&#0; &#xd800; &#99999999;", "\ufffd \ufffd \ufffd", id="bad-numeric"),
    ],
)
def test_unescape_text(raw: str, expected: str) -> None:
    assert unescape_text(raw) == expected


@pytest.mark.parametrize("typed", ['a<b & "c"', "<b>bold</b> &amp; 'q'", "x > y && z", "😀 [微笑]"])
def test_unescape_round_trips_user_text(typed: str) -> None:
    escaped = (
        typed.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )
    assert unescape_text(escaped) == typed


# --------------------------------------------------------------------------------------------------
# Group prefix (§7.2)


@pytest.mark.parametrize(
    ("content", "sender", "rest"),
    [
        pytest.param(
            "@f88c48e531bc7de94072a206729750ff:<br/>好了，收工，你们聊",
            SENDER32,
            "好了，收工，你们聊",
            id="spec-example-32-hex",
        ),
        pytest.param(SENDER64 + ":<br/>hello", SENDER64, "hello", id="64-hex"),
        pytest.param("@a1B2:<br/>x", "@a1B2", "x", id="short-session-id"),
        pytest.param(SENDER32 + ":<br/>", SENDER32, "", id="empty-body"),
        pytest.param(
            SENDER32 + ":<br/>a<br/>b:<br/>c", SENDER32, "a<br/>b:<br/>c", id="keeps-rest"
        ),
        pytest.param(SENDER32 + ":\nunescaped", SENDER32, "unescaped", id="newline-separator"),
        pytest.param("hello @bob:<br/>x", None, "hello @bob:<br/>x", id="not-at-start"),
        pytest.param("note:<br/>later", None, "note:<br/>later", id="no-at"),
        pytest.param("@张三:<br/>x", None, "@张三:<br/>x", id="non-alnum-name"),
        pytest.param("@:<br/>x", None, "@:<br/>x", id="empty-name"),
        pytest.param("@@abc:<br/>x", None, "@@abc:<br/>x", id="group-name-not-sender"),
        pytest.param("@abc: <br/>x", None, "@abc: <br/>x", id="space-before-br"),
        pytest.param("@abc def:<br/>x", None, "@abc def:<br/>x", id="space-in-name"),
        pytest.param("", None, "", id="empty"),
    ],
)
def test_split_group_prefix(content: str, sender: str | None, rest: str) -> None:
    assert split_group_prefix(content) == (sender, rest)


# --------------------------------------------------------------------------------------------------
# Mentions (§7.2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("@张三\u2005你好", ["张三"], id="u2005"),
        pytest.param("@Bob Smith\u2005hi", ["Bob Smith"], id="u2005-name-with-space"),
        pytest.param("@张三 你好", ["张三"], id="space"),
        pytest.param("hello @张三", ["张三"], id="end-of-text"),
        pytest.param("你好@张三\u2005", ["张三"], id="after-chinese"),
        pytest.param("@张三\u2005@李四\u2005@张三\u2005", ["张三", "李四"], id="unique-in-order"),
        pytest.param("@all please @Bob\u2005", ["all", "Bob"], id="mixed-ends"),
        pytest.param("mail me at a@b.com", [], id="email-is-not-mention"),
        # Without a terminator right after the name the whole word is taken: not a mention of 张三.
        pytest.param("@张三，你好", ["张三，你好"], id="punctuation-is-not-end"),
        pytest.param("@张三\u3000你好", ["张三"], id="ideographic-space"),
        pytest.param("no mention", [], id="none"),
        pytest.param("@", [], id="lone-at"),
    ],
)
def test_find_mentions(text: str, expected: list[str]) -> None:
    assert find_mentions(text) == expected


@pytest.mark.parametrize(
    ("text", "names", "expected"),
    [
        pytest.param("@客服小王\u2005在吗", ["客服小王"], True, id="u2005"),
        pytest.param("@客服小王 在吗", ["客服小王"], True, id="space"),
        pytest.param("在吗 @客服小王", ["客服小王"], True, id="end"),
        pytest.param("@Wang Xiao hi", ["Wang Xiao"], True, id="spaced-name-then-space"),
        pytest.param("@Wang Xiao\u2005hi", ["nick", "Wang Xiao"], True, id="second-name"),
        pytest.param("@客服小王八\u2005在吗", ["客服小王"], False, id="longer-name"),
        pytest.param("@客服小王，在吗", ["客服小王"], False, id="punctuation-after-name"),
        pytest.param("好@客服小王 x", ["客服小王"], True, id="after-non-ascii-ok"),
        pytest.param("a@b.com", ["b.com"], False, id="email-address"),
        pytest.param("@Bob Smith\u2005hi", ["Bob"], False, id="prefix-of-spaced-name"),
        pytest.param("客服小王在吗", ["客服小王"], False, id="no-at"),
        pytest.param("@客服小王\u2005", ["", "  "], False, id="empty-names-ignored"),
        pytest.param("@客服小王\u2005", [], False, id="no-names"),
    ],
)
def test_mentions_me(text: str, names: list[str], expected: bool) -> None:
    assert mentions_me(text, names) is expected


# --------------------------------------------------------------------------------------------------
# classify (§7.4, §7.5)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((1,), "text"),
        ((1, 0, 48), "location"),
        ((1, 0, 0, "http://apis.map.qq.com/uri/v1/geocoder?coord=39.9,116.3"), "location"),
        ((3,), "image"),
        ((34,), "voice"),
        ((37,), "friend-request"),
        ((42,), "card"),
        ((43,), "video"),
        ((62,), "video"),
        ((47,), "emoji"),
        ((48,), "location"),
        ((49, 5), "link"),
        ((49, 3), "link"),
        ((49, 4), "link"),
        ((49, 33), "link"),
        ((49, 36), "link"),
        ((49, 6), "file"),
        ((49, 8), "emoji"),
        ((49, 2), "image"),
        ((49, 0), "other"),
        ((49, 2000), "system"),
        ((49, 17), "system"),
        ((49, 424242), "other"),
        ((10000,), "system"),
        ((10002,), "recall"),
        ((51,), None),
        ((50,), None),
        ((52,), None),
        ((53,), None),
        ((9999,), None),
        ((40,), None),
        ((12345,), "other"),
    ],
)
def test_classify(args: tuple, expected: str | None) -> None:
    assert classify(*args) == expected


def test_classify_spec_message_object() -> None:
    # §7.1 message object: MsgType 1, AppMsgType 0, SubMsgType 0, empty Url.
    msg = {"MsgType": 1, "AppMsgType": 0, "SubMsgType": 0, "Url": "", "Content": "hello"}
    kind = classify(msg["MsgType"], msg["AppMsgType"], msg["SubMsgType"], msg["Url"])
    assert kind == "text"


# --------------------------------------------------------------------------------------------------
# Media hints (§7.4)

IMAGE_XML = '<msg><img length="6503" hdlength="0" /><commenturl></commenturl></msg>'
VOICE_XML = (
    '<msg><voicemsg endflag="1" cancelflag="0" forwardflag="0" voiceformat="4" '
    'voicelength="1580" length="2026" bufid="0" clientmsgid="41a2b3" fromusername="" /></msg>'
)
EMOJI_XML = (
    '<msg><emoji fromusername="wxid_a" tousername="wxid_b" type="2" idbuffer="media:0_0" '
    'md5="9122F8A77147BE1C45C57AE0FE86DB7C" len="73241" productid="" '
    'androidmd5="9122f8a77147be1c45c57ae0fe86db7c" androidlen="73241" '
    'cdnurl="http://emoji.qpic.cn/wx_emoji/abc/?a=1&amp;b=2" designerid="" thumburl="" '
    'encrypturl="" aeskey="" externurl="" externmd5="" width="240" height="210"></emoji>'
    '<gameext type="0" content="0"></gameext></msg>'
)
MICROVIDEO_XML = '<msg><img length="389175" hdlength="0" /><commenturl></commenturl></msg>'
VIDEO_XML = (
    '<?xml version="1.0"?>\n<msg>\n\t<videomsg aeskey="k" cdnthumbaeskey="k" '
    'cdnvideourl="30" length="1234567" playlength="12" md5="0123456789abcdef0123456789abcdef" '
    'cdnthumblength="4000" cdnthumbwidth="200" cdnthumbheight="360" />\n</msg>'
)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(IMAGE_XML, MediaHints(6503, None, None, None, "", ""), id="image"),
        pytest.param(VOICE_XML, MediaHints(2026, None, None, 1580, "", ""), id="voice"),
        pytest.param(
            EMOJI_XML,
            MediaHints(
                73241,
                240,
                210,
                None,
                "9122f8a77147be1c45c57ae0fe86db7c",
                "http://emoji.qpic.cn/wx_emoji/abc/?a=1&b=2",
            ),
            id="emoticon",
        ),
        pytest.param(MICROVIDEO_XML, MediaHints(389175, None, None, None, "", ""), id="microvideo"),
        pytest.param(
            VIDEO_XML,
            MediaHints(1234567, None, None, None, "0123456789abcdef0123456789abcdef", ""),
            id="video",
        ),
    ],
)
def test_parse_media_xml_from_wire(payload: str, expected: MediaHints) -> None:
    assert parse_media_xml(plain(payload)) == expected


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param("@" + "ab12" * 40, id="opaque-token"),
        pytest.param("<msg><commenturl></commenturl></msg>", id="no-media-element"),
        pytest.param("<msg><img length='x' md5='nothex' /></msg>", id="junk-values"),
        pytest.param("<msg><img length='-5' /></msg>", id="negative-length"),
        pytest.param("<<<>>>", id="garbage"),
    ],
)
def test_parse_media_xml_tolerates_nothing_useful(payload: str) -> None:
    assert parse_media_xml(payload) == NO_HINTS


def test_parse_media_xml_truncated_keeps_complete_attributes() -> None:
    text = plain(VOICE_XML)
    cut = text[: text.index(' length="2026"') + 11]  # inside the length value
    assert parse_media_xml(cut) == MediaHints(None, None, None, 1580, "", "")


# --------------------------------------------------------------------------------------------------
# App messages (§7.4 MsgType 49, §7.5, §8.5)

APPMSG_LINK_XML = """<msg>
\t<appmsg appid="" sdkver="0">
\t\t<title>春季新品发布</title>
\t\t<des>点击查看详情 &amp; 优惠</des>
\t\t<action />
\t\t<type>5</type>
\t\t<showtype>0</showtype>
\t\t<url>http://mp.weixin.qq.com/s?__biz=MzA&amp;amp;mid=2650&amp;amp;idx=1</url>
\t\t<appattach>
\t\t\t<totallen>0</totallen>
\t\t\t<attachid />
\t\t\t<fileext />
\t\t</appattach>
\t</appmsg>
\t<fromusername>wxid_sender</fromusername>
\t<scene>0</scene>
\t<appinfo>
\t\t<version>1</version>
\t\t<appname>公众号</appname>
\t</appinfo>
\t<commenturl />
</msg>"""

# §8.5, as received: the file appmsg inside <msg>.
APPMSG_FILE_XML = (
    "<msg><appmsg appid='wxeb7ec651dd0aefa9' sdkver=''><title>报价单 2024.XLSX</title><des></des>"
    "<action></action><type>6</type><content></content><url></url><lowurl></lowurl><appattach>"
    "<totallen>30822</totallen><attachid>@cdn_3057_abc</attachid><fileext>XLSX</fileext>"
    "</appattach><extinfo></extinfo></appmsg><appinfo><version></version><appname></appname>"
    "</appinfo></msg>"
)

APPMSG_MUSIC_XML = (
    '<msg><appmsg appid="wx485a97c844086dc9" sdkver="0"><title>晴天</title><des>周杰伦</des>'
    "<type>3</type><url>http://c.y.qq.com/v8/playsong.html?songid=1</url>"
    "<dataurl>http://ws.stream.qqmusic.qq.com/1.m4a</dataurl><lowurl></lowurl>"
    "<lowdataurl></lowdataurl><appattach><totallen>0</totallen></appattach></appmsg>"
    "<appinfo><version>29</version><appname>QQ音乐</appname></appinfo></msg>"
)

APPMSG_TRANSFER_XML = (
    '<msg><appmsg appid="" sdkver=""><title><![CDATA[微信转账]]></title>'
    "<des><![CDATA[收到转账0.01元。如需收钱，请点此升级至最新版本]]></des>"
    "<action></action><type>2000</type><content><![CDATA[]]></content>"
    "<url><![CDATA[https://support.weixin.qq.com/cgi-bin/mmsupport-bin/readtemplate?t=page/common_page__upgrade&text=text001&btn_text=btn_text_0]]></url>"
    "<wcpayinfo><paysubtype>1</paysubtype><feedesc><![CDATA[￥0.01]]></feedesc>"
    "<transcationid><![CDATA[1000050001]]></transcationid></wcpayinfo></appmsg></msg>"
)

APPMSG_MINIPROGRAM_XML = (
    '<msg><appmsg appid="" sdkver="0"><title>点外卖，选美团</title><des></des><type>33</type>'
    "<url>https://mp.weixin.qq.com/mp/waerrpage?appid=wx2c348cf579062e56&amp;type=upgrade</url>"
    "<sourceusername>gh_72a4eb2d4324@app</sourceusername>"
    "<sourcedisplayname>美团外卖</sourcedisplayname>"
    "<weappinfo><pagepath><![CDATA[pages/index/index.html]]></pagepath>"
    "<username>gh_72a4eb2d4324@app</username></weappinfo></appmsg>"
    "<appinfo><version>1</version><appname></appname></appinfo></msg>"
)

APPMSG_MMREADER_XML = (
    '<msg><appmsg appid="" sdkver="0"><title></title><des></des><type>5</type><url></url>'
    '<mmreader><category type="20" count="1"><name><![CDATA[某公众号]]></name><item>'
    "<title><![CDATA[今日推送]]></title><url><![CDATA[http://mp.weixin.qq.com/s?a=1&b=2]]></url>"
    "<digest><![CDATA[摘要]]></digest></item></category></mmreader></appmsg></msg>"
)

# §7.4 skeleton: "<msg><appmsg appid sdkver><title/><des/><action/><type>N</type>…"
APPMSG_SKELETON_XML = (
    '<msg><appmsg appid="wx123" sdkver="0"><title/><des/><action/><type>0</type><url/>'
    "<appattach><totallen/><attachid/><fileext/></appattach></appmsg><fromusername/>"
    "<scene>0</scene><appinfo><version/><appname/></appinfo><commenturl/></msg>"
)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(
            APPMSG_LINK_XML,
            AppMsgInfo(
                5,
                "春季新品发布",
                "点击查看详情 & 优惠",
                "http://mp.weixin.qq.com/s?__biz=MzA&mid=2650&idx=1",
                "",
                0,
                "",
                "",
                "公众号",
            ),
            id="link",
        ),
        pytest.param(
            APPMSG_FILE_XML,
            AppMsgInfo(
                6,
                "报价单 2024.XLSX",
                "",
                "",
                "报价单 2024.XLSX",
                30822,
                "xlsx",
                "@cdn_3057_abc",
                "",
            ),
            id="file",
        ),
        pytest.param(
            APPMSG_MUSIC_XML,
            AppMsgInfo(
                3,
                "晴天",
                "周杰伦",
                "http://c.y.qq.com/v8/playsong.html?songid=1",
                "",
                0,
                "",
                "",
                "QQ音乐",
            ),
            id="music",
        ),
        pytest.param(
            APPMSG_TRANSFER_XML,
            AppMsgInfo(
                2000,
                "微信转账",
                "收到转账0.01元。如需收钱，请点此升级至最新版本",
                "https://support.weixin.qq.com/cgi-bin/mmsupport-bin/readtemplate"
                "?t=page/common_page__upgrade&text=text001&btn_text=btn_text_0",
                "",
                None,
                "",
                "",
                "",
            ),
            id="transfer",
        ),
        pytest.param(
            APPMSG_MINIPROGRAM_XML,
            AppMsgInfo(
                33,
                "点外卖，选美团",
                "",
                "https://mp.weixin.qq.com/mp/waerrpage?appid=wx2c348cf579062e56&type=upgrade",
                "",
                None,
                "",
                "",
                "美团外卖",
            ),
            id="mini-program",
        ),
        pytest.param(
            APPMSG_MMREADER_XML,
            AppMsgInfo(
                5, "今日推送", "", "http://mp.weixin.qq.com/s?a=1&b=2", "", None, "", "", ""
            ),
            id="official-account-push",
        ),
        pytest.param(
            APPMSG_SKELETON_XML,
            AppMsgInfo(0, "", "", "", "", None, "", "", ""),
            id="spec-skeleton",
        ),
    ],
)
def test_parse_appmsg_from_wire(payload: str, expected: AppMsgInfo) -> None:
    assert parse_appmsg(plain(payload)) == expected


def test_parse_appmsg_bare_appmsg_root_as_sent() -> None:
    # §8.5 exactly as the sending side builds it (root <appmsg>, not escaped).
    sent = (
        "<appmsg appid='wxeb7ec651dd0aefa9' sdkver=''><title>FILE_NAME.zip</title><des></des>"
        "<action></action><type>6</type><content></content><url></url><lowurl></lowurl>"
        "<appattach><totallen>1024</totallen><attachid>MEDIA_ID</attachid><fileext>zip</fileext>"
        "</appattach><extinfo></extinfo></appmsg>"
    )
    info = parse_appmsg(sent)
    assert info == AppMsgInfo(
        6, "FILE_NAME.zip", "", "", "FILE_NAME.zip", 1024, "zip", "MEDIA_ID", ""
    )


def test_parse_appmsg_unescaped_ampersand_is_repaired() -> None:
    xml = (
        "<msg><appmsg><title>A & B</title><type>5</type>"
        "<url>http://x.cn/?a=1&b=2&copy;</url></appmsg></msg>"
    )
    info = parse_appmsg(xml)
    assert info is not None
    assert (info.title, info.url) == ("A & B", "http://x.cn/?a=1&b=2©")


def test_parse_appmsg_file_ext_from_name_when_missing() -> None:
    xml = (
        "<msg><appmsg><title>Report.PDF</title><type>6</type>"
        "<appattach><totallen>9</totallen></appattach></appmsg></msg>"
    )
    info = parse_appmsg(xml)
    assert info is not None
    assert (info.file_ext, info.file_size) == ("pdf", 9)


@pytest.mark.parametrize("cut", [40, 90, 200, 300, 500])
def test_parse_appmsg_truncated_never_raises(cut: int) -> None:
    info = parse_appmsg(plain(APPMSG_LINK_XML)[:cut])
    assert info is not None  # '<appmsg' is within every cut
    assert info.title in ("", "春季新品发布")
    assert info.app_msg_type in (0, 5)


def test_parse_appmsg_truncated_keeps_complete_fields() -> None:
    text = plain(APPMSG_LINK_XML)
    cut = text[: text.index("<url>") + 10]
    info = parse_appmsg(cut)
    assert info is not None
    assert (info.app_msg_type, info.title, info.url) == (5, "春季新品发布", "")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param("just text", id="text"),
        pytest.param("<msg><img length='1'/></msg>", id="other-xml"),
        pytest.param("<msg><appmsgx/></msg>", id="similar-tag"),
        pytest.param("<msg><appmsgx", id="similar-tag-truncated"),
    ],
)
def test_parse_appmsg_returns_none(payload: str) -> None:
    assert parse_appmsg(payload) is None


def test_parse_appmsg_cut_inside_start_tag_is_empty_not_none() -> None:
    assert parse_appmsg("<msg><appmsg") == AppMsgInfo(0, "", "", "", "", None, "", "", "")


def test_parse_appmsg_missing_root_close_uses_fallback() -> None:
    info = parse_appmsg("<msg><appmsg><title>a &amp; b</title><type>5</type></appmsg>\n<appinfo>")
    assert info is not None
    assert (info.title, info.app_msg_type) == ("a & b", 5)


# --------------------------------------------------------------------------------------------------
# Recall (§7.4 MsgType 10002)

RECALL_XML = """<sysmsg type="revokemsg">
  <revokemsg>
    <session>wxid_abcdefg</session>
    <oldmsgid>1660000000</oldmsgid>
    <msgid>4835386562261263795</msgid>
    <replacemsg><![CDATA["NICKNAME" 撤回了一条消息]]></replacemsg>
  </revokemsg>
</sysmsg>"""


def test_parse_recall_spec_example() -> None:
    assert parse_recall(plain(RECALL_XML)) == RecallInfo(
        "4835386562261263795", "1660000000", "wxid_abcdefg", '"NICKNAME" 撤回了一条消息', False
    )


def test_parse_recall_tabs_between_elements() -> None:
    tabbed = RECALL_XML.replace("  ", "\t")
    assert parse_recall(plain(tabbed)) is not None


def test_parse_recall_in_group_with_prefix() -> None:
    xml = RECALL_XML.replace("wxid_abcdefg", "10635087412@chatroom").replace("NICKNAME", "张三")
    content = SENDER64 + ":<br/>" + wire(xml)
    sender, rest = split_group_prefix(content)
    assert sender == SENDER64
    info = parse_recall(unescape_text(rest))
    assert info is not None
    assert (info.session, info.replace_text, info.by_me) == (
        "10635087412@chatroom",
        '"张三" 撤回了一条消息',
        False,
    )
    # A caller that forgets to split still gets the recall (prefix is skipped).
    assert parse_recall(unescape_text(content)) == info


def test_parse_recall_by_me() -> None:
    xml = RECALL_XML.replace('"NICKNAME" 撤回了一条消息', "你撤回了一条消息")
    info = parse_recall(plain(xml))
    assert info is not None
    assert info.by_me is True


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("", id="empty"),
        pytest.param(RECALL_XML[: RECALL_XML.index("<msgid>") + 12], id="truncated-in-msgid"),
        pytest.param(
            '<sysmsg type="pat"><pat><fromusername>a</fromusername></pat></sysmsg>', id="pat"
        ),
        pytest.param(RECALL_XML.replace("<msgid>4835386562261263795</msgid>", ""), id="no-msgid"),
        pytest.param("收到红包，请在手机上查看", id="plain-text"),
    ],
)
def test_parse_recall_returns_none(payload: str) -> None:
    assert parse_recall(payload) is None


def test_parse_recall_truncated_after_msgid_is_partial() -> None:
    cut = RECALL_XML[: RECALL_XML.index("<replacemsg>") + 15]
    info = parse_recall(cut)
    assert info is not None
    assert (info.msg_id, info.replace_text) == ("4835386562261263795", "")


# --------------------------------------------------------------------------------------------------
# Location (§7.4 MsgType 1 + SubMsgType 48)

LOCATION_CONTENT_WIRE = (
    "北京市海淀区中关村大街:<br/>/cgi-bin/mmwebwx-bin/webwxgetpubliclinkimg?url=xxx&amp;"
    "msgid=4835386562261263795&amp;pictype=location"
)
LOCATION_ORI = (
    '<msg><location x="39.983424" y="116.322987" scale="16" label="北京市海淀区中关村大街" '
    'maptype="0" poiname="中关村广场" poiid="" /></msg>'
)
LOCATION_URL = "http://apis.map.qq.com/uri/v1/geocoder?coord=39.983424,116.322987&amp;referer=wx"


@pytest.mark.parametrize(
    ("ori", "content", "url", "expected"),
    [
        pytest.param(
            LOCATION_ORI,
            unescape_text(LOCATION_CONTENT_WIRE),
            LOCATION_URL,
            LocationInfo(
                "北京市海淀区中关村大街",
                "中关村广场",
                39.983424,
                116.322987,
                "http://apis.map.qq.com/uri/v1/geocoder?coord=39.983424,116.322987&referer=wx",
            ),
            id="full",
        ),
        pytest.param(
            wire(LOCATION_ORI),
            "",
            "",
            LocationInfo("北京市海淀区中关村大街", "中关村广场", 39.983424, 116.322987, ""),
            id="escaped-oricontent",
        ),
        pytest.param(
            "",
            unescape_text(LOCATION_CONTENT_WIRE),
            "",
            LocationInfo("北京市海淀区中关村大街", "", None, None, ""),
            id="content-only",
        ),
        pytest.param(
            '<msg><location x="" y="" scale="" label="" maptype="" poiname="" poiid="" /></msg>',
            "",
            "",
            LocationInfo("", "", None, None, ""),
            id="spec-empty-attributes",
        ),
        pytest.param(
            '<msg><location x="nan" y="inf" label="L" /></msg>',
            "",
            "",
            LocationInfo("L", "", None, None, ""),
            id="non-finite-coordinates",
        ),
        pytest.param(
            "",
            "",
            "http://m.cn/x",
            LocationInfo("", "", None, None, "http://m.cn/x"),
            id="url-only",
        ),
        pytest.param(
            "",
            LOCATION_ORI,
            "",
            LocationInfo("北京市海淀区中关村大街", "中关村广场", 39.983424, 116.322987, ""),
            id="msgtype-48-xml-in-content",
        ),
    ],
)
def test_parse_location(ori: str, content: str, url: str, expected: LocationInfo) -> None:
    assert parse_location(content, ori, url) == expected


def test_parse_location_nothing() -> None:
    assert parse_location("hello", "", "") is None
    assert parse_location("", "<msg><location x='1'", "") == LocationInfo("", "", 1.0, None, "")


# --------------------------------------------------------------------------------------------------
# Name card (§7.4 MsgType 42)

CARD_XML = (
    '<?xml version="1.0"?>\n<msg bigheadimgurl="http://wx.qlogo.cn/b/0" '
    'smallheadimgurl="http://wx.qlogo.cn/s/132" username="wxid_card123" nickname="李四" '
    'shortpy="LS" alias="lisi_88" imagestatus="3" scene="17" province="广东" city="深圳" '
    'sign="" sex="1" certflag="0" certinfo="" brandIconUrl="" brandHomeUrl="" '
    'brandSubscriptConfigUrl="" brandFlags="0" regionCode="CN_Guangdong_Shenzhen" />\n'
)
MP_CARD_XML = (
    '<?xml version="1.0"?>\n<msg username="gh_22b87fa7cb3c" nickname="微信团队" alias="" '
    'sex="0" certflag="24" province="" city="" />'
)


def test_parse_card_from_xml_only() -> None:
    assert parse_card(plain(CARD_XML), None) == CardInfo(
        "wxid_card123", "李四", "lisi_88", "广东", "深圳", 1, False
    )


def test_parse_card_prefers_recommend_info() -> None:
    info = {
        "UserName": "@" + "ab" * 16,
        "NickName": "李四" + span("1f600"),
        "Province": "",
        "City": "",
        "Alias": "",
        "Sex": 2,
        "VerifyFlag": 0,
    }
    card = parse_card(plain(CARD_XML), info)
    assert card == CardInfo("@" + "ab" * 16, "李四😀", "lisi_88", "广东", "深圳", 2, False)


@pytest.mark.parametrize(
    ("payload", "info"),
    [
        pytest.param(MP_CARD_XML, None, id="certflag"),
        pytest.param("", {"UserName": "@x", "NickName": "MP", "VerifyFlag": 24}, id="verifyflag"),
        pytest.param('<msg username="gh_abc" nickname="n" />', None, id="gh-prefix"),
    ],
)
def test_parse_card_official_account(payload: str, info: dict | None) -> None:
    card = parse_card(payload, info)
    assert card is not None
    assert card.is_official is True


@pytest.mark.parametrize(
    ("payload", "info"),
    [("", None), ("", {}), ("<msg />", {"UserName": "", "NickName": ""}), ("<<<", None)],
)
def test_parse_card_none(payload: str, info: dict | None) -> None:
    assert parse_card(payload, info) is None


def test_parse_card_odd_recommend_info_types() -> None:
    card = parse_card("", {"UserName": "@u", "NickName": 5, "Sex": "9", "VerifyFlag": "x"})
    assert card == CardInfo("@u", "", "", "", "", 0, False)


# --------------------------------------------------------------------------------------------------
# Friend request (§7.4 MsgType 37)

FRIEND_XML = (
    '<msg fromusername="wxid_stranger1" encryptusername="v1_0123abcd@stranger" '
    'fromnickname="王五" content="我是王五，想咨询 &lt;产品&gt; &amp; 价格" fullpy="wangwu" '
    'shortpy="WW" imagestatus="3" scene="30" country="CN" province="Zhejiang" city="Hangzhou" '
    'sign="" percard="1" sex="1" alias="" weibo="" albumflag="0" albumstyle="0" albumbgimgid="" '
    'snsflag="1" snsbgimgid="" snsbgobjectid="0" mhash="" mfullhash="" bigheadimgurl="" '
    'smallheadimgurl="" ticket="v2_feedbeef@stranger" opcode="2" googlecontact="" qrticket="" '
    'chatroomusername="" sourceusername="" sourcenickname=""><brandlist count="0" ver="1">'
    "</brandlist></msg>"
)


def test_parse_friend_request_from_xml() -> None:
    assert parse_friend_request(plain(FRIEND_XML), None) == FriendRequestInfo(
        "王五", "我是王五，想咨询 <产品> & 价格", "v2_feedbeef@stranger", "wxid_stranger1", 30
    )


def test_parse_friend_request_prefers_recommend_info() -> None:
    info = {
        "UserName": "@" + "cd" * 32,
        "NickName": "王五",
        "Content": "你好",
        "Ticket": "v2_other@stranger",
        "OpCode": 2,
        "Scene": 17,
    }
    assert parse_friend_request(plain(FRIEND_XML), info) == FriendRequestInfo(
        "王五", "你好", "v2_other@stranger", "@" + "cd" * 32, 17
    )


def test_parse_friend_request_encryptusername_fallback() -> None:
    req = parse_friend_request('<msg encryptusername="v1_x@stranger" ticket="v2_y" />', None)
    assert req == FriendRequestInfo("", "", "v2_y", "v1_x@stranger", 0)


@pytest.mark.parametrize("payload", ["", "<msg fromnickname='x' />", "<msg fromusername="])
def test_parse_friend_request_none(payload: str) -> None:
    assert parse_friend_request(payload, None) is None


# --------------------------------------------------------------------------------------------------
# Group system texts (§7.4 MsgType 10000)


def ev(
    kind: str,
    actor: str | None,
    me: bool,
    subjects: tuple[str, ...] = (),
    new_name: str | None = None,
) -> RosterEvent:
    return RosterEvent(kind, actor, me, subjects, new_name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"张三"邀请"李四、王五"加入了群聊', ev("invite", "张三", False, ("李四", "王五"))),
        ('"张三"邀请"李四"、"王五"加入了群聊', ev("invite", "张三", False, ("李四", "王五"))),
        ("“张三”邀请“李四”加入了群聊", ev("invite", "张三", False, ("李四",))),
        ('你邀请"李四"加入了群聊', ev("invite", None, True, ("李四",))),
        ('你邀请"李四"加入了群聊  撤销', ev("invite", None, True, ("李四",))),
        (
            '"张三"邀请你加入了群聊，群聊参与人还有：李四、王五',
            ev("invite", "张三", False, ("你",)),
        ),
        ('"张三"邀请你和"李四"加入了群聊', ev("invite", "张三", False, ("你", "李四"))),
        ('"李四"通过扫描"张三"分享的二维码加入群聊', ev("join", "张三", False, ("李四",))),
        ('"李四"通过扫描你分享的二维码加入群聊', ev("join", None, True, ("李四",))),
        ('"李四"加入了群聊', ev("join", None, False, ("李四",))),
        ('"李四"通过扫描二维码加入群聊', ev("join", None, False, ("李四",))),
        ('你将"李四"移出了群聊', ev("remove", None, True, ("李四",))),
        ('"张三"将"李四"移出了群聊', ev("remove", "张三", False, ("李四",))),
        ('你被"张三"移出群聊', ev("remove", "张三", False, ("你",))),
        ('"李四"退出了群聊', ev("leave", None, False, ("李四",))),
        ('"李四"已退出群聊', ev("leave", None, False, ("李四",))),
        ('"张三"修改群名为“新名字”', ev("rename", "张三", False, (), "新名字")),
        ("你修改群名为“新名字”", ev("rename", None, True, (), "新名字")),
        ('"张三"修改群名为“带“引号”的名字”', ev("rename", "张三", False, (), "带“引号”的名字")),
        ('"张三"已成为新群主', ev("other", None, False, ("张三",))),
        ('"Tom" invited "Ann" to the group chat', ev("invite", "Tom", False, ("Ann",))),
        ("Tom invited Ann, Bob to the group chat", ev("invite", "Tom", False, ("Ann", "Bob"))),
        ("You invited Ann and Bob to the group chat", ev("invite", None, True, ("Ann", "Bob"))),
        (
            '"Ann" joined the group chat via the QR Code shared by "Tom"',
            ev("join", "Tom", False, ("Ann",)),
        ),
        ('"Ann" joined the group chat', ev("join", None, False, ("Ann",))),
        ('You removed "Ann" from the group chat', ev("remove", None, True, ("Ann",))),
        ('"Tom" removed "Ann" from the group chat', ev("remove", "Tom", False, ("Ann",))),
        ('You were removed from the group chat by "Tom"', ev("remove", "Tom", False, ("You",))),
        ('"Ann" left the group chat', ev("leave", None, False, ("Ann",))),
        ('"Tom" changed the group name to "X"', ev("rename", "Tom", False, (), "X")),
        ('You changed the group name to "Team A"', ev("rename", None, True, (), "Team A")),
        ('"张三' + "😀" + '"邀请"李四"加入了群聊', ev("invite", "张三😀", False, ("李四",))),
    ],
)
def test_parse_system_text_roster(text: str, expected: RosterEvent) -> None:
    assert parse_system_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "收到红包，请在手机上查看",
        '"张三" 拍了拍 "李四"',
        "你已添加了张三，现在可以开始聊天了。",
        "你已添加了 xxx ，现在可以开始聊天了。",
        "位置共享已经结束",
        '"张三"通过"李四"的邀请加入了群聊的说明',
        "群公告已更新",
        "我们的群聊很热闹",
        '""加入了群聊',
        '"张三"修改群名为',
        "",
        "x" * 10000 + "加入了群聊",
    ],
)
def test_parse_system_text_not_roster(text: str) -> None:
    assert parse_system_text(text) is None


# --------------------------------------------------------------------------------------------------
# Other §7 payloads: status notify is not a chat message and parses as nothing

STATUS_NOTIFY_XML = """<msg>
<op id='4'>
<username>wxid_AAAA,filehelper,1234567890@chatroom,gh_BBBB,CCCC</username>
<unreadchatlist><chat><username>1234567890@chatroom</username><lastreadtime>1463754424</lastreadtime></chat></unreadchatlist>
<unreadfunctionlist></unreadfunctionlist>
</op>
</msg>"""


def test_status_notify_payload() -> None:
    text = plain(STATUS_NOTIFY_XML)
    assert classify(51) is None
    assert parse_appmsg(text) is None
    assert parse_recall(text) is None
    assert parse_media_xml(text) == NO_HINTS


# --------------------------------------------------------------------------------------------------
# Hostile and broken XML

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    "<msg><appmsg><title>&lol2;</title><type>5</type></appmsg>"
    '<img length="1"/><revokemsg><msgid>1</msgid></revokemsg></msg>'
)


EXTERNAL_ENTITY = (
    '<?xml version="1.0"?><!DOCTYPE msg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    "<msg><appmsg><title>&xxe;</title><type>5</type></appmsg></msg>"
)
PARAMETER_ENTITY = (
    '<!DOCTYPE msg [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]>'
    "<msg><appmsg><title>t</title><type>5</type></appmsg></msg>"
)
PLAIN_DTD = (
    '<!DOCTYPE msg SYSTEM "x.dtd"><msg><appmsg><title>t</title><type>5</type></appmsg></msg>'
)
# `&excl;` is the HTML name of "!": repair() resolves it, which used to turn this into a DTD after
# the hand-written guard had looked.
EXCL_BYPASS = BILLION_LAUGHS.replace("<!", "<&excl;")


@pytest.mark.parametrize(
    "payload",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, PARAMETER_ENTITY, PLAIN_DTD, EXCL_BYPASS],
    ids=["billion-laughs", "external-entity", "parameter-entity", "dtd", "excl-bypass"],
)
def test_dtd_payloads_are_rejected(payload: str) -> None:
    assert parse_appmsg(payload) is None
    assert parse_recall(payload) is None
    assert parse_media_xml(payload) == NO_HINTS
    assert parse_card(payload, None) is None


@pytest.mark.parametrize(
    "payload", [BILLION_LAUGHS, EXCL_BYPASS, EXTERNAL_ENTITY], ids=["laughs", "excl", "xxe"]
)
def test_xmlutil_parse_refuses_entity_declarations_with_a_typed_error(payload: str) -> None:
    prepared = xmlutil.prepare(payload)
    assert prepared is not None
    with pytest.raises(xmlutil.UnsafeXMLError):
        xmlutil.parse(prepared)


def test_malformed_dtd_falls_back_without_expanding() -> None:
    # Lower-case "doctype" is no DTD to expat, just bad XML: the regex fallback reads it and must
    # leave entity references as they are.
    payload = BILLION_LAUGHS.replace("DOCTYPE", "doctype")
    info = parse_appmsg(payload)
    assert info is None or "lol" not in info.title.replace("&lol2;", "")
    assert parse_recall(payload) is None or "lollol" not in repr(parse_recall(payload))


def test_huge_payload_is_bounded() -> None:
    huge = (
        "<msg><appmsg><title>" + "x" * (5 * 1024 * 1024) + "</title><type>5</type></appmsg></msg>"
    )
    started = time.perf_counter()
    info = parse_appmsg(huge)
    assert time.perf_counter() - started < 0.5
    assert info is not None
    assert info.title == ""  # the closing tag lies beyond the parse window


def test_xmlutil_repair_and_prepare() -> None:
    assert xmlutil.repair("a & b &amp; &#0; &#65; &nbsp; &bogus; \x01") == (
        "a &amp; b &amp;  &#65; \xa0 &amp;bogus; "
    )
    assert xmlutil.repair("&LT;") == "&lt;"
    assert xmlutil.prepare("no xml") is None
    assert xmlutil.prepare("junk<msg/>") == "<msg/>"
    assert len(xmlutil.prepare("<" + "a" * 100_000) or "") == xmlutil.MAX_XML_CHARS
    assert xmlutil.parse("<msg>\ud800</msg>") is not None
    assert xmlutil.to_int(" 12 ") == 12
    assert xmlutil.to_int("1" * 50) is None


@pytest.mark.parametrize(
    "payload",
    [
        "<msg><appmsg><title>a</title><type>5</type></appmsg>",  # missing </msg>
        "<msg><appmsg><title>a</ti",
        "<msg>\x00<appmsg><title>a</title></appmsg></msg>",
        "<msg><appmsg><title>&#xd800;</title></appmsg></msg>",
        "<msg><appmsg><title>" + "<b>" * 5000 + "</title></appmsg></msg>",
        "<?xml version='1.0' encoding='utf-16'?><msg><appmsg><type>5</type></appmsg></msg>",
        "<appmsg><![CDATA[",
        "<msg><appmsg title='x' type=\"5",
    ],
)
def test_malformed_xml_never_raises(payload: str) -> None:
    for parser in (parse_appmsg, parse_recall, parse_media_xml):
        parser(payload)
    parse_card(payload, None)
    parse_friend_request(payload, None)
    parse_location(payload, payload, "")


# --------------------------------------------------------------------------------------------------
# Properties

_FRAGMENTS = st.sampled_from(
    [
        '<span class="emoji emoji',
        '"></span>',
        "</span",
        "1f600",
        "1f1e81f1f3",
        "<br/>",
        "<br",
        "&lt;",
        "&amp;",
        "&#",
        "&#x",
        ";",
        "@",
        ":",
        "\u2005",
        "\ud800",
        "0",
    ]
)
_MESSY_TEXT = st.lists(st.one_of(st.text(max_size=8), _FRAGMENTS), max_size=12).map("".join)


@settings(max_examples=120, deadline=None)
@given(_MESSY_TEXT)
def test_unescape_text_never_raises(s: str) -> None:
    assert isinstance(unescape_text(s), str)
    assert isinstance(find_mentions(unescape_text(s)), list)


_ENTITY_TEXT = st.lists(
    st.one_of(
        st.text(alphabet="a;#x&", max_size=4),
        st.sampled_from(["&lt;", "&gt;", "&amp;", "&quot;", "&#39;", "&amp;lt;", "&nbsp;", "&lt"]),
    ),
    max_size=12,
).map("".join)


@settings(max_examples=120, deadline=None)
@given(_ENTITY_TEXT)
def test_unescape_text_entities_match_html_unescape(s: str) -> None:
    # The replace-chain fast path must give exactly what html.unescape gives.
    assert unescape_text(s) == html.unescape(s)


@settings(max_examples=120, deadline=None)
@given(
    st.one_of(_MESSY_TEXT, st.from_regex(r"@[0-9a-zA-Z]{0,70}:(<br/>|\n)?.{0,20}", fullmatch=True))
)
def test_split_group_prefix_never_loses_characters(s: str) -> None:
    sender, rest = split_group_prefix(s)
    if sender is None:
        assert rest == s
    else:
        assert s in (f"{sender}:<br/>{rest}", f"{sender}:\n{rest}")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=6),
            st.sampled_from(
                [
                    "<msg",
                    "<appmsg",
                    "<revokemsg",
                    "<msgid>",
                    "</msgid>",
                    "<img",
                    " length=",
                    '"',
                    "'",
                    ">",
                    "/>",
                    "<![CDATA[",
                    "]]>",
                    "&",
                    "<!DOCTYPE",
                    "<location x=",
                    "<title>",
                ]
            ),
        ),
        max_size=15,
    ).map("".join)
)
def test_parsers_never_raise(s: str) -> None:
    parse_appmsg(s)
    parse_recall(s)
    parse_media_xml(s)
    parse_card(s, None)
    parse_friend_request(s, None)
    parse_location(s, s, "")
    parse_system_text(s)
