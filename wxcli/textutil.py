"""Neutralising text from WeChat (message text, nicknames, group names) before a terminal or a log
line shows it.

Anyone in a group can send or rename to a string with escape sequences: OSC 52 writes the
clipboard, OSC 8 hides a link target, OSC 0 sets the window title, CSI 2J clears the screen, and
bidi overrides reorder what is read. Each control character is therefore shown as a visible
stand-in instead of being passed on; JSON and CSV output keep the text exact and never come here.
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls (0x9b is a one-byte CSI), Unicode line/paragraph separators and
# the bidi embeddings, overrides and isolates.
_UNSAFE_RE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_KEEP_LINES_RE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


def _stand_in(m: re.Match[str]) -> str:
    cp = ord(m.group(0))
    if cp < 0x20:
        return chr(0x2400 + cp)  # the Unicode "control picture": ␛ for ESC, ␇ for BEL, ␊ for LF
    if cp == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{cp:04X}>"  # C1 and bidi controls have no picture: name them


def safe_text(text: str, *, multiline: bool = False) -> str:
    """*text* with every control character replaced by a visible stand-in.

    With *multiline*, newlines and tabs are kept (message bodies in a wrapped cell); otherwise
    they are shown too, so one value stays one line (table cells, log records).
    """
    pattern = _UNSAFE_KEEP_LINES_RE if multiline else _UNSAFE_RE
    if pattern.search(text) is None:
        return text
    return pattern.sub(_stand_in, text)


def has_unsafe(text: str) -> bool:
    """True when :func:`safe_text` would change *text* (with newlines and tabs allowed)."""
    return _UNSAFE_KEEP_LINES_RE.search(text) is not None
