"""Simulator init, status notify and contacts (protocol §3, §4): shapes, order, paging, variants."""

from __future__ import annotations

import json
import re
import time

import requests

from tests.helpers.simulator import API, Web, login

INIT_KEYS = [
    "BaseResponse",
    "Count",
    "ContactList",
    "SyncKey",
    "User",
    "ChatSet",
    "SKey",
    "ClientVersion",
    "SystemTime",
    "GrayScale",
    "InviteStartCount",
    "MPSubscribeMsgCount",
    "MPSubscribeMsgList",
    "ClickReportInterval",
]
USER_KEYS = [
    "Uin",
    "UserName",
    "NickName",
    "HeadImgUrl",
    "RemarkName",
    "PYInitial",
    "PYQuanPin",
    "RemarkPYInitial",
    "RemarkPYQuanPin",
    "HideInputBarFlag",
    "StarFriend",
    "Sex",
    "Signature",
    "AppAccountFlag",
    "VerifyFlag",
    "ContactFlag",
    "WebWxPluginSwitch",
    "HeadImgFlag",
    "SnsFlag",
]
CONTACT_KEYS = [
    "Uin",
    "UserName",
    "NickName",
    "HeadImgUrl",
    "ContactFlag",
    "MemberCount",
    "MemberList",
    "RemarkName",
    "HideInputBarFlag",
    "Sex",
    "Signature",
    "VerifyFlag",
    "OwnerUin",
    "PYInitial",
    "PYQuanPin",
    "RemarkPYInitial",
    "RemarkPYQuanPin",
    "StarFriend",
    "AppAccountFlag",
    "Statues",
    "AttrStatus",
    "Province",
    "City",
    "Alias",
    "SnsFlag",
    "UniFriend",
    "DisplayName",
    "ChatRoomId",
    "KeyWord",
    "EncryChatRoomId",
    "IsOwner",
]
MEMBER_KEYS = [
    "Uin",
    "UserName",
    "NickName",
    "AttrStatus",
    "PYInitial",
    "PYQuanPin",
    "RemarkPYInitial",
    "RemarkPYQuanPin",
    "MemberStatus",
    "DisplayName",
    "KeyWord",
]


def test_init_answers_every_field_in_the_captured_order_and_layout(sim):
    web = login(sim, init=False)
    r = web.post_raw("webwxinit", {"BaseRequest": web.base_request()}, r=-23073595)
    assert r.headers["Content-Type"].startswith("text/plain")
    assert r.text.startswith('{\n"BaseResponse": {\n"Ret": 0,\n"ErrMsg": ""\n}\n,\n"Count": ')
    init = json.loads(r.content)
    assert list(init) == INIT_KEYS
    assert list(init["User"]) == USER_KEYS
    user = init["User"]
    assert user["Uin"] == web.uin and user["NickName"] == "云帆客服中心"
    assert re.fullmatch(r"@[0-9a-f]{32}", user["UserName"])
    assert init["Count"] == len(init["ContactList"]) > 0
    assert [i["Key"] for i in init["SyncKey"]["List"]] == [1, 2, 3, 1000]
    assert init["SyncKey"]["Count"] == 4
    assert init["SKey"] == web.skey
    assert init["InviteStartCount"] == 40
    assert abs(init["SystemTime"] - time.time()) < 5
    names = [c["UserName"] for c in init["ContactList"]]
    assert init["ChatSet"] == ",".join(names) + ","
    assert "filehelper" in names
    groups = [c for c in init["ContactList"] if c["UserName"].startswith("@@")]
    assert groups, "recent groups appear in webwxinit"
    for g in groups:
        assert list(g) == CONTACT_KEYS
        # as recorded (wechat4u test/response/webwxinit): size 0, no members
        assert g["MemberCount"] == 0 and g["MemberList"] == []
    # an unsaved (temporary) group is only seen here, not in the address book
    assert "临时对接群" in {g["NickName"] for g in groups}
    web.init = init
    assert "临时对接群" not in {c["NickName"] for c in web.contacts()}


def test_group_counts_setting_restores_the_older_group_form(sim):
    sim.control.settings(group_counts=True)
    web = login(sim, init=False)
    init = web.post("webwxinit", {"BaseRequest": web.base_request()})
    groups = [c for c in init["ContactList"] if c["UserName"].startswith("@@")]
    assert groups
    for g in groups:
        assert g["MemberCount"] == len(g["MemberList"]) > 0
        assert all(m["NickName"] == "" for m in g["MemberList"])  # stubs
    web.init = init
    saved = [c for c in web.contacts() if c["UserName"].startswith("@@")]
    assert saved and all(g["MemberCount"] > 0 and g["MemberList"] == [] for g in saved)


def test_init_with_a_bad_session_answers_the_empty_error_form(sim):
    web = login(sim, init=False)
    out = web.post("webwxinit", {"BaseRequest": web.base_request(Sid="AAAAAAAAAAAAAAAA")})
    assert out["BaseResponse"]["Ret"] == 1101
    assert list(out) == INIT_KEYS
    assert out["Count"] == 0 and out["ContactList"] == [] and out["SKey"] == ""
    assert out["SyncKey"] == {"Count": 0, "List": []}


def test_status_notify_answers_a_msgid_and_the_phone_pushes_msgtype_51(sim):
    web = login(sim)
    r = web.post_raw(
        "webwxstatusnotify",
        {
            "BaseRequest": web.base_request(),
            "Code": 3,
            "FromUserName": web.user["UserName"],
            "ToUserName": web.user["UserName"],
            "ClientMsgId": int(time.time()),
        },
        lang="zh_CN",
    )
    out = json.loads(r.content)
    assert list(out) == ["BaseResponse", "MsgID"]
    assert out["BaseResponse"] == {"Ret": 0, "ErrMsg": ""}
    assert re.fullmatch(r"\d{19}", out["MsgID"])
    msgs = web.drain()
    notify = [m for m in msgs if m["MsgType"] == 51]
    assert len(notify) == 1
    m = notify[0]
    assert m["StatusNotifyCode"] == 4
    assert m["FromUserName"] == m["ToUserName"] == web.user["UserName"]
    names = m["StatusNotifyUserName"].split(",")
    assert all(n == "filehelper" or n.startswith("@") for n in names)
    assert m["Content"].startswith("&lt;msg&gt;<br/>\t&lt;op id='4'&gt;")
    ids = re.search(r"&lt;username&gt;(.*?)&lt;/username&gt;", m["Content"]).group(1).split(",")
    assert len(ids) == len(names)
    assert any(i.endswith("@chatroom") for i in ids) and any(i.startswith("wxid_") for i in ids)


def test_getcontact_pages_by_seq_and_lists_saved_groups_without_members(sim):
    web = login(sim)
    sim.control.settings(contact_page_size=4)
    pages = []
    seq = 0
    while True:
        r = web.http.get(
            web.url("webwxgetcontact"),
            params={"r": int(time.time() * 1000), "seq": seq, "skey": web.skey},
        )
        page = json.loads(r.content)
        assert list(page) == ["BaseResponse", "Seq", "MemberCount", "MemberList"]
        assert page["MemberCount"] == len(page["MemberList"])
        pages.append(page)
        seq = page["Seq"]
        if seq == 0:
            break
    assert len(pages) > 3
    assert all(p["Seq"] != 0 for p in pages[:-1])
    everyone = [c for p in pages for c in p["MemberList"]]
    sim.control.settings(contact_page_size=1000)
    single = web.contacts()
    assert [c["UserName"] for c in everyone] == [c["UserName"] for c in single]
    assert len({c["UserName"] for c in everyone}) == len(everyone)
    for c in everyone:
        assert list(c) == CONTACT_KEYS
    groups = [c for c in everyone if c["UserName"].startswith("@@")]
    assert groups and all(g["MemberList"] == [] for g in groups)
    assert all(g["MemberCount"] == 0 for g in groups)  # as WeChat answers (§4.2)
    assert all(re.fullmatch(r"@@[0-9a-f]{64}", g["UserName"]) for g in groups)
    friends = [c for c in everyone if c["Sex"] != 0]
    assert len(friends) == 12
    service = next(c for c in everyone if c["NickName"] == "云帆科技服务号")
    assert service["VerifyFlag"] & 8 and service["KeyWord"] == "gh_"
    wang = next(
        c for c in everyone if c["NickName"] == '小王<span class="emoji emoji1f338"></span>'
    )
    assert wang["RemarkName"] == "客服-小王" and wang["ContactFlag"] & 1
    assert wang["HeadImgUrl"].startswith("/cgi-bin/mmwebwx-bin/webwxgeticon?seq=")
    assert f"username={wang['UserName']}" in wang["HeadImgUrl"]
    assert groups[0]["HeadImgUrl"].startswith("/cgi-bin/mmwebwx-bin/webwxgetheadimg?")
    assert any(c["UserName"] == "filehelper" for c in everyone)


def test_getcontact_accepts_post_and_an_empty_skey_but_not_a_wrong_one(sim):
    web = login(sim)
    posted = web.http.post(web.url("webwxgetcontact") + "?r=1&seq=0&skey=", data=b"{}")
    assert json.loads(posted.content)["BaseResponse"]["Ret"] == 0
    wrong = web.http.get(web.url("webwxgetcontact"), params={"seq": 0, "skey": "@crypt_0_0"})
    out = json.loads(wrong.content)
    assert out["BaseResponse"]["Ret"] == 1100 and out["MemberList"] == []
    anonymous = requests.get(web.url("webwxgetcontact"), params={"seq": 0})
    assert json.loads(anonymous.content)["BaseResponse"]["Ret"] != 0
    # cookies alone are enough (the skey may be left out)
    bare = web.http.get(web.url("webwxgetcontact"), params={"seq": 0})
    assert json.loads(bare.content)["BaseResponse"]["Ret"] == 0


def test_batchgetcontact_returns_groups_with_members_for_both_spellings(sim):
    web = login(sim)
    vip = next(c for c in web.contacts() if c["NickName"].startswith("VIP客户群"))
    for field in ("EncryChatRoomId", "ChatRoomId"):
        out = web.post(
            "webwxbatchgetcontact",
            {"Count": 1, "List": [{"UserName": vip["UserName"], field: ""}]},
            type="ex",
            r=int(time.time() * 1000),
        )
        assert list(out) == ["BaseResponse", "Count", "ContactList"]
        assert out["Count"] == 1
        group = out["ContactList"][0]
        assert list(group) == CONTACT_KEYS
        assert group["NickName"] == 'VIP客户群<span class="emoji emoji1f48e"></span>'
        assert re.fullmatch(r"@[0-9a-f]{32}", group["EncryChatRoomId"])
        assert group["MemberCount"] == len(group["MemberList"]) == 7
        for m in group["MemberList"]:
            assert list(m) == MEMBER_KEYS
        ma = next(m for m in group["MemberList"] if m["NickName"] == "马丽")
        assert ma["DisplayName"] == "马丽-星辰贸易"
        me = [m for m in group["MemberList"] if m["UserName"] == web.user["UserName"]]
        assert len(me) == 1


def test_batchgetcontact_reveals_non_friend_members_by_encrychatroomid(sim):
    web = login(sim)
    group = web.group("云帆Pro客服1群")
    friends = {c["UserName"] for c in web.contacts()}
    strangers = [m for m in group["MemberList"] if m["UserName"] not in friends]
    strangers = [m for m in strangers if m["UserName"] != web.user["UserName"]]
    assert len(strangers) > 30
    encry = group["EncryChatRoomId"]
    items = [{"UserName": m["UserName"], "EncryChatRoomId": encry} for m in strangers[:30]]
    items += [{"UserName": "@" + "0" * 64, "EncryChatRoomId": ""}]  # unknown: left out
    found = web.batch(items)
    assert len(found) == 30
    for contact, member in zip(found, strangers, strict=False):
        assert contact["UserName"] == member["UserName"]
        assert contact["NickName"] == member["NickName"]
        assert contact["ContactFlag"] == 0 and contact["RemarkName"] == ""
        assert list(contact) == CONTACT_KEYS
    # the official client puts the group's @@ UserName there instead: same answer
    again = web.batch(
        [{"UserName": strangers[0]["UserName"], "EncryChatRoomId": group["UserName"]}]
    )
    assert again[0]["NickName"] == strangers[0]["NickName"]


def test_every_listed_client_variant_of_a_json_call_is_accepted(sim):
    web = login(sim)
    raw_ticket = requests.utils.unquote(web.pass_ticket)
    body_variants = [
        web.base_request(Uin=str(web.uin)),  # ItChat: Uin as a string
        web.base_request(Uin=web.uin),  # wechat4u: a number
        {k: v for k, v in web.base_request().items() if k != "DeviceID"},  # itchat-uos HEAD
        web.base_request(DeviceID=""),  # wxBot4g
        web.base_request(DeviceID="e" + "9" * 15),
        web.base_request(Skey=""),  # itchat-uos 1.4.1
    ]
    for base in body_variants:
        out = web.post("webwxbatchgetcontact", {"BaseRequest": base, "Count": 0, "List": []})
        assert out["BaseResponse"]["Ret"] == 0, base
    url = web.url("webwxstatusnotify")
    body = json.dumps(
        {
            "BaseRequest": web.base_request(),
            "Code": 1,
            "FromUserName": web.user["UserName"],
            "ToUserName": "filehelper",
            "ClientMsgId": 1,
        },
        ensure_ascii=False,
    ).encode()
    header_variants = [
        {"ContentType": "application/json; charset=UTF-8"},  # ItChat's non-standard header
        {},  # wxBot: no content type at all
        {"Content-type": "application/x-www-form-urlencoded"},  # WeixinBot via urllib2
        {"Content-Type": "application/json;charset=UTF-8"},
    ]
    ticket_variants = [
        f"?lang=zh_CN&pass_ticket={web.pass_ticket}",  # single-encoded (pasted raw)
        f"?lang=zh_CN&pass_ticket={requests.utils.quote(web.pass_ticket, safe='')}",  # double
        f"?lang=zh_CN&pass_ticket={raw_ticket}",  # decoded by the server to + and /
        "?lang=zh_CN",  # absent
        "?pass_ticket=undefined",  # the official client's upload form value
        "?pass_ticket=e123456789012345",  # itchat-uos 1.4.1: its device id
    ]
    for headers in header_variants:
        for query in ticket_variants:
            r = web.http.post(url + query, data=body, headers=headers)
            assert json.loads(r.content)["BaseResponse"]["Ret"] == 0, (headers, query)


def test_wrong_credentials_answer_1100_or_1101(sim):
    web = login(sim)

    def ret(**override):
        out = web.post("webwxbatchgetcontact", {"BaseRequest": web.base_request(**override)})
        return out["BaseResponse"]["Ret"]

    assert ret(Skey="@crypt_00000000_" + "0" * 32) == 1100
    assert ret(Uin=1) == 1100
    assert ret(Sid="X" * 16) == 1101
    r = web.post_raw("webwxbatchgetcontact", {"Count": 0, "List": []})
    assert json.loads(r.content)["BaseResponse"]["Ret"] == 1101
    r = web.post_raw("webwxbatchgetcontact", b"not json")
    assert json.loads(r.content)["BaseResponse"]["Ret"] == 1101


def test_avatars_are_jpegs_with_a_week_of_cache(sim):
    web = login(sim)
    group = web.group("云帆Pro客服1群")
    member = group["MemberList"][1]["UserName"]
    for path, params in [
        ("webwxgeticon", {"seq": 1, "username": web.user["UserName"], "skey": web.skey}),
        (
            "webwxgeticon",
            {"username": member, "chatroomid": group["EncryChatRoomId"], "type": "big"},
        ),
        ("webwxgetheadimg", {"seq": 1, "username": group["UserName"], "skey": ""}),
    ]:
        r = web.http.get(f"{sim.base_url}{API}{path}", params=params)
        assert r.status_code == 200
        assert r.headers["Content-Type"] == "image/jpeg"
        assert r.headers["Cache-Control"] == "max-age=604800"
        assert r.content.startswith(b"\xff\xd8\xff")


def test_uin_as_a_string_works_through_a_whole_session(sim):
    web = Web(sim.base_url, uin_as_string=True).login(sim.control)
    sim.control.message(group="内部员工群", sender="客服-小王", content="string uin")
    assert web.synccheck() == ("0", "2")
    assert [m["Content"].split("<br/>")[-1] for m in web.drain()] == ["string uin"]
