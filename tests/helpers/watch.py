"""Helpers for watch tests: run a Watcher on a thread, read the archive back."""

from __future__ import annotations

import threading
from typing import Any

from wxcli import account
from wxcli.store.archive import Archive
from wxcli.watch.loop import Watcher, WatchOptions


class RunningWatch:
    """A Watcher on a background thread (no analysis/media unless asked); stop() on exit."""

    def __init__(self, paths, config, db_url: str, *, sleep: Any = None, **options: Any):
        options.setdefault("analysis", False)
        options.setdefault("media", False)
        self.events: list[Any] = []
        self.watcher = Watcher(
            paths,
            config,
            WatchOptions(db_url=db_url, **options),
            on_event=self.events.append,
            # What the CLI hands in (see wxcli.cli.watch): watch does not import the account.
            client_factory=lambda state: account.make_client(config, state),
            login=lambda events: account.login(paths, config, events),
            sleep=sleep,
        )
        self.code: int | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.code = self.watcher.run()
        except BaseException as exc:  # surfaced to the test by join()
            self.error = exc

    def start(self) -> RunningWatch:
        self.thread.start()
        return self

    def join(self, timeout: float = 15.0) -> int | None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "watch did not stop"
        if self.error is not None:
            raise self.error
        return self.code

    def stop(self, timeout: float = 15.0) -> int | None:
        self.watcher.stop()
        return self.join(timeout)

    def __enter__(self) -> RunningWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.stop()

    def until(self, predicate: Any, timeout: float = 10.0, message: str = "") -> Any:
        """wait_until that fails at once (with the cause) if the watch thread died."""
        from tests.helpers.waiting import wait_until

        def check() -> Any:
            if self.error is not None:
                raise AssertionError(f"watch failed: {self.error!r}") from self.error
            return predicate()

        return wait_until(check, timeout, message=message)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


_READERS: dict[str, Archive] = {}


def archive_for(db_url: str, home) -> Archive:
    """A fresh archive connection (callers close it)."""
    return Archive(db_url, home)


def reader(db_url: str, home) -> Archive:
    """One shared read connection per database for the current test (see close_readers)."""
    a = _READERS.get(db_url)
    if a is None:
        a = _READERS[db_url] = Archive(db_url, home)
    return a


def close_readers() -> None:
    while _READERS:
        _READERS.popitem()[1].close()


def messages(db_url: str, home, **where: Any) -> list[dict[str, Any]]:
    a = reader(db_url, home)
    M = a.m.Message
    with a.db.connection_context():
        q = M.select().order_by(M.id)
        for key, value in where.items():
            q = q.where(getattr(M, key) == value)
        return list(q.dicts())


def count(db_url: str, home) -> int:
    """Messages stored so far; 0 while watch is still creating the archive (on SQLite its first
    transaction can make opening a second connection fail with "database is locked")."""
    from wxcli.errors import DatabaseUnavailableError

    try:
        a = reader(db_url, home)
    except DatabaseUnavailableError:
        return 0
    return a.m.Message.select().count()
