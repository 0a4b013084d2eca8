"""Tolerant, bounded parsing of the small XML payloads Web WeChat puts inside message fields.

Payloads come from the server (and partly from users), so parsing must never raise, never expand
entities, and never spend more than a bounded amount of work; callers get ``None``/``""`` instead.
"""

from __future__ import annotations

import functools
import html
import re
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as _defused_fromstring

#: Longest payload we look at; anything beyond is cut off so a huge payload cannot stall the loop.
MAX_XML_CHARS = 64 * 1024

_XML_ENTITIES = frozenset({"lt", "gt", "amp", "quot", "apos"})
# Characters XML 1.0 forbids even as references; expat rejects the whole document for one of them.
_BAD_XML_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_AMP_RE = re.compile(r"&(#[0-9]{1,8};|#[xX][0-9a-fA-F]{1,8};|[A-Za-z][A-Za-z0-9]{0,31};)?")
_ATTR_RE = re.compile(r"""([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


class UnsafeXMLError(ValueError):
    """The payload declares a DTD, entities or external references; it is refused, not parsed.

    A hand-written pre-check could be bypassed (``<&excl;DOCTYPE`` became ``<!DOCTYPE`` after
    :func:`repair`), so the refusal comes from defusedxml, which sees what the parser sees.
    """


def _fromstring(text: str) -> ET.Element:
    try:
        return _defused_fromstring(
            text, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except DefusedXmlException as exc:
        raise UnsafeXMLError(type(exc).__name__) from exc


def _valid_xml_codepoint(cp: int) -> bool:
    return (
        cp in (0x9, 0xA, 0xD)
        or 0x20 <= cp <= 0xD7FF
        or 0xE000 <= cp <= 0xFFFD
        or 0x10000 <= cp <= 0x10FFFF
    )


def _fix_entity(m: re.Match[str]) -> str:
    ent = m.group(1)
    if ent is None:  # a bare '&' the server forgot to escape
        return "&amp;"
    if ent[0] == "#":
        try:
            cp = int(ent[2:-1], 16) if ent[1] in "xX" else int(ent[1:-1])
        except ValueError:
            return ""
        return m.group(0) if _valid_xml_codepoint(cp) else ""
    name = ent[:-1]
    if name in _XML_ENTITIES:
        return m.group(0)
    resolved = html.unescape(m.group(0))
    if resolved == m.group(0):  # unknown name: keep it as literal text
        return "&amp;" + ent
    return html.escape(resolved, quote=True)


def repair(text: str) -> str:
    """Make common near-XML well-formed: escape bare ``&``, resolve HTML-only entities, drop
    characters XML cannot carry."""
    text = _BAD_XML_CHARS_RE.sub("", text)
    text = _SURROGATE_RE.sub("", text)
    if "&" in text:
        text = _AMP_RE.sub(_fix_entity, text)
    return text


def prepare(text: str) -> str | None:
    """Cut *text* to the bounded window starting at its first ``<``; ``None`` if unusable."""
    start = text.find("<")
    if start < 0:
        return None
    return text[start : start + MAX_XML_CHARS]


def parse(text: str) -> ET.Element | None:
    """Parse an already :func:`prepare`-d payload, retrying once after :func:`repair`.

    Returns ``None`` when the payload is not well-formed even after repair (e.g. truncated); the
    callers then fall back to :func:`regex_attrs` / :func:`regex_text`, which never expand
    entities. Raises :class:`UnsafeXMLError` for a DTD or entity declaration, before or after
    repair, so callers can drop the payload instead of reading it half.
    """
    try:
        return _fromstring(text)
    except UnsafeXMLError:
        raise
    except (ET.ParseError, ValueError, RecursionError):
        pass
    fixed = repair(text)
    if fixed == text:
        return None
    try:
        return _fromstring(fixed)
    except UnsafeXMLError:
        raise
    except (ET.ParseError, ValueError, RecursionError):
        return None


@functools.lru_cache(maxsize=64)
def _start_tag_re(tag: str) -> re.Pattern[str]:
    # The start tag ends at the first '>' not inside a quoted value; a truncated tag (even one cut
    # inside a value) runs to the end of the text and keeps its complete attributes.
    return re.compile(
        r"<" + re.escape(tag) + r"""((?:\s(?:[^<>"']|"[^"]*"|'[^']*')*)?)(?:/?>|["'][^"']*$|$)"""
    )


@functools.lru_cache(maxsize=64)
def _element_text_re(tag: str) -> re.Pattern[str]:
    t = re.escape(tag)
    return re.compile(
        r"<" + t + r"""(?:\s(?:[^<>"']|"[^"]*"|'[^']*')*)?(?<!/)>"""
        r"(?:\s*<!\[CDATA\[(.*?)\]\]>\s*|([^<]*))</" + t + r"\s*>",
        re.DOTALL,
    )


def parse_attrs(attr_text: str) -> dict[str, str]:
    """Attributes of one start tag's inside (``a="1" b='2'``), entity-decoded."""
    out: dict[str, str] = {}
    for m in _ATTR_RE.finditer(attr_text):
        value = m.group(2) if m.group(2) is not None else m.group(3)
        out.setdefault(m.group(1), html.unescape(value) if "&" in value else value)
    return out


def regex_attrs(text: str, tag: str) -> dict[str, str] | None:
    """Fallback: attributes of the first ``<tag …>`` in *text*, or ``None`` if there is none.

    Only attributes whose value is complete (closing quote present) are returned, so a truncated
    payload yields partial but never corrupted data.
    """
    m = _start_tag_re(tag).search(text)
    if m is None:
        return None
    return parse_attrs(m.group(1))


def regex_text(text: str, tag: str, *, after: str | None = None) -> str | None:
    """Fallback: text (or CDATA) of the first complete ``<tag>…</tag>`` in *text*.

    With *after*, the search starts at the first ``<after`` so e.g. ``appmsg``'s own ``title`` is
    preferred over a nested one that precedes it.
    """
    start = 0
    if after is not None:
        start = text.find("<" + after)
        if start < 0:
            return None
    m = _element_text_re(tag).search(text, start)
    if m is None:
        return None
    if m.group(1) is not None:
        return m.group(1)
    raw = m.group(2)
    return html.unescape(raw) if "&" in raw else raw


def to_int(value: str | int | None) -> int | None:
    """Lenient int: ``None`` for missing, empty or non-numeric values."""
    if value is None:
        return None
    if isinstance(value, int):
        return value
    value = value.strip()
    if not value or len(value) > 40:
        return None
    try:
        return int(value)
    except ValueError:
        return None
