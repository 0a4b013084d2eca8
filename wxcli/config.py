"""wxcli.toml: one schema, defaults, validation and env-var overrides.

The schema below is the single list of every key; ``wxcli.toml.example`` documents the same keys
(a test keeps the two in step). Unknown keys only warn (a newer file on an older wxcli should still
work); a wrong type is an error naming the file, key and expected type.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
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

#: section -> key -> Key. Dynamic tables (alert channels/rules) are validated by kind below.
SCHEMA: dict[str, dict[str, Key]] = {
    "wechat": {
        "login_url": _k(str, "https://login.weixin.qq.com", "login host base URL"),
        "desktop_mode": _k(bool, True, "log in as the UOS desktop client (fewer 1203 refusals)"),
        "connect_timeout": _k(NUM, 10.0, "seconds to connect"),
        "read_timeout": _k(NUM, 30.0, "seconds to wait for an ordinary reply"),
        "synccheck_timeout": _k(NUM, 40.0, "seconds to wait for synccheck (server holds ~25 s)"),
        "login_poll_timeout": _k(NUM, 40.0, "seconds to wait for one login poll (server ~27 s)"),
        "login_timeout": _k(NUM, 300.0, "give up a QR login after this many seconds"),
        "retries": _k(int, 3, "retries of a request after a transient network error"),
        "backoff": _k(NUM, 1.0, "first back-off in seconds; doubles per retry, with jitter"),
        "backoff_max": _k(NUM, 30.0, "longest back-off in seconds"),
        "user_agent": _k(str, "", "User-Agent header; empty = a current desktop browser"),
    },
    "database": {
        "url": _k(str, "", "sqlite:///path.db or mysql://user@host:3306/db; empty = home"),
        "password_env": _k(str, "", "env var holding the database password"),
        "store_raw": _k(bool, True, "keep each message's raw JSON"),
        "connect_timeout": _k(NUM, 5.0, "seconds one MySQL connection attempt may take"),
    },
    "watch": {
        "relogin": _k(bool, False, "on session loss, log in again instead of exiting 3"),
        "contact_refresh_minutes": _k(NUM, 60, "re-read the address book this often"),
        "session_save_seconds": _k(NUM, 5.0, "save sync keys/cookies to the session file"),
        "health_seconds": _k(NUM, 2.0, "rewrite the health record this often"),
        "analysis": _k(bool, True, "run the analysis worker process alongside"),
        "media": _k(bool, True, "download images as they arrive"),
        "spin_threshold": _k(int, 5, "empty syncs in a row before backing off"),
        "serve": _k(bool, False, "also run the REST shim inside watch"),
        "db_retry_seconds": _k(
            NUM, 2.0, "while the database is down, first retry after this; doubles up to 30 s"
        ),
    },
    "media": {
        "dir": _k(str, "", "local media folder; empty = <home>/media"),
        "voice": _k(bool, False, "also download voice messages"),
        "video": _k(bool, False, "also download videos"),
        "files": _k(bool, False, "also download file attachments"),
        "max_bytes": _k(int, 50 * MiB, "skip media larger than this"),
        "retries": _k(int, 5, "download/upload attempts before giving up"),
        "retry_seconds": _k(NUM, 5.0, "first wait before retrying a download; doubles"),
        "workers": _k(int, 2, "media download threads in watch"),
    },
    "oss": {
        "endpoint": _k(str, "", "e.g. https://oss-cn-hangzhou.aliyuncs.com; empty = local"),
        "bucket": _k(str, "", "bucket name"),
        "access_key_id": _k(str, "", "AccessKey id"),
        "access_key_secret_env": _k(str, "WXCLI_OSS_SECRET", "env var holding the secret"),
        "prefix": _k(str, "wxcli", "key prefix: <prefix>/<yyyy>/<mm>/<dd>/<sha256>.<ext>"),
        "public_base_url": _k(str, "", "base URL stored with each object (e.g. a CDN)"),
    },
    "analysis": {
        "stopwords_file": _k(str, "", "extra stopwords, one per line"),
        "user_dict": _k(str, "", "jieba user dictionary for product names"),
        "min_length": _k(int, 2, "drop words shorter than this (characters)"),
        "filter_emoji": _k(bool, True, "drop emoji and [微笑]-style smileys"),
        "filter_urls": _k(bool, True, "drop URLs"),
        "filter_mentions": _k(bool, True, "drop @mentions"),
        "filter_numbers": _k(bool, True, "drop numbers"),
        "negative_threshold": _k(NUM, 0.3, "sentiment below this counts as negative"),
        "timezone": _k(str, "Asia/Shanghai", "where days begin, for counts and --since dates"),
        "workers": _k(int, 1, "analysis processes watch runs (they share the work)"),
        "batch": _k(int, 500, "messages per analysis batch"),
    },
    "send": {
        "burst": _k(int, 20, "messages allowed back to back"),
        "rate": _k(NUM, 0.5, "sustained messages per second after the burst"),
        "jitter": _k(NUM, 0.3, "random extra delay, seconds"),
        "retries": _k(int, 4, "retries after a 1205 (too frequent)"),
        "backoff": _k(NUM, 5.0, "first back-off after 1205, seconds; doubles"),
        "max_image_bytes": _k(int, 20 * MiB, "largest image accepted"),
        "queue_limit": _k(int, 50, "senders allowed to wait for the pacer before 429"),
    },
    "serve": {
        "host": _k(str, "127.0.0.1", "bind address"),
        "port": _k(int, 7788, "bind port"),
        "allow_query_key": _k(bool, False, "accept the legacy ?appkey= (insecure)"),
        "max_body_bytes": _k(int, 25 * MiB, "largest request body"),
        "threads": _k(int, 8, "worker threads"),
        "image_url_timeout": _k(
            NUM, 10.0, "seconds to fetch an image_url, in all (connect, headers, body)"
        ),
        "allow_private_urls": _k(bool, False, "let image_url reach private addresses (tests)"),
        "header_timeout": _k(NUM, 10.0, "seconds a client may take to send a request's headers"),
        "connections_per_client": _k(int, 20, "open connections allowed from one address"),
        "max_wait_seconds": _k(NUM, 30.0, "longest long poll GET /v1/messages?wait= may ask"),
        "poll_seconds": _k(NUM, 0.5, "how often a long poll looks for new messages"),
    },
    "keepalive": {
        "stale_minutes": _k(NUM, 5.0, "a watch health record older than this counts as down"),
    },
    "feed": {
        "poll_seconds": _k(NUM, 0.5, "how often each sink looks for new messages"),
        "batch_size": _k(int, 100, "messages per delivery (one POST, one Redis pipeline)"),
        "retry_seconds": _k(NUM, 1.0, "first retry after a failed delivery; doubles up to 60 s"),
        "max_backlog": _k(int, 10000, "alert when a sink is this many messages behind"),
        "media_wait_seconds": _k(NUM, 30.0, "hold an image this long for its download"),
    },
    "alert": {
        "digest_seconds": _k(NUM, 30.0, "group alerts fired within this window into one"),
        "retries": _k(int, 3, "delivery attempts per alert and channel"),
        "retry_seconds": _k(NUM, 5.0, "pause after a failed delivery; doubles per attempt"),
        "check_seconds": _k(NUM, 15.0, "how often watch runs the periodic rules"),
        "qr_url_base": _k(str, "", "public URL prefix where the login QR PNG is served"),
        "staff": _k(list, [], "member names that count as staff for `unanswered`"),
        "working_hours": _k(str, "", "e.g. 09:00-18:00, empty = always"),
        "timezone": _k(str, "Asia/Shanghai", "time zone of working/quiet hours"),
    },
}

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
