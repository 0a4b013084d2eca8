"""The Web WeChat client: login, contacts, sync, sending, media — over one ``requests.Session``.

The HTTP session and the login base URL are injectable (tests point the client at the simulator;
nothing is patched). Every request has a timeout; idempotent requests are retried on transient
network errors with exponential back-off and jitter; sends are retried only when the request
provably never left (so a message is never sent twice). Server codes become exceptions in
``wxcli.protocol.responses.raise_for_code`` only. Secrets are never logged.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import requests

from wxcli.contacts import ContactDirectory
from wxcli.errors import (
    ConfigError,
    DecodeError,
    LoginCancelledError,
    LoginTimeoutError,
    MediaError,
    NetworkError,
    NotLoggedInError,
    ProtocolError,
    SessionExpiredError,
    WxError,
    exception_chain,
)
from wxcli.protocol import responses
from wxcli.protocol.hosts import hosts_from_redirect
from wxcli.protocol.models import (
    Contact,
    InitResult,
    Member,
    Message,
    SendResult,
    SyncCheck,
    SyncResult,
    sync_key_from_wire,
    sync_key_text,
    sync_key_to_wire,
)
from wxcli.retry import backoff
from wxcli.session import SessionState

if TYPE_CHECKING:
    from wxcli.config import Config

log = logging.getLogger(__name__)

APPID = "wx782c26e4c19acffb"
DEFAULT_LOGIN_URL = "https://login.weixin.qq.com"
CHUNK = 524288  # upload chunk size (512 KiB), protocol §8.2
DESKTOP_REDIRECT = "https://wx.qq.com/cgi-bin/mmwebwx-bin/webwxnewloginpage?mod=desktop"
DESKTOP_REFERER = "https://wx.qq.com/?&lang=zh_CN&target=t"
DESKTOP_CLIENT_VERSION = "2.0.0"
# Opaque constant the UOS desktop client sends (protocol §1.6); identical in three clients.
EXTSPAM = (
    "Go8FCIkFEokFCggwMDAwMDAwMRAGGvAESySibk50w5Wb3uTl2c2h64jVVrV7gNs06GFlWplHQbY/5FfiO++1yH4yk"
    "CyNPWKXmco+wfQzK5R98D3so7rJ5LmGFvBLjGceleySrc3SOf2Pc1gVehzJgODeS0lDL3/I/0S2SSE98YgKleq6Uq"
    "x6ndTy9yaL9qFxJL7eiA/R3SEfTaW1SBoSITIu+EEkXff+Pv8NHOk7N57rcGk1w0ZzRrQDkXTOXFN2iHYIzAAZPIOY"
    "45Lsh+A4slpgnDiaOvRtlQYCt97nmPLuTipOJ8Qc5pM7ZsOsAPPrCQL7nK0I7aPrFDF0q4ziUUKettzW8MrAaiVfmb"
    "D1/VkmLNVqqZVvBCtRblXb5FHmtS8FxnqCzYP4WFvz3T0TcrOqwLX1M/DQvcHaGGw0B0y4bZMs7lVScGBFxMj3vbFi"
    "2SRKbKhaitxHfYHAOAa0X7/MSS0RNAjdwoyGHeOepXOKY+h3iHeqCvgOH6LOifdHf/1aaZNwSkGotYnYScW8Yx63Ln"
    "Swba7+hESrtPa/huRmB9KWvMCKbDThL/nne14hnL277EDCSocPu3rOSYjuB9gKSOdVmWsj9Dxb/iZIe+S6AiG29Esm"
    "+/eUacSba0k8wn5HhHg9d4tIcixrxveflc8vi2/wNQGVFNsGO6tB5WF0xf/plngOvQ1/ivGV/C1Qpdhzznh0ExAVJ6"
    "dwzNg7qIEBaw+BzTJTUuRcPk92Sn6QDn2Pu3mpONaEumacjW4w6ipPnPw+g2TfywJjeEcpSZaP4Q3YV5HG8D6UjWA4"
    "GSkBKculWpdCMadx0usMomsSS/74QgpYqcPkmamB4nVv1JxczYITIqItIKjD35IGKAUwAA=="
)
DEFAULT_UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)


@dataclass
class ClientConfig:
    """Network settings of the client (the ``[wechat]`` config section)."""

    login_url: str = DEFAULT_LOGIN_URL
    desktop_mode: bool = True
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    synccheck_timeout: float = 40.0
    login_poll_timeout: float = 40.0
    login_timeout: float = 300.0
    retries: int = 3
    backoff: float = 1.0
    backoff_max: float = 30.0
    user_agent: str = ""

    @classmethod
    def from_config(cls, cfg: Config) -> ClientConfig:
        w = cfg.settings.wechat
        return cls(
            login_url=w.login_url.rstrip("/"),
            desktop_mode=w.desktop_mode,
            connect_timeout=float(w.connect_timeout),
            read_timeout=float(w.read_timeout),
            synccheck_timeout=float(w.synccheck_timeout),
            login_poll_timeout=float(w.login_poll_timeout),
            login_timeout=float(w.login_timeout),
            retries=w.retries,
            backoff=float(w.backoff),
            backoff_max=float(w.backoff_max),
            user_agent=w.user_agent,
        )


class LoginEvents(Protocol):
    """What a login UI is told as the login progresses (all optional to act on)."""

    def qr_ready(self, uuid: str, url: str) -> None: ...
    def push_sent(self) -> None: ...
    def push_failed(self, reason: str) -> None: ...
    def scanned(self, avatar: str) -> None: ...
    def confirmed(self) -> None: ...
    def qr_expired(self) -> None: ...
    def loading(self, what: str) -> None: ...


class SilentLoginEvents:
    """A LoginEvents that ignores everything (for library use and auto-confirm setups)."""

    def qr_ready(self, uuid: str, url: str) -> None:
        pass

    def push_sent(self) -> None:
        pass

    def push_failed(self, reason: str) -> None:
        pass

    def scanned(self, avatar: str) -> None:
        pass

    def confirmed(self) -> None:
        pass

    def qr_expired(self) -> None:
        pass

    def loading(self, what: str) -> None:
        pass


def _not_sent(exc: BaseException) -> bool:
    """True when the request certainly never reached the server (safe to retry a send)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    names = {type(e).__name__ for e in exception_chain(exc)}
    return bool(
        names & {"NewConnectionError", "NameResolutionError", "ConnectionRefusedError"}
        or "ConnectTimeoutError" in names
    )


#: The problem text of a read timeout (a long poll outliving our timeout is not an error).
READ_TIMEOUT = "timed out waiting for the reply"


def _is_read_timeout(exc: BaseException) -> bool:
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return True
    return any(type(e).__name__ == "ReadTimeoutError" for e in exception_chain(exc))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "timed out connecting"
    if _is_read_timeout(exc):
        return READ_TIMEOUT
    if _not_sent(exc):
        return "connection refused or host unreachable"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "connection dropped"
    return type(exc).__name__


def is_read_timeout(err: NetworkError) -> bool:
    """True when ``err`` only says the server did not answer within our read timeout."""
    return err.problem.startswith(READ_TIMEOUT)


class WebWeChatClient:
    """One web login's worth of protocol, usable from several threads of one process."""

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        state: SessionState | None = None,
        http: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.config = config or ClientConfig()
        parts = urllib.parse.urlsplit(self.config.login_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"wechat.login_url: must be an http(s) URL such as "
                f"https://login.weixin.qq.com, got {self.config.login_url!r}",
                key="wechat.login_url",
            )
        self.http = http or requests.Session()
        self.http.headers["User-Agent"] = self.config.user_agent or DEFAULT_UA
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.state = state
        self._counter = int(clock() * 1000)
        if state is not None:
            self.import_cookies(state.cookies)

    # ------------------------------------------------------------------ plumbing

    @property
    def login_url(self) -> str:
        return self.config.login_url.rstrip("/")

    def _ms(self) -> int:
        return int(self.clock() * 1000)

    def _r(self) -> int:
        """The official client's ``r``: bitwise NOT of the ms time, as a signed 32-bit int."""
        return ((~self._ms() + 2**31) % 2**32) - 2**31

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _device_id(self) -> str:
        return "e" + "".join(str(self.rng.randrange(10)) for _ in range(15))

    def _require_state(self) -> SessionState:
        if self.state is None:
            raise NotLoggedInError()
        return self.state

    def base_request(self) -> dict[str, Any]:
        st = self._require_state()
        return {"Uin": st.uin, "Sid": st.sid, "Skey": st.skey, "DeviceID": self._device_id()}

    def _timeout(self, read: float | None = None) -> tuple[float, float]:
        return (self.config.connect_timeout, read or self.config.read_timeout)

    def _media_timeout(self) -> tuple[float, float]:
        """Uploads and downloads move up to 512 KiB per reply: twice the ordinary wait."""
        return self._timeout(self.config.read_timeout * 2)

    def _backoff(self, attempt: int, endpoint: str, problem: str) -> None:
        delay = backoff(
            attempt, base=self.config.backoff, cap=self.config.backoff_max, rand=self.rng.random
        )
        log.info("%s: %s; retrying in %.1f s", endpoint, problem, delay)
        self.sleep(delay)

    def request(
        self,
        method: str,
        url: str,
        endpoint: str,
        *,
        idempotent: bool = True,
        timeout: tuple[float, float] | None = None,
        retries: int | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """One HTTP exchange with timeouts, retries and error mapping (no redirects followed).

        Idempotent requests are retried (back-off with jitter) on dropped connections, 5xx and
        timeouts — a read timeout at most once, since a server that held us for a whole read
        timeout is unlikely to answer faster the second time. Non-idempotent ones (sends) are
        retried only when the connection provably never opened. ``retry_timeouts=False``
        (keyword) gives up on the first read timeout, for long polls.
        """
        retry_timeouts = bool(kwargs.pop("retry_timeouts", True))
        attempts = self.config.retries if retries is None else max(retries, 0)
        attempt = 0
        timeouts_retried = 0
        while True:
            started = time.monotonic()
            try:
                resp = self.http.request(
                    method,
                    url,
                    timeout=timeout or self._timeout(),
                    allow_redirects=False,
                    **kwargs,
                )
            except (
                requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL,
            ) as exc:
                raise ConfigError(f"{endpoint}: unusable URL ({type(exc).__name__})") from None
            except requests.exceptions.RequestException as exc:
                problem = _describe(exc)
                log.debug("%s %s: %s", method, endpoint, problem)
                read_timeout = _is_read_timeout(exc)
                retry = attempt < attempts and (idempotent or _not_sent(exc))
                if read_timeout and (not retry_timeouts or timeouts_retried >= 1):
                    retry = False
                if retry:
                    timeouts_retried += int(read_timeout)
                    self._backoff(attempt, endpoint, problem)
                    attempt += 1
                    continue
                if not idempotent and not _not_sent(exc):
                    problem += "; the server may or may not have acted on it"
                raise NetworkError(endpoint, problem) from None
            log.debug(
                "%s %s: HTTP %s, %d bytes in %.0f ms",
                method,
                endpoint,
                resp.status_code,
                len(resp.content) if not kwargs.get("stream") else -1,
                (time.monotonic() - started) * 1000,
            )
            if resp.status_code >= 500:
                if attempt < attempts and idempotent:
                    self._backoff(attempt, endpoint, f"HTTP {resp.status_code}")
                    attempt += 1
                    continue
                problem = f"server answered HTTP {resp.status_code}"
                if not idempotent:
                    problem += "; the server may or may not have acted on it"
                elif attempts:
                    problem += f" ({attempts + 1} attempts)"
                raise NetworkError(endpoint, problem)
            if resp.status_code >= 400:
                raise ProtocolError(
                    f"HTTP {resp.status_code}",
                    endpoint,
                    f"{endpoint}: server answered HTTP {resp.status_code}",
                )
            return resp

    def _api(self, role: str, endpoint: str) -> str:
        return self._require_state().hosts.api(role, endpoint)

    def _post_json(
        self,
        endpoint: str,
        params: dict[str, Any],
        body: dict[str, Any],
        *,
        role: str = "web",
        idempotent: bool = True,
        timeout: tuple[float, float] | None = None,
        retries: int | None = None,
        retry_timeouts: bool = True,
    ) -> dict[str, Any]:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        resp = self.request(
            "POST",
            self._api(role, endpoint),
            endpoint,
            params=params,
            data=data,
            headers={"Content-Type": "application/json;charset=UTF-8"},
            idempotent=idempotent,
            timeout=timeout,
            retries=retries,
            retry_timeouts=retry_timeouts,
        )
        return responses.parse_json(endpoint, resp.content)

    def _pass_ticket(self) -> str:
        return self._require_state().pass_ticket

    # ------------------------------------------------------------------ cookies

    def export_cookies(self) -> list[dict[str, Any]]:
        out = []
        for c in self.http.cookies:
            out.append(
                {
                    "name": c.name,
                    "value": c.value,
                    "domain": c.domain,
                    "path": c.path,
                    "secure": bool(c.secure),
                    "expires": c.expires,
                    "host_only": not c.domain_specified,
                }
            )
        return out

    def import_cookies(self, cookies: Iterable[dict[str, Any]]) -> None:
        for c in cookies:
            cookie = requests.cookies.create_cookie(
                name=c["name"],
                value=c["value"],
                domain=c.get("domain", ""),
                path=c.get("path", "/"),
                secure=bool(c.get("secure", False)),
                expires=c.get("expires"),
            )
            if c.get("host_only"):
                cookie.domain_specified = False
                cookie.domain_initial_dot = False
            self.http.cookies.set_cookie(cookie)

    def cookie(self, name: str) -> str | None:
        for c in self.http.cookies:
            if c.name == name:
                return c.value
        return None

    # ------------------------------------------------------------------ login

    def get_uuid(self) -> str:
        params: dict[str, Any] = {"appid": APPID, "fun": "new", "lang": "zh_CN", "_": self._ms()}
        if self.config.desktop_mode:
            params["redirect_uri"] = DESKTOP_REDIRECT
        resp = self.request("GET", f"{self.login_url}/jslogin", "jslogin", params=params)
        return responses.parse_jslogin(resp.content)

    def qr_url(self, uuid: str) -> str:
        """What the QR code encodes (the phone opens it)."""
        return f"{self.login_url}/l/{uuid}"

    def poll_login(
        self, uuid: str, tip: int = 1, *, timeout: float | None = None
    ) -> responses.LoginPoll:
        """One long poll of the login state (408 wait, 201 scanned, 200 confirmed, 400 expired).

        The server holds the poll ~27 s; if it holds longer than our read timeout, that is
        the same as its own 408. A dropped connection is retried like any idempotent GET.
        """
        params = {"loginicon": "true", "uuid": uuid, "tip": tip, "r": self._r(), "_": self._next()}
        read = self.config.login_poll_timeout if timeout is None else timeout
        url = f"{self.login_url}/cgi-bin/mmwebwx-bin/login"
        try:
            resp = self.request(
                "GET",
                url,
                "login",
                params=params,
                timeout=self._timeout(max(read, 0.1)),
                retry_timeouts=False,
            )
        except NetworkError as exc:
            if is_read_timeout(exc):
                return responses.LoginPoll(408)  # a long poll that outlived our timeout
            raise
        return responses.parse_login_poll(resp.content)

    def push_login(self, uin: int, *, base: str | None = None) -> str:
        """Ask the phone to confirm a login without scanning; returns the uuid or ''.

        ``base`` is where to ask (the previous session's web host, whose cookies carry the
        ``webwx_auth_ticket`` the server checks); default: the login URL.
        """
        params: dict[str, Any] = {"uin": uin}
        if self.config.desktop_mode:
            params["mod"] = "desktop"
        url = f"{(base or self.login_url).rstrip('/')}/cgi-bin/mmwebwx-bin/webwxpushloginurl"
        resp = self.request("GET", url, "webwxpushloginurl", params=params, retries=1)
        uuid, message = responses.parse_push_login(resp.content)
        if not uuid:
            log.info("push login refused: %s", message)
        return uuid

    def complete_login(self, redirect_uri: str) -> SessionState:
        """GET the redirect (never following redirects) and build the new session state."""
        sep = "&" if "?" in redirect_uri else "?"
        url = f"{redirect_uri}{sep}fun=new&version=v2"
        headers = {}
        if self.config.desktop_mode:
            headers = {
                "client-version": DESKTOP_CLIENT_VERSION,
                "extspam": EXTSPAM,
                "Referer": DESKTOP_REFERER,
            }
        resp = self.request("GET", url, "webwxnewloginpage", headers=headers)
        info = responses.parse_login_xml(resp.content)
        responses.raise_for_code(
            "webwxnewloginpage", info.ret, info.message, desktop_mode=self.config.desktop_mode
        )
        # Desktop-mode clients take wxsid/wxuin from the cookies this answer sets.
        sid = info.wxsid or self.cookie("wxsid") or ""
        uin = info.wxuin or self.cookie("wxuin") or ""
        if not (info.skey and sid and uin and uin.isdigit()):
            raise DecodeError(
                "webwxnewloginpage",
                "login answer lacks skey/wxsid/wxuin (the account may be limited on web)",
                resp.content,
            )
        hosts = hosts_from_redirect(redirect_uri, self.login_url)
        self.state = SessionState(
            uin=int(uin),
            user_name="",
            nickname="",
            skey=info.skey,
            sid=sid,
            pass_ticket=info.pass_ticket,
            hosts=hosts,
            desktop_mode=self.config.desktop_mode,
            login_time=datetime.fromtimestamp(self.clock(), UTC),
        )
        return self.state

    def wait_for_confirm(
        self,
        uuid: str,
        events: LoginEvents,
        deadline: float,
        *,
        renew: bool = True,
    ) -> str:
        """Poll until the phone confirms; returns the redirect URI.

        An expired QR (400) gets a new uuid when ``renew`` (QR login), else ends the wait
        (push login falls back to the QR). Bounded by ``deadline`` (a clock() value).
        """
        tip = 1
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise LoginTimeoutError(
                    "nobody confirmed the login in time; run `wxcli login` again "
                    "(or give more time with --timeout)"
                )
            # Never let one long poll run past the deadline.
            poll = self.poll_login(
                uuid, tip, timeout=min(self.config.login_poll_timeout, remaining + 0.5)
            )
            if poll.code == 200:
                events.confirmed()
                return poll.redirect_uri
            if poll.code == 201:
                tip = 0
                events.scanned(poll.avatar)
                continue
            if poll.code == 408:
                continue
            if poll.code == 400 or poll.code == 500:
                if not renew:
                    raise LoginCancelledError("the login prompt expired or was declined")
                events.qr_expired()
                uuid = self.get_uuid()
                tip = 1
                events.qr_ready(uuid, self.qr_url(uuid))
                continue
            raise ProtocolError(poll.code, "login", f"unexpected login poll code {poll.code}")

    def login(
        self,
        events: LoginEvents | None = None,
        *,
        timeout: float | None = None,
        push_uin: int | None = None,
        push_timeout: float = 60.0,
        push_base: str | None = None,
    ) -> SessionState:
        """The whole login: push login first when a previous uin is known, else (or on failure)
        the QR; then init, status notify and the contact list.

        ``push_base`` is where the push request goes (see :meth:`push_login`).
        """
        events = events or SilentLoginEvents()
        deadline = self.clock() + (timeout or self.config.login_timeout)
        redirect = ""
        if push_uin:
            try:
                uuid = self.push_login(push_uin, base=push_base)
                if not uuid:
                    events.push_failed("the server declined push login")
            except WxError as exc:
                uuid = ""
                events.push_failed(str(exc))
            if uuid:
                events.push_sent()
                try:
                    redirect = self.wait_for_confirm(
                        uuid, events, min(deadline, self.clock() + push_timeout), renew=False
                    )
                except (LoginCancelledError, LoginTimeoutError) as exc:
                    events.push_failed(str(exc))
        if not redirect:
            uuid = self.get_uuid()
            events.qr_ready(uuid, self.qr_url(uuid))
            redirect = self.wait_for_confirm(uuid, events, deadline)
        self.complete_login(redirect)
        events.loading("chats")
        self.initialize(events)
        return self._require_state()

    # ------------------------------------------------------------------ init & contacts

    def init(self) -> InitResult:
        st = self._require_state()
        params = {"r": self._r(), "pass_ticket": st.pass_ticket, "lang": "zh_CN"}
        obj = self._post_json("webwxinit", params, {"BaseRequest": self.base_request()})
        user = Contact.from_wire(obj.get("User") or {})
        if not user.user_name:
            raise DecodeError("webwxinit", "no User in the reply", json.dumps(obj)[:120])
        contacts = tuple(
            Contact.from_wire(c) for c in obj.get("ContactList") or [] if isinstance(c, dict)
        )
        key = sync_key_from_wire(obj.get("SyncKey"))
        skey = str(obj.get("SKey") or "")
        result = InitResult(
            user=user,
            contacts=contacts,
            sync_key=key,
            chat_set=tuple(x for x in str(obj.get("ChatSet") or "").split(",") if x),
            skey=skey,
            system_time=int(obj.get("SystemTime") or 0),
            invite_start_count=int(obj.get("InviteStartCount") or 40),
        )
        st.user_name = user.user_name
        st.nickname = user.nickname
        if skey:
            st.skey = skey
        if key:
            st.sync_key = key
            st.sync_check_key = key
        st.invite_start_count = result.invite_start_count
        return result

    def status_notify(self, code: int = 3, to_user: str | None = None) -> str:
        st = self._require_state()
        body = {
            "BaseRequest": self.base_request(),
            "Code": code,
            "FromUserName": st.user_name,
            "ToUserName": to_user or st.user_name,
            "ClientMsgId": self._ms(),
        }
        obj = self._post_json(
            "webwxstatusnotify", {"lang": "zh_CN", "pass_ticket": st.pass_ticket}, body
        )
        return str(obj.get("MsgID") or "")

    def get_contacts(self) -> list[Contact]:
        """The address book, following ``Seq`` paging."""
        st = self._require_state()
        out: list[Contact] = []
        seq = 0
        for _ in range(1000):  # paging guard: a server that never ends is an error
            params = {
                "r": self._ms(),
                "seq": seq,
                "skey": st.skey,
                "lang": "zh_CN",
                "pass_ticket": st.pass_ticket,
            }
            resp = self.request(
                "GET", self._api("web", "webwxgetcontact"), "webwxgetcontact", params=params
            )
            obj = responses.parse_json("webwxgetcontact", resp.content)
            out.extend(
                Contact.from_wire(c) for c in obj.get("MemberList") or [] if isinstance(c, dict)
            )
            seq = int(obj.get("Seq") or 0)
            if seq == 0:
                return out
        raise DecodeError("webwxgetcontact", "paging never ended")

    def batch_get_contacts(self, items: Sequence[tuple[str, str]]) -> list[Contact]:
        """``webwxbatchgetcontact`` in chunks of 50; items are (UserName, EncryChatRoomId)."""
        st = self._require_state()
        out: list[Contact] = []
        for start in range(0, len(items), 50):
            chunk = items[start : start + 50]
            body = {
                "BaseRequest": self.base_request(),
                "Count": len(chunk),
                "List": [{"UserName": u, "EncryChatRoomId": room} for u, room in chunk],
            }
            params = {"type": "ex", "r": self._ms(), "lang": "zh_CN", "pass_ticket": st.pass_ticket}
            obj = self._post_json("webwxbatchgetcontact", params, body)
            out.extend(
                Contact.from_wire(c) for c in obj.get("ContactList") or [] if isinstance(c, dict)
            )
        return out

    def fetch_member(self, group: Contact, member_user: str) -> Member | None:
        """Details of one group member who is not (yet) in our member list."""
        found = self.batch_get_contacts([(member_user, group.encry_chat_room_id)])
        for c in found:
            if c.user_name == member_user:
                return Member(user_name=c.user_name, nickname=c.nickname)
        return None

    def initialize(self, events: LoginEvents | None = None) -> ContactDirectory:
        """After login: init, status notify, the address book and every group's members."""
        events = events or SilentLoginEvents()
        st = self._require_state()
        init = self.init()
        self.status_notify(3)
        events.loading("contacts")
        directory = ContactDirectory([init.user])
        for c in init.contacts:
            directory.upsert(c)
        for c in self.get_contacts():
            directory.upsert(c)
        groups = [c.user_name for c in directory.groups()]
        events.loading("groups")
        for g in self.batch_get_contacts([(u, "") for u in groups]):
            directory.upsert(g)
        st.contacts = directory
        st.cookies = self.export_cookies()
        return directory

    # ------------------------------------------------------------------ sync

    def sync_check(self, timeout: float | None = None, *, retries: int | None = None) -> SyncCheck:
        """Long poll on the push host; raises SessionExpiredError on 1100/1101/1102.

        The server holds ~25 s, so the read timeout (``synccheck_timeout``) is longer; running
        into it is reported as a NetworkError at once (not retried: the loop above decides).
        """
        st = self._require_state()
        key = st.sync_check_key or st.sync_key
        params = {
            "r": self._ms(),
            "skey": st.skey,
            "sid": st.sid,
            "uin": st.uin,
            "deviceid": self._device_id(),
            "synckey": sync_key_text(key),
            "_": self._next(),
        }
        resp = self.request(
            "GET",
            self._api("push", "synccheck"),
            "synccheck",
            params=params,
            timeout=self._timeout(timeout or self.config.synccheck_timeout),
            retries=retries,
            retry_timeouts=False,
        )
        retcode, selector = responses.parse_synccheck(resp.content)
        responses.raise_for_code("synccheck", retcode)
        return SyncCheck(retcode, selector)

    def sync(self, keep_raw: bool = True) -> SyncResult:
        """Fetch what is pending. Keys are NOT advanced here: call :meth:`advance` once the
        result is stored, so a crash in between re-delivers instead of losing."""
        st = self._require_state()
        params = {"sid": st.sid, "skey": st.skey, "pass_ticket": st.pass_ticket, "lang": "zh_CN"}
        body = {
            "BaseRequest": self.base_request(),
            "SyncKey": sync_key_to_wire(st.sync_key),
            "rr": ~int(self.clock()),
        }
        obj = self._post_json("webwxsync", params, body)
        key = sync_key_from_wire(obj.get("SyncKey"))
        check = sync_key_from_wire(obj.get("SyncCheckKey"))
        msgs = tuple(
            Message.from_wire(m, keep_raw)
            for m in obj.get("AddMsgList") or []
            if isinstance(m, dict)
        )
        mods = tuple(
            Contact.from_wire(c) for c in obj.get("ModContactList") or [] if isinstance(c, dict)
        )
        dels = tuple(
            str(c.get("UserName", ""))
            for c in obj.get("DelContactList") or []
            if isinstance(c, dict) and c.get("UserName")
        )
        return SyncResult(
            messages=msgs,
            modified=mods,
            deleted=dels,
            sync_key=key or st.sync_key,
            sync_check_key=check or key or st.sync_check_key,
            skey=str(obj.get("SKey") or ""),
            continue_flag=int(obj.get("ContinueFlag") or 0),
        )

    def advance(self, result: SyncResult) -> None:
        """Adopt the keys (and a rotated skey) of a stored sync result."""
        st = self._require_state()
        if result.sync_key:
            st.sync_key = result.sync_key
        if result.sync_check_key:
            st.sync_check_key = result.sync_check_key
        if result.skey:
            st.skey = result.skey

    def probe(self, timeout: float = 1.0) -> bool:
        """A quick liveness check that does not move the sync position (for ``status``).

        Two cheap questions: a ``webwxbatchgetcontact`` of ``filehelper`` answers at once and
        validates the BaseRequest (a logged-out session gets 1100/1101 there); then a synccheck
        catches what only the push host reports (cookies, a logout seen there first). A dead
        session's synccheck answers at once, so one still held after a few round trips of the
        first call (at least 0.5 s, at most ``timeout``) means the server accepted the session.
        Raises SessionExpiredError when the server ended it.
        """
        started = time.monotonic()
        self._post_json(
            "webwxbatchgetcontact",
            {"type": "ex", "r": self._ms(), "lang": "zh_CN"},
            {
                "BaseRequest": self.base_request(),
                "Count": 1,
                "List": [{"UserName": "filehelper", "EncryChatRoomId": ""}],
            },
            timeout=self._timeout(max(min(self.config.read_timeout, 5.0), timeout)),
            retries=min(self.config.retries, 1),
            retry_timeouts=False,
        )
        round_trip = time.monotonic() - started
        hold = min(timeout, max(0.5, 0.3 + 3 * round_trip))
        try:
            self.sync_check(timeout=hold, retries=min(self.config.retries, 1))
        except NetworkError as exc:
            if not is_read_timeout(exc):
                raise
        return True

    # ------------------------------------------------------------------ sending

    def _local_id(self) -> str:
        """ms timestamp + 4 random digits, like the official client (17 digits)."""
        return f"{self._ms()}{self.rng.randrange(10000):04d}"

    def _send(self, endpoint: str, params: dict[str, Any], msg: dict[str, Any]) -> SendResult:
        st = self._require_state()
        local_id = self._local_id()
        msg = {
            **msg,
            "FromUserName": st.user_name,
            "LocalID": local_id,
            "ClientMsgId": local_id,
        }
        body = {"BaseRequest": self.base_request(), "Msg": msg, "Scene": 0}
        try:
            obj = self._post_json(endpoint, params, body, idempotent=False)
        except DecodeError as exc:
            # The server answered, so it had the message: say so, or users send it twice.
            raise DecodeError(
                endpoint, "unreadable answer; the message was probably sent", exc.snippet
            ) from None
        return SendResult(msg_id=str(obj.get("MsgID") or ""), local_id=local_id)

    def send_text(self, to_user: str, text: str) -> SendResult:
        st = self._require_state()
        params = {"lang": "zh_CN", "pass_ticket": st.pass_ticket}
        msg = {"Type": 1, "Content": text, "ToUserName": to_user}
        return self._send("webwxsendmsg", params, msg)

    def upload_media(
        self,
        data: bytes,
        name: str,
        mime: str,
        to_user: str,
        media_type: str = "pic",
    ) -> str:
        """Upload in 512 KiB chunks to the file host; returns the MediaId of the last chunk."""
        st = self._require_state()
        total = len(data)
        if total == 0:
            raise MediaError("cannot upload an empty file")
        chunks = max(math.ceil(total / CHUNK), 1)
        client_media_id = self._ms()
        request = {
            "UploadType": 2,
            "BaseRequest": self.base_request(),
            "ClientMediaId": client_media_id,
            "TotalLen": total,
            "StartPos": 0,
            "DataLen": total,
            "MediaType": 4,
            "FromUserName": st.user_name,
            "ToUserName": to_user,
            "FileMd5": hashlib.md5(data).hexdigest(),  # noqa: S324 - protocol field
        }
        ticket = self.cookie("webwx_data_ticket") or ""
        media_id = ""
        for index in range(chunks):
            fields: dict[str, Any] = {
                "id": (None, "WU_FILE_0"),
                "name": (None, name),
                "type": (None, mime),
                "lastModifiedDate": (
                    None,
                    time.strftime("%a %b %d %Y %H:%M:%S GMT+0800 (CST)", time.localtime()),
                ),
                "size": (None, str(total)),
            }
            if chunks > 1:
                fields["chunks"] = (None, str(chunks))
                fields["chunk"] = (None, str(index))
            fields.update(
                {
                    "mediatype": (None, media_type),
                    "uploadmediarequest": (None, json.dumps(request, separators=(",", ":"))),
                    "webwx_data_ticket": (None, ticket),
                    "pass_ticket": (None, st.pass_ticket),
                    "filename": (name, data[index * CHUNK : (index + 1) * CHUNK], mime),
                }
            )
            resp = self.request(
                "POST",
                self._api("file", "webwxuploadmedia"),
                "webwxuploadmedia",
                params={"f": "json"},
                files=fields,
                timeout=self._media_timeout(),
            )
            obj = responses.parse_json("webwxuploadmedia", resp.content)
            media_id = str(obj.get("MediaId") or "")
        if not media_id:
            raise DecodeError("webwxuploadmedia", "no MediaId after the last chunk")
        return media_id

    def send_image(self, to_user: str, data: bytes, name: str, mime: str) -> SendResult:
        """Send a picture; a GIF goes as an emoticon (the protocol's ``doc`` + 47 path)."""
        st = self._require_state()
        if mime == "image/gif":
            media_id = self.upload_media(data, name, mime, to_user, media_type="doc")
            params = {"fun": "sys", "f": "json", "lang": "zh_CN", "pass_ticket": st.pass_ticket}
            msg = {"Type": 47, "EmojiFlag": 2, "MediaId": media_id, "ToUserName": to_user}
            return self._send("webwxsendemoticon", params, msg)
        media_id = self.upload_media(data, name, mime, to_user, media_type="pic")
        params = {"fun": "async", "f": "json", "lang": "zh_CN", "pass_ticket": st.pass_ticket}
        msg = {"Type": 3, "MediaId": media_id, "Content": "", "ToUserName": to_user}
        return self._send("webwxsendmsgimg", params, msg)

    def revoke(self, msg_id: str, to_user: str, local_id: str) -> None:
        body = {
            "BaseRequest": self.base_request(),
            "SvrMsgId": msg_id,
            "ToUserName": to_user,
            "ClientMsgId": local_id,
        }
        self._post_json("webwxrevokemsg", {"r": self._ms()}, body, idempotent=False)

    # ------------------------------------------------------------------ media download

    def _download(
        self,
        role: str,
        endpoint: str,
        params: dict[str, Any],
        max_bytes: int,
        headers: dict[str, str] | None = None,
    ) -> tuple[bytes, str]:
        resp = self.request(
            "GET",
            self._api(role, endpoint),
            endpoint,
            params=params,
            headers=headers or {},
            stream=True,
            timeout=self._media_timeout(),
        )
        with resp:
            declared = int(resp.headers.get("Content-Length") or 0)
            if declared > max_bytes:
                raise MediaError(f"{endpoint}: {declared} bytes is over the limit ({max_bytes})")
            chunks = []
            size = 0
            try:
                for chunk in resp.iter_content(65536):
                    size += len(chunk)
                    if size > max_bytes:
                        raise MediaError(f"{endpoint}: more than {max_bytes} bytes")
                    chunks.append(chunk)
            except requests.exceptions.RequestException as exc:
                raise NetworkError(endpoint, _describe(exc)) from None
        data = b"".join(chunks)
        if not data:
            raise DecodeError(endpoint, "empty media body")
        return data, resp.headers.get("Content-Type", "application/octet-stream")

    def get_image(
        self, msg_id: str, thumb: bool = False, big: bool = False, max_bytes: int = 50 << 20
    ) -> tuple[bytes, str]:
        params: dict[str, Any] = {"MsgID": msg_id, "skey": self._require_state().skey}
        if thumb:
            params["type"] = "slave"
        elif big:
            params["type"] = "big"
        return self._download("web", "webwxgetmsgimg", params, max_bytes)

    def get_voice(self, msg_id: str, max_bytes: int = 50 << 20) -> tuple[bytes, str]:
        params = {"msgid": msg_id, "skey": self._require_state().skey}
        return self._download("web", "webwxgetvoice", params, max_bytes, {"Range": "bytes=0-"})

    def get_video(self, msg_id: str, max_bytes: int = 50 << 20) -> tuple[bytes, str]:
        params = {"msgid": msg_id, "skey": self._require_state().skey}
        return self._download("web", "webwxgetvideo", params, max_bytes, {"Range": "bytes=0-"})

    def get_file(self, message: Message, max_bytes: int = 50 << 20) -> tuple[bytes, str]:
        st = self._require_state()
        params = {
            "sender": message.from_user,
            "mediaid": message.media_id,
            "encryfilename": message.encry_file_name or urllib.parse.quote(message.file_name),
            "fromuser": st.uin,
            "pass_ticket": st.pass_ticket,
            "webwx_data_ticket": self.cookie("webwx_data_ticket") or "",
        }
        headers = {"Referer": f"{st.hosts.web}/"}
        return self._download("file", "webwxgetmedia", params, max_bytes, headers)

    # ------------------------------------------------------------------ logout

    def logout(self) -> None:
        """Tell the server we are leaving; a dead session is not an error here."""
        st = self._require_state()
        params = {"redirect": 1, "type": 1, "skey": st.skey}
        try:
            self.request(
                "GET", self._api("web", "webwxlogout"), "webwxlogout", params=params, retries=0
            )
        except (NetworkError, ProtocolError, SessionExpiredError) as exc:
            log.info("logout request failed (%s); the session is dropped anyway", exc)
        self.http.cookies.clear()
