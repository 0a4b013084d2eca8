"""HTTP face of the simulator: the Web WeChat endpoints and the ``/_sim/`` control API.

Built on the standard library's threading HTTP server because faults need the raw socket (a
dropped connection, a hang past the client's timeout) — things a WSGI stack hides.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from wxcli.simulator import media, wire
from wxcli.simulator.control import dispatch
from wxcli.simulator.core import SimError
from wxcli.simulator.engine import Engine
from wxcli.simulator.login import SYSTEM_MESSAGES_1203
from wxcli.simulator.outbox import REVOKE_INTRO

log = logging.getLogger(__name__)

API = "/cgi-bin/mmwebwx-bin/"
MAX_BODY = 64 * 1024 * 1024


@dataclass
class Resp:
    status: int = 200
    body: bytes = b""
    ctype: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


def js(text: str) -> Resp:
    return Resp(body=text.encode("utf-8"), ctype="text/javascript")


def parse_cookies(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip().strip('"')
    return out


def first(q: dict[str, list[str]], *names: str) -> str | None:
    for n in names:
        if q.get(n):
            return q[n][0]
    return None


def key1_from_synckey(text: str | None) -> int | None:
    for item in (text or "").split("|"):
        k, _, v = item.partition("_")
        if k == "1" and v.lstrip("-").isdigit():
            return int(v)
    return None


def key1_from_body(sync_key: Any) -> int | None:
    if not isinstance(sync_key, dict):
        return None
    for item in sync_key.get("List") or []:
        if isinstance(item, dict) and str(item.get("Key")) == "1":
            val = item.get("Val")
            if val is None:
                return None
            try:
                return int(val)
            except (TypeError, ValueError):
                return None
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 300  # idle keep-alive connections are closed after this, as real servers do
    server: SimServer
    # Set by BaseHTTPRequestHandler.send_header; typeshed leaves the private list out, and
    # _write appends the blank line and body to it to send head and body in one write.
    _headers_buffer: list[bytes]

    # quiet: the request log is kept in the engine, not printed
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    # ------------------------------------------------------------------ plumbing

    @property
    def engine(self) -> Engine:
        return self.server.engine

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_OPTIONS(self) -> None:
        resp = Resp(status=200, body=b"")
        resp.headers.append(("Access-Control-Allow-Origin", "https://wx.qq.com"))
        resp.headers.append(("Access-Control-Allow-Methods", "GET, POST, OPTIONS"))
        resp.headers.append(("Access-Control-Allow-Credentials", "true"))
        self._write(resp)

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket
            pass
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise SimError("request body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise SimError("request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)  # CRLF after each chunk

    def _handle(self, method: str) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = urllib.parse.parse_qs(parsed.query, keep_blank_values=True)
        self.cookies = parse_cookies(self.headers.get("Cookie"))
        self.host = (self.headers.get("Host") or "").lower()
        try:
            body = self._read_body()
        except (SimError, ValueError):
            self.close_connection = True
            self._write(Resp(status=413, body=b"bad or too large body"))
            return
        endpoint = path.rsplit("/", 1)[-1] if path.startswith(API) else path.strip("/")
        if path.startswith("/_sim/") or path == "/_sim":
            resp = self._control(method, path, query, body)
            self._write(resp)
            return
        if path.startswith("/qrcode/"):
            endpoint = "qrcode"
        elif path.startswith("/l/"):
            endpoint = "l"
        fault = self.engine.take_fault(endpoint, {"delay", "hang", "drop", "http"})
        if fault is not None:
            if fault.kind == "delay":
                self.engine.stopping.wait(min(fault.seconds, 600.0))
            elif fault.kind == "hang":
                # Hold past any client timeout, then close without a word. stop() ends it.
                self.engine.stopping.wait(fault.seconds or self.engine.settings.hang_seconds)
                self._log(method, path, query, endpoint, 0)
                self._drop()
                return
            elif fault.kind == "drop":
                self._log(method, path, query, endpoint, 0)
                self._drop()
                return
            elif fault.kind == "http":
                status = fault.status or 500
                text = f"<html><body><h1>{status} Server Error</h1></body></html>"
                resp = Resp(status=status, body=text.encode(), ctype="text/html")
                self._log(method, path, query, endpoint, status)
                self._write(resp)
                return
        try:
            resp = self._route(method, path, endpoint, query, body)
        except SimError as exc:
            resp = Resp(status=400, body=str(exc).encode())
        except Exception:
            log.exception("simulator error on %s", path)
            resp = Resp(status=500, body=b"internal simulator error")
        mal = self.engine.take_fault(endpoint, {"malformed"})
        if mal is not None:
            resp = self._malformed(resp, mal.body, endpoint)
        self._log(method, path, query, endpoint, resp.status)
        self._write(resp)

    def _malformed(self, resp: Resp, how: str, endpoint: str) -> Resp:
        if how == "truncated":
            resp.body = resp.body[: max(len(resp.body) // 2, 1)]
        elif how == "empty":
            resp.body = b""
        elif how == "js":
            resp.body = {
                "synccheck": b'window.synccheck={retcode:"0"}',
                "login": b"window.code=;",
                "jslogin": b"window.QRLogin.code = 200; window.QRLogin.uuid = ;",
            }.get(endpoint, b'window.location.href="https://wx.qq.com/";')
        elif how == "xml":
            resp.body = b"<error><ret>0</ret><message></message><skey>@crypt_"
        else:  # garbage
            resp.body = b"<html><head><title>502</title></head><body>bad gateway</body></html>"
        return resp

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _log(self, method: str, path: str, query: dict[str, list[str]], ep: str, status: int):
        entry = {
            "time": time.time(),
            "method": method,
            "host": self.host,
            "path": path,
            "endpoint": ep,
            "query": {k: v[0] if len(v) == 1 else v for k, v in query.items()},
            "status": status,
            "content_type": self.headers.get("Content-Type", ""),
            "user_agent": self.headers.get("User-Agent", ""),
        }
        with self.engine.lock:
            self.engine.requests.append(entry)

    def _write(self, resp: Resp) -> None:
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.ctype)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers:
                self.send_header(k, v)
            # Head and body in one send: two small writes would meet Nagle's algorithm and the
            # client's delayed ACK, a 40 ms stall on every synccheck.
            self._headers_buffer.append(b"\r\n")
            if self.command != "HEAD":
                self._headers_buffer.append(resp.body)
            self.flush_headers()
        except OSError:  # the client went away (reset, broken pipe, shut down by stop())
            self.close_connection = True

    def _json(self, obj: Any, status: int = 200) -> Resp:
        return Resp(status=status, body=wire.wechat_json(obj, self.engine.settings.json_style))

    # ------------------------------------------------------------------ hosts & cookies

    def _web_host(self) -> str:
        return self.engine.settings.web_host or self.host

    def _vhost(self) -> bool:
        return bool(self.engine.settings.web_host)

    def _role_ok(self, role: str) -> bool:
        """In vhost mode, synccheck must reach the push host and uploads the file host."""
        if not self._vhost():
            return True
        web = self.engine.settings.web_host
        want = {"push": f"webpush.{web}", "file": f"file.{web}"}[role]
        return self.host.split(":")[0] == want

    def _set_cookies(self, resp: Resp, values: dict[str, str], long_lived: set[str]) -> None:
        now = time.time()
        for name, value in values.items():
            life = 10 * 365 * 86400 if name in long_lived else 12 * 3600
            parts = [f"{name}={value}", f"Expires={formatdate(now + life, usegmt=True)}", "Path=/"]
            if self._vhost():
                web = self.engine.settings.web_host
                domain = web
                if name == "webwx_data_ticket":
                    domain = ".qq.com" if web.endswith("qq.com") else ".wechat.com"
                parts.insert(1, f"Domain={domain}")
                parts.append("Secure")
            resp.headers.append(("Set-Cookie", "; ".join(parts)))

    def _session_from_cookies(self, query: dict[str, list[str]] | None = None):
        sess = self.engine.session_by_sid(self.cookies.get("wxsid"))
        if sess is None and query is not None:
            skey = first(query, "skey")
            cur = self.engine.session
            if skey and cur is not None and skey == cur.skey:
                sess = cur
        return sess

    # ------------------------------------------------------------------ routing

    def _route(
        self, method: str, path: str, ep: str, query: dict[str, list[str]], body: bytes
    ) -> Resp:
        if path == "/jslogin":
            return self._jslogin(query, body)
        if path.startswith("/qrcode/"):
            return self._qrcode(path.split("/", 2)[2])
        if path.startswith("/l/"):
            return Resp(
                body="<html><body>请使用微信扫描二维码以登录</body></html>".encode(),
                ctype="text/html; charset=utf-8",
            )
        if path in ("/", ""):
            sess = self._session_from_cookies()
            flag = "1" if sess is not None and sess.alive else ""
            page = f'<html><script>window.MMCgi = {{isLogin: !!"{flag}"}};</script></html>'
            return Resp(body=page.encode(), ctype="text/html; charset=utf-8")
        if not path.startswith(API):
            return Resp(status=404, body=b"not found")
        handler = getattr(self, f"ep_{ep}", None)
        if handler is None:
            return Resp(status=404, body=b"not found")
        return handler(method, query, body)

    # ------------------------------------------------------------------ login

    def _jslogin(self, query: dict[str, list[str]], body: bytes) -> Resp:
        if body:  # WeixinBot posts the parameters form-encoded
            for k, v in urllib.parse.parse_qs(body.decode("utf-8", "replace")).items():
                query.setdefault(k, v)
        if first(query, "appid") != "wx782c26e4c19acffb":
            return js('window.QRLogin.code = 400; window.QRLogin.error = "appid invalid";')
        redirect = urllib.parse.unquote(first(query, "redirect_uri") or "")
        qr = self.engine.new_uuid(desktop="mod=desktop" in redirect)
        return js(f'window.QRLogin.code = 200; window.QRLogin.uuid = "{qr.uuid}";')

    def _qrcode(self, uuid: str) -> Resp:
        """The QR image (image/jpeg, §1.2); it encodes ``<login host>/l/<uuid>``."""
        uuid = urllib.parse.unquote(uuid)
        if uuid not in self.engine.qr:
            return Resp(status=404, body=b"")
        base = self._login_base()
        resp = Resp(body=media.qr_jpeg(f"{base}/l/{uuid}"), ctype="image/jpeg")
        resp.headers.append(("Cache-Control", "no-cache"))
        return resp

    def _login_base(self) -> str:
        if self._vhost():
            return "https://login.weixin.qq.com"
        return f"http://{self.host}"

    def ep_login(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        uuid = first(query, "uuid") or ""
        code, qr = self.engine.poll(uuid)
        if code == 201:
            avatar = base64.b64encode(media.asset("avatar.jpg")).decode()
            return js(f"window.code=201;window.userAvatar = 'data:img/jpg;base64,{avatar}';")
        if code == 200 and qr is not None:
            web = self._web_host()
            scheme = "https" if self._vhost() else "http"
            url = (
                f"{scheme}://{web}{API}webwxnewloginpage?ticket={qr.ticket}@qrticket_0"
                f"&uuid={qr.uuid}&lang=zh_CN&scan={int(time.time())}"
            )
            return js(f'window.code=200;\nwindow.redirect_uri="{url}";')
        return js(f"window.code={code};")

    def ep_webwxnewloginpage(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        ticket = (first(query, "ticket") or "").split("@", 1)[0]
        uuid = first(query, "uuid") or ""
        desktop_headers = bool(self.headers.get("extspam")) and bool(
            self.headers.get("client-version")
        )
        qr = self.engine.qr.get(uuid)
        desktop = bool(qr and qr.desktop) or first(query, "mod") == "desktop"
        forbidden = self.engine.settings.login_forbidden
        fault = self.engine.take_fault("webwxnewloginpage", {"ret"})
        refuse = forbidden == "all" or (forbidden == "web" and not (desktop and desktop_headers))
        if fault is not None or refuse:
            xml = f"<error><ret>1203</ret><message>{SYSTEM_MESSAGES_1203}</message></error>"
            return Resp(body=xml.encode("utf-8"), ctype="text/plain;charset=utf-8")
        sess = self.engine.redeem_ticket(ticket, uuid, self._web_host())
        if sess is None:
            xml = "<error><ret>1</ret><message>ticket expired or used</message></error>"
            return Resp(body=xml.encode("utf-8"), ctype="text/plain;charset=utf-8")
        xml = (
            f"<error><ret>0</ret><message></message><skey>{sess.skey}</skey>"
            f"<wxsid>{sess.sid}</wxsid><wxuin>{sess.uin}</wxuin>"
            f"<pass_ticket>{sess.pass_ticket}</pass_ticket><isgrayscale>1</isgrayscale></error>"
        )
        status = 301 if (desktop and self.engine.settings.desktop_301) else 200
        resp = Resp(status=status, body=xml.encode("utf-8"), ctype="text/plain;charset=utf-8")
        self._set_cookies(
            resp,
            {
                "wxuin": str(sess.uin),
                "wxsid": sess.sid,
                "wxloadtime": str(sess.load_time),
                "mm_lang": "zh_CN",
                "webwx_data_ticket": sess.data_ticket,
                "webwxuvid": sess.uvid,
                "webwx_auth_ticket": sess.auth_ticket,
            },
            long_lived={"webwxuvid", "webwx_auth_ticket"},
        )
        return resp

    def ep_webwxpushloginurl(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        uin = first(query, "uin") or ""
        qr = self.engine.push_login(
            uin, self.cookies.get("webwx_auth_ticket"), desktop=first(query, "mod") == "desktop"
        )
        if qr is None:
            return Resp(body=b'{"ret":"1","msg":"need login"}')
        return Resp(body=f'{{"ret":"0","msg":"all ok","uuid":"{qr.uuid}"}}'.encode())

    # ------------------------------------------------------------------ JSON endpoints

    def _body_json(self, body: bytes) -> dict[str, Any]:
        try:
            obj = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            return {}
        return obj if isinstance(obj, dict) else {}

    def _auth_json(self, ep: str, body: bytes) -> tuple[Any, dict[str, Any], Resp | None]:
        data = self._body_json(body)
        sess, ret = self.engine.check_base_request(data.get("BaseRequest"))
        fault = self.engine.take_fault(ep, {"ret"})
        if fault is not None:
            ret = fault.code or 1
        if ret:
            err = {"BaseResponse": wire.base_response(ret, "")}
            return sess, data, self._json(err)
        return sess, data, None

    def ep_webwxinit(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess, _data, err = self._auth_json("webwxinit", body)
        if err is not None:
            failed = {
                "BaseResponse": wire.base_response(
                    json.loads(err.body.decode())["BaseResponse"]["Ret"]
                ),
                "Count": 0,
                "ContactList": [],
                "SyncKey": {"Count": 0, "List": []},
                "User": {},
                "ChatSet": "",
                "SKey": "",
                "ClientVersion": 0,
                "SystemTime": 0,
                "GrayScale": 0,
                "InviteStartCount": 0,
                "MPSubscribeMsgCount": 0,
                "MPSubscribeMsgList": [],
                "ClickReportInterval": 0,
            }
            return self._json(failed)
        return self._json(self.engine.init_payload(sess))

    def ep_webwxstatusnotify(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess, data, err = self._auth_json("webwxstatusnotify", body)
        if err is not None:
            out = json.loads(err.body.decode())
            out["MsgID"] = ""
            return self._json(out)
        try:
            code = int(data.get("Code", 0))
        except (TypeError, ValueError):
            code = 0
        msg_id = self.engine.status_notify(sess, code, str(data.get("ToUserName", "")))
        return self._json({"BaseResponse": wire.base_response(), "MsgID": msg_id})

    def ep_webwxgetcontact(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess = self._session_from_cookies(query)
        fault = self.engine.take_fault("webwxgetcontact", {"ret"})
        ret = 0 if sess is not None and sess.alive else ((sess and sess.dead_code) or 1101)
        skey = first(query, "skey") or ""
        if not ret and skey and skey != sess.skey:
            ret = 1100  # an empty skey is fine (itchat-uos 1.4.1 sends skey=), a wrong one not
        if fault is not None:
            ret = fault.code or 1
        if ret:
            return self._json(
                {
                    "BaseResponse": wire.base_response(ret),
                    "MemberCount": 0,
                    "MemberList": [],
                    "Seq": 0,
                }
            )
        everything = self.engine.address_book(sess)
        try:
            start = int(first(query, "seq") or 0)
        except ValueError:
            start = 0
        size = max(self.engine.settings.contact_page_size, 1)
        page = everything[start : start + size]
        nxt = start + size if start + size < len(everything) else 0
        return self._json(
            {
                "BaseResponse": wire.base_response(),
                "Seq": nxt,
                "MemberCount": len(page),
                "MemberList": page,
            }
        )

    def ep_webwxbatchgetcontact(
        self, method: str, query: dict[str, list[str]], body: bytes
    ) -> Resp:
        sess, data, err = self._auth_json("webwxbatchgetcontact", body)
        if err is not None:
            out = json.loads(err.body.decode())
            out.update({"Count": 0, "ContactList": []})
            return self._json(out)
        items = data.get("List") or []
        contacts = self.engine.batch_contacts(sess, items if isinstance(items, list) else [])
        return self._json(
            {"BaseResponse": wire.base_response(), "Count": len(contacts), "ContactList": contacts}
        )

    def ep_synccheck(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        def answer(retcode: str, selector: str = "0") -> Resp:
            resp = js(f'window.synccheck={{retcode:"{retcode}",selector:"{selector}"}}')
            resp.headers.append(("Access-Control-Allow-Origin", "*"))
            return resp

        fault = self.engine.take_fault("synccheck", {"retcode", "ret"})
        if fault is not None:
            return answer(str(fault.code or 1100))
        if not self._role_ok("push"):
            return answer("1100")
        c_sid, c_uin = self.cookies.get("wxsid"), self.cookies.get("wxuin")
        sess = self.engine.session_by_sid(first(query, "sid"))
        if not c_sid or not c_uin:
            return answer("1102")
        if sess is None:
            return answer("1101")
        if not sess.alive:
            return answer(str(sess.dead_code or 1101))
        if c_sid != sess.sid or c_uin != str(sess.uin):
            return answer("1102")
        if (first(query, "uin") or "") != str(sess.uin):
            return answer("1100")
        skey = first(query, "skey") or ""
        if skey and skey != sess.skey:
            return answer("1100")
        retcode, selector = self.engine.wait_synccheck(
            sess, key1_from_synckey(first(query, "synckey"))
        )
        return answer(retcode, selector)

    def ep_webwxsync(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess, data, err = self._auth_json("webwxsync", body)
        if err is not None:
            return self._json(sync_error(json.loads(err.body)["BaseResponse"]["Ret"]))
        payload = self.engine.sync(sess, key1_from_body(data.get("SyncKey")))
        if payload is None:  # a key this session never issued: a failed sync (Mojo: -1)
            return self._json(sync_error(-1))
        resp = self._json(payload)
        now = int(time.time())
        self._set_cookies(
            resp,
            {
                "wxuin": str(sess.uin),
                "wxsid": sess.sid,
                "wxloadtime": f"{sess.load_time}_expired",
                "wxpluginkey": str(now),
                "webwx_data_ticket": sess.data_ticket,
            },
            long_lived=set(),
        )
        return resp

    # ------------------------------------------------------------------ sending

    def _send(self, ep: str, body: bytes) -> Resp:
        sess, data, err = self._auth_json(ep, body)
        if err is not None:
            out = json.loads(err.body.decode())
            out.update({"MsgID": "", "LocalID": ""})
            return self._json(out)
        msg = data.get("Msg")
        if not isinstance(msg, dict):
            return self._json({"BaseResponse": wire.base_response(1), "MsgID": "", "LocalID": ""})
        ret, errmsg, msg_id = self.engine.send(sess, ep, msg)
        return self._json(
            {
                "BaseResponse": wire.base_response(ret, errmsg),
                "MsgID": msg_id,
                "LocalID": str(msg.get("LocalID", "")) if not ret else "",
            }
        )

    def ep_webwxsendmsg(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        return self._send("webwxsendmsg", body)

    def ep_webwxsendmsgimg(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        return self._send("webwxsendmsgimg", body)

    def ep_webwxsendappmsg(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        return self._send("webwxsendappmsg", body)

    def ep_webwxsendemoticon(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        return self._send("webwxsendemoticon", body)

    def ep_webwxsendvideomsg(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        return self._send("webwxsendvideomsg", body)

    def ep_webwxrevokemsg(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess, data, err = self._auth_json("webwxrevokemsg", body)
        if err is not None:
            return err
        ret = self.engine.revoke(
            sess, str(data.get("SvrMsgId", "")), str(data.get("ToUserName", ""))
        )
        return self._json(
            {
                "BaseResponse": wire.base_response(ret),
                "Introduction": REVOKE_INTRO if not ret else "",
                "SysWording": "",
            }
        )

    def ep_webwxuploadmedia(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        def answer(obj: dict[str, Any]) -> Resp:
            resp = self._json(obj)
            resp.headers.append(("Access-Control-Allow-Origin", "https://wx.qq.com"))
            resp.headers.append(("Access-Control-Allow-Credentials", "true"))
            return resp

        def fail(ret: int) -> Resp:
            return answer({"BaseResponse": wire.base_response(ret), "MediaId": "", "StartPos": 0})

        if method != "POST" or not self._role_ok("file"):
            return Resp(status=404, body=b"")
        fields, data, filename = parse_multipart(self.headers.get("Content-Type", ""), body)
        if fields is None:
            return fail(1)
        try:
            req = json.loads(fields.get("uploadmediarequest", "") or "{}")
        except ValueError:
            return fail(1)
        sess, ret = self.engine.check_base_request(req.get("BaseRequest"))
        fault = self.engine.take_fault("webwxuploadmedia", {"ret"})
        if fault is not None:
            ret = fault.code or 1
        if ret:
            return fail(ret)
        if sess is None:  # Ret 0 always comes with a session; say so if that ever breaks
            raise RuntimeError("check_base_request returned Ret 0 without a session")
        if fields.get("webwx_data_ticket") != sess.data_ticket:
            return fail(1)
        if data is None or len(data) > 524288:
            return fail(1)
        out = self.engine.upload_chunk(sess, fields, data, filename)
        if out.get("error"):
            return fail(1)
        return answer({"BaseResponse": wire.base_response(), **out})

    def ep_webwxcheckupload(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        _sess, data, err = self._auth_json("webwxcheckupload", body)
        if err is not None:
            return err
        return self._json(
            {
                "BaseResponse": wire.base_response(),
                "MediaId": "",
                "AESKey": "",
                "Signature": "",
                "EncryFileName": urllib.parse.quote(str(data.get("FileName", ""))),
            }
        )

    # ------------------------------------------------------------------ media download

    def _media_session_ok(self, query: dict[str, list[str]]) -> bool:
        sess = self._session_from_cookies(query)
        return sess is not None and sess.alive

    def _media_headers(self, resp: Resp) -> Resp:
        resp.headers.append(("Cache-Control", "max-age=604800"))
        return resp

    def ep_webwxgetmsgimg(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        if not self._media_session_ok(query):
            return Resp(status=403, body=b"")
        mid = first(query, "MsgID", "msgid", "MsgId") or ""
        item = self.engine.media_item(mid)
        if item is None or "full" not in item:
            return Resp(status=404, body=b"")
        data = item["thumb"] if first(query, "type") == "slave" else item["full"]
        return self._media_headers(Resp(body=data, ctype=media.sniff_mime(data)))

    def _ranged(self, data: bytes, ctype: str, required: bool) -> Resp:
        rng = self.headers.get("Range")
        if not rng:
            if required:
                return Resp(status=416, body=b"")
            return Resp(body=data, ctype=ctype)
        m = re.match(r"bytes=(\d*)-(\d*)$", rng.strip())
        if not m:
            return Resp(status=416, body=b"")
        start = int(m.group(1) or 0)
        end = int(m.group(2)) if m.group(2) else len(data) - 1
        end = min(end, len(data) - 1)
        if start > end:
            return Resp(status=416, body=b"")
        resp = Resp(status=206, body=data[start : end + 1], ctype=ctype)
        resp.headers.append(("Accept-Ranges", "bytes"))
        resp.headers.append(("Content-Range", f"bytes {start}-{end}/{len(data)}"))
        return resp

    def ep_webwxgetvoice(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        if not self._media_session_ok(query):
            return Resp(status=403, body=b"")
        item = self.engine.media_item(first(query, "msgid", "MsgID", "MsgId") or "")
        if item is None or item["kind"] != "voice":
            return Resp(status=404, body=b"")
        return self._ranged(item["data"], "audio/mpeg", required=False)

    def ep_webwxgetvideo(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        if not self._media_session_ok(query):
            return Resp(status=403, body=b"")
        item = self.engine.media_item(first(query, "msgid", "MsgID", "MsgId") or "")
        if item is None or item["kind"] != "video":
            return Resp(status=404, body=b"")
        return self._ranged(item["data"], "video/mp4", required=True)

    def ep_webwxgetmedia(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        if not self._role_ok("file"):
            return Resp(status=404, body=b"")
        sess = self._session_from_cookies(query)
        if sess is None or not sess.alive:
            return Resp(status=403, body=b"")
        ticket = first(query, "webwx_data_ticket") or self.cookies.get("webwx_data_ticket")
        if ticket != sess.data_ticket:
            return Resp(status=403, body=b"")
        media_id = first(query, "mediaid") or ""
        item = self.engine.media_by_media_id(media_id)
        if item is None:
            up = self.engine.uploads.get(media_id)
            if up is None:
                return Resp(status=404, body=b"")
            item = {"data": up["data"], "name": up["name"]}
        name = item.get("name", "file")
        resp = Resp(body=item["data"], ctype="application/octet-stream")
        quoted = urllib.parse.quote(name)
        resp.headers.append(("Content-Disposition", f"attachment; filename*=UTF-8''{quoted}"))
        return resp

    def ep_webwxgetpubliclinkimg(
        self, method: str, query: dict[str, list[str]], body: bytes
    ) -> Resp:
        item = self.engine.media_item(first(query, "msgid") or "")
        data = item["full"] if item and "full" in item else media.asset("map.jpg")
        return self._media_headers(Resp(body=data, ctype="image/jpeg"))

    def ep_webwxgeticon(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        return self._media_headers(Resp(body=media.asset("avatar.jpg"), ctype="image/jpeg"))

    def ep_webwxgetheadimg(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        return self._media_headers(Resp(body=media.asset("group.jpg"), ctype="image/jpeg"))

    # ------------------------------------------------------------------ §9 others

    def ep_webwxlogout(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess = self._session_from_cookies(query)
        if sess is None and body:
            form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            sess = self.engine.session_by_sid(first(form, "sid"))
        if sess is not None and sess is self.engine.session:
            self.engine.end_session(1101)
        return Resp(body=b"<html></html>", ctype="text/html")

    def ep_webwxstatreport(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        """wechat4u reports client statistics here; the answer is a bare BaseResponse."""
        return self._json({"BaseResponse": wire.base_response()})

    def ep_webwxoplog(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess, data, err = self._auth_json("webwxoplog", body)
        if err is not None:
            return err
        pid = sess.pids.get(str(data.get("UserName", "")))
        person = self.engine.world.persons.get(pid or "")
        if person is None:
            return self._json({"BaseResponse": wire.base_response(1)})
        with self.engine.cond:
            if int(data.get("CmdId", 0) or 0) == 2 or "RemarkName" in data:
                person.remark = str(data.get("RemarkName", person.remark))
            if int(data.get("CmdId", 0) or 0) == 3:
                person.pinned = bool(int(data.get("OP", 0) or 0))
            self.engine.mod_contact(person.pid)
        return self._json({"BaseResponse": wire.base_response()})

    def ep_webwxupdatechatroom(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess, data, err = self._auth_json("webwxupdatechatroom", body)
        if err is not None:
            return err
        gid = sess.pids.get(str(data.get("ChatRoomName", "")))
        group = self.engine.world.groups.get(gid or "")
        if group is None:
            return self._json(
                {"BaseResponse": wire.base_response(1), "MemberCount": 0, "MemberList": []}
            )
        fun = first(query, "fun") or ""
        if fun == "modtopic" or (not fun and data.get("NewTopic")):
            self.engine.rename_group(group.gid, str(data.get("NewTopic", "")), "self")
            return self._json(
                {"BaseResponse": wire.base_response(), "MemberCount": 0, "MemberList": []}
            )
        names = str(
            data.get("AddMemberList")
            or data.get("InviteMemberList")
            or data.get("DelMemberList")
            or ""
        )
        pids = [sess.pids.get(n) for n in names.split(",") if n]
        persons = [self.engine.world.persons[p] for p in pids if p in self.engine.world.persons]
        if not persons:
            return self._json(
                {"BaseResponse": wire.base_response(1), "MemberCount": 0, "MemberList": []}
            )
        if fun == "delmember" or data.get("DelMemberList"):
            if group.owner != self.engine.world.account.pid:
                return self._json(
                    {"BaseResponse": wire.base_response(1), "MemberCount": 0, "MemberList": []}
                )
            self.engine.remove_members(group.gid, [p.pid for p in persons], by="self")
        else:
            self.engine.add_members(group.gid, [{"nickname": p.nickname} for p in persons], "self")
        members = self.engine.group_contact(sess, group)["MemberList"]
        return self._json(
            {
                "BaseResponse": wire.base_response(),
                "MemberCount": len(members),
                "MemberList": members,
            }
        )

    def ep_webwxcreatechatroom(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        sess, data, err = self._auth_json("webwxcreatechatroom", body)
        if err is not None:
            return err
        if not self.engine.take_send_token(sess):
            return self._json({"BaseResponse": wire.base_response(1205, "")})
        members = []
        for item in data.get("MemberList") or []:
            pid = sess.pids.get(str(item.get("UserName", ""))) if isinstance(item, dict) else None
            if pid in self.engine.world.persons:
                members.append({"nickname": self.engine.world.persons[pid].nickname})
        topic = str(data.get("Topic", "")) or "群聊"
        added = self.engine.add_contacts(
            {"groups": [{"name": topic, "members": members}], "announce": False}
        )
        gid = added["groups"][0]
        group = self.engine.group_contact(sess, self.engine.world.groups[gid])
        return self._json(
            {
                "BaseResponse": {"Ret": 0, "ErrMsg": "Everything is OK"},
                "Topic": topic,
                "PYInitial": "",
                "QuanPin": "",
                "MemberCount": group["MemberCount"],
                "MemberList": group["MemberList"],
                "ChatRoomName": group["UserName"],
                "BlackList": "",
            }
        )

    def ep_webwxverifyuser(self, method: str, query: dict[str, list[str]], body: bytes) -> Resp:
        _sess, data, err = self._auth_json("webwxverifyuser", body)
        if err is not None:
            return err
        ok = 1
        for item in data.get("VerifyUserList") or []:
            if not isinstance(item, dict):
                continue
            pid = self.engine.pending_requests.pop(str(item.get("VerifyUserTicket", "")), None)
            if pid and int(data.get("Opcode", 0) or 0) == 3:
                person = self.engine.world.persons[pid]
                self.engine.add_contacts({"friends": [{"nickname": person.nickname}]})
                ok = 0
        return self._json({"BaseResponse": wire.base_response(ok)})

    # ------------------------------------------------------------------ control API

    def _control(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> Resp:
        try:
            data = json.loads(body.decode("utf-8")) if body else {}
        except (UnicodeDecodeError, ValueError):
            return _cjson({"error": "body is not JSON"}, 400)
        try:
            status, out = dispatch(self.engine, method, path, query, data, self._login_base())
        except SimError as exc:
            return _cjson({"error": str(exc)}, 400)
        except (KeyError, TypeError, ValueError) as exc:
            return _cjson({"error": f"bad request: {exc!r}"}, 400)
        return _cjson(out, status)


def sync_error(ret: int) -> dict[str, Any]:
    """A failed webwxsync: the usual fields, all zero or empty (as in the wxagent capture)."""
    return {
        "BaseResponse": wire.base_response(ret),
        "AddMsgCount": 0,
        "AddMsgList": [],
        "ModContactCount": 0,
        "ModContactList": [],
        "DelContactCount": 0,
        "DelContactList": [],
        "ModChatRoomMemberCount": 0,
        "ModChatRoomMemberList": [],
        "Profile": wire.empty_profile(),
        "ContinueFlag": 0,
        "SyncKey": {"Count": 0, "List": []},
        "SKey": "",
        "SyncCheckKey": {"Count": 0, "List": []},
    }


def _cjson(obj: Any, status: int = 200) -> Resp:
    return Resp(
        status=status,
        body=json.dumps(obj, ensure_ascii=False).encode("utf-8"),
        ctype="application/json; charset=utf-8",
    )


def parse_multipart(
    content_type: str, body: bytes
) -> tuple[dict[str, str] | None, bytes | None, str]:
    """Split a multipart/form-data body into text fields and the file part.

    A plain split on the boundary: the email package needs ~100 ms per 512 KiB chunk."""
    m = re.search(r'boundary="?([^";]+)"?', content_type)
    if "multipart/form-data" not in content_type or m is None:
        return None, None, ""
    delimiter = b"--" + m.group(1).encode("latin-1")
    fields: dict[str, str] = {}
    data: bytes | None = None
    filename = ""
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break  # the closing delimiter
        head, sep, payload = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if payload.endswith(b"\r\n"):
            payload = payload[:-2]
        disposition = ""
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if line.lower().startswith("content-disposition:"):
                disposition = line
        name = re.search(r'\bname="([^"]*)"', disposition)
        fname = re.search(r'\bfilename="([^"]*)"', disposition)
        encoded = re.search(r"\bfilename\*=(?:[\w-]+'[\w-]*')?([^;\s]+)", disposition)
        if fname is not None or encoded is not None or (name and name.group(1) == "filename"):
            data = payload
            if encoded is not None:  # RFC 5987: filename*=UTF-8''%E5%8F%91…
                filename = urllib.parse.unquote(encoded.group(1))
            else:
                filename = fname.group(1) if fname else ""
        elif name:
            fields[name.group(1)] = payload.decode("utf-8", "replace")
    return fields, data, filename


class SimServer(ThreadingHTTPServer):
    """Threaded HTTP server that remembers its open connections, so that stopping it also
    ends idle keep-alive connections and their handler threads instead of leaking them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], engine: Engine):
        self.engine = engine
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()
        self._closing = False
        super().__init__(address, Handler)

    def track(self, conn: socket.socket) -> None:
        with self._open_lock:
            if self._closing:  # accepted just as the server stopped: end it right away
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                return
            self._open[conn] = threading.current_thread()

    def untrack(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.pop(conn, None)

    def close_all(self, wait: float = 0.5) -> None:
        """Shut down every open connection (wakes handlers blocked on a read) and give their
        threads ``wait`` seconds in total to finish."""
        with self._open_lock:
            self._closing = True
            opened = list(self._open.items())
        for conn, _thread in opened:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + wait
        for _conn, thread in opened:
            if thread is not threading.current_thread():
                thread.join(max(deadline - time.monotonic(), 0.0))
