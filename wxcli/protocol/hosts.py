"""Which hosts serve which calls, derived from the login redirect (protocol §2).

The server picks the web host at login (the host of ``redirect_uri``); synccheck must then go to
the matching ``webpush.`` host and uploads to the ``file.`` host, or the server answers 1100.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import asdict, dataclass
from typing import Any

#: (substring of the web host, file host, push host) — first match wins, as in ItChat.
_TABLE = (
    ("wx2.qq.com", "file.wx2.qq.com", "webpush.wx2.qq.com"),
    ("wx8.qq.com", "file.wx8.qq.com", "webpush.wx8.qq.com"),
    ("qq.com", "file.wx.qq.com", "webpush.wx.qq.com"),
    ("web2.wechat.com", "file.web2.wechat.com", "webpush.web2.wechat.com"),
    ("wechat.com", "file.web.wechat.com", "webpush.web.wechat.com"),
)

_LOGIN = (
    ("wx2.qq.com", "login.wx2.qq.com"),
    ("wx8.qq.com", "login.wx8.qq.com"),
    ("qq.com", "login.wx.qq.com"),
    ("web2.wechat.com", "login.web2.wechat.com"),
    ("wechat.com", "login.web.wechat.com"),
)

#: The domains WeChat's web servers live under.
WECHAT_DOMAINS = ("qq.com", "wechat.com")


@dataclass(frozen=True)
class Hosts:
    """Base URLs (scheme://host[:port]) for each role."""

    login: str
    web: str
    push: str
    file: str

    def api(self, role: str, endpoint: str) -> str:
        base = getattr(self, role)
        return f"{base}/cgi-bin/mmwebwx-bin/{endpoint}"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hosts:
        return cls(**{k: str(data[k]) for k in ("login", "web", "push", "file")})


def is_wechat_host(url: str) -> bool:
    """True for URLs on WeChat's own domains (as opposed to a simulator or a proxy)."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in WECHAT_DOMAINS)


def same_origin(a: str, b: str) -> bool:
    """Scheme, host and port equal (trailing slashes and paths ignored)."""
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme.lower(), pa.netloc.lower()) == (pb.scheme.lower(), pb.netloc.lower())


def hosts_from_redirect(redirect_uri: str, login_base: str) -> Hosts:
    """Derive web/push/file (and login) hosts from the redirect the login poll returned.

    Known WeChat hosts map by the table of §2; anything else (a simulator on 127.0.0.1, a
    proxy) uses the web host for every role and keeps the configured login base.
    """
    parts = urllib.parse.urlsplit(redirect_uri)
    scheme = parts.scheme or "https"
    web_host = parts.netloc
    web = f"{scheme}://{web_host}"
    hostname = (parts.hostname or "").lower()
    if is_wechat_host(web):
        for needle, file_host, push_host in _TABLE:
            if needle in hostname:
                login = next(f"{scheme}://{h}" for n, h in _LOGIN if n in hostname)
                return Hosts(
                    login=login,
                    web=web,
                    push=f"{scheme}://{push_host}",
                    file=f"{scheme}://{file_host}",
                )
    return Hosts(login=login_base.rstrip("/"), web=web, push=web, file=web)


def push_login_base(previous: Hosts, login_url: str) -> str | None:
    """Where to send ``webwxpushloginurl`` for a profile last logged in on ``previous`` hosts.

    The request must carry the old ``webwx_auth_ticket`` cookie, whose domain is the old web
    host, so it goes to that host (as WeixinBot and openwechat do). When the user has switched
    between WeChat and a simulator, or to another simulator, there is nothing to push to: None.
    """
    if is_wechat_host(previous.web) != is_wechat_host(login_url):
        return None
    if is_wechat_host(previous.web):
        return previous.web
    if same_origin(previous.login, login_url) or same_origin(previous.web, login_url):
        return login_url.rstrip("/")
    return None
