"""wxcli.toml: one schema, defaults, validation, env-var overrides and a typed view.

The section dataclasses below are the single list of every key (type, default, meaning);
``SCHEMA`` is derived from them for validation, ``config.settings`` gives code typed access, and
``wxcli.toml.example`` documents the same keys (a test keeps the two in step). Unknown keys
only warn (a newer file on an older wxcli should still work); a wrong type is an error naming
the file, key and expected type.
"""

from __future__ import annotations

import logging
import os
import tomllib
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from wxcli.errors import ConfigError

log = logging.getLogger(__name__)

MiB = 1024 * 1024


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    doc: str = ""
    choices: tuple[Any, ...] | None = None


def _k(type_: Any, default: Any, doc: str = "", choices: tuple[Any, ...] | None = None) -> Key:
    return Key(type_, default, doc, choices)


NUM = (int, float)


def _doc(doc: str, choices: tuple[Any, ...] | None = None) -> dict[str, Any]:
    return {"doc": doc, "choices": choices}


# One frozen dataclass per section: the single list of every key, its type, default and
# meaning. ``SCHEMA`` (what validation and the example-file test read) is derived from these,
# and ``Config.settings`` gives code a typed view instead of ``data["serve"]["port"]``.


@dataclass(frozen=True)
class WechatSettings:
    """``[wechat]`` in wxcli.toml."""

    login_url: str = field(
        default="https://login.weixin.qq.com", metadata=_doc("login host base URL")
    )
    desktop_mode: bool = field(
        default=True, metadata=_doc("log in as the UOS desktop client (fewer 1203 refusals)")
    )
    connect_timeout: float = field(default=10.0, metadata=_doc("seconds to connect"))
    read_timeout: float = field(
        default=30.0, metadata=_doc("seconds to wait for an ordinary reply")
    )
    synccheck_timeout: float = field(
        default=40.0, metadata=_doc("seconds to wait for synccheck (server holds ~25 s)")
    )
    login_poll_timeout: float = field(
        default=40.0, metadata=_doc("seconds to wait for one login poll (server ~27 s)")
    )
    login_timeout: float = field(
        default=300.0, metadata=_doc("give up a QR login after this many seconds")
    )
    retries: int = field(
        default=3, metadata=_doc("retries of a request after a transient network error")
    )
    backoff: float = field(
        default=1.0, metadata=_doc("first back-off in seconds; doubles per retry, with jitter")
    )
    backoff_max: float = field(default=30.0, metadata=_doc("longest back-off in seconds"))
    user_agent: str = field(
        default="", metadata=_doc("User-Agent header; empty = a current desktop browser")
    )


@dataclass(frozen=True)
class DatabaseSettings:
    """``[database]`` in wxcli.toml."""

    url: str = field(
        default="", metadata=_doc("sqlite:///path.db or mysql://user@host:3306/db; empty = home")
    )
    password_env: str = field(default="", metadata=_doc("env var holding the database password"))
    store_raw: bool = field(default=True, metadata=_doc("keep each message's raw JSON"))
    connect_timeout: float = field(
        default=5.0, metadata=_doc("seconds one MySQL connection attempt may take")
    )


@dataclass(frozen=True)
class WatchSettings:
    """``[watch]`` in wxcli.toml."""

    relogin: bool = field(
        default=False, metadata=_doc("on session loss, log in again instead of exiting 3")
    )
    contact_refresh_minutes: float = field(
        default=60, metadata=_doc("re-read the address book this often")
    )
    session_save_seconds: float = field(
        default=5.0, metadata=_doc("save sync keys/cookies to the session file")
    )
    health_seconds: float = field(
        default=2.0, metadata=_doc("rewrite the health record this often")
    )
    analysis: bool = field(default=True, metadata=_doc("run the analysis worker process alongside"))
    media: bool = field(default=True, metadata=_doc("download images as they arrive"))
    spin_threshold: int = field(default=5, metadata=_doc("empty syncs in a row before backing off"))
    serve: bool = field(default=False, metadata=_doc("also run the REST shim inside watch"))
    db_retry_seconds: float = field(
        default=2.0,
        metadata=_doc("while the database is down, first retry after this; doubles up to 30 s"),
    )


@dataclass(frozen=True)
class MediaSettings:
    """``[media]`` in wxcli.toml."""

    dir: str = field(default="", metadata=_doc("local media folder; empty = <home>/media"))
    voice: bool = field(default=False, metadata=_doc("also download voice messages"))
    video: bool = field(default=False, metadata=_doc("also download videos"))
    files: bool = field(default=False, metadata=_doc("also download file attachments"))
    max_bytes: int = field(default=50 * MiB, metadata=_doc("skip media larger than this"))
    retries: int = field(default=5, metadata=_doc("download/upload attempts before giving up"))
    retry_seconds: float = field(
        default=5.0, metadata=_doc("first wait before retrying a download; doubles")
    )
    workers: int = field(default=2, metadata=_doc("media download threads in watch"))


@dataclass(frozen=True)
class OssSettings:
    """``[oss]`` in wxcli.toml."""

    endpoint: str = field(
        default="", metadata=_doc("e.g. https://oss-cn-hangzhou.aliyuncs.com; empty = local")
    )
    bucket: str = field(default="", metadata=_doc("bucket name"))
    access_key_id: str = field(default="", metadata=_doc("AccessKey id"))
    access_key_secret_env: str = field(
        default="WXCLI_OSS_SECRET", metadata=_doc("env var holding the secret")
    )
    prefix: str = field(
        default="wxcli", metadata=_doc("key prefix: <prefix>/<yyyy>/<mm>/<dd>/<sha256>.<ext>")
    )
    public_base_url: str = field(
        default="", metadata=_doc("base URL stored with each object (e.g. a CDN)")
    )


@dataclass(frozen=True)
class AnalysisSettings:
    """``[analysis]`` in wxcli.toml."""

    stopwords_file: str = field(default="", metadata=_doc("extra stopwords, one per line"))
    user_dict: str = field(default="", metadata=_doc("jieba user dictionary for product names"))
    min_length: int = field(default=2, metadata=_doc("drop words shorter than this (characters)"))
    filter_emoji: bool = field(default=True, metadata=_doc("drop emoji and [微笑]-style smileys"))
    filter_urls: bool = field(default=True, metadata=_doc("drop URLs"))
    filter_mentions: bool = field(default=True, metadata=_doc("drop @mentions"))
    filter_numbers: bool = field(default=True, metadata=_doc("drop numbers"))
    negative_threshold: float = field(
        default=0.3, metadata=_doc("sentiment below this counts as negative")
    )
    timezone: str = field(
        default="Asia/Shanghai", metadata=_doc("where days begin, for counts and --since dates")
    )
    workers: int = field(
        default=1, metadata=_doc("analysis processes watch runs (they share the work)")
    )
    batch: int = field(default=500, metadata=_doc("messages per analysis batch"))


@dataclass(frozen=True)
class SendSettings:
    """``[send]`` in wxcli.toml."""

    burst: int = field(default=20, metadata=_doc("messages allowed back to back"))
    rate: float = field(default=0.5, metadata=_doc("sustained messages per second after the burst"))
    jitter: float = field(default=0.3, metadata=_doc("random extra delay, seconds"))
    retries: int = field(default=4, metadata=_doc("retries after a 1205 (too frequent)"))
    backoff: float = field(
        default=5.0, metadata=_doc("first back-off after 1205, seconds; doubles")
    )
    max_image_bytes: int = field(default=20 * MiB, metadata=_doc("largest image accepted"))
    queue_limit: int = field(
        default=50, metadata=_doc("senders allowed to wait for the pacer before 429")
    )


@dataclass(frozen=True)
class ServeSettings:
    """``[serve]`` in wxcli.toml."""

    host: str = field(default="127.0.0.1", metadata=_doc("bind address"))
    port: int = field(default=7788, metadata=_doc("bind port"))
    allow_query_key: bool = field(
        default=False, metadata=_doc("accept the legacy ?appkey= (insecure)")
    )
    max_body_bytes: int = field(default=25 * MiB, metadata=_doc("largest request body"))
    threads: int = field(default=8, metadata=_doc("worker threads"))
    image_url_timeout: float = field(
        default=10.0,
        metadata=_doc("seconds to fetch an image_url, in all (connect, headers, body)"),
    )
    allow_private_urls: bool = field(
        default=False, metadata=_doc("let image_url reach private addresses (tests)")
    )
    header_timeout: float = field(
        default=10.0, metadata=_doc("seconds a client may take to send a request's headers")
    )
    connections_per_client: int = field(
        default=20, metadata=_doc("open connections allowed from one address")
    )
    max_wait_seconds: float = field(
        default=30.0, metadata=_doc("longest long poll GET /v1/messages?wait= may ask")
    )
    poll_seconds: float = field(
        default=0.5, metadata=_doc("how often a long poll looks for new messages")
    )


@dataclass(frozen=True)
class KeepaliveSettings:
    """``[keepalive]`` in wxcli.toml."""

    stale_minutes: float = field(
        default=5.0, metadata=_doc("a watch health record older than this counts as down")
    )


@dataclass(frozen=True)
class FeedSettings:
    """``[feed]`` in wxcli.toml."""

    poll_seconds: float = field(
        default=0.5, metadata=_doc("how often each sink looks for new messages")
    )
    batch_size: int = field(
        default=100, metadata=_doc("messages per delivery (one POST, one Redis pipeline)")
    )
    retry_seconds: float = field(
        default=1.0, metadata=_doc("first retry after a failed delivery; doubles up to 60 s")
    )
    max_backlog: int = field(
        default=10000, metadata=_doc("alert when a sink is this many messages behind")
    )
    media_wait_seconds: float = field(
        default=30.0, metadata=_doc("hold an image this long for its download")
    )


@dataclass(frozen=True)
class AlertSettings:
    """``[alert]`` in wxcli.toml."""

    digest_seconds: float = field(
        default=30.0, metadata=_doc("group alerts fired within this window into one")
    )
    retries: int = field(default=3, metadata=_doc("delivery attempts per alert and channel"))
    retry_seconds: float = field(
        default=5.0, metadata=_doc("pause after a failed delivery; doubles per attempt")
    )
    check_seconds: float = field(
        default=15.0, metadata=_doc("how often watch runs the periodic rules")
    )
    qr_url_base: str = field(
        default="", metadata=_doc("public URL prefix where the login QR PNG is served")
    )
    staff: list[str] = field(
        default_factory=list, metadata=_doc("member names that count as staff for `unanswered`")
    )
    working_hours: str = field(default="", metadata=_doc("e.g. 09:00-18:00, empty = always"))
    timezone: str = field(
        default="Asia/Shanghai", metadata=_doc("time zone of working/quiet hours")
    )


SECTIONS = {
    "wechat": WechatSettings,
    "database": DatabaseSettings,
    "watch": WatchSettings,
    "media": MediaSettings,
    "oss": OssSettings,
    "analysis": AnalysisSettings,
    "send": SendSettings,
    "serve": ServeSettings,
    "keepalive": KeepaliveSettings,
    "feed": FeedSettings,
    "alert": AlertSettings,
}


_KEY_TYPES: dict[Any, type | tuple[type, ...]] = {
    str: str,
    bool: bool,
    int: int,
    float: NUM,
    list: list,
}


def _schema() -> dict[str, dict[str, Key]]:
    out: dict[str, dict[str, Key]] = {}
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        keys: dict[str, Key] = {}
        for f in fields(cls):
            hint = hints[f.name]
            kind = _KEY_TYPES[typing.get_origin(hint) or hint]
            if f.default is not MISSING:
                default = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:  # every setting has a default: what an absent key means
                raise TypeError(f"[{section}] {f.name} has no default")
            keys[f.name] = Key(kind, default, f.metadata["doc"], f.metadata["choices"])
        out[section] = keys
    return out


#: section -> key -> Key. Dynamic tables (alert channels/rules, feed sinks) are validated by
#: their own parsers.
SCHEMA: dict[str, dict[str, Key]] = _schema()


@dataclass(frozen=True)
class Settings:
    """Every section of wxcli.toml, typed: ``config.settings.serve.port``."""

    wechat: WechatSettings
    database: DatabaseSettings
    watch: WatchSettings
    media: MediaSettings
    oss: OssSettings
    analysis: AnalysisSettings
    send: SendSettings
    serve: ServeSettings
    keepalive: KeepaliveSettings
    feed: FeedSettings
    alert: AlertSettings

    @classmethod
    def from_data(cls, data: dict[str, dict[str, Any]]) -> Settings:
        return cls(
            **{
                section: kind(**{f.name: data[section][f.name] for f in fields(kind)})
                for section, kind in SECTIONS.items()
            }
        )


#: Tables whose sub-keys are names chosen by the user (validated by their own parsers).
DYNAMIC_TABLES = {("alert", "channels"), ("alert", "rules"), ("feed", "sinks")}


def _type_name(t: type | tuple[type, ...]) -> str:
    if t == NUM:
        return "number"
    if isinstance(t, tuple):
        return " or ".join(x.__name__ for x in t)
    return {str: "string", bool: "boolean", int: "integer", list: "array"}.get(t, t.__name__)


def _check_type(value: Any, key: Key) -> bool:
    if key.type is bool or key.type == (bool,):
        return isinstance(value, bool)
    if isinstance(value, bool):  # bool is an int subclass; never accept it for numbers
        return False
    return isinstance(value, key.type)


@dataclass
class Config:
    """Validated settings: ``cfg.get("wechat", "login_url")`` or ``cfg.wechat["login_url"]``."""

    path: Path | None = None
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, section: str, key: str) -> Any:
        return self.data[section][key]

    @property
    def settings(self) -> Settings:
        """The typed view of the current values (built on each call: components read it once,
        when they start, so tests may still adjust ``data`` before that)."""
        return Settings.from_data(self.data)

    def __getattr__(self, name: str) -> dict[str, Any]:
        data = self.__dict__.get("data", {})
        if name in data:
            return data[name]
        raise AttributeError(name)

    def table(self, *path: str) -> dict[str, Any]:
        """A raw sub-table (e.g. ``table("alert", "channels")``), empty when absent."""
        node: Any = self.raw
        for part in path:
            if not isinstance(node, dict):
                return {}
            node = node.get(part, {})
        return node if isinstance(node, dict) else {}


def defaults() -> Config:
    return Config(data={s: {k: v.default for k, v in keys.items()} for s, keys in SCHEMA.items()})


def default_config_path(home: Path) -> Path:
    env = os.environ.get("WXCLI_CONFIG")
    return Path(env).expanduser() if env else home / "wxcli.toml"


def load_config(path: Path | None, *, required: bool = False) -> Config:
    """Read and validate a config file; a missing optional file gives the defaults."""
    cfg = defaults()
    if path is None:
        return _apply_env(cfg)
    path = Path(path)
    cfg.path = path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError("file not found", path=str(path))
        return _apply_env(cfg)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path))
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=str(path))
    cfg.raw = raw
    for section, body in raw.items():
        if section not in SCHEMA:
            cfg.warnings.append(f"{path}: unknown section [{section}] ignored")
            continue
        if not isinstance(body, dict):
            raise ConfigError("must be a table", path=str(path), key=section)
        for key, value in body.items():
            if (section, key) in DYNAMIC_TABLES:
                if not isinstance(value, dict):
                    raise ConfigError("must be a table", path=str(path), key=f"{section}.{key}")
                continue
            spec = SCHEMA[section].get(key)
            if spec is None:
                cfg.warnings.append(f"{path}: unknown key {section}.{key} ignored")
                continue
            if not _check_type(value, spec):
                raise ConfigError(
                    f"expected {_type_name(spec.type)}, got {type(value).__name__} {value!r}",
                    path=str(path),
                    key=f"{section}.{key}",
                )
            if spec.choices and value not in spec.choices:
                raise ConfigError(
                    f"must be one of {', '.join(map(str, spec.choices))}",
                    path=str(path),
                    key=f"{section}.{key}",
                )
            cfg.data[section][key] = value
    for warning in cfg.warnings:
        log.warning("%s", warning)
    return _apply_env(cfg)


def _apply_env(cfg: Config) -> Config:
    """Environment overrides that users and tests rely on."""
    url = os.environ.get("WXCLI_LOGIN_URL")
    if url:
        cfg.data["wechat"]["login_url"] = url
    db = os.environ.get("WXCLI_DB")
    if db:
        cfg.data["database"]["url"] = db
    return cfg


def secret_from_env(env_name: str, what: str) -> str:
    """Look up a secret from the env var the config names; never from the file itself."""
    if not env_name:
        return ""
    value = os.environ.get(env_name, "")
    if not value:
        log.debug("%s: env var %s is not set", what, env_name)
    return value
