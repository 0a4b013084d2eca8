"""The one time helper: parsing ``--since 7d`` / ``--since 2026-11-01`` for ``history`` and
``stats``, zones and local days, and the naive-UTC ↔ aware conversion at the database edge
(the archive stores naive UTC datetimes; everything above it works with aware ones)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wxcli.errors import UsageError

_REL = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.I)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def utc_now() -> datetime:
    """Now as an aware UTC datetime: the default wherever a clock is injectable."""
    return datetime.now(UTC)


def utc_naive(dt: datetime) -> datetime:
    """``dt`` as a naive UTC datetime, the form the database columns hold."""
    return dt.astimezone(UTC).replace(tzinfo=None)


def utc_aware(dt: datetime) -> datetime:
    """A datetime read from the database (naive means UTC) as an aware one."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def zone(name: str) -> tzinfo:
    """A time zone by IANA name; empty means UTC."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"unknown time zone {name!r} (use an IANA name like Asia/Shanghai)")


def parse_when(
    text: str, tz: tzinfo, *, now: datetime | None = None, end: bool = False
) -> datetime:
    """``7d`` / ``12h`` / ``30m`` ago, a date (local midnight; the next midnight when ``end``),
    or an ISO date-time (local unless it has an offset). Returns an aware UTC datetime."""
    try:
        return _parse_when(text, tz, now or datetime.now(UTC), end)
    except OverflowError:  # 99999999999d ago, the day after 9999-12-31
        raise UsageError(f"the time {text.strip()!r} is out of range") from None


def _parse_when(text: str, tz: tzinfo, now: datetime, end: bool) -> datetime:
    text = text.strip()
    m = _REL.match(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    if text in ("today", "yesterday"):
        day = now.astimezone(tz).date() - timedelta(days=1 if text == "yesterday" else 0)
        return local_midnight(day + timedelta(days=1 if end else 0), tz)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return local_midnight(day + timedelta(days=1 if end else 0), tz)
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"cannot read the time {text!r}: use 7d, 12h, 30m, 2026-11-01 or 2026-11-01T09:30"
        )
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(UTC)


def local_midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tz).astimezone(UTC)


def local_day(dt: datetime, tz: tzinfo) -> date:
    return dt.astimezone(tz).date()
