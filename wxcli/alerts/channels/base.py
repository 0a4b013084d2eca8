"""The channel interface, the ``type`` → class registry, config-table reading, and the few
byte-level helpers (JSON bodies, HMAC, base64) that more than one channel needs.

Nothing here knows a particular channel: each channel module imports this one, never the
other way round, and :func:`build_channel` finds a channel's class only through the registry.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from wxcli.alerts.model import Alert
from wxcli.alerts.tables import TableReader

#: One logger for every channel module: log lines name ``wxcli.alerts.channels`` as they did
#: when the channels were one module, so log filters and greps keep working.
log = logging.getLogger("wxcli.alerts.channels")

DEFAULT_TIMEOUT = 10.0

#: Sends a WeChat text ``(to, text)`` through the live session (see alerts.engine).
WeChatSender = Callable[[str, str], object]


@dataclass(frozen=True)
class BuildContext:
    """What building a channel may use besides its table: where secrets come from, and the
    live-session sender for channels that talk through WeChat itself."""

    env: Mapping[str, str]
    wechat_sender: WeChatSender | None = None


class Channel(ABC):
    """A named way to deliver alerts.

    Subclasses set :attr:`kind` (the ``type`` in ``[alert.channels.<name>]``) and
    :attr:`config_keys`, parse their table in :meth:`from_config`, and deliver in
    :meth:`send`, which raises :class:`~wxcli.errors.AlertError` with the exact reason when it
    cannot (bounded by a timeout; retries belong to the dispatcher).
    """

    kind: ClassVar[str] = ""
    #: Every key the channel's config table may hold (``type`` included).
    config_keys: ClassVar[frozenset[str]] = frozenset({"type"})
    #: The keys that name an environment variable holding a secret (``password_env`` …):
    #: ``wxcli alert`` stands in for unset ones when validating and says which are unset.
    secret_env_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    @abstractmethod
    def from_config(cls, table: ChannelTable, ctx: BuildContext) -> Channel:
        """Validate ``table`` (ConfigError naming the key on any problem) and build."""

    @abstractmethod
    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` once or raise AlertError saying why not."""

    @property
    def target(self) -> str:
        """Where the channel delivers, for logs and listings; never contains a secret."""
        return self.kind

    def skip_reason(self, alert: Alert) -> str | None:
        """Why this channel cannot carry ``alert`` at all (the dispatcher then skips it
        instead of retrying), or None. Most channels can carry everything."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.target}>"


# --- the registry ----------------------------------------------------------------------------

_REGISTRY: dict[str, type[Channel]] = {}

C = TypeVar("C", bound=type[Channel])


def register(cls: C) -> C:
    """Make ``cls`` the channel for ``type = "<cls.kind>"`` (the package ``__init__`` registers
    every channel, in the order error messages list the types in)."""
    if not cls.kind:
        raise TypeError(f"{cls.__name__} has no kind")
    if _REGISTRY.get(cls.kind, cls) is not cls:
        raise TypeError(f"channel type {cls.kind!r} is registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def channel_types() -> tuple[str, ...]:
    """Every registered channel ``type``, in registration order."""
    return tuple(_REGISTRY)


def secret_env_keys() -> tuple[str, ...]:
    """Every key some channel reads a secret's variable name from, in registration order."""
    return tuple(dict.fromkeys(k for cls in _REGISTRY.values() for k in cls.secret_env_keys))


def build_channel(
    name: str,
    spec: Mapping[str, Any],
    env: Mapping[str, str] = os.environ,
    *,
    wechat_sender: WeChatSender | None = None,
    config_path: str | None = None,
) -> Channel:
    """Validate one ``[alert.channels.<name>]`` table and build its channel.

    Secrets come from ``env`` (``password_env`` / ``secret_env`` name the variables), so the
    config file never holds them. Raises ConfigError naming the channel and key on any problem.
    """
    table = ChannelTable(name, spec, config_path)
    if not isinstance(spec, Mapping):
        raise table.error("type", "the channel must be a table, e.g. [alert.channels.ops]")
    kind = spec.get("type")
    cls = _REGISTRY.get(kind) if isinstance(kind, str) else None
    if cls is None:
        shown = ", ".join(f'"{t}"' for t in _REGISTRY)
        problem = "missing" if kind is None else f"{kind!r} is not a channel type"
        raise table.error("type", f"{problem}; one of {shown}")
    return cls.from_config(table, BuildContext(env, wechat_sender))


# --- reading a channel's table ---------------------------------------------------------------


class ChannelTable(TableReader):
    """Typed reads of one ``[alert.channels.<name>]`` table, with errors that name the key."""

    def __init__(self, name: str, spec: Mapping[str, Any], path: str | None) -> None:
        super().__init__(f"alert.channels.{name}", spec, path)
        self.name = name
        self.spec = spec

    def required(self, key: str, example: str) -> str:
        value = self.string(key)
        if value is None:
            raise self.error(key, f"missing; e.g. {example}")
        return value

    def string(self, key: str) -> str | None:
        value = self.spec.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, not {value!r}")
        return value.strip()

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.spec.get(key, default)
        if value not in choices:
            shown = ", ".join(f'"{c}"' for c in choices)
            raise self.error(key, f"must be one of {shown}, not {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.spec.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.error(key, f"must be a positive number of seconds, not {value!r}")
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.spec.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def secret(self, key: str, env: Mapping[str, str]) -> str | None:
        """Read the env var named by ``key``; never the secret itself from the file."""
        var = self.string(key)
        if var is None:
            return None
        value = env.get(var)
        if not value:
            raise self.error(key, f"environment variable {var} (named by {key}) is not set")
        return value

    def no_literal_secret(self, key: str, env_key: str, example_var: str, what: str) -> None:
        """Refuse ``key`` (a secret written into the file) and say to name a variable."""
        if key in self.spec:
            raise self.error(
                key,
                f"do not put the {what} in the config file; store it in an environment "
                f'variable and name that variable instead, e.g. {env_key} = "{example_var}"',
            )


# --- bytes shared by several channels --------------------------------------------------------


def json_body(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept as is (the robots count bytes of exactly this)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The MAC every signing scheme here is built on (they differ in key, message and encoding)."""
    return hmac.new(key, message, hashlib.sha256).digest()
