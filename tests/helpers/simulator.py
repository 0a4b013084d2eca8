"""Test-side helpers for the simulator tests: a bare-requests walk through the login handshake.

Deliberately not a client library: each step is one plain HTTP call as the protocol file shows
it, so a test can stop at any step, tamper with a value and look at the raw answer.
"""

from __future__ import annotations

import html
import json
import re
import time
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any

import requests

API = "/cgi-bin/mmwebwx-bin/"
APPID = "wx782c26e4c19acffb"
DESKTOP_REDIRECT = "https://wx.qq.com/cgi-bin/mmwebwx-bin/webwxnewloginpage?mod=desktop"
JSLOGIN_RE = r'window\.QRLogin\.code = (\d+); window\.QRLogin\.uuid = "(\S+?)";'
SYNCCHECK_RE = r'window\.synccheck=\{retcode:"(\d+)",selector:"(\d+)"\}'
EXTSPAM = "Go8FCIkFEokFCggwMDAwMDAwMRAGGvAESySibk50w5Wb3uTl2c2h64jVVrV7gNs06GFl"  # opaque


class Web:
    """One browser-like web session against a simulator, driven step by step."""

    def __init__(self, base_url: str, *, uin_as_string: bool = False, timeout: float = 10.0):
        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        self.timeout = timeout
        self.uin_as_string = uin_as_string
        self.uuid = ""
        self.redirect_uri = ""
        self.skey = self.sid = self.pass_ticket = ""
        self.uin = 0
        self.user: dict[str, Any] = {}
        self.sync_key: dict[str, Any] = {}
        self.check_key: dict[str, Any] = {}
        self.init: dict[str, Any] = {}
        self.newloginpage: requests.Response | None = None

    # -- raw calls -----------------------------------------------------------------------

    def url(self, endpoint: str) -> str:
        return f"{self.base}{API}{endpoint}"

    def jslogin(self, desktop: bool = False) -> str:
        params = {"appid": APPID, "fun": "new", "lang": "zh_CN", "_": int(time.time() * 1000)}
        if desktop:
            params["redirect_uri"] = DESKTOP_REDIRECT
        r = self.http.get(f"{self.base}/jslogin", params=params, timeout=self.timeout)
        m = re.fullmatch(JSLOGIN_RE, r.text)
        assert m, r.text
        assert m.group(1) == "200"
        self.uuid = m.group(2)
        return self.uuid

    def poll(self, tip: int = 1) -> tuple[int, str]:
        params = {"loginicon": "true", "uuid": self.uuid, "tip": tip, "r": ~int(time.time())}
        r = self.http.get(self.url("login"), params=params, timeout=self.timeout + 30)
        m = re.search(r"window\.code=(\d+);", r.text)
        code = int(m.group(1)) if m else 0
        if code == 200:
            self.redirect_uri = re.search(r'window\.redirect_uri="(\S+?)";', r.text).group(1)
        return code, r.text

    def open_session(self, extra: str = "&fun=new&version=v2", headers: Any = None) -> Any:
        """GET the redirect_uri (no redirects followed) and read the XML credentials."""
        r = self.http.get(
            self.redirect_uri + extra, allow_redirects=False, headers=headers, timeout=self.timeout
        )
        self.newloginpage = r
        root = ET.fromstring(r.text)
        if root.findtext("ret") != "0":
            return root
        self.skey = root.findtext("skey") or ""
        self.sid = root.findtext("wxsid") or ""
        self.uin = int(root.findtext("wxuin") or 0)
        self.pass_ticket = root.findtext("pass_ticket") or ""
        return root

    def base_request(self, **override: Any) -> dict[str, Any]:
        base = {
            "Uin": str(self.uin) if self.uin_as_string else self.uin,
            "Sid": self.sid,
            "Skey": self.skey,
            "DeviceID": "e123456789012345",
        }
        base.update(override)
        return base

    def post(self, endpoint: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        """POST a JSON API with a BaseRequest; returns the parsed JSON answer."""
        payload = {"BaseRequest": self.base_request(), **(body or {})}
        r = self.post_raw(endpoint, payload, **params)
        assert r.headers["Content-Type"].startswith("text/plain"), r.headers["Content-Type"]
        return json.loads(r.content.decode("utf-8"))

    def post_raw(self, endpoint: str, payload: Any, **params: Any) -> requests.Response:
        params.setdefault("pass_ticket", self.pass_ticket)
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        if isinstance(data, str):
            data = data.encode("utf-8")
        return self.http.post(
            self.url(endpoint),
            params=params,
            data=data,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            timeout=self.timeout,
        )

    def synckey_text(self, key: dict[str, Any] | None = None) -> str:
        key = key or self.check_key or self.sync_key
        return "|".join(f"{i['Key']}_{i['Val']}" for i in key["List"])

    def synccheck_raw(
        self, key: dict[str, Any] | None = None, **override: Any
    ) -> requests.Response:
        params = {
            "r": int(time.time() * 1000),
            "skey": self.skey,
            "sid": self.sid,
            "uin": self.uin,
            "deviceid": "e123456789012345",
            "synckey": self.synckey_text(key),
            "_": int(time.time() * 1000),
        }
        params.update(override)
        return self.http.get(self.url("synccheck"), params=params, timeout=self.timeout + 30)

    def synccheck(self, key: dict[str, Any] | None = None) -> tuple[str, str]:
        text = self.synccheck_raw(key).text
        m = re.fullmatch(SYNCCHECK_RE, text)
        assert m, text
        return m.group(1), m.group(2)

    def sync(self, key: dict[str, Any] | None = None, commit: bool = True) -> dict[str, Any]:
        out = self.post(
            "webwxsync",
            {"SyncKey": key or self.sync_key, "rr": ~int(time.time())},
            sid=self.sid,
            skey=self.skey,
        )
        if commit and out["BaseResponse"]["Ret"] == 0:
            self.sync_key = out["SyncKey"]
            self.check_key = out["SyncCheckKey"]
        return out

    # -- whole steps ---------------------------------------------------------------------

    def wait_for(self, want: int, limit: int = 40) -> str:
        for _ in range(limit):
            code, text = self.poll()
            if code == want:
                return text
        raise AssertionError(f"login poll never answered {want}")

    def login(self, control: Any = None, *, desktop: bool = False, init: bool = True) -> Web:
        """QR login to a ready session: jslogin, phone scan+confirm, poll, newloginpage, init."""
        self.jslogin(desktop=desktop)
        if control is not None:
            control.scan(self.uuid)
            control.confirm(self.uuid)
        self.wait_for(200)
        headers = None
        if desktop:
            headers = {"client-version": "2.0.0", "extspam": EXTSPAM}
        root = self.open_session(headers=headers)
        assert root.findtext("ret") == "0", ET.tostring(root)
        if init:
            self.do_init()
        return self

    def do_init(self) -> dict[str, Any]:
        self.init = self.post("webwxinit", r=~int(time.time()))
        assert self.init["BaseResponse"]["Ret"] == 0, self.init
        self.user = self.init["User"]
        self.sync_key = self.init["SyncKey"]
        self.check_key = {}
        return self.init

    def status_notify(self) -> dict[str, Any]:
        return self.post(
            "webwxstatusnotify",
            {
                "Code": 3,
                "FromUserName": self.user["UserName"],
                "ToUserName": self.user["UserName"],
                "ClientMsgId": int(time.time() * 1000),
            },
            lang="zh_CN",
        )

    def contacts(self) -> list[dict[str, Any]]:
        members: list[dict[str, Any]] = []
        seq = 0
        while True:
            r = self.http.get(
                self.url("webwxgetcontact"),
                params={"r": int(time.time() * 1000), "seq": seq, "skey": self.skey},
                timeout=self.timeout,
            )
            page = json.loads(r.content.decode("utf-8"))
            assert page["BaseResponse"]["Ret"] == 0, page
            members.extend(page["MemberList"])
            seq = page["Seq"]
            if seq == 0:
                return members

    def batch(self, items: list[dict[str, str]]) -> list[dict[str, Any]]:
        out = self.post(
            "webwxbatchgetcontact",
            {"Count": len(items), "List": items},
            type="ex",
            r=int(time.time() * 1000),
        )
        assert out["BaseResponse"]["Ret"] == 0, out
        return out["ContactList"]

    def group(self, name: str) -> dict[str, Any]:
        """The full group object (with MemberList) of a group by its (decoded) NickName."""
        for c in self.contacts() + self.init.get("ContactList", []):
            if c["UserName"].startswith("@@") and decode(c["NickName"]) == name:
                return self.batch([{"UserName": c["UserName"], "EncryChatRoomId": ""}])[0]
        raise AssertionError(f"no group {name!r}")

    def drain(self, limit: int = 50) -> list[dict[str, Any]]:
        """webwxsync until nothing is pending; all AddMsgList entries."""
        msgs: list[dict[str, Any]] = []
        for _ in range(limit):
            out = self.sync()
            msgs.extend(out["AddMsgList"])
            if not out["AddMsgList"] and not out["ModContactList"] and not out["DelContactList"]:
                return msgs
        return msgs

    def send_text(self, to: str, text: str, **params: Any) -> dict[str, Any]:
        local = str(int(time.time() * 1e4))
        return self.post(
            "webwxsendmsg",
            {
                "Msg": {
                    "Type": 1,
                    "Content": text,
                    "FromUserName": self.user["UserName"],
                    "ToUserName": to,
                    "LocalID": local,
                    "ClientMsgId": local,
                },
                "Scene": 0,
            },
            **params,
        )


def quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


SPAN = re.compile(r'<span class="emoji emoji([0-9a-f]+)"></span>')


def decode(text: str) -> str:
    """What a client such as ItChat makes of Content or a name: <br/> → newline, entities
    unescaped, emoji spans back to characters (8/10 hex digits are two code points)."""

    def emoji(m: re.Match[str]) -> str:
        code = m.group(1)
        if len(code) in (8, 10):
            half = len(code) // 2
            return chr(int(code[:half], 16)) + chr(int(code[half:], 16))
        return chr(int(code, 16))

    return html.unescape(SPAN.sub(emoji, text.replace("<br/>", "\n")))


def login(sim: Any, **kwargs: Any) -> Web:
    """A logged-in, initialised web session on ``sim`` (the phone scans and confirms)."""
    return Web(sim.base_url).login(sim.control, **kwargs)
