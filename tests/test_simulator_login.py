"""Simulator login flow (protocol §1): jslogin, QR, the poll state machine, newloginpage, cookies,
desktop mode, 1203, push login, one web session at a time."""

from __future__ import annotations

import base64
import io
import re
import threading
import time
import urllib.parse

import pytest
import requests

from tests.helpers.simulator import API, APPID, DESKTOP_REDIRECT, EXTSPAM, Web, login

XML_OK = re.compile(
    r"<error><ret>0</ret><message></message><skey>(@crypt_[0-9a-f]{8}_[0-9a-f]{32})</skey>"
    r"<wxsid>([A-Za-z0-9+/]{16})</wxsid><wxuin>(\d+)</wxuin><pass_ticket>([^<]+)</pass_ticket>"
    r"<isgrayscale>1</isgrayscale></error>"
)
MSG_1203 = (
    "<error><ret>1203</ret><message>为了你的帐号安全，此微信号不能登录网页微信。"
    "你可以使用Windows微信或Mac微信在电脑端登录。Windows微信下载地址：https://pc.weixin.qq.com  "
    "Mac微信下载地址：https://mac.weixin.qq.com</message></error>"
)
SESSION_COOKIES = {
    "wxuin",
    "wxsid",
    "wxloadtime",
    "mm_lang",
    "webwx_data_ticket",
    "webwxuvid",
    "webwx_auth_ticket",
}


def poll_in_thread(web: Web) -> tuple[threading.Thread, list[tuple[int, str, float]]]:
    out: list[tuple[int, str, float]] = []

    def run() -> None:
        t0 = time.monotonic()
        code, text = web.poll()
        out.append((code, text, time.monotonic() - t0))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def set_cookie_headers(resp: requests.Response) -> list[str]:
    return resp.raw.headers.getlist("Set-Cookie")


# -- jslogin and the QR code -------------------------------------------------------------------


def test_jslogin_answers_the_exact_text_for_get_and_both_post_styles(sim):
    web = Web(sim.base_url)
    uuid = web.jslogin()
    assert re.fullmatch(r"[A-Za-z0-9_-]{10}==", uuid)
    r = web.http.get(f"{sim.base_url}/jslogin", params={"appid": APPID, "fun": "new"})
    assert r.headers["Content-Type"] == "text/javascript"
    assert re.fullmatch(r'window\.QRLogin\.code = 200; window\.QRLogin\.uuid = "[^"]+";', r.text)
    # WeixinBot POSTs the parameters form-encoded; wechat4u POSTs with them in the URL
    form = requests.post(f"{sim.base_url}/jslogin", data={"appid": APPID, "fun": "new"})
    url = requests.post(f"{sim.base_url}/jslogin?appid={APPID}&fun=new&lang=zh_CN")
    for r in (form, url):
        assert r.text.startswith("window.QRLogin.code = 200; window.QRLogin.uuid = ")
    uuids = {uuid, *(re.search(r'"(.+)"', r.text).group(1) for r in (form, url))}
    assert len(uuids) == 3
    bad = requests.get(f"{sim.base_url}/jslogin", params={"appid": "wx0", "fun": "new"})
    assert not bad.text.startswith("window.QRLogin.code = 200;")


def test_qrcode_is_a_jpeg_of_the_login_url(sim):
    image = pytest.importorskip("PIL.Image")
    from wxcli.qr import qr_matrix

    web = Web(sim.base_url)
    uuid = web.jslogin()
    r = requests.get(f"{sim.base_url}/qrcode/{uuid}", params={"t": "webwx", "_": 1})
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "image/jpeg"
    assert r.content.startswith(b"\xff\xd8\xff")
    picture = image.open(io.BytesIO(r.content))
    assert picture.format == "JPEG"
    pixels = picture.convert("L").load()
    matrix = qr_matrix(f"{sim.base_url}/l/{uuid}", border=2)
    assert picture.size == (len(matrix) * 8, len(matrix) * 8)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            assert abs(pixels[x * 8 + 4, y * 8 + 4] - (0 if dark else 255)) < 16, (x, y)
    assert requests.get(f"{sim.base_url}/qrcode/AAAAAAAAAA==").status_code == 404
    page = requests.get(f"{sim.base_url}/l/{uuid}")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")


# -- the login poll ----------------------------------------------------------------------------


def test_poll_holds_for_the_configured_time_then_answers_408(sim):
    sim.control.settings(login_hold=0.15)
    web = Web(sim.base_url)
    web.jslogin()
    t0 = time.monotonic()
    r = web.http.get(web.url("login"), params={"loginicon": "true", "uuid": web.uuid, "tip": 1})
    assert 0.12 <= time.monotonic() - t0 < 2.0
    assert r.text == "window.code=408;"
    assert r.headers["Content-Type"] == "text/javascript"


def test_scan_answers_201_once_with_the_avatar_then_confirm_answers_200(sim):
    sim.control.settings(login_hold=3)
    web = Web(sim.base_url)
    uuid = web.jslogin()
    thread, out = poll_in_thread(web)
    time.sleep(0.1)
    sim.control.scan(uuid)
    thread.join(5)
    code, text, took = out[0]
    assert code == 201 and took < 2
    m = re.fullmatch(r"window\.code=201;window\.userAvatar = 'data:img/jpg;base64,([^']+)';", text)
    assert m, text
    assert base64.b64decode(m.group(1)).startswith(b"\xff\xd8\xff")
    # the next poll holds (no second 201) until the phone confirms
    thread, out = poll_in_thread(web)
    time.sleep(0.1)
    assert not out
    sim.control.confirm(uuid)
    thread.join(5)
    code, text, took = out[0]
    assert code == 200 and took < 2
    assert re.search(r"window\.code=200;", text)
    redirect = re.search(r'window\.redirect_uri="(\S+?)";', text).group(1)
    parts = urllib.parse.urlsplit(redirect)
    assert parts.path == API + "webwxnewloginpage"
    q = urllib.parse.parse_qs(parts.query)
    assert re.fullmatch(r"[A-Za-z0-9_]+@qrticket_0", q["ticket"][0])
    assert q["uuid"] == [uuid] and q["lang"] == ["zh_CN"]
    assert abs(int(q["scan"][0]) - time.time()) < 5  # Unix seconds


def test_cancel_on_the_phone_answers_408_at_once_and_the_qr_stays_usable(sim):
    sim.control.settings(login_hold=5)
    web = Web(sim.base_url)
    uuid = web.jslogin()
    sim.control.scan(uuid)
    assert web.poll()[0] == 201
    thread, out = poll_in_thread(web)
    time.sleep(0.1)
    assert sim.control.cancel(uuid)["state"] == "waiting"
    thread.join(5)
    assert out[0][0] == 408 and out[0][2] < 2
    assert out[0][1] == "window.code=408;"
    sim.control.scan(uuid)
    assert web.poll()[0] == 201
    sim.control.confirm(uuid)
    assert web.poll()[0] == 200


def test_expired_and_unknown_qr_codes_answer_400(sim):
    web = Web(sim.base_url)
    web.jslogin()
    sim.control.expire_qr()
    code, text = web.poll()
    assert (code, text) == (400, "window.code=400;")
    # by age: qr_ttl
    sim.control.settings(qr_ttl=0.1, login_hold=2)
    web.jslogin()
    t0 = time.monotonic()
    assert web.poll()[0] == 400
    assert time.monotonic() - t0 < 1.5
    web.uuid = "AAAAAAAAAA=="
    assert web.poll() == (400, "window.code=400;")


def test_auto_confirm_answers_201_then_200_without_the_phone(sim):
    sim.control.settings(auto_confirm=True)
    web = Web(sim.base_url)
    web.jslogin()
    assert web.poll()[0] == 201
    assert web.poll()[0] == 200
    assert web.open_session().findtext("ret") == "0"


# -- webwxnewloginpage ------------------------------------------------------------------------


def test_newloginpage_returns_the_xml_and_sets_host_only_session_cookies(sim):
    web = Web(sim.base_url)
    web.jslogin()
    sim.control.scan(web.uuid)
    sim.control.confirm(web.uuid)
    web.wait_for(200)
    r = web.http.get(web.redirect_uri + "&fun=new&version=v2", allow_redirects=False)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/plain;charset=utf-8"
    m = XML_OK.fullmatch(r.text)
    assert m, r.text
    skey, sid, uin, pass_ticket = m.groups()
    assert urllib.parse.quote(urllib.parse.unquote(pass_ticket), safe="") == pass_ticket
    base64.b64decode(urllib.parse.unquote(pass_ticket), validate=True)
    headers = set_cookie_headers(r)
    names = {h.split("=", 1)[0] for h in headers}
    assert names == SESSION_COOKIES
    for h in headers:
        attrs = [a.strip().lower() for a in h.split(";")[1:]]
        assert "path=/" in attrs
        assert not any(a.startswith("domain=") for a in attrs)  # host-only on 127.0.0.1
        assert "secure" not in attrs  # plain http: a Secure cookie would never come back
        assert any(a.startswith("expires=") for a in attrs)
    jar = web.http.cookies
    assert jar.get("wxsid") == sid and jar.get("wxuin") == uin
    assert {c.domain for c in jar} == {"127.0.0.1"}
    # the ticket is single use
    again = requests.get(web.redirect_uri, allow_redirects=False)
    assert "<ret>0</ret>" not in again.text
    assert skey.startswith("@crypt_")


def test_desktop_mode_may_answer_301_without_location(sim):
    sim.control.settings(desktop_301=True)
    web = Web(sim.base_url)
    web.jslogin(desktop=True)
    sim.control.scan(web.uuid)
    sim.control.confirm(web.uuid)
    web.wait_for(200)
    headers = {
        "client-version": "2.0.0",
        "extspam": EXTSPAM,
        "referer": "https://wx.qq.com/?&lang=zh_CN&target=t",
    }
    root = web.open_session(extra="", headers=headers)
    r = web.newloginpage
    assert r.status_code == 301
    assert "Location" not in r.headers
    assert root.findtext("ret") == "0"
    assert {h.split("=", 1)[0] for h in set_cookie_headers(r)} == SESSION_COOKIES
    # itchat-uos takes wxsid/wxuin from the cookies
    assert web.http.cookies["wxsid"] == root.findtext("wxsid")
    web.do_init()
    # plain web mode is unaffected by the setting
    plain = Web(sim.base_url).login(sim.control, init=False)
    assert plain.newloginpage.status_code == 200


def test_1203_when_web_login_is_forbidden_unless_desktop(sim):
    sim.control.settings(login_forbidden="web")
    web = Web(sim.base_url)
    web.jslogin()
    sim.control.scan(web.uuid)
    sim.control.confirm(web.uuid)
    web.wait_for(200)
    r = web.http.get(web.redirect_uri, allow_redirects=False)
    assert r.text == MSG_1203
    assert not set_cookie_headers(r)
    desktop = Web(sim.base_url).login(sim.control, desktop=True, init=False)
    assert desktop.sid
    sim.control.settings(login_forbidden="all")
    web = Web(sim.base_url)
    web.jslogin(desktop=True)
    sim.control.scan(web.uuid)
    sim.control.confirm(web.uuid)
    web.wait_for(200)
    root = web.open_session(headers={"client-version": "2.0.0", "extspam": EXTSPAM})
    assert root.findtext("ret") == "1203"


def test_1203_fault_fires_once(sim):
    sim.control.fault("ret", endpoint="webwxnewloginpage", code=1203)
    web = Web(sim.base_url)
    web.jslogin()
    sim.control.scan(web.uuid)
    sim.control.confirm(web.uuid)
    web.wait_for(200)
    assert web.open_session().findtext("ret") == "1203"
    assert login(sim).sid


# -- sessions ---------------------------------------------------------------------------------


def test_a_new_login_ends_the_old_session_with_1101_and_renames_everyone(sim):
    sim.control.settings(synccheck_hold=0.05)
    first = login(sim)
    first_contacts = {c["NickName"]: c["UserName"] for c in first.contacts()}
    second = login(sim)
    second_contacts = {c["NickName"]: c["UserName"] for c in second.contacts()}
    assert first.synccheck() == ("1101", "0")
    assert first.sync()["BaseResponse"]["Ret"] == 1101
    assert second.synccheck() == ("0", "0")
    assert first.user["UserName"] != second.user["UserName"]
    assert first.user["NickName"] == second.user["NickName"]
    assert first_contacts.keys() == second_contacts.keys()
    for nick, name in first_contacts.items():
        if name.startswith("@"):  # special accounts (filehelper) keep their fixed names
            assert second_contacts[nick] != name, nick
    assert sim.control.state()["logins"] == 2


def test_push_login_reuses_the_auth_cookie_and_skips_the_scan(sim):
    web = login(sim)
    r = web.http.get(f"{sim.base_url}{API}webwxpushloginurl", params={"uin": web.uin})
    m = re.fullmatch(r'\{"ret":"0","msg":"all ok","uuid":"([A-Za-z0-9_-]{10}==)"\}', r.text)
    assert m, r.text
    web.uuid = m.group(1)
    assert web.poll()[0] == 201  # the phone shows a confirmation prompt, no scan needed
    sim.control.confirm(web.uuid)
    assert web.poll()[0] == 200
    old_sid = web.sid
    assert web.open_session().findtext("ret") == "0"
    assert web.sid != old_sid
    web.do_init()
    stranger = requests.get(f"{sim.base_url}{API}webwxpushloginurl", params={"uin": web.uin})
    assert stranger.json()["ret"] != "0"
    wrong = web.http.get(f"{sim.base_url}{API}webwxpushloginurl", params={"uin": "1"})
    assert wrong.json()["ret"] != "0"


def test_logout_ends_the_session_by_get_and_by_form_post(sim):
    web = login(sim)
    r = web.http.get(web.url("webwxlogout"), params={"redirect": 1, "type": 1, "skey": web.skey})
    assert r.status_code == 200
    assert web.synccheck() == ("1101", "0")
    web = login(sim)
    r = requests.post(
        web.url("webwxlogout") + "?redirect=1&type=0", data={"sid": web.sid, "uin": web.uin}
    )
    assert r.status_code == 200
    assert web.synccheck()[0] != "0"


def test_root_page_tells_whether_the_cookies_are_logged_in(sim):
    web = login(sim)
    assert 'window.MMCgi = {isLogin: !!"1"}' in web.http.get(sim.base_url + "/").text
    assert 'window.MMCgi = {isLogin: !!""}' in requests.get(sim.base_url + "/").text


def test_desktop_redirect_marks_the_qr_and_session_as_desktop(sim):
    web = Web(sim.base_url)
    r = web.http.get(
        f"{sim.base_url}/jslogin",
        params={"appid": APPID, "fun": "new", "redirect_uri": DESKTOP_REDIRECT, "lang": "zh_CN"},
    )
    uuid = re.search(r'uuid = "(.+)"', r.text).group(1)
    assert [q["desktop"] for q in sim.control.state()["qr"] if q["uuid"] == uuid] == [True]


def test_a_logged_out_session_keeps_its_code_after_a_new_login_and_frees_its_backlog(sim):
    sim.control.settings(synccheck_hold=0.05)
    first = login(sim)
    sim.control.flood(300)
    sim.control.logout(1100)
    assert sim.engine.session.events == []  # the backlog of an ended session is dropped
    second = login(sim)
    assert first.synccheck() == ("1100", "0")
    assert first.sync()["BaseResponse"]["Ret"] == 1100
    assert second.synccheck() == ("0", "0")
