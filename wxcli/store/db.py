"""Open the archive database from a URL: SQLite (default, WAL) or MySQL/MariaDB (utf8mb4).

``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``mysql://user[:pass]@host:3306/db``;
the MySQL password may instead come from the env var named by ``[database] password_env``.
The MySQL database is created on first use with utf8mb4, so 4-byte emoji round-trip.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wxcli.errors import ConfigError, DatabaseUnavailableError

if TYPE_CHECKING:
    import peewee

#: Custom column types: microsecond datetimes on MySQL (DATETIME(6)), long text.
FIELD_TYPES_MYSQL = {"DATETIME6": "DATETIME(6)", "LONGTEXT": "LONGTEXT"}
FIELD_TYPES_SQLITE = {"DATETIME6": "DATETIME", "LONGTEXT": "TEXT"}


@dataclass(frozen=True)
class DbUrl:
    scheme: str  # sqlite | mysql
    path: str = ""  # sqlite file
    host: str = ""
    port: int = 3306
    user: str = ""
    password: str = ""
    database: str = ""

    def safe(self) -> str:
        """The URL without its password, for messages and logs."""
        if self.scheme == "sqlite":
            return f"sqlite:///{self.path}"
        user = f"{self.user}@" if self.user else ""
        return f"mysql://{user}{self.host}:{self.port}/{self.database}"


def parse_url(url: str, home: Path, password_env: str = "") -> DbUrl:
    """Parse a database URL; an empty URL means ``<home>/wxcli.db``."""
    if not url:
        return DbUrl("sqlite", path=str(home / "wxcli.db"))
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        raw = url[len("sqlite://") :]
        path = raw[1:] if raw.startswith("/") else raw
        if raw.startswith("//"):  # sqlite:////abs/path
            path = raw[1:]
        if not path or path == ":memory:":
            return DbUrl("sqlite", path=":memory:")
        return DbUrl("sqlite", path=str(Path(os.path.expanduser(path))))
    if scheme in ("mysql", "mariadb", "mysql+pymysql"):
        database = parts.path.lstrip("/")
        if not database:
            raise ConfigError(f"database URL {url!r} names no database (…:3306/<name>)")
        password = urllib.parse.unquote(parts.password or "")
        if not password and password_env:
            password = os.environ.get(password_env, "")
        return DbUrl(
            "mysql",
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 3306,
            user=urllib.parse.unquote(parts.username or "root"),
            password=password,
            database=database,
        )
    raise ConfigError(f"unsupported database URL {url!r}: use sqlite:///… or mysql://…")


def connect(url: DbUrl, *, timeout: float = 10.0, create: bool = True) -> peewee.Database:
    """A connected peewee database for ``url`` (creating a MySQL database if needed)."""
    import peewee

    if url.scheme == "sqlite":
        if url.path != ":memory:":
            try:
                Path(url.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailableError(f"cannot open {url.safe()}: {exc}") from None
        db = peewee.SqliteDatabase(
            url.path,
            pragmas={
                "journal_mode": "wal",
                "synchronous": "normal",  # with WAL: durable against process crashes
                "busy_timeout": int(timeout * 1000),
                "foreign_keys": 1,
                "cache_size": -32000,
            },
            field_types=FIELD_TYPES_SQLITE,
            timeout=timeout,
            check_same_thread=False,
        )
        try:
            db.connect(reuse_if_open=True)
        except peewee.OperationalError as exc:
            raise DatabaseUnavailableError(f"cannot open {url.safe()}: {exc}") from None
        if url.path != ":memory:":
            try:
                os.chmod(url.path, 0o600)
            except OSError:
                pass
        return db

    kwargs = {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "password": url.password,
        "charset": "utf8mb4",
        "connect_timeout": timeout,
        "read_timeout": max(timeout * 3, 30),
        "write_timeout": max(timeout * 3, 30),
        "autocommit": True,
        # Strict mode: a value too long for its column is an error, never cut silently.
        "init_command": "SET time_zone = '+00:00', "
        "sql_mode = CONCAT_WS(',', @@sql_mode, 'STRICT_TRANS_TABLES')",
    }
    if create:
        _create_mysql_database(url, kwargs)
    kwargs.pop("autocommit")  # peewee manages transactions itself
    db = peewee.MySQLDatabase(url.database, field_types=FIELD_TYPES_MYSQL, **kwargs)
    try:
        db.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot connect to {url.safe()}: {exc}") from None
    return db


def _create_mysql_database(url: DbUrl, kwargs: dict) -> None:
    """CREATE DATABASE (utf8mb4) unless it already exists — checked by connecting to it first,
    which is the cheap common case."""
    import pymysql

    try:
        pymysql.connect(database=url.database, **kwargs).close()
        return
    except pymysql.err.OperationalError as exc:
        if exc.args and exc.args[0] != 1049:  # 1049 = unknown database
            raise DatabaseUnavailableError(f"cannot connect to {url.safe()}: {exc}") from None
    except pymysql.err.MySQLError as exc:
        raise DatabaseUnavailableError(f"cannot connect to {url.safe()}: {exc}") from None
    try:
        conn = pymysql.connect(**kwargs)
    except pymysql.err.MySQLError as exc:
        raise DatabaseUnavailableError(f"cannot connect to {url.safe()}: {exc}") from None
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{url.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    finally:
        conn.close()
