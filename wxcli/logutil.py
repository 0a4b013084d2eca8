"""Log redaction: a filter that masks session secrets wherever they would appear.

The library never formats secrets into log messages on purpose; this filter is the safety net
for third-party loggers (urllib3 logs full URLs, which carry skey/sid/pass_ticket, at DEBUG) and
for server text quoted in error messages (a truncated login XML carries the skey).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from wxcli.textutil import safe_text

# Names whose value is a secret wherever they appear: query strings, form bodies, JSON, headers.
_NAMES = (
    r"skey|sid|wxsid|pass_ticket|ticket|webwx_data_ticket|webwx_auth_ticket|webwxuvid|uin|wxuin"
    r"|appkey|app_key|app_secret|password|passwd|pwd|secret|signature|x-signature"
    r"|x-wxcli-signature|access_key_secret|accesskeysecret|ossaccesskeyid|sign|token"
    r"|access_token|key|aeskey|x-api-key"
)
_PATTERNS = [
    # query-string, form, JSON and header style: skey=..., "Sid": "...", pass_ticket%3D...,
    # X-Signature: ..., access_token=..., WeCom's key=...
    re.compile(rf"(?i)(?<![\w-])({_NAMES})(=|%3D|\"?\s*:\s*\"?)([^&\s\"',;}}<]+)"),
    # the skey itself, also when cut short (a truncated reply quoted in an error)
    re.compile(r"@crypt_[0-9a-fA-F_]*"),
    # any Authorization scheme: Bearer <appId>:<appKey>, Basic …, OSS <id>:<signature>
    re.compile(r"(?i)((?:proxy-)?authorization\"?\s*[:=]\s*\"?[A-Za-z0-9_-]+\s+)[^\s\"',]+"),
    re.compile(r"(?i)((?:set-)?cookie:\s*)[^\r\n]+"),
    # the login XML: <skey>…</skey>, <wxsid>…, <pass_ticket>… (possibly unterminated)
    re.compile(r"(?i)<(skey|wxsid|wxuin|pass_ticket)>([^<]*)"),
    # Feishu / Lark hook URLs carry their token in the path, Slack-style hooks too
    re.compile(r"(?i)(/(?:open-apis/bot/v2/hook|hooks?)/)[A-Za-z0-9_-]+"),
    # DingTalk signing secrets and HMAC digests quoted bare (sha256=…)
    re.compile(r"\bSEC[0-9a-fA-F]{20,}"),
    re.compile(r"(?i)\b(sha(?:1|256|512)=)[0-9a-f]{16,}"),
]
#: Secrets shorter than this are not masked by value: a 2-character value would mask half a log.
MIN_SECRET_LEN = 6


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secrets in ``text`` (keeps the parameter names so logs stay readable).

    *secrets* are literal values to mask wherever they appear (passwords and keys read from the
    environment have no recognisable shape).
    """
    for value in secrets:
        if len(value) >= MIN_SECRET_LEN and value in text:
            text = text.replace(value, "***")
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _PATTERNS[1].sub("@crypt_***", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}***", text)
    text = _PATTERNS[3].sub(lambda m: f"{m.group(1)}***", text)
    text = _PATTERNS[4].sub(lambda m: f"<{m.group(1)}>***", text)
    text = _PATTERNS[5].sub(lambda m: f"{m.group(1)}***", text)
    text = _PATTERNS[6].sub("SEC***", text)
    text = _PATTERNS[7].sub(lambda m: f"{m.group(1)}***", text)
    return text


class RedactingFilter(logging.Filter):
    """Attach to a handler: rewrites each record's final message through :func:`redact` and
    neutralises control characters, so one record is one line (no forged entries, no terminal
    escapes from a logged chat name or request path)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = {s for s in secrets if s}

    def add_secret(self, value: str | None) -> None:
        """Also mask this literal value (e.g. a password read from the environment)."""
        if value:
            self.secrets.add(value)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken third-party format string must not kill logging
            message = f"{record.msg!r} % {record.args!r}"
        # Longest first, so a secret that contains another is masked whole.
        secrets = sorted(self.secrets, key=len, reverse=True)
        record.msg = safe_text(redact(message, secrets))
        record.args = None
        if record.exc_info and not record.exc_text:
            # Format the traceback now so that it, too, goes through redaction.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = safe_text(redact(record.exc_text, secrets), multiline=True)
        record.exc_info = None
        return True
