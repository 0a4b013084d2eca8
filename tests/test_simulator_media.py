"""Simulator media downloads (protocol §7.6): real bytes, MsgID/msgid, Range → 206, tickets."""

from __future__ import annotations

import hashlib
import html
import re
import urllib.parse

import pytest
import requests

from tests.helpers.simulator import login


@pytest.fixture
def web(sim):
    sim.control.settings(synccheck_hold=0.1)
    return login(sim)


def one(sim, web, **spec) -> dict:
    spec.setdefault("group", "VIP客户群💎")
    spec.setdefault("sender", "马丽")
    msg_id = sim.control.message(**spec)
    msgs = [m for m in web.drain() if m["MsgId"] == msg_id]
    assert len(msgs) == 1
    return msgs[0]


def xml_of(msg: dict) -> str:
    return html.unescape(msg["Content"].split(":<br/>", 1)[-1].replace("<br/>", "\n"))


def test_images_download_full_and_thumbnail_by_either_id_spelling(sim, web):
    m = one(sim, web, type="image", image="invoice-photo")
    assert m["MsgType"] == 3 and m["ImgStatus"] == 2
    full = web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": m["MsgId"], "skey": web.skey})
    assert full.status_code == 200
    assert full.headers["Content-Type"] == "image/jpeg"
    assert full.headers["Cache-Control"] == "max-age=604800"
    assert full.content.startswith(b"\xff\xd8\xff") and full.content.endswith(b"\xff\xd9")
    # ItChat spells it msgid and passes the NewMsgId value
    itchat = web.http.get(web.url("webwxgetmsgimg"), params={"msgid": m["NewMsgId"]})
    assert itchat.content == full.content
    thumb = web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": m["MsgId"], "type": "slave"})
    assert thumb.content.startswith(b"\xff\xd8\xff") and thumb.content != full.content
    xml = xml_of(m)
    assert f'length="{len(full.content)}"' in xml
    assert f'md5="{hashlib.md5(full.content).hexdigest()}"' in xml
    # the same image key gives the same bytes, another message another picture
    same = one(sim, web, type="image", image="invoice-photo")
    other = one(sim, web, type="image")
    get = lambda mid: web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": mid}).content  # noqa: E731
    assert get(same["MsgId"]) == full.content
    assert get(other["MsgId"]) != full.content


def test_image_token_setting_sends_an_opaque_token(sim, web):
    sim.control.settings(image_token=True)
    m = one(sim, web, type="image")
    assert re.fullmatch(r"@[0-9a-f]{128}", m["Content"].split(":<br/>", 1)[1])


def test_emoticons_download_as_gif_with_type_big(sim, web):
    m = one(sim, web, type="emoji")
    assert m["MsgType"] == 47
    r = web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": m["MsgId"], "type": "big"})
    assert r.content.startswith(b"GIF89a") or r.content.startswith(b"GIF87a")
    assert r.headers["Content-Type"] == "image/gif"
    assert f'md5="{hashlib.md5(r.content).hexdigest()}"' in xml_of(m)


def test_voice_downloads_with_or_without_a_range(sim, web):
    m = one(sim, web, type="voice", seconds=2)
    assert m["MsgType"] == 34 and m["VoiceLength"] == 2000
    whole = web.http.get(web.url("webwxgetvoice"), params={"msgid": m["MsgId"], "skey": web.skey})
    assert whole.status_code == 200 and whole.headers["Content-Type"] == "audio/mpeg"
    ranged = web.http.get(
        web.url("webwxgetvoice"), params={"msgid": m["MsgId"]}, headers={"Range": "bytes=0-"}
    )
    assert ranged.status_code == 206 and ranged.content == whole.content
    assert f'length="{len(whole.content)}"' in xml_of(m)


def test_video_needs_a_range_and_answers_206(sim, web):
    m = one(sim, web, type="video", seconds=9)
    assert m["MsgType"] == 43 and m["PlayLength"] == 9 and m["ImgWidth"] > 0
    url = web.url("webwxgetvideo")
    r = web.http.get(url, params={"msgid": m["MsgId"]}, headers={"Range": "bytes=0-"})
    assert r.status_code == 206
    assert r.headers["Content-Type"] == "video/mp4"
    assert r.headers["Accept-Ranges"] == "bytes"
    n = len(r.content)
    assert r.headers["Content-Range"] == f"bytes 0-{n - 1}/{n}"
    assert r.content[4:8] == b"ftyp"
    part = web.http.get(url, params={"msgid": m["MsgId"]}, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == r.content[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{n}"
    assert web.http.get(url, params={"msgid": m["MsgId"]}).status_code == 416
    thumb = web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": m["MsgId"], "type": "slave"})
    assert thumb.content.startswith(b"\xff\xd8\xff")


def test_files_download_from_the_file_host_with_the_data_ticket(sim, web):
    m = one(sim, web, type="file", file_name="报价单 v2.xlsx", data="col1,col2\n1,2\n")
    assert (m["MsgType"], m["AppMsgType"]) == (49, 6)
    assert m["FileName"] == "报价单 v2.xlsx" and m["FileSize"] == "14"
    assert m["EncryFileName"] == urllib.parse.quote("报价单 v2.xlsx")
    params = {
        "sender": m["FromUserName"],
        "mediaid": m["MediaId"],
        "filename": m["FileName"],
        "fromuser": web.uin,
        "pass_ticket": "undefined",
        "webwx_data_ticket": web.http.cookies["webwx_data_ticket"],
    }
    r = web.http.get(web.url("webwxgetmedia"), params=params)
    assert r.status_code == 200 and r.content == b"col1,col2\n1,2\n"
    assert (
        "filename*=UTF-8''" + urllib.parse.quote("报价单 v2.xlsx")
        in r.headers["Content-Disposition"]
    )
    by_encry = {**params, "encryfilename": m["EncryFileName"]}
    del by_encry["filename"]
    assert web.http.get(web.url("webwxgetmedia"), params=by_encry).content == r.content
    forged = {**params, "webwx_data_ticket": "forged"}
    assert web.http.get(web.url("webwxgetmedia"), params=forged).status_code == 403
    assert f"&lt;attachid&gt;{m['MediaId']}&lt;/attachid&gt;" in m["Content"]


def test_location_map_image(sim, web):
    m = one(sim, web, type="location", poiname="云帆大厦", label="深圳")
    assert m["MsgType"] == 1 and m["SubMsgType"] == 48 and m["Url"]
    path = re.search(r"<br/>(/cgi-bin/mmwebwx-bin/webwxgetpubliclinkimg\?\S+)", m["Content"])
    r = web.http.get(sim.base_url + html.unescape(path.group(1)))
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8\xff")


def test_media_needs_the_session(sim, web):
    m = one(sim, web, type="image")
    assert requests.get(web.url("webwxgetmsgimg"), params={"MsgID": m["MsgId"]}).status_code == 403
    assert web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": "1"}).status_code == 404
    sim.control.logout(1101)
    assert web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": m["MsgId"]}).status_code == 403


def test_old_media_is_forgotten_past_the_limit(sim, web):
    sim.control.settings(media_limit=2)
    first = one(sim, web, type="image")
    one(sim, web, type="voice")
    one(sim, web, type="emoji")
    r = web.http.get(web.url("webwxgetmsgimg"), params={"MsgID": first["MsgId"]})
    assert r.status_code == 404
