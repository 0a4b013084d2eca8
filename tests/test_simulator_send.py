"""Simulator sending (protocol §8): text, upload in 512 KiB chunks, image/file/emoticon/video,
revoke, the 1205 budget, and the echo of web sends through webwxsync."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

import pytest

from tests.helpers.simulator import API, login
from wxcli.simulator import Settings

CHUNK = 524288
SEND_KEYS = ["BaseResponse", "MsgID", "LocalID"]
UPLOAD_KEYS = [
    "BaseResponse",
    "MediaId",
    "StartPos",
    "CDNThumbImgHeight",
    "CDNThumbImgWidth",
    "EncryFileName",
]


@pytest.fixture
def web(sim):
    sim.control.settings(synccheck_hold=0.1)
    return login(sim)


def group_name(web, nick: str) -> str:
    return next(c["UserName"] for c in web.contacts() if c["NickName"] == nick)


def msg(web, to: str, **fields) -> dict:
    local = str(int(time.time() * 1e4))
    return {
        "FromUserName": web.user["UserName"],
        "ToUserName": to,
        "LocalID": local,
        "ClientMsgId": local,
        **fields,
    }


def upload(web, data: bytes, name: str, mime: str, mediatype: str, to: str = "filehelper"):
    """POST the file the way the official client does: one request per 512 KiB chunk."""
    chunks = max((len(data) + CHUNK - 1) // CHUNK, 1)
    request = {
        "UploadType": 2,
        "BaseRequest": web.base_request(),
        "ClientMediaId": int(time.time() * 1000),
        "TotalLen": len(data),
        "StartPos": 0,
        "DataLen": len(data),
        "MediaType": 4,
        "FromUserName": web.user["UserName"],
        "ToUserName": to,
        "FileMd5": hashlib.md5(data).hexdigest(),
    }
    answers = []
    for i in range(chunks):
        fields = [
            ("id", "WU_FILE_0"),
            ("name", name),
            ("type", mime),
            ("lastModifiedDate", "Sat Jun 23 2018 16:45:07 GMT+0800 (CST)"),
            ("size", str(len(data))),
        ]
        if chunks > 1:
            fields += [("chunks", str(chunks)), ("chunk", str(i))]
        fields += [
            ("mediatype", mediatype),
            ("uploadmediarequest", json.dumps(request, separators=(",", ":"))),
            ("webwx_data_ticket", web.http.cookies["webwx_data_ticket"]),
            ("pass_ticket", "undefined"),
        ]
        files = [(k, (None, v)) for k, v in fields]
        files.append(("filename", (name, data[i * CHUNK : (i + 1) * CHUNK], mime)))
        r = web.http.post(web.url("webwxuploadmedia") + "?f=json", files=files)
        assert r.headers["Access-Control-Allow-Origin"] == "https://wx.qq.com"
        assert r.headers["Access-Control-Allow-Credentials"] == "true"
        answers.append(json.loads(r.content))
    return answers


def test_sendmsg_answers_ids_records_the_send_and_echoes_it(sim, web):
    to = group_name(web, "内部员工群")
    text = "第一行 <b>&amp; 😀\n第二行"
    body = msg(web, to, Type=1, Content=text)
    r = web.post_raw("webwxsendmsg", {"BaseRequest": web.base_request(), "Msg": body, "Scene": 0})
    out = json.loads(r.content)
    assert list(out) == SEND_KEYS
    assert out["BaseResponse"] == {"Ret": 0, "ErrMsg": ""}
    assert re.fullmatch(r"\d{19}", out["MsgID"]) and out["LocalID"] == body["LocalID"]
    sent = sim.control.sent()[-1]
    assert sent["to_name"] == "内部员工群" and sent["to_user_name"] == to
    assert sent["text"] == text and sent["ret"] == 0 and sent["msg_id"] == out["MsgID"]
    assert sent["local_id"] == body["LocalID"] == sent["client_msg_id"]
    echo = web.drain()
    assert len(echo) == 1
    m = echo[0]
    assert m["MsgId"] == out["MsgID"]
    assert m["FromUserName"] == web.user["UserName"] and m["ToUserName"] == to
    assert m["Content"] == (
        '第一行 &lt;b&gt;&amp;amp; <span class="emoji emoji1f600"></span><br/>第二行'
    )  # your own group messages carry no sender prefix
    sim.control.settings(echo_sends=False)
    web.send_text(to, "quiet")
    assert web.drain() == []


def test_sending_to_strangers_and_unknown_names_fails(sim, web):
    group = web.group("云帆Pro客服1群")
    known = {c["UserName"] for c in web.contacts()} | {web.user["UserName"]}
    stranger = next(m["UserName"] for m in group["MemberList"] if m["UserName"] not in known)
    assert web.send_text(stranger, "hi")["BaseResponse"]["Ret"] == 1204
    assert web.send_text("@" + "f" * 64, "hi")["BaseResponse"]["Ret"] == 1
    assert web.send_text("filehelper", "hi")["BaseResponse"]["Ret"] == 0
    assert web.send_text(web.user["UserName"], "note to self")["BaseResponse"]["Ret"] == 0
    assert [s["ret"] for s in sim.control.sent()] == [1204, 1, 0, 0]


def test_1205_once_the_budget_is_spent(sim, web):
    assert (Settings().send_burst, Settings().send_rate) == (60, 1.0)
    rets = [web.send_text("filehelper", f"n{i}")["BaseResponse"] for i in range(61)]
    assert all(r["Ret"] == 0 for r in rets[:60])
    assert rets[60]["Ret"] == 1205 and rets[60]["ErrMsg"]
    assert sim.control.sent()[-1]["ret"] == 1205
    sim.control.settings(send_rate=50)  # the sustained rate refills the bucket
    time.sleep(0.1)
    assert web.send_text("filehelper", "again")["BaseResponse"]["Ret"] == 0


def test_a_chunked_upload_is_reassembled_and_sent_as_an_image(sim, web):
    data = b"\xff\xd8\xff\xe0" + os.urandom(2 * CHUNK + 1234) + b"\r\n--x\r\n"
    answers = upload(web, data, "photo.jpg", "image/jpeg", "pic")
    assert len(answers) == 3
    for mid in answers[:-1]:
        assert mid["BaseResponse"]["Ret"] == 0 and mid["MediaId"] == ""
    final = answers[-1]
    assert list(final) == UPLOAD_KEYS
    assert re.fullmatch(r"@crypt_\w+", final["MediaId"])
    assert final["StartPos"] == len(data)
    assert final["EncryFileName"] == "photo.jpg"
    to = group_name(web, "内部员工群")
    out = web.post(
        "webwxsendmsgimg",
        {"Msg": msg(web, to, Type=3, MediaId=final["MediaId"], Content=""), "Scene": 0},
        fun="async",
        f="json",
    )
    assert out["BaseResponse"]["Ret"] == 0
    sent = sim.control.sent()[-1]
    assert sent["endpoint"] == "webwxsendmsgimg"
    assert sent["media"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert sent["media"]["size"] == len(data) and sent["media"]["mediatype"] == "pic"
    echo = web.drain()[0]
    assert echo["MsgType"] == 3 and echo["MsgId"] == out["MsgID"]
    img = web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": echo["MsgId"]})
    assert img.content == data


def test_upload_checks_the_data_ticket_and_the_chunk_size(sim, web):
    ticket = web.http.cookies["webwx_data_ticket"]
    small = upload(web, b"hello", "a.txt", "text/plain", "doc")
    assert small[-1]["BaseResponse"]["Ret"] == 0 and small[-1]["StartPos"] == 5

    def one_part(data: bytes, data_ticket: str) -> int:
        fields = {
            "uploadmediarequest": json.dumps({"BaseRequest": web.base_request()}),
            "webwx_data_ticket": data_ticket,
            "size": str(len(data)),
        }
        files = [(k, (None, v)) for k, v in fields.items()]
        files.append(("filename", ("f.bin", data, "application/octet-stream")))
        r = web.http.post(web.url("webwxuploadmedia") + "?f=json", files=files)
        return json.loads(r.content)["BaseResponse"]["Ret"]

    assert one_part(b"x" * CHUNK, ticket) == 0  # exactly 512 KiB is fine
    assert one_part(b"x" * (CHUNK + 1), ticket) != 0  # a bigger part is not
    assert one_part(b"x", "forged") != 0
    r = web.http.post(web.url("webwxuploadmedia") + "?f=json", data=b"{}")
    assert json.loads(r.content)["BaseResponse"]["Ret"] != 0


def test_files_emoticons_and_videos_go_out_with_their_media(sim, web):
    doc = b"%PDF-1.4 invoice " + os.urandom(100)
    media_id = upload(web, doc, "发票 2024.pdf", "application/pdf", "doc")[-1]["MediaId"]
    appmsg = (
        "<appmsg appid='wxeb7ec651dd0aefa9' sdkver=''><title>发票 2024.pdf</title><des></des>"
        "<action></action><type>6</type><content></content><url></url><lowurl></lowurl>"
        f"<appattach><totallen>{len(doc)}</totallen><attachid>{media_id}</attachid>"
        "<fileext>pdf</fileext></appattach><extinfo></extinfo></appmsg>"
    )
    out = web.post(
        "webwxsendappmsg", {"Msg": msg(web, "filehelper", Type=6, Content=appmsg), "Scene": 0}
    )
    assert out["BaseResponse"]["Ret"] == 0
    assert sim.control.sent()[-1]["media"]["name"] == "发票 2024.pdf"
    gif = b"GIF89a" + os.urandom(64)
    gif_id = upload(web, gif, "a.gif", "image/gif", "doc")[-1]["MediaId"]
    for fields in ({"MediaId": gif_id}, {"EMoticonMd5": "0" * 32}):
        out = web.post(
            "webwxsendemoticon",
            {"Msg": msg(web, "filehelper", Type=47, EmojiFlag=2, **fields), "Scene": 0},
            fun="sys",
        )
        assert out["BaseResponse"]["Ret"] == 0, fields
    none = web.post("webwxsendemoticon", {"Msg": msg(web, "filehelper", Type=47, EmojiFlag=2)})
    assert none["BaseResponse"]["Ret"] != 0
    mp4 = b"\x00\x00\x00\x18ftypmp42" + os.urandom(200)
    video_id = upload(web, mp4, "v.mp4", "video/mp4", "video")[-1]["MediaId"]
    out = web.post("webwxsendvideomsg", {"Msg": msg(web, "filehelper", Type=43, MediaId=video_id)})
    assert out["BaseResponse"]["Ret"] == 0
    bogus = web.post("webwxsendmsgimg", {"Msg": msg(web, "filehelper", Type=3, MediaId="@crypt_x")})
    assert bogus["BaseResponse"]["Ret"] != 0
    echoes = web.drain()
    assert [(m["MsgType"], m["AppMsgType"]) for m in echoes] == [(49, 6), (47, 0), (47, 0), (43, 0)]
    assert echoes[0]["FileName"] == "发票 2024.pdf"
    checked = web.post(
        "webwxcheckupload",
        {"FileMd5": "0" * 32, "FileName": "a b.pdf", "FileSize": 1, "FileType": 7},
    )
    assert list(checked) == ["BaseResponse", "MediaId", "AESKey", "Signature", "EncryFileName"]
    assert checked["MediaId"] == "" and checked["EncryFileName"] == "a%20b.pdf"


def test_revoke_own_message_within_two_minutes(sim, web):
    to = group_name(web, "内部员工群")
    body = msg(web, to, Type=1, Content="oops")
    sent = web.post("webwxsendmsg", {"Msg": body, "Scene": 0})
    web.drain()
    revoke = {"SvrMsgId": sent["MsgID"], "ToUserName": to, "ClientMsgId": body["LocalID"]}
    r = web.post_raw("webwxrevokemsg", {"BaseRequest": web.base_request(), **revoke})
    out = json.loads(r.content)
    assert list(out) == ["BaseResponse", "Introduction", "SysWording"]
    assert out["BaseResponse"]["Ret"] == 0
    assert out["Introduction"] == "你可以撤回2分钟内发送的消息（部分旧版本微信不支持这个功能）。"
    recall = web.drain()[0]
    assert recall["MsgType"] == 10002 and recall["Status"] == 4
    assert f"&lt;msgid&gt;{sent['MsgID']}&lt;/msgid&gt;" in recall["Content"]
    assert "你撤回了一条消息" in recall["Content"]
    again = web.post("webwxrevokemsg", revoke)
    assert again["BaseResponse"]["Ret"] != 0
    late = web.post("webwxsendmsg", {"Msg": msg(web, to, Type=1, Content="late"), "Scene": 0})
    when, target, local = sim.engine.session.sent_ids[late["MsgID"]]
    sim.engine.session.sent_ids[late["MsgID"]] = (when - 121, target, local)  # 2 min ago
    out = web.post("webwxrevokemsg", {**revoke, "SvrMsgId": late["MsgID"]})
    assert out["BaseResponse"]["Ret"] != 0
    out = web.post("webwxrevokemsg", {**revoke, "SvrMsgId": late["MsgID"], "ToUserName": "x"})
    assert out["BaseResponse"]["Ret"] != 0


def test_sends_after_the_session_ended_answer_its_code(sim, web):
    sim.control.logout(1101)
    out = web.send_text("filehelper", "hi")
    assert list(out) == SEND_KEYS
    assert out["BaseResponse"]["Ret"] == 1101 and out["MsgID"] == ""


def test_a_send_url_without_query_like_itchat_works(sim, web):
    r = web.http.post(
        f"{sim.base_url}{API}webwxsendmsg",
        data=json.dumps(
            {
                "BaseRequest": web.base_request(Uin=str(web.uin)),
                "Msg": msg(web, "filehelper", Type=1, Content="x"),
                "Scene": 0,
            },
            ensure_ascii=False,
        ).encode("utf-8"),
        headers={"ContentType": "application/json; charset=UTF-8"},
    )
    assert json.loads(r.content)["BaseResponse"]["Ret"] == 0


def test_multipart_parsing_handles_binary_parts_and_encoded_names():
    from wxcli.simulator.server import parse_multipart

    data = b"\r\n--X\r\n\x00\xff" + os.urandom(1000).replace(b"--XX", b"") + b"\r\n"
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="name"\r\n\r\n\xe5\x8f\x91.pdf\r\n'
        b'--XX\r\nContent-Disposition: form-data; name="filename"; '
        b"filename*=UTF-8''%E5%8F%91.pdf\r\nContent-Type: application/pdf\r\n\r\n"
        + data
        + b"\r\n--XX--\r\n"
    )
    fields, payload, name = parse_multipart('multipart/form-data; boundary="XX"', body)
    assert fields == {"name": "发.pdf"} and name == "发.pdf"
    assert payload == data
    assert parse_multipart("application/json", body) == (None, None, "")
