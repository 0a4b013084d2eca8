"""``[feed]`` and ``[feed.sinks.<name>]`` in wxcli.toml: parsed, validated, and edited in place."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wxcli.errors import ConfigError
from wxcli.protocol.content import MESSAGE_KINDS
from wxcli.tomledit import TomlFile

SINK_KINDS = ("webhook", "redis")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_COMMON = {"kind", "url", "chats", "kinds", "exclude_self", "roster", "enabled", "batch_size"}
_KEYS = {
    "webhook": _COMMON | {"secret_env", "timeout", "headers"},
    "redis": _COMMON | {"stream", "maxlen", "password_env", "timeout"},
}
DEFAULT_STREAM = "wxcli:messages"
DEFAULT_MAXLEN = 100_000


@dataclass(frozen=True)
class SinkSpec:
    """One sink as configured; secrets are named by environment variable, never stored."""

    name: str
    kind: str  # webhook | redis
    url: str
    chats: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    exclude_self: bool = False
    roster: bool = True  # also deliver join/leave/rename events
    enabled: bool = True
    batch_size: int | None = None
    timeout: float = 10.0
    secret_env: str = ""  # webhook: HMAC-SHA256 key
    headers: Mapping[str, str] = field(default_factory=dict)
    stream: str = DEFAULT_STREAM  # redis
    maxlen: int = DEFAULT_MAXLEN
    password_env: str = ""

    def secret(self, env: Mapping[str, str] = os.environ) -> str:
        return env.get(self.secret_env, "") if self.secret_env else ""

    def password(self, env: Mapping[str, str] = os.environ) -> str:
        return env.get(self.password_env, "") if self.password_env else ""

    def where(self) -> str:
        """The target without credentials or query, for messages and logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        if self.kind == "redis":
            return f"redis {host}{port} stream {self.stream}"
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def to_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "url": self.url}
        if self.chats:
            out["chats"] = list(self.chats)
        if self.kinds:
            out["kinds"] = list(self.kinds)
        if self.exclude_self:
            out["exclude_self"] = True
        if not self.roster:
            out["roster"] = False
        if not self.enabled:
            out["enabled"] = False
        if self.batch_size:
            out["batch_size"] = self.batch_size
        if self.timeout != 10.0:
            out["timeout"] = self.timeout
        if self.kind == "webhook":
            if self.secret_env:
                out["secret_env"] = self.secret_env
            if self.headers:
                out["headers"] = dict(self.headers)
        else:
            if self.stream != DEFAULT_STREAM:
                out["stream"] = self.stream
            if self.maxlen != DEFAULT_MAXLEN:
                out["maxlen"] = self.maxlen
            if self.password_env:
                out["password_env"] = self.password_env
        return out


def kind_of_url(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return "webhook"
    if scheme in ("redis", "rediss", "unix"):
        return "redis"
    raise ConfigError(f"{url!r}: a sink URL starts with http(s):// (webhook) or redis:// (Redis)")


def parse_sink(name: str, spec: Mapping[str, Any], path: str = "") -> SinkSpec:
    key = f"feed.sinks.{name}"

    def bad(what: str, sub: str = "") -> ConfigError:
        return ConfigError(what, path=path or None, key=f"{key}.{sub}" if sub else key)

    if not _NAME.match(name):
        raise bad("a sink name is 1-64 letters, digits, '_', '-' or '.'")
    if not isinstance(spec, Mapping):
        raise bad("must be a table")
    url = spec.get("url")
    if not isinstance(url, str) or not url:
        raise bad("needs a url (http(s)://… for a webhook, redis://… for Redis)", "url")
    kind = spec.get("kind") or kind_of_url(url)
    if kind not in SINK_KINDS:
        raise bad(f"unknown kind {kind!r}; one of {', '.join(SINK_KINDS)}", "kind")
    if kind_of_url(url) != kind:
        raise bad(
            f"a {kind} sink's url must start with "
            + ("http(s)://" if kind == "webhook" else "redis://"),
            "url",
        )
    if urlsplit(url).scheme in ("http", "https") and not urlsplit(url).hostname:
        raise bad("the url has no host", "url")
    unknown = set(spec) - _KEYS[kind]
    if unknown:
        k = sorted(unknown)[0]
        near = difflib.get_close_matches(k, sorted(_KEYS[kind]), n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise bad(f"unknown setting for a {kind} sink{hint}", k)

    def strings(k: str, allowed: tuple[str, ...] | None = None) -> tuple[str, ...]:
        v = spec.get(k, [])
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
            raise bad("must be a list of non-empty strings", k)
        if allowed:
            for x in v:
                if x not in allowed:
                    raise bad(f"unknown {x!r}; one of {', '.join(allowed)}", k)
        return tuple(v)

    def boolean(k: str, default: bool) -> bool:
        v = spec.get(k, default)
        if not isinstance(v, bool):
            raise bad("must be true or false", k)
        return v

    def number(k: str, default: float, lo: float, hi: float) -> float:
        v = spec.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise bad(f"must be a number from {lo:g} to {hi:g}", k)
        return float(v)

    headers = spec.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and "\n" not in v and "\r" not in v
        for k, v in headers.items()
    ):
        raise bad("must be a table of header names to one-line strings", "headers")
    stream = spec.get("stream", DEFAULT_STREAM)
    if not isinstance(stream, str) or not stream:
        raise bad("must be a non-empty string", "stream")
    for env_key in ("secret_env", "password_env"):
        v = spec.get(env_key, "")
        if not isinstance(v, str) or (v and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", v)):
            raise bad(
                "must name an environment variable (the secret itself never goes here)", env_key
            )
    batch = spec.get("batch_size")
    return SinkSpec(
        name=name,
        kind=kind,
        url=url,
        chats=strings("chats"),
        kinds=strings("kinds", MESSAGE_KINDS),
        exclude_self=boolean("exclude_self", False),
        roster=boolean("roster", True),
        enabled=boolean("enabled", True),
        batch_size=int(number("batch_size", 100, 1, 10_000)) if batch is not None else None,
        timeout=number("timeout", 10.0, 0.1, 600.0),
        secret_env=str(spec.get("secret_env", "")),
        headers=dict(headers),
        stream=stream,
        maxlen=int(number("maxlen", DEFAULT_MAXLEN, 1, 10**9)),
        password_env=str(spec.get("password_env", "")),
    )


@dataclass(frozen=True)
class FeedSettings:
    poll_seconds: float = 0.5
    batch_size: int = 100
    retry_seconds: float = 1.0
    max_backlog: int = 10_000
    media_wait_seconds: float = 30.0
    sinks: tuple[SinkSpec, ...] = ()

    def sink(self, name: str) -> SinkSpec:
        for s in self.sinks:
            if s.name == name:
                return s
        near = difflib.get_close_matches(name, [s.name for s in self.sinks], n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(f"no feed sink named {name!r}{hint} (see `wxcli feed list`)")


def load_feed_settings(config: Any) -> FeedSettings:
    """The ``[feed]`` settings of a loaded :class:`wxcli.config.Config`."""
    f = config.settings.feed
    path = str(config.path or "")
    sinks = tuple(parse_sink(n, s, path) for n, s in config.table("feed", "sinks").items())
    return FeedSettings(
        poll_seconds=float(f.poll_seconds),
        batch_size=max(f.batch_size, 1),
        retry_seconds=float(f.retry_seconds),
        max_backlog=f.max_backlog,
        media_wait_seconds=float(f.media_wait_seconds),
        sinks=sinks,
    )


class FeedConfigFile(TomlFile):
    """Adds and removes ``[feed.sinks.<name>]`` in wxcli.toml (comments kept, validated)."""

    def sinks(self) -> dict[str, Any]:
        return dict(self.plain("feed").get("sinks", {}))

    def add(self, spec: SinkSpec, *, replace: bool = False) -> None:
        if spec.name in self.sinks() and not replace:
            raise ConfigError(f"sink {spec.name!r} exists already (use --replace to overwrite it)")
        values = spec.to_toml()
        parse_sink(spec.name, values, str(self.path))
        self.put("feed", "sinks", spec.name, values)

    def remove(self, name: str) -> None:
        if name not in self.sinks():
            near = difflib.get_close_matches(name, list(self.sinks()), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ConfigError(f"no feed sink named {name!r}{hint}")
        self.delete("feed", "sinks", name)
