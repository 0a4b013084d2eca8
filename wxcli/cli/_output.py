"""Output helpers shared by subcommands: a stderr console for humans, JSON lines for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

import click

from wxcli.textutil import has_unsafe, safe_text


def _safe_console(**kwargs: Any) -> Any:
    """A rich console that shows control characters in printed text as visible stand-ins.

    Neutralising at the segment level covers every table, chart and line in one place, also
    those built from Text objects; rich's own styling is emitted after this step and stays.
    """
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        def _render_buffer(self, buffer: Iterable[Segment]) -> str:
            return super()._render_buffer(
                Segment(safe_text(seg.text, multiline=True), seg.style)
                if seg.control is None and has_unsafe(seg.text)
                else seg
                for seg in buffer
            )

    return SafeConsole(highlight=False, **kwargs)


def err_console():
    """A rich console on stderr (progress, QR codes, warnings); created on demand."""
    return _safe_console(stderr=True)


def out_console():
    """A rich console on stdout for tables and reports (never for --json / csv)."""
    return _safe_console()


def markup_safe(text: str, *, multiline: bool = False) -> str:
    """*text* from WeChat made safe to put inside a rich markup string: control characters
    neutralised and ``[bold]`` / ``[link=…]`` shown literally rather than obeyed."""
    from rich.markup import escape

    return escape(safe_text(text, multiline=multiline))


def _default(obj: Any) -> Any:
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if hasattr(obj, "to_json"):
        return obj.to_json()
    return str(obj)


def emit_json(obj: Any) -> None:
    """One JSON document (or line) on stdout, UTF-8, not ASCII-escaped."""
    click.echo(json.dumps(obj, ensure_ascii=False, default=_default))


def warn(message: str) -> None:
    click.echo(f"Warning: {safe_text(message, multiline=True)}", err=True)


def is_tty() -> bool:
    return sys.stdout.isatty()


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600:02d}h"
