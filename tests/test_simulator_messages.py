"""Simulator messages (protocol §7, §9, §11): every MsgType, who sends it, escaping and emoji,
group prefixes, recalls, and the sync traffic that roster changes cause."""

from __future__ import annotations

import re
import time

import pytest

from tests.helpers.simulator import decode, login

MSG_KEYS = [
    "MsgId",
    "FromUserName",
    "ToUserName",
    "MsgType",
    "Content",
    "Status",
    "ImgStatus",
    "CreateTime",
    "VoiceLength",
    "PlayLength",
    "FileName",
    "FileSize",
    "MediaId",
    "Url",
    "AppMsgType",
    "StatusNotifyCode",
    "StatusNotifyUserName",
    "RecommendInfo",
    "ForwardFlag",
    "AppInfo",
    "HasProductId",
    "Ticket",
    "ImgHeight",
    "ImgWidth",
    "SubMsgType",
    "NewMsgId",
    "OriContent",
    "EncryFileName",
]
RECOMMEND_KEYS = [
    "UserName",
    "NickName",
    "QQNum",
    "Province",
    "City",
    "Content",
    "Signature",
    "Alias",
    "Scene",
    "VerifyFlag",
    "AttrStatus",
    "Sex",
    "Ticket",
    "OpCode",
]


@pytest.fixture
def web(sim):
    sim.control.settings(synccheck_hold=0.1)
    return login(sim)


def fetch(sim, web, **spec) -> dict:
    msg_id = sim.control.message(**spec)
    found = [m for m in web.drain() if m["MsgId"] == msg_id]
    assert len(found) == 1, spec
    return found[0]


def names(web) -> dict[str, str]:
    return {c["NickName"]: c["UserName"] for c in web.contacts()}


def test_group_text_carries_the_sender_prefix_escaping_emoji_and_mentions(sim, web):
    group = web.group("云帆Pro客服1群")
    members = {m["NickName"]: m["UserName"] for m in group["MemberList"]}
    text = "发票 <b>&amp; 😀 🇨🇳 ☀️\n第二行"
    m = fetch(sim, web, group="云帆Pro客服1群", sender="张伟", content=text)
    assert list(m) == MSG_KEYS
    assert m["FromUserName"] == group["UserName"] and m["ToUserName"] == web.user["UserName"]
    prefix = members["张伟"] + ":<br/>"
    assert m["Content"] == (
        prefix + "发票 &lt;b&gt;&amp;amp; "
        '<span class="emoji emoji1f600"></span> <span class="emoji emoji1f1e81f1f3"></span> '
        '<span class="emoji emoji2600"></span><br/>第二行'
    )
    assert decode(m["Content"][len(prefix) :]) == text.replace("☀️", "☀")
    assert re.match(r"(@[0-9a-z]*?):<br/>(.*)$", m["Content"])  # ItChat's group regex
    assert (m["MsgType"], m["Status"], m["ImgStatus"]) == (1, 3, 1)
    assert m["NewMsgId"] == int(m["MsgId"]) and isinstance(m["FileSize"], str)
    assert abs(m["CreateTime"] - time.time()) < 5
    mention = fetch(
        sim,
        web,
        group="云帆Pro客服1群",
        sender="张伟",
        content="在吗",
        mentions=["客服-小李"],
        mention_me=True,
    )
    assert mention["Content"] == prefix + "@客服-小李\u2005@云帆客服中心\u2005在吗"


def test_a_silent_new_member_is_only_revealed_by_batchgetcontact(sim, web):
    before = web.group("售后问题反馈群")
    sim.control.add_members("售后问题反馈群", [{"nickname": "路人甲"}], notify=False)
    assert web.drain() == []  # no ModContactList, no notice
    m = fetch(sim, web, group="售后问题反馈群", sender="路人甲", content="有人吗")
    sender = m["Content"].split(":<br/>", 1)[0]
    assert sender not in {x["UserName"] for x in before["MemberList"]}
    assert sender not in names(web).values()
    found = web.batch([{"UserName": sender, "EncryChatRoomId": before["EncryChatRoomId"]}])
    assert found[0]["NickName"] == "路人甲" and found[0]["ContactFlag"] == 0
    assert "路人甲" in {x["NickName"] for x in web.group("售后问题反馈群")["MemberList"]}


def test_friends_officials_and_the_phone_itself_send_without_prefix(sim, web):
    book = names(web)
    friend = fetch(sim, web, **{"from": "VIP-赵总", "content": "合同发你了"})
    assert friend["FromUserName"] == book["赵敏"] and friend["ToUserName"] == web.user["UserName"]
    assert friend["Content"] == "合同发你了"
    article = fetch(sim, web, **{"from": "云帆科技服务号", "type": "article", "title": "新品"})
    assert article["FromUserName"] == book["云帆科技服务号"]
    assert (article["MsgType"], article["AppMsgType"]) == (49, 5)
    assert "&lt;mmreader&gt;" in article["Content"] and article["FileName"] == "新品"
    group_un = book["内部员工群"]
    mine = fetch(sim, web, self=True, to="内部员工群", content="大家好")
    assert mine["FromUserName"] == web.user["UserName"] and mine["ToUserName"] == group_un
    assert mine["Content"] == "大家好"
    note = fetch(sim, web, self=True, to="filehelper", content="备忘")
    assert note["ToUserName"] == "filehelper"
    team = fetch(sim, web, **{"from": "weixin", "content": "欢迎"})
    assert team["FromUserName"] == "weixin"


KINDS = [
    # spec, MsgType, AppMsgType, Status, ImgStatus
    ({"type": "text", "content": "x"}, 1, 0, 3, 1),
    ({"type": "image"}, 3, 0, 3, 2),
    ({"type": "voice"}, 34, 0, 3, 1),
    ({"type": "video"}, 43, 0, 3, 1),
    ({"type": "emoji"}, 47, 0, 3, 2),
    ({"type": "file"}, 49, 6, 3, 1),
    ({"type": "link", "url": "https://e.com/?a=1&b=2"}, 49, 5, 3, 2),
    ({"type": "music"}, 49, 3, 3, 1),
    ({"type": "transfer", "amount": "12.50"}, 49, 2000, 3, 1),
    ({"type": "miniprogram"}, 49, 33, 3, 1),
    ({"type": "history"}, 49, 0, 3, 1),
    ({"type": "app", "app_msg_type": 17, "title": "我发起了位置共享"}, 49, 17, 3, 1),
    ({"type": "card", "card": "张伟"}, 42, 0, 3, 1),
    ({"type": "location"}, 1, 0, 3, 1),
    ({"type": "system", "content": "收到红包，请在手机上查看"}, 10000, 0, 4, 1),
    ({"type": "red_packet"}, 10000, 0, 4, 1),
]


@pytest.mark.parametrize(("spec", "mtype", "app", "status", "img"), KINDS)
def test_every_message_kind_has_the_wire_shape(sim, web, spec, mtype, app, status, img):
    m = fetch(sim, web, group="内部员工群", sender="客服-小王", **spec)
    assert list(m) == MSG_KEYS
    assert list(m["RecommendInfo"]) == RECOMMEND_KEYS
    assert (m["MsgType"], m["AppMsgType"], m["Status"], m["ImgStatus"]) == (mtype, app, status, img)
    assert m["NewMsgId"] == int(m["MsgId"])
    if mtype == 10000:
        assert ":<br/>" not in m["Content"]  # group notices carry no sender prefix
    else:
        assert re.match(r"@[0-9a-f]+:<br/>", m["Content"])
    body = decode(m["Content"].split(":<br/>", 1)[-1])
    if mtype in (3, 34, 43, 47) or mtype == 49:
        assert m["Content"].split(":<br/>", 1)[1].startswith("&lt;")  # escaped XML payload
    if mtype == 49:
        assert f"<type>{19 if spec['type'] == 'history' else app}</type>" in body
    if spec["type"] == "link":
        assert m["Url"] == "https://e.com/?a=1&amp;b=2" and m["FileName"]
    if spec["type"] == "transfer":
        assert "￥12.50" in body
    if spec["type"] == "card":
        info = m["RecommendInfo"]
        assert info["NickName"] == "张伟" and info["UserName"] == names(web)["张伟"]
        assert 'nickname="张伟"' in body
    if spec["type"] == "location":
        assert m["SubMsgType"] == 48 and m["Url"].startswith("https://")
        assert m["OriContent"].startswith('<?xml version="1.0"?>\n<msg>\n\t<location x=')
        assert "pictype=location" in m["Content"]
    if spec["type"] == "voice":
        assert m["VoiceLength"] > 0 and "voicemsg" in body


def test_a_friend_request_comes_from_fmessage_and_can_be_accepted(sim, web):
    m = fetch(sim, web, type="friend_request", nickname="新客户🍊", greeting="你好，想咨询")
    assert (m["MsgType"], m["FromUserName"]) == (37, "fmessage")
    info = m["RecommendInfo"]
    assert info["NickName"] == '新客户<span class="emoji emoji1f34a"></span>'
    assert info["Content"] == "你好，想咨询" and info["OpCode"] == 2
    assert re.fullmatch(r"v2_[0-9a-f]+@stranger", info["Ticket"])
    assert f'ticket="{info["Ticket"]}"' in decode(m["Content"])
    out = web.post(
        "webwxverifyuser",
        {
            "Opcode": 3,
            "VerifyUserListSize": 1,
            "VerifyUserList": [{"Value": info["UserName"], "VerifyUserTicket": info["Ticket"]}],
            "VerifyContent": "",
            "SceneListCount": 1,
            "SceneList": [33],
            "skey": web.skey,
        },
    )
    assert out["BaseResponse"]["Ret"] == 0
    out = web.sync()
    assert [c["NickName"] for c in out["ModContactList"]] == [info["NickName"]]
    assert "你已添加了新客户" in out["AddMsgList"][0]["Content"]


def test_status_notify_kind_says_which_chat_the_phone_opened(sim, web):
    m = fetch(sim, web, type="status_notify", **{"from": "VIP-赵总"})
    assert m["MsgType"] == 51 and m["StatusNotifyCode"] == 2 and m["Content"] == ""
    assert m["StatusNotifyUserName"] == names(web)["赵敏"]


def test_create_time_and_count(sim, web):
    specs = [
        {"group": "内部员工群", "sender": "客服-小王", "content": "n{i}", "count": 3},
        {"group": "内部员工群", "sender": "客服-小李", "content": "old", "create_time": 1600000000},
    ]
    ids = sim.control.messages(specs)
    msgs = web.drain()
    assert [m["MsgId"] for m in msgs] == ids
    assert [decode(m["Content"].split(":<br/>")[1]) for m in msgs] == ["n0", "n1", "n2", "old"]
    assert msgs[-1]["CreateTime"] == 1600000000
    assert len(set(ids)) == 4 and all(re.fullmatch(r"\d{19}", i) for i in ids)
    injected = sim.control.injected()
    assert [i["msg_id"] for i in injected][-4:] == ids
    assert injected[-1]["chat"] == "内部员工群" and injected[-1]["type"] == 1


def test_a_recall_points_at_the_earlier_message(sim, web):
    original = fetch(sim, web, group="VIP客户群💎", sender="马丽", content="说错了")
    recall_id = sim.control.recall(original["MsgId"])
    recall = web.drain()[0]
    assert recall["MsgId"] == recall_id
    assert (recall["MsgType"], recall["Status"]) == (10002, 4)
    prefix = original["Content"].split(":<br/>")[0]
    assert recall["Content"].startswith(prefix + ':<br/>&lt;sysmsg type="revokemsg"&gt;<br/>\t')
    body = decode(recall["Content"].split(":<br/>", 1)[1])
    assert f"<msgid>{original['MsgId']}</msgid>" in body
    assert re.search(r"<session>\d+@chatroom</session>", body)
    assert '<replacemsg><![CDATA["马丽-星辰贸易" 撤回了一条消息]]></replacemsg>' in body
    assert recall["Content"].count("<br/>\t") == 7  # one per element boundary, none in CDATA
    private = fetch(sim, web, **{"from": "张伟", "content": "oops"})
    sim.control.recall(private["MsgId"])
    again = web.drain()[0]
    assert (
        again["Content"].startswith("&lt;sysmsg")
        and again["FromUserName"] == private["FromUserName"]
    )
    with pytest.raises(RuntimeError):
        sim.control.recall("1234")


def test_roster_changes_bring_their_sync_traffic(sim, web):
    sim.control.rename_group("云帆Pro客服2群", "云帆Pro客服2群(售后)", by="客服-小王")
    out = web.sync()
    assert [c["NickName"] for c in out["ModContactList"]] == ["云帆Pro客服2群(售后)"]
    assert decode(out["AddMsgList"][0]["Content"]) == '"小王🌸"修改群名为“云帆Pro客服2群(售后)”'
    assert out["AddMsgList"][0]["MsgType"] == 10000
    group = web.group("VIP客户群💎")
    sim.control.add_members("VIP客户群💎", ["新人乙"], inviter="马丽-星辰贸易")
    out = web.sync()
    mod = out["ModContactList"][0]
    assert mod["MemberCount"] == group["MemberCount"] + 1 == len(mod["MemberList"])
    assert decode(out["AddMsgList"][0]["Content"]) == '"马丽-星辰贸易"邀请"新人乙"加入了群聊'
    sim.control.remove_members("VIP客户群💎", ["新人乙"], by="self")
    out = web.sync()
    assert out["ModContactList"][0]["MemberCount"] == group["MemberCount"]
    assert decode(out["AddMsgList"][0]["Content"]) == '你将"新人乙"移出了群聊'
    sim.control.remove_members("VIP客户群💎", ["马丽"], announce=True)
    assert decode(web.sync()["AddMsgList"][0]["Content"]) == '"马丽-星辰贸易"退出了群聊'
    sim.control.remove_members("内部员工群", ["财务陈静"])  # a quiet leave: only the roster
    out = web.sync()
    assert out["AddMsgList"] == [] and len(out["ModContactList"]) == 1
    sim.control.update_contact("张伟", remark="老客户张伟")
    assert web.sync()["ModContactList"][0]["RemarkName"] == "老客户张伟"
    sim.control.add_contacts(friends=["刘新"])
    out = web.sync()
    assert out["ModContactList"][0]["NickName"] == "刘新"
    assert decode(out["AddMsgList"][0]["Content"]) == "你已添加了刘新，现在可以开始聊天了。"
    sim.control.remove_contact("内部员工群")
    assert web.sync()["DelContactList"][0]["UserName"].startswith("@@")


def test_chatroom_endpoints_change_the_world(sim, web):
    book = names(web)
    group = web.group("内部员工群")
    out = web.post(
        "webwxupdatechatroom",
        {"ChatRoomName": group["UserName"], "AddMemberList": book["张伟"]},
        fun="addmember",
    )
    assert out["BaseResponse"]["Ret"] == 0 and out["MemberCount"] == group["MemberCount"] + 1
    out = web.post(
        "webwxupdatechatroom",
        {"ChatRoomName": group["UserName"], "NewTopic": "内部群"},
        fun="modtopic",
    )
    assert (out["MemberCount"], out["MemberList"]) == (0, [])
    msgs = web.drain()
    assert decode(msgs[-1]["Content"]) == "你修改群名为“内部群”"
    out = web.post(
        "webwxupdatechatroom",
        {"ChatRoomName": group["UserName"], "DelMemberList": book["张伟"]},
        fun="delmember",
    )
    assert out["BaseResponse"]["Ret"] == 0  # the account owns this group
    created = web.post(
        "webwxcreatechatroom",
        {
            "MemberCount": 2,
            "MemberList": [{"UserName": book["张伟"]}, {"UserName": book["李娜"]}],
            "Topic": "",
        },
        r=int(time.time()),
    )
    assert created["BaseResponse"] == {"Ret": 0, "ErrMsg": "Everything is OK"}
    assert created["ChatRoomName"].startswith("@@") and created["MemberCount"] == 3
    out = web.post("webwxoplog", {"UserName": book["张伟"], "CmdId": 2, "RemarkName": "张总"})
    assert out == {"BaseResponse": {"Ret": 0, "ErrMsg": ""}}
    assert any(c["RemarkName"] == "张总" for c in web.sync()["ModContactList"])
    stat = web.post("webwxstatreport", {"Count": 0, "List": []}, fun="new")
    assert stat["BaseResponse"]["Ret"] == 0
