"""Reading server replies: JS assignments, the login XML, JSON bodies — and the one place where
server codes become exceptions (:func:`raise_for_code`).

Every ``BaseResponse.Ret`` and every synccheck ``retcode`` goes through ``raise_for_code``, so
the meaning of a code is decided once for the whole program.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from wxcli.errors import (
    DecodeError,
    LoginForbiddenError,
    ProtocolError,
    RateLimitedError,
    SessionExpiredError,
)

#: What non-session codes mean (protocol §10.1), to make error messages useful.
RET_MEANINGS: dict[int, str] = {
    1: "generic failure or parameter error",
    -1: "system error (the account may be barred from this operation on web)",
    -2: "logic error",
    -14: "ticket error",
    1204: "the recipient is not a friend",
    9999: "wrong server host",
}

SESSION_CODES = frozenset({1100, 1101, 1102})


def snippet(body: str | bytes, limit: int = 120) -> str:
    """The start of a server reply for an error message, with any secrets masked.

    A truncated login XML or init JSON carries the skey and sid; error messages are shown to
    users and end up in logs, so they only ever quote redacted text.
    """
    from wxcli.logutil import redact

    if isinstance(body, bytes):
        body = body[: limit * 4].decode("utf-8", "replace")
    return redact(body[: limit * 2])[:limit]


def decode_error(endpoint: str, problem: str, body: str | bytes = "") -> DecodeError:
    """A DecodeError naming the endpoint, quoting a redacted snippet of the reply."""
    return DecodeError(endpoint, problem, snippet(body))


def raise_for_code(
    endpoint: str, code: int | str | None, errmsg: str = "", *, desktop_mode: bool = True
) -> None:
    """Raise the typed exception for a non-zero server code; return on success (0).

    ``desktop_mode`` only shapes the advice of a 1203 (was the login already in desktop mode?).
    """
    try:
        value = int(code) if code is not None and str(code).strip() != "" else None
    except (TypeError, ValueError):
        raise DecodeError(endpoint, f"code {code!r} is not a number")
    if value == 0:
        return
    if value is None:
        raise DecodeError(endpoint, "no return code in the reply")
    if value in SESSION_CODES:
        raise SessionExpiredError(value, endpoint)
    if value == 1205:
        raise RateLimitedError(endpoint)
    if value == 1203:
        raise LoginForbiddenError(errmsg, desktop_mode=desktop_mode)
    meaning = RET_MEANINGS.get(value, "unknown error")
    extra = f": {errmsg}" if errmsg else ""
    raise ProtocolError(value, endpoint, f"{endpoint} failed with code {value} ({meaning}){extra}")


def decode_text(endpoint: str, body: bytes) -> str:
    """Server text is UTF-8 whatever the Content-Type says (JSON comes as text/plain)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise decode_error(endpoint, "not UTF-8", body)


def parse_json(endpoint: str, body: bytes) -> dict[str, Any]:
    """Decode a JSON reply and check its BaseResponse."""
    text = decode_text(endpoint, body)
    try:
        obj = json.loads(text)
    except ValueError as exc:  # JSONDecodeError, or e.g. an integer of over 4300 digits
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        problem = "empty body" if not text.strip() else f"not JSON ({detail})"
        raise decode_error(endpoint, problem, text)
    if not isinstance(obj, dict):
        raise decode_error(endpoint, "JSON is not an object", text)
    base = obj.get("BaseResponse")
    if not isinstance(base, dict):
        raise decode_error(endpoint, "no BaseResponse", text)
    raise_for_code(endpoint, base.get("Ret"), str(base.get("ErrMsg") or ""))
    return obj


_QRLOGIN_RE = re.compile(
    r'window\.QRLogin\.code\s*=\s*(\d+);\s*window\.QRLogin\.uuid\s*=\s*"([^"]+)"'
)
_CODE_RE = re.compile(r"window\.code\s*=\s*(\d+)\s*;")
_REDIRECT_RE = re.compile(r'window\.redirect_uri\s*=\s*"([^"]+)"\s*;')
_AVATAR_RE = re.compile(r"window\.userAvatar\s*=\s*'([^']*)'")
_SYNCCHECK_RE = re.compile(
    r'window\.synccheck\s*=\s*\{\s*retcode\s*:\s*"(\d+)"\s*,\s*selector\s*:\s*"(\d+)"\s*\}'
)


def parse_jslogin(body: bytes) -> str:
    text = decode_text("jslogin", body)
    m = _QRLOGIN_RE.search(text)
    if not m:
        raise decode_error("jslogin", "no QRLogin code/uuid", text)
    if m.group(1) != "200":
        raise ProtocolError(int(m.group(1)), "jslogin", f"jslogin refused (code {m.group(1)})")
    return m.group(2)


@dataclass(frozen=True, slots=True)
class LoginPoll:
    code: int  # 408 wait, 201 scanned, 200 confirmed, 400 expired
    redirect_uri: str = ""
    avatar: str = ""  # data: URL of the scanner's avatar (201)


def parse_login_poll(body: bytes) -> LoginPoll:
    text = decode_text("login", body)
    m = _CODE_RE.search(text)
    if not m:
        raise decode_error("login", "no window.code", text)
    code = int(m.group(1))
    if code == 200:
        r = _REDIRECT_RE.search(text)
        if not r:
            raise decode_error("login", "code 200 without redirect_uri", text)
        return LoginPoll(200, redirect_uri=r.group(1))
    if code == 201:
        a = _AVATAR_RE.search(text)
        return LoginPoll(201, avatar=a.group(1) if a else "")
    return LoginPoll(code)


def parse_synccheck(body: bytes) -> tuple[int, int]:
    """``window.synccheck={retcode:"0",selector:"2"}`` → (retcode, selector)."""
    text = decode_text("synccheck", body)
    m = _SYNCCHECK_RE.search(text)
    if not m:
        raise decode_error("synccheck", "unexpected text", text)
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True, slots=True)
class LoginXml:
    ret: int
    message: str
    skey: str
    wxsid: str
    wxuin: str
    pass_ticket: str


def parse_login_xml(body: bytes) -> LoginXml:
    """The ``<error>…</error>`` answer of webwxnewloginpage."""
    text = decode_text("webwxnewloginpage", body).strip()
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise decode_error("webwxnewloginpage", "XML with a DOCTYPE", text)
    try:
        root = ET.fromstring(text)  # noqa: S314 - no DTDs allowed (checked above)
    except ET.ParseError as exc:
        raise decode_error("webwxnewloginpage", f"not XML ({exc})", text)

    def field(name: str) -> str:
        node = root.find(name)
        return (node.text or "").strip() if node is not None else ""

    ret_text = field("ret")
    try:
        ret = int(ret_text)
    except ValueError:
        raise decode_error("webwxnewloginpage", "no <ret>", text)
    return LoginXml(
        ret=ret,
        message=field("message"),
        skey=field("skey"),
        wxsid=field("wxsid"),
        wxuin=field("wxuin"),
        pass_ticket=field("pass_ticket"),
    )


def parse_push_login(body: bytes) -> tuple[str, str]:
    """webwxpushloginurl → (uuid or "", message)."""
    text = decode_text("webwxpushloginurl", body)
    try:
        obj = json.loads(text)
    except ValueError:
        raise decode_error("webwxpushloginurl", "not JSON", text)
    if not isinstance(obj, dict):
        raise decode_error("webwxpushloginurl", "not an object", text)
    if str(obj.get("ret")) == "0" and obj.get("uuid"):
        return str(obj["uuid"]), ""
    return "", str(obj.get("msg") or f"ret {obj.get('ret')}")
