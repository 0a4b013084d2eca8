"""The queries behind ``wxcli stats``: every figure is read from the roll-ups the analysis worker
keeps, never by segmenting or scoring raw text on the fly.

Days are local days of ``[analysis] timezone`` (the worker's), so a period is a range of whole
local days: ``--since 7d`` starts at the beginning of the local day seven days ago and
``--until`` runs to the end of its day. Whole weeks of a period are read from the weekly
roll-ups (``word_week``, ``speaker_week``) and only the days at its ends from the daily ones.
Without ``--chat`` the all-chat roll-ups are read (``word_day``, ``day_hour``, chat 0 of
``word_week`` and ``sentiment_bin``); with it, the per-chat tables for the chats whose current
or former name matches.
"""

from __future__ import annotations

import functools
import glob
import logging
import operator
import shlex
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import peewee as pw

from wxcli.errors import ArchiveNotReadyError, UnknownChatError, UsageError
from wxcli.stats.model import (
    DayCount,
    HourCell,
    Lurker,
    NegativeMessage,
    Report,
    ReportMeta,
    SentimentDay,
    Speaker,
    WordCount,
)
from wxcli.store.archive import Archive, aware, naive
from wxcli.store.history import chat_ids_matching
from wxcli.store.models import SENTIMENT_BINS
from wxcli.timeutil import local_midnight, parse_when

__all__ = [
    "DEFAULT_DAYS",
    "SPLITS",
    "ChatHourCell",
    "ChatSentiment",
    "Keyword",
    "Period",
    "SplitWord",
    "Stats",
    "history_hint",
    "median_from_bins",
    "period_from",
]

log = logging.getLogger(__name__)

#: The period when neither --since nor --until is given: the last 30 local days, today included.
DEFAULT_DAYS = 30
#: What ``stats words --by`` can split on.
SPLITS = ("chat", "day", "week", "sender")
#: From this many scored messages in the period on, the most negative ones are found by walking
#: the score index (see ``Stats._negative_rows``).
SCORES_FIRST = 20_000
#: How many of the busiest chats or senders ``--by chat|sender`` shows by default.
DEFAULT_GROUPS = 10


# --- the period ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Whole local days ``since_day`` (included) to ``until_day`` (excluded) in ``tz``."""

    since_day: date
    until_day: date
    tz: tzinfo

    @property
    def since(self) -> datetime:
        return local_midnight(self.since_day, self.tz).astimezone(self.tz)

    @property
    def until(self) -> datetime:
        return local_midnight(self.until_day, self.tz).astimezone(self.tz)

    def days(self) -> list[date]:
        n = (self.until_day - self.since_day).days
        return [self.since_day + timedelta(days=i) for i in range(max(n, 0))]


def period_from(
    since: str | None,
    until: str | None,
    tz: tzinfo,
    *,
    now: datetime | None = None,
    default_days: int = DEFAULT_DAYS,
) -> Period:
    """The whole local days that ``--since``/``--until`` (``7d``, ``2026-11-01``, …) cover.

    A start inside a day includes that whole day; an end inside a day includes that day too (an
    end at local midnight, such as ``--until 2026-11-01`` read as the end of that date, stops
    there). Without ``--since`` the period is the ``default_days`` days up to the end.
    """
    now = now or datetime.now(UTC)
    if until:
        end = parse_when(until, tz, now=now, end=True).astimezone(tz)
        until_day = end.date() if end.time() == datetime.min.time() else end.date() + timedelta(1)
    else:
        until_day = now.astimezone(tz).date() + timedelta(days=1)
    if since:
        since_day = parse_when(since, tz, now=now).astimezone(tz).date()
    else:
        since_day = until_day - timedelta(days=default_days)
    if since_day >= until_day:
        raise UsageError(
            f"the period is empty: --since {since or since_day} is not before "
            f"--until {until or until_day}"
        )
    return Period(since_day, until_day, tz)


# --- rows that only the stats commands show (the report's rows are in wxcli.stats.model) ----------


@dataclass
class SplitWord:
    """A top word of one group of a ``--by`` split (a chat, day, week start or sender)."""

    group: str
    word: str
    count: int
    share: float


@dataclass
class Keyword:
    """A word ranked by TF-IDF: its weight and how often it was said."""

    word: str
    weight: float
    count: int


@dataclass
class ChatHourCell:
    """Messages of one chat in one hour of one weekday (0 = Monday) over the period."""

    chat: str
    weekday: int
    hour: int
    messages: int


@dataclass
class ChatSentiment:
    """Sentiment of one chat over the period; ``median`` comes from 0.01-wide bins."""

    chat: str
    mean: float
    median: float | None
    negative_share: float
    messages: int


@dataclass
class _Sums:
    """Sums of ``chat_day`` rows (one chat and day, or a group of them)."""

    messages: int = 0
    words: int = 0
    scored: int = 0
    sentiment_sum: float = 0.0
    negative: int = 0

    @classmethod
    def of(cls, row: Sequence[Any]) -> _Sums:
        n, w, s, t, neg = row
        return cls(int(n or 0), int(w or 0), int(s or 0), float(t or 0), int(neg or 0))


# --- small helpers -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _date_text(text: str) -> date:
    return date.fromisoformat(text[:10])


def _as_date(value: Any) -> date:
    """A day as read back: a date from MySQL, ISO text from SQLite."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return _date_text(str(value))


def _as_datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def median_from_bins(bins: dict[int, int]) -> float | None:
    """The median of scores counted in ``sentiment_bin`` bins: each score is taken to be the
    middle of its bin, so the result is within half a bin (0.005) of the true median."""
    total = sum(bins.values())
    if total <= 0:
        return None
    wanted = [(total + 1) // 2, total // 2 + 1]  # 1-based ranks of the middle one or two
    found: list[float] = []
    seen = 0
    for b in sorted(bins):
        seen += bins[b]
        while wanted and seen >= wanted[0]:
            wanted.pop(0)
            found.append((b + 0.5) / SENTIMENT_BINS)
    return statistics.fmean(found)


def history_hint(chat: str, created_at: datetime, tz: tzinfo) -> str:
    """The ``wxcli history`` command that shows a message with what was said just before it."""
    until = (created_at.astimezone(tz) + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    # --chat takes globs: escape the name's * ? [ so it matches only itself
    return f"wxcli history --chat {shlex.quote(glob.escape(chat))} --until {until} --limit 20"


def _unique_names(rows: Iterable[tuple[int, str]]) -> dict[int, str]:
    """Chat names by id; two chats with one name get their ids added, so rows stay apart."""
    rows = list(rows)
    count: dict[str, int] = defaultdict(int)
    for _, name in rows:
        count[name] += 1
    return {cid: (name if count[name] == 1 else f"{name} (#{cid})") for cid, name in rows}


# --- the queries --------------------------------------------------------------------------------


@dataclass
class Stats:
    """Reports over ``archive`` for ``period`` and the chats matching ``chats`` (all if empty).

    Raises :class:`~wxcli.errors.UsageError` at once when the archive has no messages, nothing
    was analysed yet, or a ``chats`` pattern matches no chat, so callers never show an empty
    report for a typo.
    """

    archive: Archive
    period: Period
    chats: Sequence[str] = ()
    negative_threshold: float = 0.3
    #: Only these chats (ids) exist for this report: the read API's allow-list. Patterns in
    #: ``chats`` are matched within them, and no other chat's name appears in an error.
    only: Sequence[int] | None = None
    chat_ids: list[int] | None = field(init=False, default=None)  # None: every chat
    names: dict[int, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        m = self.archive.m
        self.mysql = self.archive.is_mysql
        if not m.Message.select().exists():
            raise ArchiveNotReadyError(
                "the archive has no messages yet: run `wxcli watch` (or `wxcli demo`) first"
            )
        W = m.WorkRange
        if not W.select().where(W.kind == "analysis", W.done == True).exists():
            raise ArchiveNotReadyError(
                "no message has been analysed yet: run `wxcli analyze` "
                "(`wxcli watch` analyses messages as they arrive)"
            )
        all_names = _unique_names(m.Chat.select(m.Chat.id, m.Chat.name).tuples())
        if self.only is not None:
            allowed = set(self.only)
            all_names = {cid: name for cid, name in all_names.items() if cid in allowed}
            if not all_names:
                raise UnknownChatError("no chat is visible to this caller")
            if not self.chats:
                self.chat_ids = sorted(all_names)
        if self.chats:
            ids: set[int] = set()
            for pattern in self.chats:
                found = [c for c in chat_ids_matching(self.archive, [pattern]) if c in all_names]
                if not found:
                    raise UnknownChatError(self._unknown_chat(pattern, all_names.values()))
                ids.update(found)
            self.chat_ids = sorted(ids)
            self.names = {cid: all_names[cid] for cid in self.chat_ids}
        else:
            self.names = all_names
        self._clamp_to_data()

    @staticmethod
    def _unknown_chat(pattern: str, known: Iterable[str]) -> str:
        names = sorted(set(known))
        shown = "、".join(names[:10]) + (f" … ({len(names)} in all)" if len(names) > 10 else "")
        return (
            f"no chat matches {pattern!r} (current or former names; globs like '客服*' work). "
            f"Known chats: {shown or 'none'}"
        )

    def _clamp_to_data(self) -> None:
        """Start the period no earlier than the first analysed day, so a wide --since does not
        draw months of empty days before the archive began."""
        C = self.archive.m.ChatDay
        first = C.select(pw.fn.MIN(C.day)).scalar()
        if first is None:
            return
        first = _as_date(first)
        p = self.period
        if p.since_day < first < p.until_day:
            self.period = Period(first, p.until_day, p.tz)

    # -- state of the archive -------------------------------------------------------------------

    def pending(self) -> int:
        """Messages not in any figure yet: after the claimed ranges, or in unfinished ones."""
        m = self.archive.m
        W, M = m.WorkRange, m.Message
        covered = W.select(pw.fn.MAX(W.end_id)).where(W.kind == "analysis").scalar() or 0
        n = M.select().where(M.id > covered).count()
        unfinished = W.select(W.start_id, W.end_id).where(W.kind == "analysis", W.done == False)
        for start, end in unfinished.tuples():
            n += M.select().where(M.id.between(start, end)).count()
        return n

    def analysis_timezone(self) -> str | None:
        """The time zone the counts were made in (from the worker's fingerprint), if known."""
        Meta = self.archive.m.AnalysisMeta
        row = Meta.get_or_none(Meta.key == "fingerprint")
        if row is None:
            return None
        for part in row.value.split("|"):
            if part.startswith("tz="):
                return part[3:]
        return None

    # -- building blocks ------------------------------------------------------------------------

    def _days(self, model: Any) -> Any:
        p = self.period
        return (model.day >= p.since_day) & (model.day < p.until_day)

    def _in_chats(self, column: Any) -> Any:
        return True if self.chat_ids is None else column.in_(self.chat_ids)

    def _word_order(self, column: Any) -> Any:
        """Ties in byte order on both back-ends (MySQL's default collation folds case)."""
        return column.asc(collation="utf8mb4_bin") if self.mysql else column.asc()

    def _weekday(self, column: Any) -> Any:
        """0 = Monday, like ``date.weekday()``."""
        if self.mysql:
            return pw.fn.WEEKDAY(column)
        sunday_first = pw.Cast(pw.fn.strftime("%w", column), "INTEGER")
        return pw.Case(None, [(sunday_first == 0, 6)], sunday_first - 1)

    def _sums(self, *keys: str, chats: list[int] | None = None) -> list[tuple[Any, ...]]:
        """``chat_day`` sums of the period grouped by ``keys`` ("day", "chat"), for ``chats``
        (default: the selected ones): each row is the keys then a :class:`_Sums`. Summed by the
        database: a row per chat and day would be thousands of rows to decode."""
        C = self.archive.m.ChatDay
        cols = [getattr(C, k) for k in keys]
        where = self._days(C) & (C.chat.in_(chats) if chats is not None else self._in_chats(C.chat))
        q = (
            C.select(
                *cols,
                pw.fn.SUM(C.messages),
                pw.fn.SUM(C.words),
                pw.fn.SUM(C.scored),
                pw.fn.SUM(C.sentiment_sum),
                pw.fn.SUM(C.negative),
            )
            .where(where)
            .group_by(*cols)
        )
        return [(*row[: len(keys)], _Sums.of(row[len(keys) :])) for row in self._fetch(q)]

    @functools.cached_property
    def _day_sums(self) -> dict[date, _Sums]:
        return {_as_date(day): v for day, v in self._sums("day")}

    @functools.cached_property
    def _chat_sums(self) -> dict[int, _Sums]:
        return {chat: v for chat, v in self._sums("chat")}

    def _chat_day_sums(self, chats: list[int] | None = None) -> dict[tuple[int, date], _Sums]:
        return {(chat, _as_date(day)): v for chat, day, v in self._sums("chat", "day", chats=chats)}

    def _weeks_and_days(
        self, since: date | None = None, until: date | None = None
    ) -> tuple[list[date], list[tuple[date, date]]]:
        """Days ``since`` … ``until`` (excluded; default: the period) as whole weeks (their
        Mondays) and the day ranges left at either end."""
        since = since or self.period.since_day
        until = until or self.period.until_day
        monday = since + timedelta(days=-since.weekday() % 7)
        weeks = []
        while monday + timedelta(days=7) <= until:
            weeks.append(monday)
            monday += timedelta(days=7)
        if not weeks:
            return [], [(since, until)]
        edges = []
        if since < weeks[0]:
            edges.append((since, weeks[0]))
        end = weeks[-1] + timedelta(days=7)
        if end < until:
            edges.append((end, until))
        return weeks, edges

    def _by_weeks(
        self,
        weekly: Any,
        daily: Any,
        columns: Callable[[Any], list[Any]],
        where: tuple[Any, Any],
        since: date | None = None,
        until: date | None = None,
    ) -> Any:
        """The rows of a span (default: the period) as a subquery ``u``: whole weeks from the
        ``weekly`` roll-up, the days at the ends from ``daily`` (``where`` holds a condition for
        each) — a 30-day period reads about a third of the rows its days hold."""
        weeks, edges = self._weeks_and_days(since, until)
        parts = []
        if weeks:
            W = weekly
            parts.append(
                W.select(*columns(W)).where((W.week >= weeks[0]) & (W.week <= weeks[-1]), where[0])
            )
        if edges:
            D = daily
            days = functools.reduce(operator.or_, [(D.day >= a) & (D.day < b) for a, b in edges])
            parts.append(D.select(*columns(D)).where(days, where[1]))
        union = parts[0] if len(parts) == 1 else parts[0].union_all(parts[1])
        return union.alias("u")

    def _fetch(self, query: Any) -> list[tuple[Any, ...]]:
        """Plain rows, without peewee turning each value into a Python type (parsing a date
        string per row cost more than the query itself); dates go through ``_as_date``."""
        return list(self.archive.db.execute(query).fetchall())

    def _scored(self) -> int:
        return sum(v.scored for v in self._day_sums.values())

    def _chat_name(self, chat_id: int) -> str:
        return self.names.get(chat_id, f"#{chat_id}")

    # -- words ----------------------------------------------------------------------------------

    def _words(
        self,
        chats: list[int] | None,
        top: int | None,
        since: date | None = None,
        until: date | None = None,
    ) -> list[WordCount]:
        """The ``top`` words (all with None) of ``chats`` (None: all chats) in a span (default:
        the period), with their share of all the span's words. ``chats`` is the selection or,
        for the whole period only, some of its chats."""
        m = self.archive.m
        W = m.WordWeek
        if chats is None:
            daily, where = m.WordDay, (W.chat == 0, True)
        else:
            daily = m.WordCount
            where = (W.chat.in_(chats), daily.chat.in_(chats))
        # word_count's words use the server's default collation, the roll-ups' are binary:
        # say which one the union compares by (MySQL may refuse to pick one)
        exact = (lambda c: c.collate("utf8mb4_bin")) if self.mysql else (lambda c: c)
        u = self._by_weeks(
            W,
            daily,
            lambda t: [exact(t.word).alias("word"), t.count.alias("n")],
            where,
            since,
            until,
        )
        n = pw.fn.SUM(u.c.n)
        q = (
            pw.Select([u], [u.c.word, n])
            .group_by(u.c.word)
            .order_by(n.desc(), self._word_order(u.c.word))
        )
        if top is not None:
            q = q.limit(top)
        rows = self._fetch(q)
        # the share's denominator from chat_day (the worker counts every word there too):
        # cheaper than a window over every word of the span
        if chats == self.chat_ids:
            since, until = since or self.period.since_day, until or self.period.until_day
            total = sum(v.words for d, v in self._day_sums.items() if since <= d < until)
        else:
            total = sum(self._chat_sums[c].words for c in chats or () if c in self._chat_sums)
        if top is None:  # every word is here
            total = sum(int(c) for _, c in rows)
        return [WordCount(w, int(c), int(c) / total) for w, c in rows if total]

    def words(self, top: int = 20) -> list[WordCount]:
        """The ``top`` words with counts and their share of every counted word."""
        return self._words(self.chat_ids, top)

    def word_counts(self) -> dict[str, int]:
        """Every counted word of the period and how often it was said."""
        return {r.word: r.count for r in self._words(self.chat_ids, None)}

    def keywords(self, top: int = 20) -> list[Keyword]:
        """The ``top`` words by TF-IDF (jieba.analyse's IDF table) over the counted words: words
        that are frequent here but rare in general Chinese rank first."""
        from wxcli.analysis.segment import keywords as tfidf

        counts = self.word_counts()
        return [Keyword(w, weight, counts[w]) for w, weight in tfidf(counts, top)]

    def words_by(self, by: str, top: int = 10, groups: int | None = None) -> list[SplitWord]:
        """The ``top`` words of each chat, day, week (from Monday) or sender.

        ``groups`` caps how many groups: the busiest chats or senders first (default 10), the
        days or weeks in order (default all). Each group is one query on its own key range,
        which stays fast however many words the period holds.
        """
        if by not in SPLITS:
            raise UsageError(f"cannot split by {by!r}: use one of {', '.join(SPLITS)}")
        m = self.archive.m
        out: list[SplitWord] = []
        if by == "chat":
            for chat, _ in self._busiest_ids()[: groups or DEFAULT_GROUPS]:
                out += self._split(self._chat_name(chat), self._words([chat], top))
        elif by == "sender":
            S = m.SenderWordCount
            people = [pid for pid, _ in self._top_people(groups or DEFAULT_GROUPS)]
            names = self._person_names(people)
            for pid in people:
                where = self._days(S) & (S.person == pid) & self._in_chats(S.chat)
                out += self._split(names.get(pid, f"#{pid}"), self._top_words(S, where, top))
        else:
            p = self.period
            days = sorted(day for day, v in self._day_sums.items() if v.messages)
            starts = sorted({d if by == "day" else d - timedelta(days=d.weekday()) for d in days})
            for start in starts[: groups or None]:
                end = start + timedelta(days=1 if by == "day" else 7)
                rows = self._words(
                    self.chat_ids, top, max(start, p.since_day), min(end, p.until_day)
                )
                out += self._split(start.isoformat(), rows)
        return out

    def _top_words(self, model: Any, where: Any, top: int) -> list[WordCount]:
        """The ``top`` words of ``model`` rows matching ``where``, with their share of all."""
        n = pw.fn.SUM(model.count)
        q = (
            model.select(model.word, n, pw.fn.SUM(n).over())
            .where(where)
            .group_by(model.word)
            .order_by(n.desc(), self._word_order(model.word))
            .limit(top)
        )
        return [WordCount(w, int(c), int(c) / int(t)) for w, c, t in self._fetch(q) if t]

    @staticmethod
    def _split(group: str, rows: list[WordCount]) -> list[SplitWord]:
        return [SplitWord(group, r.word, r.count, r.share) for r in rows]

    # -- activity -------------------------------------------------------------------------------

    def total_messages(self) -> int:
        return sum(v.messages for v in self._day_sums.values())

    def days(self, per_chat: bool = True, *, chats: int | None = None) -> list[DayCount]:
        """Messages per day for all the chats together (every day of the period, zeros
        included), then per chat (days with messages) unless ``per_chat`` is false — for the
        ``chats`` busiest ones only if given (what a chart draws)."""
        totals: dict[date, int] = dict.fromkeys(self.period.days(), 0)
        for day, v in self._day_sums.items():
            totals[day] = v.messages
        rows = [DayCount(d, None, n) for d, n in sorted(totals.items())]
        if not per_chat:
            return rows
        which = None if chats is None else [c for c, _ in self._busiest_ids()[:chats]]
        if which == []:
            return rows
        for (chat, day), v in sorted(
            self._chat_day_sums(which).items(), key=lambda kv: (kv[0][1], kv[0][0])
        ):
            if v.messages:
                rows.append(DayCount(day, self._chat_name(chat), v.messages))
        return rows

    def _busiest_ids(self) -> list[tuple[int, int]]:
        return sorted(
            ((c, v.messages) for c, v in self._chat_sums.items() if v.messages),
            key=lambda cn: (-cn[1], self._chat_name(cn[0])),
        )

    def busiest(self, top: int | None = None) -> list[tuple[str, int]]:
        """Chats by messages in the period, the busiest first."""
        rows = [(self._chat_name(c), n) for c, n in self._busiest_ids()]
        return rows[:top] if top else rows

    def heatmap(self) -> list[HourCell]:
        """Messages per weekday and hour over the period, all selected chats together (all 168
        cells, zeros included)."""
        m = self.archive.m
        if self.chat_ids is None:
            H = m.DayHour
            q = H.select(H.day, H.hour, H.messages).where(self._days(H))
        else:
            A = m.Activity
            q = (
                A.select(A.day, A.hour, pw.fn.SUM(A.messages))
                .where(self._days(A), A.chat.in_(self.chat_ids))
                .group_by(A.day, A.hour)
            )
        grid = [[0] * 24 for _ in range(7)]
        for day, hour, n in self._fetch(q):
            grid[_as_date(day).weekday()][int(hour)] += int(n)
        return [HourCell(wd, h, grid[wd][h]) for wd in range(7) for h in range(24)]

    def chat_hours(self) -> list[ChatHourCell]:
        """Messages per chat, weekday and hour (cells with messages only)."""
        A = self.archive.m.Activity
        wd = self._weekday(A.day)
        q = (
            A.select(A.chat, wd, A.hour, pw.fn.SUM(A.messages))
            .where(self._days(A), self._in_chats(A.chat))
            .group_by(A.chat, wd, A.hour)
        )
        rows = [
            ChatHourCell(self._chat_name(c), int(w), int(h), int(n))
            for c, w, h, n in self._fetch(q)
            if n
        ]
        rows.sort(key=lambda r: (r.chat, r.weekday, r.hour))
        return rows

    # -- speakers -------------------------------------------------------------------------------

    @functools.cached_property
    def _self_ids(self) -> set[int]:
        P = self.archive.m.Person
        return {pid for (pid,) in P.select(P.id).where(P.is_self == True).tuples()}

    def _spoke(self) -> Any:
        """(chat, person, n) rows of the period's messages per sender, ourselves left out."""
        m = self.archive.m
        me = sorted(self._self_ids) or [-1]
        weekly, daily = m.SpeakerWeek, m.SpeakerCount
        return self._by_weeks(
            weekly,
            daily,
            lambda t: [t.chat.alias("chat"), t.person.alias("person"), t.messages.alias("n")],
            tuple(self._in_chats(t.chat) & t.person.not_in(me) for t in (weekly, daily)),
        )

    def _top_people(self, top: int) -> list[tuple[int, int]]:
        """(person, messages) of the busiest senders over the selected chats (not ourselves)."""
        u = self._spoke()
        n = pw.fn.SUM(u.c.n)
        q = (
            pw.Select([u], [u.c.person, n])
            .group_by(u.c.person)
            .order_by(n.desc(), u.c.person)
            .limit(top)
        )
        return [(pid, int(c)) for pid, c in self._fetch(q)]

    def _person_names(self, ids: Iterable[int]) -> dict[int, str]:
        """What to call people outside a chat: their remark, else their nickname."""
        P = self.archive.m.Person
        ids = sorted(set(ids))
        names: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            q = P.select(P.id, P.remark, P.nickname).where(P.id.in_(ids[start : start + 500]))
            names.update(
                (pid, remark or nickname or f"#{pid}") for pid, remark, nickname in q.tuples()
            )
        return names

    def _names_in_chats(self, pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """What to call each (chat, person): the display name in that chat, else as above."""
        pairs = set(pairs)
        base = self._person_names(p for _, p in pairs)
        out = {(c, p): base.get(p, f"#{p}") for c, p in pairs}
        Mb = self.archive.m.Membership
        chats = sorted({c for c, _ in pairs})
        people = sorted({p for _, p in pairs})
        for start in range(0, len(people), 500):
            q = Mb.select(Mb.chat, Mb.person, Mb.display_name).where(
                Mb.chat.in_(chats),
                Mb.person.in_(people[start : start + 500]),
                Mb.display_name != "",
            )
            for c, p, shown in q.tuples():
                if (c, p) in out:
                    out[(c, p)] = shown
        return out

    def speakers(self, top: int = 10, *, per_chat: bool = True) -> list[Speaker]:
        """The busiest members: the ``top`` of each chat, or of all chats together (a member
        of two chats then appears once per chat). Our own account is left out; ``share`` is
        the member's part of all the chat's messages."""
        u = self._spoke()
        n = pw.fn.SUM(u.c.n)
        if per_chat:
            ranked = (
                pw.Select(
                    [u],
                    [
                        u.c.chat.alias("chat"),
                        u.c.person.alias("person"),
                        n.alias("n"),
                        pw.fn.ROW_NUMBER()
                        .over(partition_by=[u.c.chat], order_by=[n.desc(), u.c.person])
                        .alias("rk"),
                    ],
                )
                .group_by(u.c.chat, u.c.person)
                .alias("ranked")
            )
            q = pw.Select([ranked], [ranked.c.chat, ranked.c.person, ranked.c.n]).where(
                ranked.c.rk <= top
            )
        else:
            q = (
                pw.Select([u], [u.c.chat, u.c.person, n])
                .group_by(u.c.chat, u.c.person)
                .order_by(n.desc(), u.c.person, u.c.chat)
                .limit(top)
            )
        rows = [(c, p, int(k)) for c, p, k in self._fetch(q)]
        per_chat_total = {chat: v.messages for chat, v in self._chat_sums.items()}
        names = self._names_in_chats((c, p) for c, p, _ in rows)
        out = [
            Speaker(
                self._chat_name(c),
                names[(c, p)],
                k,
                k / per_chat_total[c] if per_chat_total.get(c) else 0.0,
            )
            for c, p, k in rows
        ]
        if per_chat:  # the busiest chats first, like `busiest()`
            order = {self._chat_name(c): i for i, (c, _) in enumerate(self._busiest_ids())}
            out.sort(key=lambda s: (order.get(s.chat, len(order)), s.chat, -s.messages, s.name))
        else:
            out.sort(key=lambda s: (-s.messages, s.name, s.chat))
        return out

    def lurkers(self) -> list[Lurker]:
        """Members in the roster during the period who sent nothing in it (not ourselves)."""
        m = self.archive.m
        Mb, P, S = m.Membership, m.Person, m.SpeakerCount
        p = self.period
        since = naive(p.since.astimezone(UTC))
        until = naive(p.until.astimezone(UTC))
        blank = pw.fn.NULLIF
        name = pw.fn.COALESCE(
            blank(Mb.display_name, ""), blank(P.remark, ""), blank(P.nickname, ""), ""
        )
        q = (
            Mb.select(Mb.chat, name, P.id)
            .join(P, on=(P.id == Mb.person))
            .where(
                self._in_chats(Mb.chat),
                Mb.joined_at < until,
                (Mb.active == True) | (Mb.left_at >= since),
                P.is_self == False,
            )
        )
        if self.mysql:
            # InnoDB: an anti-join with who spoke (read by weeks) — one probe per member into a
            # small indexed derived table — beats a range read of speaker_count per member
            weekly, daily = m.SpeakerWeek, m.SpeakerCount
            spoke = self._by_weeks(
                weekly,
                daily,
                lambda t: [t.chat.alias("chat"), t.person.alias("person")],
                (self._in_chats(weekly.chat), self._in_chats(daily.chat)),
            )
            on = (spoke.c.chat == Mb.chat) & (spoke.c.person == Mb.person)
            q = q.join(spoke, pw.JOIN.LEFT_OUTER, on=on).where(spoke.c.chat.is_null())
        else:  # SQLite: the other way round
            spoke = S.select(pw.SQL("1")).where(
                S.chat == Mb.chat, S.person == Mb.person, self._days(S)
            )
            q = q.where(~pw.fn.EXISTS(spoke))
        out = [Lurker(self._chat_name(c), shown or f"#{pid}") for c, shown, pid in self._fetch(q)]
        out.sort(key=lambda lk: (lk.chat, lk.name))
        return out

    # -- sentiment ------------------------------------------------------------------------------

    def _bins(self, by_chat: bool, by_day: bool) -> dict[tuple[Any, Any], dict[int, int]]:
        """Sentiment histograms keyed by (chat or None, day or None)."""
        B = self.archive.m.SentimentBin
        cols = []
        if by_chat:
            cols.append(B.chat)
        if by_day:
            cols.append(B.day)
        where = self._days(B)
        if self.chat_ids is None and not by_chat:
            where &= B.chat == 0
        elif self.chat_ids is None:  # every chat, each a range of the key (not "chat != 0")
            where &= B.chat.in_(sorted(self.names) or [-1])
        else:
            where &= B.chat.in_(self.chat_ids)
        q = B.select(*cols, B.bin, pw.fn.SUM(B.count)).where(where).group_by(*cols, B.bin)
        out: dict[tuple[Any, Any], dict[int, int]] = defaultdict(dict)
        for row in self._fetch(q):
            *keys, b, n = row
            chat = keys.pop(0) if by_chat else None
            day = _as_date(keys.pop(0)) if by_day else None
            out[(chat, day)][int(b)] = int(n)
        return out

    def sentiment_days(self, *, per_chat: bool = False) -> list[SentimentDay]:
        """Mean and median sentiment and the negative share per day (all selected chats
        together, ``chat`` None), or per chat and day. Days without scored messages are left
        out. ``messages`` counts the scored (text) messages."""
        acc: dict[tuple[int | None, date], _Sums]
        if per_chat:
            acc = dict(self._chat_day_sums().items())
        else:
            acc = {(None, day): v for day, v in self._day_sums.items()}
        bins = self._bins(by_chat=per_chat, by_day=True)
        out = []
        for (chat, day), v in sorted(
            acc.items(), key=lambda kv: (kv[0][1], self._chat_name(kv[0][0] or 0))
        ):
            if not v.scored:
                continue
            out.append(
                SentimentDay(
                    day,
                    self._chat_name(chat) if chat is not None else None,
                    v.sentiment_sum / v.scored,
                    median_from_bins(bins.get((chat, day), {})),
                    v.negative / v.scored,
                    v.scored,
                )
            )
        return out

    def sentiment_chats(self) -> list[ChatSentiment]:
        """Mean, median and negative share per chat over the period (chats with scores)."""
        acc = self._chat_sums
        bins = self._bins(by_chat=True, by_day=False)
        out = [
            ChatSentiment(
                self._chat_name(chat),
                v.sentiment_sum / v.scored,
                median_from_bins(bins.get((chat, None), {})),
                v.negative / v.scored,
                v.scored,
            )
            for chat, v in acc.items()
            if v.scored
        ]
        out.sort(key=lambda r: (r.mean, r.chat))
        return out

    def negatives(self, limit: int = 10) -> list[NegativeMessage]:
        """The most negative messages (below the negative threshold), the lowest first, each
        with the ``wxcli history`` command that shows its context."""
        p = self.period
        rows = self._negative_rows(
            limit, naive(p.since.astimezone(UTC)), naive(p.until.astimezone(UTC))
        )
        C = self.archive.m.Chat
        current = dict(
            C.select(C.id, C.name).where(C.id.in_({r[0] for r in rows} or {-1})).tuples()
        )
        out = []
        for chat, chat_then, sender, text, created, msg_id, score in rows:
            when = aware(_as_datetime(created)) or datetime.now(UTC)
            out.append(
                NegativeMessage(
                    chat=self.names.get(chat, chat_then),
                    sender=sender,
                    text=text,
                    score=float(score),
                    created_at=when.astimezone(p.tz),
                    msg_id=str(msg_id),
                    history_hint=history_hint(current.get(chat, chat_then), when, p.tz),
                )
            )
        return out

    def _negative_rows(self, limit: int, since: datetime, until: datetime) -> list[tuple[Any, ...]]:
        """The query behind :meth:`negatives`, with the join order chosen by hand: over many
        messages, walk the scores from the lowest (index order) and stop at ``limit`` matches;
        over a few chats' messages, read those (chat + time index) and sort their scores.
        Optimisers tend to pick the first for small scopes (then it reads every score) or the
        second for large ones (then it sorts hundreds of thousands of rows)."""
        m = self.archive.m
        db = self.archive.db
        q = "`{}`" if self.mysql else '"{}"'
        message, score = (
            q.format(m.Message._meta.table_name),
            q.format(m.MessageScore._meta.table_name),
        )
        ordered = "STRAIGHT_JOIN" if self.mysql else "CROSS JOIN"  # both: left table first
        if self.chat_ids is None or self._scored() >= SCORES_FIRST:
            tables = f"{score} AS s {ordered} {message} AS m"
            log.debug("most negative messages: walking the scores from the lowest")
        else:
            tables = f"{message} AS m {ordered} {score} AS s"
            log.debug("most negative messages: sorting the scores of %d chats", len(self.names))
        ph = db.param
        params: list[Any] = [self.negative_threshold, since, until]
        chats = ""
        if self.chat_ids is not None:
            chats = f" AND m.chat_id IN ({', '.join([ph] * len(self.chat_ids))})"
            params += self.chat_ids
        if not self.mysql:  # as peewee stores them: ISO text, compared as text
            params[1:3] = [since.isoformat(" "), until.isoformat(" ")]
        # only table names and placeholders are formatted in; every value is a parameter
        sql = (
            "SELECT m.chat_id, m.chat_name, m.sender_name, m.text, m.created_at, m.msg_id, "  # noqa: S608
            f"s.sentiment FROM {tables} ON s.message_id = m.id "
            f"WHERE s.sentiment < {ph} AND m.created_at >= {ph} AND m.created_at < {ph}{chats} "
            f"ORDER BY s.sentiment, s.message_id LIMIT {int(limit)}"
        )
        return list(db.execute_sql(sql, params).fetchall())

    # -- the whole report -----------------------------------------------------------------------

    def account_name(self) -> str:
        A = self.archive.m.Account
        names = [n for (n,) in A.select(A.nickname).tuples() if n]
        return names[0] if len(names) == 1 else ""

    def report(
        self,
        *,
        title: str = "",
        top_words: int = 100,
        top_speakers: int = 15,
        negatives: int = 12,
        day_chats: int = 10,
        now: datetime | None = None,
    ) -> Report:
        """Everything the HTML and terminal reports show, for the period and chats: the top
        words (a cloud needs ~100), messages per day for all chats and for the ``day_chats``
        busiest ones, the heat map, sentiment per day, top speakers, lurkers, the most
        negative messages and every chat's message count."""
        busiest = self.busiest()
        p = self.period
        meta = ReportMeta(
            title=title,
            since=p.since,
            until=p.until,
            chats=[c for c, _ in busiest] if self.chat_ids is None else list(self.names.values()),
            generated_at=(now or datetime.now(UTC)).astimezone(p.tz),
            timezone=getattr(p.tz, "key", "") or str(p.tz),
            total_messages=self.total_messages(),
            account=self.account_name(),
        )
        return Report(
            meta=meta,
            words=self.words(top_words),
            days=self.days(chats=day_chats),
            heatmap=self.heatmap(),
            sentiment=self.sentiment_days(),
            speakers=self.speakers(top_speakers, per_chat=False),
            lurkers=self.lurkers(),
            negatives=self.negatives(negatives),
            busiest_chats=busiest,
        )
