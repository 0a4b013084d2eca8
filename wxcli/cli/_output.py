"""Output helpers shared by subcommands: a stderr console for humans, JSON lines for scripts."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from typing import Any

import click


def err_console():
    """A rich console on stderr (progress, QR codes, warnings); created on demand."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def out_console():
    from rich.console import Console

    return Console(highlight=False)


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
    click.echo(f"Warning: {message}", err=True)


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
