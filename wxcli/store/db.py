"""Open the archive database from a URL: SQLite (default, WAL) or MySQL/MariaDB (utf8mb4).

``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``mysql://user[:pass]@host:3306/db``;
the MySQL password may instead come from the env var named by ``[database] password_env``.
The MySQL database is created on first use with utf8mb4, so 4-byte emoji round-trip.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wxcli.errors import ConfigError, DatabaseUnavailableError
from wxcli.retry import backoff

if TYPE_CHECKING:
    import peewee

log = logging.getLogger(__name__)

#: Seconds a connection attempt may take. Short, so that a black-holed host costs each retry
#: a few seconds rather than the writer thread's whole attention ([database] connect_timeout).
CONNECT_TIMEOUT = 5.0
#: How long a SQLite writer waits for another one's lock (the analysis workers share the file).
SQLITE_BUSY_SECONDS = 10.0
#: Seconds a query may wait for the server's reply once connected.
QUERY_TIMEOUT = 30.0
#: The longest pause between two tries while the database is down.
RETRY_CAP_SECONDS = 30.0

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


def connect(
    url: DbUrl, *, timeout: float = CONNECT_TIMEOUT, create: bool = True
) -> peewee.Database:
    """A connected peewee database for ``url`` (creating a MySQL database if needed)."""
    import peewee

    if url.scheme == "sqlite":
        if url.path != ":memory:":
            try:
                Path(url.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseUnavailableError(f"cannot open {url.safe()}: {exc}") from None
        db: peewee.Database = peewee.SqliteDatabase(
            url.path,
            pragmas={
                "journal_mode": "wal",
                "synchronous": "normal",  # with WAL: durable against process crashes
                "busy_timeout": int(SQLITE_BUSY_SECONDS * 1000),
                "foreign_keys": 1,
                "cache_size": -32000,
            },
            field_types=FIELD_TYPES_SQLITE,
            timeout=SQLITE_BUSY_SECONDS,
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

    kwargs: dict[str, Any] = {
        "host": url.host,
        "port": url.port,
        "user": url.user,
        "password": url.password,
        "charset": "utf8mb4",
        "connect_timeout": timeout,
        # PyMySQL waits for the server's greeting with the *read* timeout: the connect
        # timeout only covers TCP. So connections open with the short one (a host that
        # accepts and stays silent fails fast) and queries then get QUERY_TIMEOUT.
        "read_timeout": timeout,
        "write_timeout": QUERY_TIMEOUT,
        "autocommit": True,
        # Strict mode: a value too long for its column is an error, never cut silently.
        "init_command": "SET time_zone = '+00:00', "
        "sql_mode = CONCAT_WS(',', @@sql_mode, 'STRICT_TRANS_TABLES')",
    }
    if create:
        _create_mysql_database(url, kwargs)
    kwargs.pop("autocommit")  # peewee manages transactions itself
    db = _mysql_database_class()(url.database, field_types=FIELD_TYPES_MYSQL, **kwargs)
    try:
        db.connect(reuse_if_open=True)
    except peewee.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot connect to {url.safe()}: {exc}") from None
    return db


def _mysql_database_class() -> type[peewee.MySQLDatabase]:
    import peewee

    class MySQLDatabase(peewee.MySQLDatabase):
        """peewee's MySQL database whose connections, once open, wait QUERY_TIMEOUT for a
        reply (they were opened with the short connect timeout, see :func:`connect`)."""

        def _connect(self) -> Any:
            # _connect is peewee's own hook for opening a connection; its stubs leave it out.
            conn = super()._connect()  # type: ignore[misc]
            conn._read_timeout = QUERY_TIMEOUT  # PyMySQL applies it before each read
            return conn

    return MySQLDatabase


def _create_mysql_database(url: DbUrl, kwargs: dict[str, Any]) -> None:
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


# ---------------------------------------------------------------------------------- outages


@dataclass
class OutageRecord:
    """One database outage as the process saw it: when, why, who noticed, how long."""

    started_at: datetime
    error: str
    noticed_by: str
    ended_at: datetime | None = None
    attempts: int = 0

    @property
    def seconds(self) -> float:
        end = self.ended_at or datetime.now(UTC)
        return max((end - self.started_at).total_seconds(), 0.0)

    def to_json(self) -> dict[str, object]:
        return {
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else "",
            "seconds": round(self.seconds, 1),
            "error": self.error,
            "noticed_by": self.noticed_by,
            "attempts": self.attempts,
        }


#: ``listener(record, down)``: called once when an outage starts (down=True) and once when it
#: ends (down=False), from whichever thread noticed.
OutageListener = Callable[[OutageRecord, bool], None]


@dataclass
class Outage:
    """The one reconnect discipline for every thread of a process that uses the archive.

    A thread whose query failed calls :meth:`failed` (after dropping its own dead
    connection: peewee keeps one per thread) and waits the seconds it returns; a thread whose
    query worked calls :meth:`recovered`. However many threads notice, an outage is reported
    once when it starts and once when it ends (``listener``), each thread backs off on its own
    count of failed tries (the shared :func:`wxcli.retry.backoff` rule), and the last few
    outages are kept for ``wxcli status``.
    """

    retry_seconds: float = 2.0
    cap_seconds: float = RETRY_CAP_SECONDS
    listener: OutageListener | None = None
    keep: int = 5
    rand: Callable[[], float] = random.random
    current: OutageRecord | None = None
    history: list[OutageRecord] = field(default_factory=list)
    _attempts: dict[int, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def down(self) -> bool:
        return self.current is not None

    def failed(self, who: str, exc: BaseException | str) -> float:
        """Note a failed try by ``who``; returns the seconds this thread should wait."""
        me = threading.get_ident()
        started = None
        with self._lock:
            if self.current is None:
                started = self.current = OutageRecord(datetime.now(UTC), str(exc), who)
                self._attempts.clear()
            self.current.attempts += 1
            tries = self._attempts.get(me, 0)
            self._attempts[me] = tries + 1
        if started is not None:
            self._tell(started, True)
        return backoff(
            tries,
            base=self.retry_seconds,
            cap=max(self.cap_seconds, self.retry_seconds),
            jitter=0.25,
            rand=self.rand,
        )

    def recovered(self, who: str) -> OutageRecord | None:
        """Note a query that worked; returns the outage it ended, if any."""
        if self.current is None:  # the common case: no lock on every query
            return None
        with self._lock:
            ended, self.current = self.current, None
            if ended is None:
                return None
            ended.ended_at = datetime.now(UTC)
            self.history.append(ended)
            del self.history[: -self.keep]
            self._attempts.clear()
        log.debug("database outage ended (%s answered first)", who)
        self._tell(ended, False)
        return ended

    def wait(self, who: str, exc: BaseException | str, stop: threading.Event) -> None:
        """:meth:`failed`, then wait (returning early when ``stop`` is set)."""
        stop.wait(self.failed(who, exc))

    def _tell(self, record: OutageRecord, down: bool) -> None:
        if self.listener is None:
            if down:
                log.warning("database unavailable (%s): %s", record.noticed_by, record.error)
            else:
                log.warning("database back after %.0f s", record.seconds)
            return
        try:
            self.listener(record, down)
        except Exception:  # a listener's bug must not break the thread that noticed
            log.exception("database outage listener failed")
