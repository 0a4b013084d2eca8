"""Log redaction: a filter that masks session secrets wherever they would appear.

The library never formats secrets into log messages on purpose; this filter is the safety net
for third-party loggers (urllib3 logs full URLs, which carry skey/sid/pass_ticket, at DEBUG) and
for server text quoted in error messages (a truncated login XML carries the skey).
"""

from __future__ import annotations

import logging
import re

_NAMES = (
    r"skey|sid|wxsid|pass_ticket|ticket|webwx_data_ticket|webwx_auth_ticket|webwxuvid|uin|wxuin"
    r"|appkey|app_key|password|passwd|secret|signature|access_key_secret|sign|token|aeskey"
)
_PATTERNS = [
    # query-string, form and JSON style: skey=..., "Sid": "...", pass_ticket%3D...
    re.compile(rf"(?i)\b({_NAMES})(=|%3D|\"?\s*:\s*\"?)([^&\s\"',;}}<]+)"),
    # the skey itself, also when cut short (a truncated reply quoted in an error)
    re.compile(r"@crypt_[0-9a-fA-F_]*"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"(?i)((?:set-)?cookie:\s*)[^\r\n]+"),
    # the login XML: <skey>…</skey>, <wxsid>…, <pass_ticket>… (possibly unterminated)
    re.compile(r"(?i)<(skey|wxsid|wxuin|pass_ticket)>([^<]*)"),
]


def redact(text: str) -> str:
    """Mask secrets in ``text`` (keeps the parameter names so logs stay readable)."""
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _PATTERNS[1].sub("@crypt_***", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}***", text)
    text = _PATTERNS[3].sub(lambda m: f"{m.group(1)}***", text)
    text = _PATTERNS[4].sub(lambda m: f"<{m.group(1)}>***", text)
    return text


class RedactingFilter(logging.Filter):
    """Attach to a handler: rewrites each record's final message through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken third-party format string must not kill logging
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Format the traceback now so that it, too, goes through redaction.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.exc_info = None
        return True
