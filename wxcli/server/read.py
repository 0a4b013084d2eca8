"""The read side of ``serve``: messages, chats and stats from the archive, scoped per app.

An app sees only the chats its ``allow_to`` patterns match (by a chat's *current* name,
nickname or remark, as for sending: a chat renamed out of the list leaves the app's view).
Everything else answers as if it did not exist, so no count, name or error reveals it.

Pages of messages are walked with an opaque cursor (the archive's row id: one writer stores
messages, so row ids commit in order and a reader never sees N+1 before N), and ``wait=N``
long-polls for messages after a cursor. The archive is another process's (``watch``): the
long poll checks the newest row id every ``[serve] poll_seconds``, which is one indexed read.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from wxcli.errors import (
    ArchiveNotReadyError,
    DatabaseUnavailableError,
    UnknownChatError,
    UsageError,
    WxError,
)
from wxcli.protocol.content import MESSAGE_KINDS as KINDS

if TYPE_CHECKING:
    from wxcli.config import Config
    from wxcli.paths import ProfilePaths
    from wxcli.server.auth import App
    from wxcli.store.archive import Archive
    from wxcli.store.history import MessageFilter

log = logging.getLogger(__name__)

MAX_PAGE = 500
CURSOR_RE = re.compile(r"^m1:(\d{1,18})$")


class ReadError(WxError):
    """A read request that cannot be answered: ``status`` and a stable ``code``."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        self.status = status
        self.code = code
        self.retry_after = retry_after
        super().__init__(message)


def encode_cursor(row_id: int) -> str:
    return base64.urlsafe_b64encode(f"m1:{row_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str, name: str = "cursor") -> int:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raw = ""
    m = CURSOR_RE.match(raw) if len(text) <= 40 else None
    if m is None:
        raise ReadError(400, "bad_cursor", f"`{name}` is not a cursor this server gave out")
    return int(m.group(1))


def _int(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    text = params.get(name, "")
    if text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 9 or not lo <= int(text) <= hi:
        raise ReadError(400, "bad_parameter", f"`{name}` must be a whole number from {lo} to {hi}")
    return int(text)


def _flag(params: Mapping[str, str], name: str) -> bool:
    text = params.get(name, "").lower()
    if text in ("", "0", "false", "no"):
        return False
    if text in ("1", "true", "yes"):
        return True
    raise ReadError(400, "bad_parameter", f"`{name}` must be true or false")


def _choice(params: Mapping[str, str], name: str, choices: Sequence[str], default: str) -> str:
    value = params.get(name, "") or default
    if value not in choices:
        raise ReadError(400, "bad_parameter", f"`{name}` must be one of {', '.join(choices)}")
    return value


@dataclass(frozen=True)
class Query:
    """A request's query string: first values, and every value of repeatable parameters."""

    first: Mapping[str, str]
    every: Mapping[str, Sequence[str]]

    def many(self, name: str) -> tuple[str, ...]:
        return tuple(v for v in self.every.get(name, ()) if v)


class ArchiveReader:
    """Opens the archive on first use and answers the read routes for one app at a time.

    Thread-safe: peewee keeps one connection per thread, so each server worker reads on its
    own; a dropped connection (database restart) is closed and the next request reconnects.
    """

    def __init__(
        self,
        paths: ProfilePaths,
        config: Config,
        *,
        opener: Callable[[], Archive] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], bool] | None = None,
    ):
        self.paths = paths
        self.config = config
        self._opener = opener or self._open
        self._archive: Archive | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self.clock = clock
        self._sleep = sleep or self._closing.wait
        settings = config.settings
        serve = settings.serve
        self.analysis = settings.analysis
        self.max_wait = serve.max_wait_seconds
        self.poll = max(serve.poll_seconds, 0.01)
        # Long polls hold a worker thread: at most half the threads may wait at once, so
        # sends, health and ordinary reads always find one free.
        self._wait_slots = threading.BoundedSemaphore(max(serve.threads // 2, 1))

    # ---------------------------------------------------------------- the archive

    def _open(self) -> Archive:
        from wxcli.store.archive import Archive

        if not self.config.settings.database.url and not self.paths.default_db.exists():
            raise ReadError(
                409, "no_archive", "there is no archive yet: run `wxcli watch` to start one"
            )
        return Archive.from_config(self.config, self.paths.home)

    def archive(self) -> Archive:
        with self._lock:
            if self._archive is None:
                try:
                    self._archive = self._opener()
                except DatabaseUnavailableError as exc:
                    raise self._down(exc) from None
            return self._archive

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            if self._archive is not None:
                self._archive.close()
                self._archive = None

    def _down(self, exc: BaseException) -> ReadError:
        log.warning("the archive cannot be read: %s", exc)
        return ReadError(503, "archive_unavailable", "the archive database cannot be reached", 5)

    def _guarded(self, fn: Callable[[Archive], Any]) -> Any:
        """Run ``fn`` on the archive; a lost database is a 503, never a 500."""
        import peewee as pw

        archive = self.archive()
        try:
            return fn(archive)
        except (pw.OperationalError, pw.InterfaceError) as exc:
            archive.drop_connection()
            raise self._down(exc) from None

    # ---------------------------------------------------------------- scope

    def visible_chats(self, archive: Archive, app: App) -> list[int] | None:
        """Ids of the chats ``app`` may read; None when it may read every chat."""
        if not app.allow_to:
            return None
        C = archive.m.Chat
        rows = C.select(C.id, C.name, C.nickname, C.remark).tuples()
        return [cid for cid, *names in rows if app.allows(names)]

    # ---------------------------------------------------------------- messages

    def message_filter(self, query: Query, only: list[int] | None) -> MessageFilter:
        from wxcli.store.history import MessageFilter
        from wxcli.timeutil import zone

        p = query.first
        tz = zone(self.analysis.timezone)
        kinds = query.many("kind")
        bad = [k for k in kinds if k not in KINDS]
        if bad:
            raise ReadError(400, "bad_parameter", f"`kind` must be one of {', '.join(KINDS)}")
        return MessageFilter(
            chats=query.many("chat"),
            sender=p.get("from") or None,
            since=_when(p.get("since", ""), tz, "since"),
            until=_when(p.get("until", ""), tz, "until", end=True),
            grep=p.get("text") or None,
            kinds=kinds,
            exclude_self=_flag(p, "exclude_self"),
            chat_ids=None if only is None else tuple(only),
        )

    def messages(self, app: App, query: Query) -> dict[str, Any]:
        p = query.first
        limit = _int(p, "limit", 100, 1, MAX_PAGE)
        wait = _int(p, "wait", 0, 0, 3600)
        if wait > self.max_wait:
            raise ReadError(
                400, "bad_parameter", f"`wait` may be at most {self.max_wait:g} seconds here"
            )
        if "cursor" in p and "before" in p:
            raise ReadError(400, "bad_parameter", "give `cursor` or `before`, not both")
        after = decode_cursor(p["cursor"]) if "cursor" in p else None
        before = decode_cursor(p["before"], "before") if "before" in p else None

        def page(archive: Archive) -> dict[str, Any]:
            from wxcli.store.history import last_row_id, messages_after, messages_before

            f = self.message_filter(query, self.visible_chats(archive, app))
            top = last_row_id(archive)
            if after is None:
                end = top if before is None else min(before - 1, top)
                rows = messages_before(archive, end + 1, f, limit)
                nxt = end
                earlier = len(rows) == limit
            else:
                rows = messages_after(archive, after, f, limit, upto=top)
                full = len(rows) == limit
                nxt = rows[-1].row_id if full else max(top, after)
                earlier = True
            return _page(rows, nxt, earlier)

        out = self._guarded(page)
        if after is None or out["messages"] or wait == 0:
            return out
        return self._long_poll(after, wait, page, out)

    def _long_poll(
        self,
        after: int,
        wait: float,
        page: Callable[[Archive], dict[str, Any]],
        empty: dict[str, Any],
    ) -> dict[str, Any]:
        if not self._wait_slots.acquire(blocking=False):
            raise ReadError(429, "too_many_waits", "too many long polls are open; retry shortly", 1)
        try:
            from wxcli.store.history import last_row_id

            deadline = self.clock() + wait
            seen = decode_cursor(empty["cursor"])
            while not self._closing.is_set():
                left = deadline - self.clock()
                if left <= 0:
                    break
                self._sleep(min(self.poll, left))
                top = self._guarded(last_row_id)
                if top > seen:
                    out = self._guarded(page)
                    if out["messages"]:
                        return out
                    seen = top
                    empty = out
            return empty
        finally:
            self._wait_slots.release()

    # ---------------------------------------------------------------- chats

    def chats(self, app: App, query: Query) -> dict[str, Any]:
        p = query.first
        kind = p.get("kind", "")
        if kind and kind not in ("group", "friend", "official", "special", "self"):
            raise ReadError(
                400, "bad_parameter", "`kind` must be group, friend, official, special or self"
            )
        needle = p.get("q", "").lower()

        def read(archive: Archive) -> dict[str, Any]:
            import peewee as pw

            m = archive.m
            C, N, S = m.Chat, m.ChatName, m.Membership
            only = self.visible_chats(archive, app)
            q = C.select()
            if only is not None:
                q = q.where(C.id.in_(only or [-1]))
            if kind:
                q = q.where(C.kind == kind)
            chats = list(q.order_by(C.name, C.id))
            ids = [c.id for c in chats]
            former: dict[int, list[str]] = {}
            members: dict[int, int] = {}
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                names = N.select(N.chat, N.name).where(N.chat.in_(part)).order_by(N.since)
                for cid, name in names.tuples():
                    former.setdefault(cid, []).append(name)
                counts = (
                    S.select(S.chat, pw.fn.COUNT(S.id))
                    .where(S.chat.in_(part), S.active == True)
                    .group_by(S.chat)
                )
                members.update(dict(counts.tuples()))
            out = []
            for c in chats:
                earlier = [n for n in dict.fromkeys(former.get(c.id, [])) if n != c.name]
                if needle and not any(needle in n.lower() for n in (c.name, *earlier)):
                    continue
                out.append(
                    {
                        "id": c.id,
                        "name": c.name,
                        "former_names": earlier,
                        "kind": c.kind,
                        "members": members.get(c.id, 0) if c.kind == "group" else None,
                        "first_seen": _iso(c.first_seen),
                        "last_seen": _iso(c.last_seen),
                    }
                )
            return {"chats": out}

        return dict(self._guarded(read))

    # ---------------------------------------------------------------- stats

    def stats(self, app: App, which: str, query: Query) -> dict[str, Any]:
        from wxcli.stats import export
        from wxcli.stats.queries import Stats, period_from
        from wxcli.timeutil import zone

        p = query.first
        tz_name = self.analysis.timezone
        tz = zone(tz_name)
        try:
            period = period_from(p.get("since") or None, p.get("until") or None, tz)
        except UsageError as exc:
            raise ReadError(400, "bad_parameter", str(exc)) from None
        except (OverflowError, ValueError):
            raise ReadError(400, "bad_parameter", "`since`/`until` is out of range") from None
        top = _int(p, "top", 20 if which == "words" else 10, 1, 1000)
        if which == "words":
            by = p.get("by") or None  # checked by words_rows (400 for an unknown split)
            groups = _int(p, "groups", 0, 1, 1000) if p.get("groups") else None
            keywords = _flag(p, "keywords")

            def rows(s: Stats) -> export.Rows:
                return export.words_rows(s, top, by, groups, keywords)

        elif which == "activity":
            view = _choice(p, "view", export.ACTIVITY_VIEWS, "days")

            def rows(s: Stats) -> export.Rows:
                return export.activity_rows(s, top, view)

        elif which == "speakers":
            overall = _flag(p, "overall")
            lurkers = not _flag(p, "no_lurkers")

            def rows(s: Stats) -> export.Rows:
                return export.speakers_rows(s, top, overall, lurkers)

        else:
            view = _choice(p, "view", export.SENTIMENT_VIEWS, "days")

            def rows(s: Stats) -> export.Rows:
                return export.sentiment_rows(s, top, view)

        def run(archive: Archive) -> dict[str, Any]:
            only = self.visible_chats(archive, app)
            if only is not None and not only:
                raise UnknownChatError("no chat is visible to this app")
            s = Stats(
                archive,
                period,
                query.many("chat"),
                negative_threshold=self.analysis.negative_threshold,
                only=only,
            )
            out = rows(s)
            return {
                "rows": out.dicts(),
                "columns": out.columns,
                "period": {
                    "since": s.period.since.isoformat(),
                    "until": s.period.until.isoformat(),
                    "timezone": tz_name,
                },
            }

        try:
            return dict(self._guarded(run))
        except UnknownChatError as exc:
            raise ReadError(404, "chat_not_found", str(exc)) from None
        except ArchiveNotReadyError as exc:
            raise ReadError(409, "not_ready", str(exc)) from None
        except UsageError as exc:
            raise ReadError(400, "bad_parameter", str(exc)) from None


def _when(text: str, tz: Any, name: str, *, end: bool = False) -> datetime | None:
    from wxcli.timeutil import parse_when

    if not text:
        return None
    try:
        return parse_when(text, tz, end=end)
    except UsageError as exc:
        raise ReadError(400, "bad_parameter", f"`{name}`: {exc}") from None
    except (OverflowError, ValueError):
        raise ReadError(400, "bad_parameter", f"`{name}` is out of range") from None


def _iso(value: Any) -> str | None:
    from wxcli.store.archive import aware

    when = aware(value)
    return when.isoformat() if when is not None else None


def _page(rows: Sequence[Any], cursor: int, earlier: bool) -> dict[str, Any]:
    from wxcli.feed.payload import message_payload

    return {
        "messages": [message_payload(r) for r in rows],
        "cursor": encode_cursor(cursor),
        "previous": encode_cursor(rows[0].row_id) if rows and earlier else None,
    }
