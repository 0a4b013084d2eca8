"""How an alert reads: the plain-text and HTML renderings (email, WeChat) and the pieces the
chat robots build their cards from, with every alert-supplied string made inert first.

Alert titles, texts and fields carry customer messages and group names, so each renderer
escapes (HTML) or neutralises (robot markdown) them; a customer cannot add a link, an image,
a mention or markup to an alert.
"""

from __future__ import annotations

import html
from urllib.parse import quote, urlsplit

from wxcli.alerts.channels.base import log
from wxcli.alerts.model import Alert

#: Longest single field value shown by the chat-robot presets (the full text stays in email).
ROBOT_MAX_FIELD_CHARS = 300

TRUNCATED = "\n…(truncated)"

LOGIN_HINT = (
    "Run `wxcli login` on the watch host to get a new QR code "
    "(set [alert] qr_url_base to have the QR image linked in alerts)."
)


def one_line(value: str) -> str:
    """Collapse line breaks so a value stays on one line (subjects, table cells, list items)."""
    return " ⏎ ".join(part.strip() for part in value.replace("\r\n", "\n").splitlines() if part)


def public_url(url: str | None) -> str | None:
    """Return ``url`` if it is a plain http(s) URL safe to link to, else None."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        log.warning("ignoring image_url that is not an http(s) URL")
        return None
    # Percent-encode what would end a markdown link early or break out of an attribute.
    return quote(url, safe="/:?#&=%+,;@!$'*~-._")


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest prefix of ``text`` that fits in ``max_bytes`` of UTF-8, cut on a character."""
    if max_bytes <= 0:
        return ""
    return text.encode("utf-8")[:max_bytes].decode("utf-8", "ignore")


def body_text(alert: Alert) -> str:
    """The alert text with CRLFs normalised and surrounding blank lines dropped."""
    return alert.text.replace("\r\n", "\n").strip("\n")


def attached_images(alert: Alert) -> list[str]:
    return [a.filename for a in alert.attachments if a.mime_type.startswith("image/")]


def render_text(alert: Alert, *, attachments_note: bool = False) -> str:
    """The plain-text rendering used by the email text part and the WeChat channel.

    ``attachments_note`` says the QR image is attached (true for email, which carries files).
    """
    lines = [one_line(alert.title), ""]
    body = body_text(alert)
    if body:
        lines += [body, ""]
    if alert.fields:
        width = min(max(len(k) for k in alert.fields), 16)
        lines += [f"{k + ':':<{width + 1}} {one_line(v)}" for k, v in alert.fields.items()]
        lines.append("")
    url = public_url(alert.image_url)
    if url:
        lines += [f"QR code: {url}" if alert.is_login else f"Image: {url}", ""]
    elif alert.is_login:
        attached = attached_images(alert)
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
        f'<h2 style="margin:0 0 8px">{e(one_line(alert.title))}</h2>',
        f'<p style="color:#666;margin:0 0 12px">{e(alert.severity)} · {e(alert.kind)} · '
        f"{e(alert.created_at.isoformat(timespec='seconds'))}</p>",
    ]
    body = body_text(alert)
    if body:
        parts.append(
            f'<pre style="white-space:pre-wrap;font-family:inherit;margin:0 0 12px">{e(body)}</pre>'
        )
    if alert.fields:
        rows = "".join(
            '<tr><th style="text-align:left;padding:2px 12px 2px 0;vertical-align:top">'
            f'{e(k)}</th><td style="padding:2px 0">{e(one_line(v))}</td></tr>'
            for k, v in alert.fields.items()
        )
        parts.append(f'<table style="border-collapse:collapse;margin:0 0 12px">{rows}</table>')
    url = public_url(alert.image_url)
    if url:
        label = "Scan this QR code with WeChat to log in" if alert.is_login else "Image"
        parts.append(
            f'<p><a href="{e(url)}">{label}</a><br>'
            f'<img src="{e(url)}" alt="{label}" style="max-width:280px"></p>'
        )
    elif alert.is_login:
        attached = attached_images(alert)
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


def plain_neutral(text: str) -> str:
    """Lighter neutralisation for plain-text elements (Feishu post text): no tags, no links."""
    return text.replace("<", "＜").replace(">", "＞").replace("://", "：//")


def short(value: str, limit: int = ROBOT_MAX_FIELD_CHARS) -> str:
    """One line of at most ``limit`` characters (robot cards show fields, not documents)."""
    value = one_line(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def md_fields(alert: Alert) -> list[str]:
    """The fields as a neutralised markdown list (DingTalk and WeCom)."""
    return [f"- **{md_neutral(k)}**: {md_neutral(short(v))}" for k, v in alert.fields.items()]


def md_image(alert: Alert) -> list[str]:
    """Markdown lines showing and linking the alert's image, or the login hint without one."""
    url = public_url(alert.image_url)
    if url:
        label = "Scan to log in" if alert.is_login else "Image"
        return [f"![{label}]({url})", f"[{label}: open the image]({url})"]
    if alert.is_login:
        return [LOGIN_HINT]
    return []
