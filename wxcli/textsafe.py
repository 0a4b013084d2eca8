"""Text from WeChat made safe to show on a terminal or write into a log line.

Anyone in a group can put escape sequences into a message or a name: OSC 52 writes the
clipboard, OSC 8 shows a link whose text differs from its target, OSC 0 sets the window title,
CSI 2J clears the screen, CR/newline forge log lines, bidi overrides reorder what is read.
Every human-readable output passes such text through :func:`printable`; ``--json`` and csv
output stay exact (their encoders escape control characters themselves).
"""

from __future__ import annotations

import re

# C0 controls except TAB and LF, DEL, C1 controls (0x9b is a one-byte CSI on many terminals),
# the bidi embedding/override/isolate marks, and line/paragraph separators.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_UNSAFE_OR_NEWLINE = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\x1b": "\\e"}


def _visible(m: re.Match[str]) -> str:
    ch = m.group(0)
    named = _NAMED.get(ch)
    if named is not None:
        return named
    cp = ord(ch)
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def printable(text: object, *, multiline: bool = False) -> str:
    """``text`` with every control character shown as a visible escape (``\\e``, ``\\x9b``).

    ``multiline`` keeps newlines (message bodies in a table cell); otherwise they are shown as
    ``\\n`` too (names, log values, one-line fields). Tabs are kept: they move the cursor only.
    """
    s = text if isinstance(text, str) else str(text)
    pattern = _UNSAFE if multiline else _UNSAFE_OR_NEWLINE
    if pattern.search(s) is None:  # the common case: nothing to do, no copy
        return s
    return pattern.sub(_visible, s)


def has_unsafe(text: str) -> bool:
    """True when ``text`` holds a character :func:`printable` would neutralise (tests use it)."""
    return _UNSAFE_OR_NEWLINE.search(text.replace("\n", "")) is not None
