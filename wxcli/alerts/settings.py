"""The ``[alert]`` part of wxcli.toml: rules and channels parsed and validated, time windows
(working and quiet hours), and in-place edits with tomlkit that keep the user's comments.

The generic config loader skips ``[alert.channels.*]`` and ``[alert.rules.*]`` (their keys depend
on the channel type or rule kind); everything about them is checked here, with errors that name
the file and the dotted key.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit

from wxcli.alerts.model import SEVERITIES
from wxcli.alerts.tables import TableReader
from wxcli.errors import ConfigError, UsageError
from wxcli.timeutil import zone
from wxcli.tomledit import TomlFile, tidy

#: Every rule kind, in the order `alert list` shows them.
RULE_KINDS = (
    "session_lost",
    "login_needed",
    "watch_down",
    "silence",
    "error",
    "keyword",
    "negative",
    "unanswered",
)

#: Where `error` alerts come from (the ``sources`` key filters them).
ERROR_SOURCES = ("sync", "database", "media", "send", "feed")

#: Default cooldown per kind, in minutes. Keys already tell alerts apart (per chat, per sender,
#: per session…), so these only stop one ongoing problem from repeating itself.
DEFAULT_COOLDOWN_MINUTES = {
    "session_lost": 60.0,  # the key names the session: a later loss alerts again
    "login_needed": 0.0,  # each new QR code is a new key
    "watch_down": 60.0,
    "silence": 60.0,
    "error": 30.0,
    "keyword": 10.0,
    "negative": 10.0,
    "unanswered": 4 * 24 * 60.0,  # once per waiting customer message (keys name the message)
}

DEFAULT_MINUTES = {"watch_down": 10.0, "silence": 30.0, "unanswered": 15.0}

_COMMON_KEYS = {"kind", "channels", "cooldown_minutes", "quiet_hours", "severity", "enabled"}
_KIND_KEYS: dict[str, set[str]] = {
    "session_lost": set(),
    "login_needed": set(),
    "watch_down": {"minutes"},
    "silence": {"chats", "minutes", "min_messages", "baseline_days"},
    "error": {"sources"},
    "keyword": {"chats", "pattern", "words", "include_self"},
    "negative": {"chats", "threshold", "window_minutes", "share", "min_messages"},
    "unanswered": {"chats", "minutes", "staff"},
}

_NAME = re.compile(r"^[\w-]{1,64}$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(
    r"^(?:(?P<d1>[a-z]{3})(?:-(?P<d2>[a-z]{3}))?\s+)?"
    r"(?P<h1>\d{1,2}):(?P<m1>\d{2})\s*-\s*(?P<h2>\d{1,2}):(?P<m2>\d{2})$"
)


# --- time windows ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeWindows:
    """Recurring local-time windows such as ``"mon-fri 09:00-18:00, sat 10:00-14:00"``.

    Each span is (weekdays, start minute, end minute); an end at or before the start runs past
    midnight into the next day ("22:00-07:00"). Used for working hours and quiet hours.
    """

    text: str
    spans: tuple[tuple[frozenset[int], int, int], ...]

    @classmethod
    def parse(cls, text: str) -> TimeWindows:
        """Parse the text form; raises ValueError with what is wrong and an example."""
        spans = []
        for raw in re.split(r"[,;]", text):
            item = " ".join(raw.strip().lower().split())
            if not item:
                continue
            m = _SPAN.match(item)
            if not m:
                raise ValueError(
                    f"cannot read {raw.strip()!r}: use HH:MM-HH:MM, optionally after days, "
                    'e.g. "mon-fri 09:00-18:00, sat 10:00-14:00"'
                )
            days = frozenset(range(7))
            if m["d1"]:
                if m["d1"] not in _DAYS or (m["d2"] and m["d2"] not in _DAYS):
                    raise ValueError(f"unknown day in {raw.strip()!r}: use {', '.join(_DAYS)}")
                a = _DAYS.index(m["d1"])
                b = _DAYS.index(m["d2"]) if m["d2"] else a
                days = frozenset((a + i) % 7 for i in range((b - a) % 7 + 1))
            start = int(m["h1"]) * 60 + int(m["m1"])
            end = int(m["h2"]) * 60 + int(m["m2"])
            if int(m["m1"]) > 59 or int(m["m2"]) > 59 or start > 1439 or end > 1440:
                raise ValueError(f"impossible time in {raw.strip()!r}")
            if start == end:
                raise ValueError(f"{raw.strip()!r} is empty (start equals end)")
            spans.append((days, start, end))
        if not spans:
            raise ValueError("no time window given")
        return cls(text.strip(), tuple(spans))

    def intervals(self, first: date, last: date, tz: tzinfo) -> list[tuple[datetime, datetime]]:
        """The concrete windows starting on local days ``first``..``last``, merged, in UTC."""
        out: list[tuple[datetime, datetime]] = []
        day = first
        while day <= last:
            for days, start, end in self.spans:
                if day.weekday() not in days:
                    continue
                begin = _local(day, start, tz)
                finish = _local(day, end, tz) if end > start else _local(day, end + 1440, tz)
                out.append((begin, finish))
            day += timedelta(days=1)
        out.sort()
        merged: list[tuple[datetime, datetime]] = []
        for begin, finish in out:
            if merged and begin <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
            else:
                merged.append((begin, finish))
        return merged

    def contains(self, when: datetime, tz: tzinfo) -> bool:
        day = when.astimezone(tz).date()
        return any(a <= when < b for a, b in self.intervals(day - timedelta(days=1), day, tz))

    def seconds_between(self, start: datetime, end: datetime, tz: tzinfo) -> float:
        """How much of ``[start, end)`` falls inside the windows, in seconds."""
        if end <= start:
            return 0.0
        first = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date()
        total = 0.0
        for a, b in self.intervals(first, last, tz):
            overlap = (min(b, end) - max(a, start)).total_seconds()
            if overlap > 0:
                total += overlap
        return total


def _local(day: date, minute: int, tz: tzinfo) -> datetime:
    day += timedelta(days=minute // 1440)
    minute %= 1440
    return datetime.combine(day, time(minute // 60, minute % 60), tz).astimezone(UTC)


# --- parsed settings -------------------------------------------------------------------------


@dataclass
class RuleSpec:
    """One validated ``[alert.rules.<name>]`` table (keys that do not apply keep defaults)."""

    name: str
    kind: str
    channels: tuple[str, ...] = ()  # empty = every channel
    cooldown_seconds: float = 600.0
    quiet_hours: TimeWindows | None = None
    severity: str | None = None  # None = the kind's own
    enabled: bool = True
    chats: tuple[str, ...] = ()  # globs; empty = every chat
    pattern: re.Pattern[str] | None = None
    words: tuple[str, ...] = ()
    include_self: bool = False
    threshold: float | None = None
    minutes: float | None = None
    window_minutes: float | None = None
    share: float = 0.5
    min_messages: int = 5
    baseline_days: int = 7
    staff: tuple[str, ...] = ()
    sources: tuple[str, ...] = ERROR_SOURCES
    implicit: bool = False  # a built-in default rule (no [alert.rules] configured)

    def summary(self) -> str:
        """The rule's settings in one line, for `alert list`."""
        parts = []
        if self.chats:
            parts.append(f"chats {', '.join(self.chats)}")
        if self.pattern is not None:
            parts.append(f"pattern /{self.pattern.pattern}/")
        if self.words:
            parts.append(f"words {'|'.join(self.words)}")
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold:g}")
        if self.minutes is not None:
            parts.append(f"{self.minutes:g} min")
        if self.window_minutes is not None:
            parts.append(
                f"share ≥ {self.share:g} of ≥ {self.min_messages} in {self.window_minutes:g} min"
            )
        if self.kind == "silence":
            parts.append(f"busy = ≥ {self.min_messages} msgs ({self.baseline_days}-day average)")
        if self.staff:
            parts.append(f"staff + {', '.join(self.staff)}")
        if self.kind == "error" and tuple(self.sources) != ERROR_SOURCES:
            parts.append(f"sources {', '.join(self.sources)}")
        parts.append(f"cooldown {_duration(self.cooldown_seconds)}")
        if self.quiet_hours is not None:
            parts.append(f"quiet {self.quiet_hours.text}")
        if not self.enabled:
            parts.append("DISABLED")
        return "; ".join(parts)


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 3600 == 0:
        return f"{seconds / 86400:g} d"
    if seconds >= 7200:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 60:g} min"


@dataclass
class AlertSettings:
    """Everything under ``[alert]``, validated; channel tables stay raw until built with env."""

    digest_seconds: float = 30.0
    retries: int = 3
    retry_seconds: float = 5.0
    check_seconds: float = 15.0
    qr_url_base: str = ""
    staff: tuple[str, ...] = ()
    working_hours: TimeWindows | None = None  # None = always
    tz: tzinfo = UTC
    timezone: str = "UTC"
    channels: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    rules: list[RuleSpec] = field(default_factory=list)
    negative_threshold: float = 0.3

    @property
    def enabled(self) -> bool:
        """Alerting is on when at least one channel is configured."""
        return bool(self.channels)

    def in_working_hours(self, when: datetime) -> bool:
        return self.working_hours is None or self.working_hours.contains(when, self.tz)

    def working_seconds(self, start: datetime, end: datetime) -> float:
        if self.working_hours is None:
            return max((end - start).total_seconds(), 0.0)
        return self.working_hours.seconds_between(start, end, self.tz)


class _Reader(TableReader):
    """Typed reads of one table with errors naming ``alert.<...>.<key>`` and the file."""

    def number(self, key: str, default: float | None, *, minimum: float = 0.0) -> float | None:
        value = self.table.get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            raise self.error(key, f"must be a number ≥ {minimum:g}, not {value!r}")
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int = 0) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"must be a whole number ≥ {minimum}, not {value!r}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        """A list of non-empty strings (a single string is accepted as a list of one)."""
        value = self.table.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            raise self.error(key, f"must be a list of non-empty strings, not {value!r}")
        return tuple(v.strip() for v in value)

    def windows(self, key: str) -> TimeWindows | None:
        value = self.table.get(key, "")
        if not isinstance(value, str):
            raise self.error(key, f'must be a string like "09:00-18:00", not {value!r}')
        if not value.strip():
            return None
        try:
            return TimeWindows.parse(value)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None


def check_name(name: str, what: str) -> str:
    """Channel and rule names: letters (any script), digits, ``_`` and ``-``, up to 64."""
    if not _NAME.match(name or ""):
        raise ConfigError(
            f"{what} name {name!r} is not allowed: use letters, digits, '_' or '-' (max 64)"
        )
    return name


def parse_rule(
    name: str,
    table: Mapping[str, Any],
    *,
    channel_names: set[str] | None = None,
    path: str | None = None,
) -> RuleSpec:
    """Validate one ``[alert.rules.<name>]`` table."""
    r = _Reader(f"alert.rules.{name}", table, path)
    if not isinstance(table, Mapping):
        raise r.error("", "must be a table, e.g. [alert.rules.complaints]")
    if not _NAME.match(name):
        raise r.error("", "rule names use letters, digits, '_' or '-' (max 64)")
    kind = table.get("kind")
    if kind not in RULE_KINDS:
        problem = "missing" if kind is None else f"{kind!r} is not a rule kind"
        raise r.error("kind", f"{problem}; one of {', '.join(RULE_KINDS)}")
    r.check_keys(_COMMON_KEYS | _KIND_KEYS[kind])
    channels = r.strings("channels")
    if channel_names is not None:
        for ch in channels:
            if ch not in channel_names:
                near = difflib.get_close_matches(ch, sorted(channel_names), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                known = ", ".join(sorted(channel_names)) or "none configured"
                raise r.error("channels", f"no channel named {ch!r}{hint} (channels: {known})")
    severity = table.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise r.error("severity", f"must be one of {', '.join(SEVERITIES)}, not {severity!r}")
    cooldown = r.number("cooldown_minutes", DEFAULT_COOLDOWN_MINUTES[kind])
    spec = RuleSpec(
        name=name,
        kind=kind,
        channels=channels,
        cooldown_seconds=(cooldown or 0.0) * 60,
        quiet_hours=r.windows("quiet_hours"),
        severity=severity,
        enabled=r.boolean("enabled", True),
    )
    if "chats" in _KIND_KEYS[kind]:
        spec.chats = r.strings("chats")
    if kind in DEFAULT_MINUTES:
        spec.minutes = r.number("minutes", DEFAULT_MINUTES[kind], minimum=0.1)
    if kind == "silence":
        spec.min_messages = r.integer("min_messages", 5, minimum=1)
        spec.baseline_days = r.integer("baseline_days", 7, minimum=1)
        if spec.baseline_days > 60:
            raise r.error("baseline_days", "at most 60 days")
    elif kind == "error":
        sources = r.strings("sources") or ERROR_SOURCES
        for s in sources:
            if s not in ERROR_SOURCES:
                raise r.error("sources", f"{s!r} is not one of {', '.join(ERROR_SOURCES)}")
        spec.sources = sources
    elif kind == "keyword":
        _keyword(r, spec)
    elif kind == "negative":
        spec.threshold = r.number("threshold", None)
        if spec.threshold is not None and spec.threshold > 1:
            raise r.error("threshold", "sentiment is between 0 and 1; e.g. threshold = 0.2")
        spec.window_minutes = r.number("window_minutes", None, minimum=1.0)
        spec.share = r.number("share", 0.5) or 0.0
        if not 0 < spec.share <= 1:
            raise r.error("share", "must be a fraction in (0, 1], e.g. share = 0.5")
        spec.min_messages = r.integer("min_messages", 5, minimum=1)
        if spec.window_minutes is None and ("share" in table or "min_messages" in table):
            raise r.error(
                "window_minutes",
                "share and min_messages need a window, e.g. window_minutes = 60",
            )
    elif kind == "unanswered":
        spec.staff = r.strings("staff")
    return spec


def _keyword(r: _Reader, spec: RuleSpec) -> None:
    pattern = r.table.get("pattern")
    spec.words = r.strings("words")
    if pattern is None and not spec.words:
        raise r.error("pattern", 'missing; e.g. pattern = "退款|投诉|差评" or words = ["退款"]')
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise r.error("pattern", f"must be a non-empty regular expression, not {pattern!r}")
        try:
            spec.pattern = re.compile(pattern)
        except re.error as exc:
            raise r.error("pattern", f"not a valid regular expression: {exc}") from None
        if spec.pattern.search(""):
            raise r.error("pattern", "matches the empty string, so it would match every message")
    spec.include_self = r.boolean("include_self", False)


def default_rules() -> list[RuleSpec]:
    """What alerts when channels exist but no rule is configured: the bot's own health."""
    out = []
    for kind in ("session_lost", "login_needed", "watch_down", "error"):
        spec = parse_rule(kind, {"kind": kind})
        spec.implicit = True
        out.append(spec)
    return out


def parse_alert_settings(
    section: Mapping[str, Any],
    *,
    negative_threshold: float = 0.3,
    path: str | None = None,
) -> AlertSettings:
    """Validate the whole ``[alert]`` table (scalars, channel tables' names, every rule)."""
    top = _Reader("alert", section, path)
    s = AlertSettings(negative_threshold=negative_threshold)
    s.digest_seconds = top.number("digest_seconds", 30.0) or 0.0
    s.retries = top.integer("retries", 3, minimum=1)
    s.retry_seconds = top.number("retry_seconds", 5.0) or 0.0
    s.check_seconds = top.number("check_seconds", 15.0, minimum=0.1) or 15.0
    base = section.get("qr_url_base", "")
    if not isinstance(base, str):
        raise top.error("qr_url_base", f"must be a string, not {base!r}")
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise top.error("qr_url_base", f"must be an http(s) URL prefix, not {base!r}")
    s.qr_url_base = base
    s.staff = top.strings("staff")
    s.working_hours = top.windows("working_hours")
    tz_name = section.get("timezone", "Asia/Shanghai")
    if not isinstance(tz_name, str):
        raise top.error("timezone", f"must be a string, not {tz_name!r}")
    try:
        s.tz = zone(tz_name)
    except UsageError:
        raise top.error("timezone", f"unknown time zone {tz_name!r}; e.g. Asia/Shanghai") from None
    s.timezone = tz_name or "UTC"
    channels = section.get("channels", {})
    if not isinstance(channels, Mapping):
        raise top.error("channels", "must be a table of channels, e.g. [alert.channels.ops]")
    for name, spec in channels.items():
        if not _NAME.match(name):
            raise top.error(f"channels.{name}", "channel names use letters, digits, '_' or '-'")
        if not isinstance(spec, Mapping):
            raise top.error(f"channels.{name}", "must be a table")
    s.channels = {name: spec for name, spec in channels.items()}
    rules = section.get("rules", {})
    if not isinstance(rules, Mapping):
        raise top.error("rules", "must be a table of rules, e.g. [alert.rules.complaints]")
    names = set(s.channels)
    s.rules = [parse_rule(n, t, channel_names=names, path=path) for n, t in rules.items()]
    clash = names & set(rules)
    if clash:
        raise top.error(
            f"rules.{sorted(clash)[0]}", "a channel has the same name; names must be unique"
        )
    if not s.rules and s.channels:
        s.rules = default_rules()
    return s


def load_alert_settings(config: Any) -> AlertSettings:
    """The validated ``[alert]`` settings of a loaded :class:`~wxcli.config.Config`."""
    section: dict[str, Any] = dict(config.data.get("alert", {}))
    section["channels"] = config.table("alert", "channels")
    section["rules"] = config.table("alert", "rules")
    threshold = float(config.data.get("analysis", {}).get("negative_threshold", 0.3))
    path = str(config.path) if getattr(config, "path", None) else None
    return parse_alert_settings(section, negative_threshold=threshold, path=path)


def placeholder_env(channels: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The real environment, plus a stand-in for every secret variable the channels name,
    so a channel can be validated where its secret is not set (e.g. `alert add-channel`)."""
    from wxcli.alerts.channels import SECRET_ENV_KEYS

    env = dict(os.environ)
    for spec in channels.values():
        for key in SECRET_ENV_KEYS:
            var = spec.get(key)
            if isinstance(var, str) and var and not env.get(var):
                env[var] = "placeholder"
    return env


def missing_secrets(channels: Mapping[str, Mapping[str, Any]]) -> Iterator[tuple[str, str]]:
    """(channel, variable) for each secret variable that is named but not set now."""
    from wxcli.alerts.channels import SECRET_ENV_KEYS

    for name, spec in channels.items():
        for key in SECRET_ENV_KEYS:
            var = spec.get(key)
            if isinstance(var, str) and var and not os.environ.get(var):
                yield name, var


# --- editing wxcli.toml in place -------------------------------------------------------------


class AlertConfigFile(TomlFile):
    """Edits the ``[alert]`` tables of one wxcli.toml, keeping comments and layout.

    Every change is validated (as the loader would) before the file is written, atomically.
    """

    # -- reading ------------------------------------------------------------------------------

    def section(self) -> dict[str, Any]:
        """The ``[alert]`` table as plain Python values."""
        return self.plain("alert")

    def channels(self) -> dict[str, Any]:
        return dict(self.section().get("channels", {}))

    def rules(self) -> dict[str, Any]:
        return dict(self.section().get("rules", {}))

    # -- changing -----------------------------------------------------------------------------

    def add_channel(self, name: str, spec: Mapping[str, Any], *, replace: bool = False) -> None:
        """Add (or with ``replace``, overwrite) ``[alert.channels.<name>]``; validated first."""
        from wxcli.alerts.channels import build_channel

        check_name(name, "channel")
        if name in self.rules():
            raise ConfigError(f"a rule is already named {name!r}; channel names must differ")
        if name in self.channels() and not replace:
            raise ConfigError(f"channel {name!r} exists already (use --replace to overwrite it)")
        clean = {k: tidy(v) for k, v in spec.items() if v is not None}
        build_channel(name, clean, placeholder_env({name: clean}), config_path=str(self.path))
        self.put("alert", "channels", name, clean)
        self.validate()

    def add_rule(self, name: str, spec: Mapping[str, Any], *, replace: bool = False) -> RuleSpec:
        """Add (or overwrite) ``[alert.rules.<name>]``; its channels must exist."""
        check_name(name, "rule")
        if name in self.channels():
            raise ConfigError(f"a channel is already named {name!r}; rule names must differ")
        if name in self.rules() and not replace:
            raise ConfigError(f"rule {name!r} exists already (use --replace to overwrite it)")
        clean = {k: tidy(v) for k, v in spec.items() if v is not None and v != []}
        parsed = parse_rule(name, clean, channel_names=set(self.channels()))
        self.put("alert", "rules", name, clean)
        self.validate()
        return parsed

    def remove(self, name: str) -> str:
        """Remove the channel or rule ``name``; returns "channel" or "rule".

        A channel that rules still name is not removed (the error lists those rules)."""
        if name in self.channels():
            users = [r for r, t in self.rules().items() if name in _as_list(t.get("channels"))]
            if users:
                raise ConfigError(
                    f"channel {name!r} is used by rule(s) {', '.join(sorted(users))}; "
                    "remove those rules or their reference to it first"
                )
            self.delete("alert", "channels", name)
            return "channel"
        if name in self.rules():
            self.delete("alert", "rules", name)
            return "rule"
        known = sorted(set(self.channels()) | set(self.rules()))
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"no channel or rule named {name!r}{hint}")

    def validate(self) -> AlertSettings:
        """Parse the edited ``[alert]`` table exactly as a run would (secrets stood in)."""
        from wxcli.alerts.channels import build_channel

        settings = parse_alert_settings(self.section(), path=str(self.path))
        env = placeholder_env(settings.channels)
        for name, spec in settings.channels.items():
            build_channel(name, spec, env, config_path=str(self.path))
        return settings


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
