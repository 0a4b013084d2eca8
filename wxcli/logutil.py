"""Log redaction: a filter that masks session secrets wherever they would appear.

The library never formats secrets into log messages on purpose; this filter is the safety net
for third-party loggers (urllib3 logs full URLs, which carry skey/sid/pass_ticket, at DEBUG).
"""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    # query-string and form style: skey=..., sid=..., pass_ticket=..., webwx_data_ticket=...
    re.compile(
        r"(?i)\b(skey|sid|wxsid|pass_ticket|ticket|webwx_data_ticket|webwx_auth_ticket|uin|wxuin"
        r"|appkey|app_key|password|passwd|secret|signature|access_key_secret|sign)"
        r"(=|%3D|\"?\s*:\s*\"?)([^&\s\"',;}]+)"
    ),
    re.compile(r"@crypt_[0-9a-fA-F]+_[0-9a-fA-F]+"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)\S+"),
    re.compile(r"(?i)(cookie:\s*)[^\r\n]+"),
]


def redact(text: str) -> str:
    """Mask secrets in ``text`` (keeps the parameter names so logs stay readable)."""
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    text = _PATTERNS[1].sub("@crypt_***", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}***", text)
    text = _PATTERNS[3].sub(lambda m: f"{m.group(1)}***", text)
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
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
