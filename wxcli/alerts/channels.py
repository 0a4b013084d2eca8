"""Alert delivery channels (SMTP email, robot webhooks, WeChat) and their construction from config.

Each channel delivers one :class:`~wxcli.alerts.model.Alert` per :meth:`Channel.send` call, bounded
by a timeout, and raises :class:`~wxcli.errors.AlertError` with the exact reason when it cannot.
Retries, cooldowns and digests belong to the dispatcher, not here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import logging
import os
import re
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import requests
import urllib3.exceptions

from wxcli import __version__
from wxcli.alerts.model import Alert
from wxcli.alerts.tables import TableReader
from wxcli.errors import AlertError, WxError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
SECURITY_MODES = ("none", "starttls", "ssl")
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
PRESETS = ("generic", "dingtalk", "wecom", "feishu")
CHANNEL_TYPES = ("email", "webhook", "wechat")

#: Size limits of the robot services, in UTF-8 bytes. WeCom documents 4096 bytes for
#: markdown.content (errcode 40058 past it); Feishu documents 20 KB for the whole request body;
#: DingTalk's markdown text is limited to about 20000 bytes (kept a little under).
DINGTALK_MAX_TEXT_BYTES = 19_000
WECOM_MAX_CONTENT_BYTES = 4096
FEISHU_MAX_BODY_BYTES = 20_000
#: Longest single field value shown by the chat-robot presets (the full text stays in email).
ROBOT_MAX_FIELD_CHARS = 300
#: Longest WeChat text we send; longer alerts are cut (the history pointer says where the rest is).
WECHAT_MAX_CHARS = 2000
#: Most of a webhook reply we read: enough for any error message, never a runaway download.
MAX_REPLY_BYTES = 64 * 1024

TRUNCATED = "\n…(truncated)"

SERVICE_NAMES = {"generic": "webhook", "dingtalk": "DingTalk", "wecom": "WeCom", "feishu": "Feishu"}

LOGIN_HINT = (
    "Run `wxcli login` on the watch host to get a new QR code "
    "(set [alert] qr_url_base to have the QR image linked in alerts)."
)


# --- rendering shared by channels ------------------------------------------------------------


def _one_line(value: str) -> str:
    """Collapse line breaks so a value stays on one line (subjects, table cells, list items)."""
    return " ⏎ ".join(part.strip() for part in value.replace("\r\n", "\n").splitlines() if part)


def _public_url(url: str | None) -> str | None:
    """Return ``url`` if it is a plain http(s) URL safe to link to, else None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning("ignoring image_url that is not an http(s) URL")
        return None
    # Percent-encode what would end a markdown link early or break out of an attribute.
    return quote(url, safe="/:?#&=%+,;@!$'*~-._")


def _cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits in ``max_bytes`` of UTF-8, cut on a character."""
    if max_bytes <= 0:
        return ""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def render_text(alert: Alert, *, attachments_note: bool = False) -> str:
    """The plain-text rendering used by the email text part and the WeChat channel.

    ``attachments_note`` says the QR image is attached (true for email, which carries files).
    """
    lines = [_one_line(alert.title), ""]
    body = alert.text.replace("\r\n", "\n").strip("\n")
    if body:
        lines += [body, ""]
    if alert.fields:
        width = min(max(len(k) for k in alert.fields), 16)
        lines += [f"{k + ':':<{width + 1}} {_one_line(v)}" for k, v in alert.fields.items()]
        lines.append("")
    url = _public_url(alert.image_url)
    if url:
        lines += [f"QR code: {url}" if alert.is_login else f"Image: {url}", ""]
    elif alert.is_login:
        attached = [a.filename for a in alert.attachments if a.mime_type.startswith("image/")]
        if attachments_note and attached:
            lines.append(f"The QR code is attached ({', '.join(attached)}).")
        lines += [LOGIN_HINT, ""]
    lines.append(
        f"{alert.severity} · {alert.kind} · {alert.created_at.isoformat(timespec='seconds')}"
    )
    return "\n".join(lines)


def render_html(alert: Alert) -> str:
    """The HTML rendering of the same content; every alert-supplied string is escaped."""
    e = html.escape
    parts = [
        f'<h2 style="margin:0 0 8px">{e(_one_line(alert.title))}</h2>',
        f'<p style="color:#666;margin:0 0 12px">{e(alert.severity)} · {e(alert.kind)} · '
        f"{e(alert.created_at.isoformat(timespec='seconds'))}</p>",
    ]
    body = alert.text.replace("\r\n", "\n").strip("\n")
    if body:
        parts.append(
            f'<pre style="white-space:pre-wrap;font-family:inherit;margin:0 0 12px">{e(body)}</pre>'
        )
    if alert.fields:
        rows = "".join(
            '<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top">'
            f'{e(k)}</th><td style="padding:2px 0">{e(_one_line(v))}</td></tr>'
            for k, v in alert.fields.items()
        )
        parts.append(f'<table style="border-collapse:collapse;margin:0 0 12px">{rows}</table>')
    url = _public_url(alert.image_url)
    if url:
        label = "Scan this QR code with WeChat to log in" if alert.is_login else "Image"
        parts.append(
            f'<p><a href="{e(url)}">{label}</a><br>'
            f'<img src="{e(url)}" alt="{label}" style="max-width:280px"></p>'
        )
    elif alert.is_login:
        attached = [a.filename for a in alert.attachments if a.mime_type.startswith("image/")]
        hint = f"The QR code is attached ({e(', '.join(attached))}). " if attached else ""
        parts.append(f"<p>{hint}{e(LOGIN_HINT)}</p>")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>'
        '<body style="font-family:sans-serif">\n' + "\n".join(parts) + "\n</body></html>\n"
    )


# Markdown renderers of the robots differ and not all honour backslash escapes, so user-controlled
# text is neutralised by swapping markup characters for their full-width look-alikes: a customer
# message can then neither open a link or image, nor inject HTML/<@mentions>, nor restyle the card.
_MD_NEUTRAL = str.maketrans(
    {
        "\\": "＼",
        "[": "［",
        "]": "］",
        "(": "（",
        ")": "）",
        "<": "＜",
        ">": "＞",
        "*": "＊",
        "_": "＿",
        "`": "｀",
        "#": "＃",
        "|": "｜",
        "~": "～",
    }
)


def md_neutral(text: str) -> str:
    """Make user-controlled text inert inside robot markdown (no links, markup or mentions)."""
    # "://" is broken too so bare URLs in a customer message are not auto-linked.
    return text.translate(_MD_NEUTRAL).replace("://", "：//")


def _plain_neutral(text: str) -> str:
    """Lighter neutralisation for plain-text elements (Feishu post text): no tags, no links."""
    return text.replace("<", "＜").replace(">", "＞").replace("://", "：//")


def _short(value: str, limit: int = ROBOT_MAX_FIELD_CHARS) -> str:
    value = _one_line(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


# --- the channels ----------------------------------------------------------------------------


class Channel:
    """A named way to deliver alerts; ``send`` raises AlertError with the reason on failure."""

    type: ClassVar[str] = ""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def target(self) -> str:
        """Where the channel delivers, for logs and listings; never contains a secret."""
        return self.type

    def send(self, alert: Alert) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.target}>"


class EmailChannel(Channel):
    """Email over SMTP: multipart/alternative text + HTML, attachments, UTF-8 headers."""

    type = "email"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        sender: str,
        to: list[str],
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        verify_tls: bool = True,
        ca_file: str | None = None,
        local_hostname: str | None = None,
    ) -> None:
        super().__init__(name)
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {SECURITY_MODES}")
        self.host = host
        self.security = security
        self.port = port or DEFAULT_PORTS[security]
        self.sender = sender
        # "wxcli alerts <alerts@example.com>" is a fine From header; SMTP wants the address.
        self.sender_address = parseaddr(sender)[1] or sender
        self.to = list(to)
        self.username = username
        self._password = password
        self.timeout = float(timeout)
        self.verify_tls = verify_tls
        self.ca_file = ca_file
        self.local_hostname = local_hostname

    @property
    def target(self) -> str:
        return f"email to {', '.join(self.to)} via {self.host}:{self.port} ({self.security})"

    @property
    def _where(self) -> str:
        return f"{self.host}:{self.port}"

    def build_message(self, alert: Alert) -> EmailMessage:
        """The complete message for ``alert`` (public so callers can preview or save it)."""
        msg = EmailMessage()
        msg["Subject"] = _one_line(alert.title)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        msg["Date"] = format_datetime(datetime.now(UTC))
        # An explicit domain keeps make_msgid from resolving this host's FQDN (slow offline).
        domain = self.sender_address.rpartition("@")[2] or "wxcli.invalid"
        msg["Message-ID"] = make_msgid(idstring="wxcli", domain=domain)
        msg["X-Wxcli-Kind"] = alert.kind
        msg["X-Wxcli-Severity"] = alert.severity
        if alert.severity == "critical":
            msg["Importance"] = "high"
        msg.set_content(render_text(alert, attachments_note=True))
        msg.add_alternative(render_html(alert), subtype="html")
        for att in alert.attachments:
            maintype, _, subtype = att.mime_type.partition("/")
            if not maintype or not subtype:
                maintype, subtype = "application", "octet-stream"
            msg.add_attachment(
                att.content, maintype=maintype, subtype=subtype, filename=att.filename
            )
        return msg

    def _tls_context(self) -> ssl.SSLContext:
        if not self.verify_tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return ctx
        return ssl.create_default_context(cafile=self.ca_file)

    def send(self, alert: Alert) -> None:
        msg = self.build_message(alert)
        try:
            self._deliver(msg)
        except AlertError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise AlertError(
                f"SMTP {exc.smtp_code} authentication failed for user {self.username!r} "
                f"at {self._where}: {_smtp_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(
                f"{addr} ({code} {_smtp_text(text)})"
                for addr, (code, text) in exc.recipients.items()
            )
            raise AlertError(
                f"SMTP server {self._where} refused every recipient: {refused}"
            ) from exc
        except smtplib.SMTPSenderRefused as exc:
            raise AlertError(
                f"SMTP {exc.smtp_code}: {self._where} refused sender {self.sender_address}: "
                f"{_smtp_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPResponseException as exc:
            raise AlertError(
                f"SMTP {exc.smtp_code} from {self._where}: {_smtp_text(exc.smtp_error)}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise AlertError(f"SMTP server {self._where}: {exc}") from exc
        except smtplib.SMTPServerDisconnected as exc:
            if isinstance(exc.__context__, TimeoutError):  # smtplib wraps read timeouts
                raise AlertError(
                    f"timed out after {self.timeout:g} s talking to {self._where}"
                ) from exc
            raise AlertError(f"SMTP server {self._where} closed the connection: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            raise AlertError(
                f"TLS certificate of {self._where} failed verification: "
                f"{exc.verify_message or exc.reason} (set ca_file to trust a private CA)"
            ) from exc
        except ssl.SSLError as exc:
            raise AlertError(
                f"TLS error with {self._where}: {exc.reason or exc}; check security "
                f'("ssl" is usually port 465, "starttls" port 587)'
            ) from exc
        except TimeoutError as exc:
            raise AlertError(
                f"timed out after {self.timeout:g} s talking to {self._where}"
            ) from exc
        except ConnectionRefusedError as exc:
            raise AlertError(f"connection refused to {self._where}") from exc
        except socket.gaierror as exc:
            raise AlertError(f"cannot resolve SMTP host {self.host!r}: {exc.strerror}") from exc
        except smtplib.SMTPException as exc:  # before OSError: SMTPException subclasses it
            raise AlertError(f"SMTP error with {self._where}: {exc}") from exc
        except OSError as exc:
            raise AlertError(f"cannot reach {self._where}: {exc.strerror or exc}") from exc

    def _login(self, smtp: smtplib.SMTP) -> None:
        user, password = self.username or "", self._password or ""
        if user.isascii() and password.isascii():
            smtp.login(user, password)
            return
        # smtplib encodes credentials as ASCII and would crash on "pässword"; RFC 4954 SASL
        # takes UTF-8, so speak PLAIN or LOGIN ourselves for such credentials.
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" in mechanisms:
            blob = b"\0" + user.encode() + b"\0" + password.encode()
            code, reply = smtp.docmd("AUTH", "PLAIN " + _b64(blob))
        elif "LOGIN" in mechanisms:
            code, reply = smtp.docmd("AUTH", "LOGIN")
            if code == 334:
                code, reply = smtp.docmd(_b64(user.encode()))
            if code == 334:
                code, reply = smtp.docmd(_b64(password.encode()))
        else:
            raise AlertError(
                f"SMTP server {self._where} offers no AUTH mechanism for a non-ASCII password "
                f"(offered: {' '.join(mechanisms) or 'none'}; wxcli speaks PLAIN and LOGIN)"
            )
        if code not in (235, 503):  # 503: already authenticated
            raise smtplib.SMTPAuthenticationError(code, reply)

    def _deliver(self, msg: EmailMessage) -> None:
        ctx = self._tls_context() if self.security != "none" else None
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self.local_hostname,
                timeout=self.timeout,
                context=ctx,
            )
        else:
            smtp = smtplib.SMTP(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
            )
        with smtp:
            smtp.ehlo()
            if self.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise AlertError(
                        f"SMTP server {self._where} does not offer STARTTLS; "
                        'use security = "ssl" (port 465) or, on a trusted network only, "none"'
                    )
                smtp.starttls(context=ctx)
                smtp.ehlo()
            if self.username:
                if not smtp.has_extn("auth"):
                    raise AlertError(
                        f"SMTP server {self._where} does not offer AUTH"
                        + (
                            ' (it may require STARTTLS first: security = "starttls")'
                            if self.security == "none"
                            else ""
                        )
                    )
                self._login(smtp)
            refused = smtp.send_message(msg, from_addr=self.sender_address, to_addrs=self.to)
        if refused:
            # Some recipients got it: failing would make the dispatcher resend to them too.
            log.warning(
                "channel %s: SMTP server %s refused %s",
                self.name,
                self._where,
                ", ".join(f"{a} ({c})" for a, (c, _t) in refused.items()),
            )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _smtp_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    return " ".join(text.split())


class WebhookChannel(Channel):
    """An HTTP POST of JSON: a generic documented payload, or a DingTalk/WeCom/Feishu robot."""

    type = "webhook"

    def __init__(
        self,
        name: str,
        *,
        url: str,
        preset: str = "generic",
        secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}")
        self.url = url
        self.preset = preset
        self._secret = secret or None
        self.timeout = float(timeout)
        self.headers = dict(headers or {})
        self._clock = clock
        parts = urlsplit(url)
        # Robot URLs carry their token in the path or query: only host:port ever appears in logs.
        self._where = parts.netloc.rpartition("@")[2]

    @property
    def service(self) -> str:
        return SERVICE_NAMES[self.preset]

    @property
    def target(self) -> str:
        kind = "webhook" if self.preset == "generic" else f"{self.service} robot"
        return f"{kind} at {self._where}"

    # -- request building ---------------------------------------------------------------------

    def build_request(self, alert: Alert) -> tuple[str, bytes, dict[str, str]]:
        """The URL, body and headers to POST for ``alert``, signed when a secret is set."""
        now = self._clock()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"wxcli/{__version__}",
        }
        url = self.url
        if self.preset == "generic":
            headers = {**self.headers, **headers}
            body = _dumps(self._generic_payload(alert, int(now)))
            if self._secret:
                digest = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
                headers["X-Wxcli-Timestamp"] = str(int(now))
                headers["X-Wxcli-Signature"] = f"sha256={digest}"
        elif self.preset == "dingtalk":
            body = self._fit(
                alert,
                self._dingtalk_payload,
                lambda p: p["markdown"]["text"],
                DINGTALK_MAX_TEXT_BYTES,
            )
            if self._secret:
                url = _add_query(url, dingtalk_sign(self._secret, int(now * 1000)))
        elif self.preset == "wecom":
            body = self._fit(
                alert,
                self._wecom_payload,
                lambda p: p["markdown"]["content"],
                WECOM_MAX_CONTENT_BYTES,
            )
        else:
            sign = feishu_sign(self._secret, int(now)) if self._secret else None
            body = self._fit(
                alert,
                lambda a, text: self._feishu_payload(a, text, sign),
                None,
                FEISHU_MAX_BODY_BYTES,
            )
        return url, body, headers

    def _fit(
        self,
        alert: Alert,
        render: Callable[[Alert, str], dict[str, Any]],
        measured: Callable[[dict[str, Any]], str] | None,
        limit: int,
    ) -> bytes:
        """Render, cutting the alert text to the longest prefix that fits the service's limit."""

        def attempt(text: str) -> tuple[bytes, int]:
            payload = render(alert, text)
            body = _dumps(payload)
            return body, len(measured(payload).encode()) if measured else len(body)

        text = alert.text.replace("\r\n", "\n").strip("\n")
        body, size = attempt(text)
        if size <= limit:
            return body
        best, size = attempt(TRUNCATED.strip())
        if size > limit:
            raise AlertError(
                f"alert too large for {self.service} even without its text "
                f"({size} bytes > {limit}); shorten the title or fields"
            )
        # Markup added per line makes the size of a prefix hard to predict: binary-search it.
        # No prefix longer than the limit itself can fit, which bounds the search.
        lo, hi = 0, min(len(text.encode()), limit)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            body, size = attempt(_cut_utf8(text, mid) + TRUNCATED)
            if size <= limit:
                lo, best = mid, body
            else:
                hi = mid - 1
        return best

    def _generic_payload(self, alert: Alert, sent_at: int) -> dict[str, Any]:
        return {
            "version": 1,
            "source": "wxcli",
            "kind": alert.kind,
            "severity": alert.severity,
            "title": alert.title,
            "text": alert.text,
            "fields": dict(alert.fields),
            "key": alert.key,
            "created_at": alert.created_at.isoformat(),
            "image_url": alert.image_url,
            "attachments": [
                {
                    "filename": a.filename,
                    "mime_type": a.mime_type,
                    "size": a.size,
                    "sha256": a.sha256,
                }
                for a in alert.attachments
            ],
            # Inside the signed body, so receivers can check freshness against a signed value.
            "sent_at": sent_at,
        }

    @staticmethod
    def _md_fields(alert: Alert) -> list[str]:
        return [f"- **{md_neutral(k)}**: {md_neutral(_short(v))}" for k, v in alert.fields.items()]

    @staticmethod
    def _md_image(alert: Alert) -> list[str]:
        url = _public_url(alert.image_url)
        if url:
            label = "Scan to log in" if alert.is_login else "Image"
            return [f"![{label}]({url})", f"[{label}: open the image]({url})"]
        if alert.is_login:
            return [LOGIN_HINT]
        return []

    def _dingtalk_payload(self, alert: Alert, text: str) -> dict[str, Any]:
        blocks = [
            f"#### {md_neutral(_one_line(alert.title))}",
            f"**{alert.severity}** · {alert.kind} · "
            f"{alert.created_at.isoformat(timespec='seconds')}",
        ]
        fields = self._md_fields(alert)
        if fields:
            blocks.append("\n".join(fields))
        blocks += self._md_image(alert)
        if text:
            # Two trailing spaces: a markdown hard line break, so the message keeps its lines.
            blocks.append("  \n".join(md_neutral(line) for line in text.split("\n")))
        return {
            "msgtype": "markdown",
            "markdown": {"title": _one_line(alert.title)[:100], "text": "\n\n".join(blocks)},
        }

    def _wecom_payload(self, alert: Alert, text: str) -> dict[str, Any]:
        color = {"info": "info", "warning": "warning", "critical": "warning"}[alert.severity]
        blocks = [
            f"### {md_neutral(_one_line(alert.title))}",
            f'<font color="{color}">{alert.severity}</font> · {alert.kind} · '
            f'<font color="comment">{alert.created_at.isoformat(timespec="seconds")}</font>',
        ]
        fields = self._md_fields(alert)
        if fields:
            blocks.append("\n".join(fields))
        image = self._md_image(alert)
        if image and _public_url(alert.image_url):
            image = image[1:]  # WeCom markdown shows no inline images; keep the link
        blocks += image
        if text:
            blocks.append("\n".join(md_neutral(line) for line in text.split("\n")))
        return {"msgtype": "markdown", "markdown": {"content": "\n\n".join(blocks)}}

    def _feishu_payload(
        self, alert: Alert, text: str, sign: tuple[str, str] | None
    ) -> dict[str, Any]:
        def para(s: str) -> list[dict[str, str]]:
            return [{"tag": "text", "text": s}]

        content: list[list[dict[str, str]]] = [
            para(
                f"{alert.severity} · {alert.kind} · "
                f"{alert.created_at.isoformat(timespec='seconds')}"
            )
        ]
        content += [
            para(f"{_plain_neutral(k)}: {_plain_neutral(_short(v))}")
            for k, v in alert.fields.items()
        ]
        url = _public_url(alert.image_url)
        if url:
            # A custom bot cannot upload images (img needs an image_key), so link the QR instead.
            label = "Scan to log in: open the QR code" if alert.is_login else "Open the image"
            content.append([{"tag": "a", "text": label, "href": url}])
        elif alert.is_login:
            content.append(para(LOGIN_HINT))
        if text:
            content += [para(_plain_neutral(line)) for line in text.split("\n")]
        payload: dict[str, Any] = {}
        if sign:
            payload["timestamp"], payload["sign"] = sign
        payload["msg_type"] = "post"
        payload["content"] = {
            "post": {"zh_cn": {"title": _plain_neutral(_one_line(alert.title)), "content": content}}
        }
        return payload

    # -- delivery -----------------------------------------------------------------------------

    def send(self, alert: Alert) -> None:
        url, body, headers = self.build_request(alert)
        status, reply = self._post(url, body, headers)
        self._check_reply(status, reply)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST and read at most MAX_REPLY_BYTES of the answer within an overall deadline."""
        deadline = time.monotonic() + self.timeout
        try:
            with requests.Session() as session:
                resp = session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=(self.timeout, self.timeout),
                    allow_redirects=False,  # a redirected POST turns into a GET and is lost
                    stream=True,
                )
                with resp:
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in resp.iter_content(4096):
                        chunks.append(chunk)
                        size += len(chunk)
                        if size >= MAX_REPLY_BYTES:
                            break
                        if time.monotonic() > deadline:
                            raise AlertError(
                                f"timed out after {self.timeout:g} s reading the answer "
                                f"of {self._where}"
                            )
                    raw = b"".join(chunks)
                    # requests assumes Latin-1 for text/* without a charset; the robots' (and
                    # most Chinese) error pages are UTF-8, so only an explicit charset wins.
                    declared = "charset" in resp.headers.get("Content-Type", "").lower()
                    encoding = (resp.encoding if declared else None) or "utf-8"
                    return resp.status_code, raw.decode(encoding, "replace")
        except requests.exceptions.ConnectTimeout as exc:
            raise AlertError(
                f"timed out after {self.timeout:g} s connecting to {self._where}"
            ) from exc
        except (requests.exceptions.ReadTimeout, requests.exceptions.Timeout) as exc:
            raise AlertError(
                f"timed out after {self.timeout:g} s waiting for {self._where} to answer"
            ) from exc
        except requests.exceptions.SSLError as exc:
            raise AlertError(f"TLS error with {self._where}: {_root_reason(exc)}") from exc
        except requests.exceptions.ConnectionError as exc:
            if _has_cause(exc, ConnectionRefusedError):
                raise AlertError(f"connection refused to {self._where}") from exc
            if _has_cause(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
                raise AlertError(
                    f"timed out after {self.timeout:g} s talking to {self._where}"
                ) from exc
            raise AlertError(f"cannot reach {self._where}: {_root_reason(exc)}") from exc
        except requests.RequestException as exc:
            # str(exc) would show the URL, which holds the robot's token: name the type only.
            raise AlertError(f"request to {self._where} failed ({type(exc).__name__})") from exc

    def _check_reply(self, status: int, reply: str) -> None:
        snippet = " ".join(reply.split())[:200]
        try:
            data = json.loads(reply) if reply.strip() else None
        except ValueError:
            data = None
        if self.preset in ("dingtalk", "wecom") and isinstance(data, dict) and "errcode" in data:
            code = data["errcode"]
            if str(code) != "0":
                raise AlertError(f"{self.service} errcode {code}: {data.get('errmsg', '')}")
        elif (
            self.preset == "feishu"
            and isinstance(data, dict)
            and ("code" in data or "StatusCode" in data)
        ):
            code = data.get("code", data.get("StatusCode"))
            if str(code) != "0":
                msg = data.get("msg") or data.get("StatusMessage") or ""
                raise AlertError(f"Feishu code {code}: {msg}")
        elif self.preset != "generic" and 200 <= status < 300:
            # Every robot answers a JSON status; anything else (a proxy page?) is no delivery.
            raise AlertError(f"{self.service} answered {status} without a status code: {snippet}")
        if not 200 <= status < 300:
            raise AlertError(f"webhook answered {status}: {snippet}")


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _add_query(url: str, params: Mapping[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def dingtalk_sign(secret: str, timestamp_ms: int) -> dict[str, str]:
    """DingTalk's robot signature: base64(HMAC-SHA256(key=secret, "<ms>\\n<secret>")).

    Returned as the ``timestamp`` and ``sign`` query parameters (URL-encoding is left to
    ``urlencode``, as the documentation asks for the base64 value URL-encoded).
    """
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return {"timestamp": str(timestamp_ms), "sign": base64.b64encode(digest).decode()}


def feishu_sign(secret: str, timestamp_s: int) -> tuple[str, str]:
    """Feishu's custom-bot signature: base64(HMAC-SHA256(key="<s>\\n<secret>", msg=b"")).

    Note the key is the timestamp-and-secret string and the message is empty, unlike DingTalk.
    """
    key = f"{timestamp_s}\n{secret}".encode()
    digest = hmac.new(key, b"", hashlib.sha256).digest()
    return str(timestamp_s), base64.b64encode(digest).decode()


def _causes(exc: BaseException) -> Iterable[BaseException]:
    """The exception and everything it wraps (requests/urllib3 nest reasons in args/.reason)."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        cur = stack.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        yield cur
        nested = [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
        stack += [x for x in nested if isinstance(x, BaseException)]


def _has_cause(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    return any(isinstance(x, kind) for x in _causes(exc))


def _root_reason(exc: BaseException) -> str:
    """A short reason without the URL: the innermost OS/SSL error's text when there is one."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verification failed: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or cause)
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name ({cause.strerror})"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return type(exc).__name__


class WeChatChannel(Channel):
    """A text message to a WeChat group or 'filehelper' through the live watch session."""

    type = "wechat"

    def __init__(
        self,
        name: str,
        *,
        to: str,
        send_text: Callable[[str, str], object] | None = None,
    ) -> None:
        super().__init__(name)
        self.to = to
        self._send_text = send_text

    @property
    def target(self) -> str:
        return f"WeChat to {self.to!r}"

    def send(self, alert: Alert) -> None:
        if self._send_text is None:
            raise AlertError("WeChat channel needs a live session")
        text = render_text(alert)
        if len(text) > WECHAT_MAX_CHARS:
            text = text[: WECHAT_MAX_CHARS - len(TRUNCATED)] + TRUNCATED
        try:
            self._send_text(self.to, text)
        except AlertError:
            raise
        except WxError as exc:
            raise AlertError(f"WeChat message to {self.to!r} failed: {exc}") from exc


# --- construction from config ----------------------------------------------------------------

_KEYS = {
    "email": {
        "type",
        "host",
        "port",
        "security",
        "username",
        "password_env",
        "sender",
        "to",
        "timeout",
        "verify_tls",
        "ca_file",
    },
    "webhook": {"type", "url", "preset", "secret_env", "timeout", "headers"},
    "wechat": {"type", "to"},
}


class _Table(TableReader):
    """Typed reads of one ``[alert.channels.<name>]`` table, with errors that name the key."""

    def __init__(self, name: str, spec: Mapping[str, Any], path: str | None) -> None:
        super().__init__(f"alert.channels.{name}", spec, path)
        self.name = name
        self.spec = spec

    def required(self, key: str, example: str) -> str:
        value = self.string(key)
        if value is None:
            raise self.error(key, f"missing; e.g. {example}")
        return value

    def string(self, key: str) -> str | None:
        value = self.spec.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, not {value!r}")
        return value.strip()

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.spec.get(key, default)
        if value not in choices:
            shown = ", ".join(f'"{c}"' for c in choices)
            raise self.error(key, f"must be one of {shown}, not {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.error(key, f"must be a positive number of seconds, not {value!r}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.spec.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def secret(self, key: str, env: Mapping[str, str]) -> str | None:
        """Read the env var named by ``key``; never the secret itself from the file."""
        var = self.string(key)
        if var is None:
            return None
        value = env.get(var)
        if not value:
            raise self.error(key, f"environment variable {var} (named by {key}) is not set")
        return value


def build_channel(
    name: str,
    spec: Mapping[str, Any],
    env: Mapping[str, str] = os.environ,
    *,
    wechat_sender: Callable[[str, str], object] | None = None,
    config_path: str | None = None,
) -> Channel:
    """Validate one ``[alert.channels.<name>]`` table and build its channel.

    Secrets come from ``env`` (``password_env`` / ``secret_env`` name the variables), so the
    config file never holds them. Raises ConfigError naming the channel and key on any problem.
    """
    table = _Table(name, spec, config_path)
    if not isinstance(spec, Mapping):
        raise table.error("type", "the channel must be a table, e.g. [alert.channels.ops]")
    kind = spec.get("type")
    if kind not in CHANNEL_TYPES:
        shown = ", ".join(f'"{t}"' for t in CHANNEL_TYPES)
        problem = "missing" if kind is None else f"{kind!r} is not a channel type"
        raise table.error("type", f"{problem}; one of {shown}")
    if kind == "email":
        return _build_email(table, env)
    if kind == "webhook":
        return _build_webhook(table, env)
    table.check_keys(_KEYS["wechat"])
    to = table.required("to", 'to = "filehelper" or a group name')
    return WeChatChannel(name, to=to, send_text=wechat_sender)


_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+")


def _is_address(value: str) -> bool:
    """A bare mailbox like ops@example.com (a rough check; the SMTP server has the last word)."""
    return bool(_ADDRESS.fullmatch(value))


def _build_email(table: _Table, env: Mapping[str, str]) -> EmailChannel:
    spec = table.spec
    if "password" in spec:
        raise table.error(
            "password",
            "do not put the password in the config file; store it in an environment variable "
            'and name that variable instead, e.g. password_env = "WXCLI_SMTP_PASSWORD"',
        )
    table.check_keys(_KEYS["email"])
    host = table.required("host", 'host = "smtp.example.com"')
    security = table.choice("security", SECURITY_MODES, "starttls")
    port = spec.get("port", DEFAULT_PORTS[security])
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise table.error("port", f"must be a port number 1-65535, not {port!r}")
    sender = table.required("sender", 'sender = "wxcli@example.com"')
    if not _is_address(parseaddr(sender)[1]) or "\n" in sender:
        raise table.error("sender", f"{sender!r} is not an email address")
    to_value = spec.get("to")
    if to_value is None:
        raise table.error("to", 'missing; e.g. to = ["ops@example.com"]')
    to = [to_value] if isinstance(to_value, str) else to_value
    if (
        not isinstance(to, list)
        or not to
        or not all(isinstance(a, str) and _is_address(a) for a in to)
    ):
        raise table.error("to", f"must be a list of email addresses, not {to_value!r}")
    username = table.string("username")
    password = table.secret("password_env", env)
    if username and password is None:
        raise table.error(
            "password_env", f"username {username!r} is set but no password_env names its password"
        )
    if password is not None and not username:
        raise table.error("username", "password_env is set, so username is needed too")
    ca_file = table.string("ca_file")
    if ca_file is not None and not Path(ca_file).expanduser().is_file():
        raise table.error("ca_file", f"no such file: {ca_file}")
    verify_tls = table.boolean("verify_tls", True)
    if security == "none" and username:
        log.warning(
            'channel %s sends its SMTP password unencrypted (security = "none")', table.name
        )
    if security != "none" and not verify_tls:
        log.warning("channel %s does not verify the SMTP server's TLS certificate", table.name)
    return EmailChannel(
        table.name,
        host=host,
        port=port,
        security=security,
        sender=sender,
        to=to,
        username=username,
        password=password,
        timeout=table.number("timeout", DEFAULT_TIMEOUT),
        verify_tls=verify_tls,
        ca_file=str(Path(ca_file).expanduser()) if ca_file else None,
    )


def _build_webhook(table: _Table, env: Mapping[str, str]) -> WebhookChannel:
    spec = table.spec
    if "secret" in spec:
        raise table.error(
            "secret",
            "do not put the signing secret in the config file; store it in an environment "
            'variable and name that variable instead, e.g. secret_env = "WXCLI_DINGTALK_SECRET"',
        )
    table.check_keys(_KEYS["webhook"])
    url = table.required("url", 'url = "https://example.com/hook"')
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise table.error("url", f"must be an http:// or https:// URL, not {url!r}")
    preset = table.choice("preset", PRESETS, "generic")
    if preset == "wecom" and "secret_env" in spec:
        raise table.error("secret_env", "WeCom group robots have no signing secret; remove it")
    headers = spec.get("headers")
    if headers is not None:
        if preset != "generic":
            raise table.error("headers", f'only the "generic" preset takes headers, not {preset!r}')
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise table.error("headers", "must be a table of header names to string values")
        # HTTP/1.1 header values are Latin-1 at best; keep to what every hop passes unchanged.
        if not all(
            k.isascii() and v.isascii() and (k + v).isprintable() for k, v in headers.items()
        ):
            raise table.error("headers", "names and values must be printable ASCII")
    return WebhookChannel(
        table.name,
        url=url,
        preset=preset,
        secret=table.secret("secret_env", env),
        timeout=table.number("timeout", DEFAULT_TIMEOUT),
        headers=headers,
    )
