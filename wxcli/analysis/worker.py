"""The analysis worker: segments and scores archived messages into the report tables.

Work is claimed as ranges of message row ids (``work_range`` rows, unique per start), so any
number of workers — processes, or machines sharing one MySQL — split the archive without
overlap, and a range's results and its "done" mark commit in one transaction: a crash loses
nothing and counts nothing twice. What it maintains, per chat and local day:
``word_count`` (jieba words), ``activity`` (messages per hour with sentiment sums),
``speaker_count``; and ``message_score`` (snownlp sentiment per text message). For
``wxcli stats`` it also keeps roll-ups: ``word_day`` (words per day over all chats),
``word_week`` (per chat and for all chats), ``sender_word_count`` (words per sender),
``speaker_week``, ``chat_day`` (``activity`` without hours), ``day_hour`` (``activity`` for all
chats together) and ``sentiment_bin`` (score histograms for medians).
Messages the account itself sent (our replies) are not counted as customer words or mood.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee as pw

from wxcli.store.archive import Archive, upsert
from wxcli.store.models import sentiment_bin
from wxcli.timeutil import local_day, utc_aware, zone

__all__ = ["AnalysisWorker", "Progress", "RangeLost"]

log = logging.getLogger(__name__)

KIND = "analysis"
#: Kinds whose text is customer language (counted as words and scored).
TEXT_KINDS = {"text"}
#: Kinds that are not chat activity.
NOT_ACTIVITY = {"system", "recall", "friend-request"}
STALE_CLAIM = timedelta(minutes=10)


def _is_lock_conflict(exc: BaseException) -> bool:
    """MySQL deadlock (1213) or lock wait timeout (1205); SQLite's busy database."""
    code = exc.args[0] if exc.args else None
    orig = getattr(exc, "orig", None) or (exc.__cause__ if exc.__cause__ else None)
    if orig is not None and getattr(orig, "args", None):
        code = orig.args[0]
    return code in (1213, 1205) or "locked" in str(exc).lower() or "deadlock" in str(exc).lower()


class RangeLost(Exception):
    """Our claimed range was taken away (a rebuild or a stale-claim takeover): roll back."""


@dataclass
class Progress:
    processed: int = 0
    scored: int = 0
    words: int = 0
    ranges: int = 0


class AnalysisWorker:
    def __init__(
        self,
        archive: Archive,
        config: Any,
        *,
        worker_id: str | None = None,
        batch: int | None = None,
        segmenter: Any = None,
        scorer: Any = None,
        cache_dir: Any = None,
    ):
        a = config.settings.analysis
        self.archive = archive
        self.m = archive.m
        self.worker_id = (
            worker_id or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 10000}"
        )
        self.batch = int(batch or a.batch)
        self.tz = zone(a.timezone)
        self.negative = float(a.negative_threshold)
        self._segmenter = segmenter
        self._scorer = scorer
        self.cache_dir = cache_dir
        self.options = a
        self.progress = Progress()

    # -- engines (heavy: jieba ~1 s, the sentiment tables ~0.2 s; loaded on first use) ------

    @property
    def segmenter(self) -> Any:
        if self._segmenter is None:
            from wxcli.analysis.segment import Segmenter, SegmentOptions

            a = self.options
            self._segmenter = Segmenter(
                SegmentOptions(
                    stopwords_file=a.stopwords_file,
                    user_dict=a.user_dict,
                    min_length=a.min_length,
                    filter_emoji=a.filter_emoji,
                    filter_urls=a.filter_urls,
                    filter_mentions=a.filter_mentions,
                    filter_numbers=a.filter_numbers,
                ),
                cache_dir=self.cache_dir,
            )
        return self._segmenter

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            from wxcli.analysis.sentiment import SentimentScorer

            self._scorer = SentimentScorer(self.cache_dir) if self.cache_dir else SentimentScorer()
        return self._scorer

    # -- bookkeeping ------------------------------------------------------------------------

    def fingerprint(self) -> str:
        return f"{self.segmenter.options_fingerprint()}|tz={self.tz}|neg={self.negative}"

    def stored_fingerprint(self) -> str:
        row = self.m.AnalysisMeta.get_or_none(self.m.AnalysisMeta.key == "fingerprint")
        return row.value if row is not None else ""

    def _save_fingerprint(self) -> None:
        Meta = self.m.AnalysisMeta
        upsert(
            Meta.insert(key="fingerprint", value=self.fingerprint()),
            [Meta.key],
            {Meta.value: self.fingerprint()},
        ).execute()

    def outdated(self) -> bool:
        """True when counts were made with other stopwords/dictionary/filters/time zone."""
        stored = self.stored_fingerprint()
        return bool(stored) and stored != self.fingerprint()

    def max_message_id(self) -> int:
        M = self.m.Message
        return M.select(pw.fn.MAX(M.id)).scalar() or 0

    def covered_to(self) -> int:
        W = self.m.WorkRange
        return W.select(pw.fn.MAX(W.end_id)).where(W.kind == KIND).scalar() or 0

    def pending(self) -> int:
        """Messages not yet analysed (an estimate from the id ranges)."""
        M = self.m.Message
        covered = self.covered_to()
        open_ranges = (
            self.m.WorkRange.select(
                pw.fn.SUM(self.m.WorkRange.end_id - self.m.WorkRange.start_id + 1)
            )
            .where(self.m.WorkRange.kind == KIND, self.m.WorkRange.done == False)
            .scalar()
            or 0
        )
        return M.select().where(M.id > covered).count() + int(open_ranges)

    # -- claiming -----------------------------------------------------------------------------

    def _claim(self) -> tuple[int, int, int] | None:
        """(range row id, start, end) newly claimed, or None when nothing is left."""
        W = self.m.WorkRange
        now = datetime.now(UTC).replace(tzinfo=None)
        stale = (
            W.select()
            .where(
                W.kind == KIND,
                W.done == False,
                W.claimed_at < now - STALE_CLAIM,
            )
            .first()
        )
        if stale is not None:
            taken = (
                W.update(claimed_by=self.worker_id, claimed_at=now)
                .where(W.id == stale.id, W.claimed_at == stale.claimed_at)
                .execute()
            )
            if taken:
                return stale.id, stale.start_id, stale.end_id
        top = self.max_message_id()
        for _ in range(20):
            start = self.covered_to() + 1
            if start > top:
                return None
            end = min(start + self.batch - 1, top)
            try:
                with self.archive.transaction():
                    rid = W.insert(
                        kind=KIND,
                        start_id=start,
                        end_id=end,
                        claimed_by=self.worker_id,
                        claimed_at=now,
                        done=False,
                    ).execute()
                return rid, start, end
            except pw.IntegrityError:
                continue  # another worker took this start; look again
        return None

    # -- one range --------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim and process one range; returns how many messages it covered (0 = idle)."""
        claim = self._claim()
        if claim is None:
            return 0
        rid, start, end = claim
        M = self.m.Message
        rows = list(
            M.select(M.id, M.chat, M.sender, M.kind, M.text, M.title, M.created_at, M.is_self)
            .where(M.id.between(start, end))
            .tuples()
        )
        for attempt in range(6):
            try:
                self._process(rid, rows)
                break
            except RangeLost:
                log.info("range %d-%d was taken over; skipping it", start, end)
                return 0
            except (pw.OperationalError, pw.InterfaceError) as exc:
                # Workers sharing the roll-up rows can meet in a deadlock or a lock wait:
                # the transaction was rolled back, so the same range is simply redone.
                if _is_lock_conflict(exc) and attempt < 5:
                    time.sleep(0.02 * (attempt + 1))
                    continue
                self._release(rid)
                raise
        self.progress.ranges += 1
        return max(len(rows), 1)

    def _release(self, rid: int) -> None:
        """Give a claimed range back at once (rather than after the stale-claim timeout)."""
        W = self.m.WorkRange
        try:
            W.update(claimed_at=datetime(1970, 1, 1)).where(
                W.id == rid, W.claimed_by == self.worker_id, W.done == False
            ).execute()
        except (pw.OperationalError, pw.InterfaceError):
            log.debug("could not release range %s; it goes stale later", rid)

    def _process(self, rid: int | None, rows: list[tuple[Any, ...]]) -> None:
        """Aggregate ``rows`` and write the results; with ``rid``, also mark that range done
        in the same transaction (RangeLost rolls everything back)."""
        words: Counter[tuple[int, str, str]] = Counter()
        day_words: Counter[tuple[str, str]] = Counter()
        week_words: Counter[tuple[int, str, str]] = Counter()
        week_speakers: Counter[tuple[str, int, int]] = Counter()
        sender_words: Counter[tuple[int, str, int, str]] = Counter()
        bins: Counter[tuple[int, str, int]] = Counter()
        activity: dict[tuple[int, str, int], list[float]] = defaultdict(lambda: [0, 0, 0.0, 0])
        speakers: Counter[tuple[int, int, str]] = Counter()
        texts: list[tuple[int, str]] = []
        for mid, chat, sender, kind, text, _title, created, is_self in rows:
            when = utc_aware(created)
            local = when.astimezone(self.tz)
            day = local.date().isoformat()  # as stored: ISO text on SQLite, read as DATE by MySQL
            week = (local.date() - timedelta(days=local.weekday())).isoformat()  # its Monday
            if kind in TEXT_KINDS and text and not is_self:
                texts.append((mid, text))
                for w in self.segmenter.words(text):
                    w = w[:64]
                    words[(chat, day, w)] += 1
                    day_words[(day, w)] += 1
                    week_words[(chat, week, w)] += 1
                    week_words[(0, week, w)] += 1  # chat 0: all chats together
                    if sender is not None:
                        sender_words[(sender, day, chat, w)] += 1
            if kind not in NOT_ACTIVITY:
                activity[(chat, day, local.hour)][0] += 1
                if sender is not None:
                    speakers[(chat, sender, day)] += 1
                    week_speakers[(week, chat, sender)] += 1
        scores = self.scorer.score_many([t for _, t in texts]) if texts else []
        by_id = {}
        for (mid, _), score in zip(texts, scores, strict=True):
            by_id[mid] = score
        for mid, chat, _sender, _kind, _t, _ti, created, _s in rows:
            score = by_id.get(mid)
            if score is None:
                continue
            when = utc_aware(created)
            local = when.astimezone(self.tz)
            day = local.date().isoformat()
            cell = activity[(chat, day, local.hour)]
            cell[1] += 1
            cell[2] += score
            cell[3] += 1 if score < self.negative else 0
            b = sentiment_bin(score)
            bins[(chat, day, b)] += 1
            bins[(0, day, b)] += 1  # chat 0: all chats together
        m = self.m
        W = m.WorkRange
        with self.archive.transaction():
            if rid is not None:
                marked = (
                    W.update(done=True).where(W.id == rid, W.claimed_by == self.worker_id).execute()
                )
                if marked != 1:
                    raise RangeLost()
            if by_id:
                self._write(m.MessageScore, ["message", "sentiment"], [], list(by_id.items()))
            self._write(
                m.WordCount,
                ["chat", "day", "word"],
                ["count"],
                [(*k, n) for k, n in words.items()],
            )
            self._write(
                m.Activity,
                ["chat", "day", "hour"],
                ["messages", "scored", "sentiment_sum", "negative"],
                [(*k, *v) for k, v in activity.items()],
            )
            self._write(
                m.SpeakerCount,
                ["chat", "person", "day"],
                ["messages"],
                [(*k, n) for k, n in speakers.items()],
            )
            self._write(
                m.WordDay, ["day", "word"], ["count"], [(*k, n) for k, n in day_words.items()]
            )
            self._write(
                m.WordWeek,
                ["chat", "week", "word"],
                ["count"],
                [(*k, n) for k, n in week_words.items()],
            )
            self._write(
                m.SpeakerWeek,
                ["week", "chat", "person"],
                ["messages"],
                [(*k, n) for k, n in week_speakers.items()],
            )
            chat_days: dict[tuple[str, int], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0, 0])
            hours: Counter[tuple[str, int]] = Counter()
            for (chat, day, hour), v in activity.items():
                cell = chat_days[(day, chat)]
                cell[0] += v[0]
                for i in range(1, 4):
                    cell[i + 1] += v[i]
                hours[(day, hour)] += int(v[0])
            for (chat, day, _w), n in words.items():
                chat_days[(day, chat)][1] += n
            self._write(
                m.ChatDay,
                ["day", "chat"],
                ["messages", "words", "scored", "sentiment_sum", "negative"],
                [(*k, *v) for k, v in chat_days.items()],
            )
            self._write(
                m.DayHour, ["day", "hour"], ["messages"], [(*k, n) for k, n in hours.items()]
            )
            self._write(
                m.SenderWordCount,
                ["person", "day", "chat", "word"],
                ["count"],
                [(*k, n) for k, n in sender_words.items()],
            )
            self._write(
                m.SentimentBin,
                ["chat", "day", "bin"],
                ["count"],
                [(*k, n) for k, n in bins.items()],
            )
            if not self.stored_fingerprint():
                self._save_fingerprint()
        self.progress.processed += len(rows)
        self.progress.scored += len(by_id)
        self.progress.words += sum(words.values())

    def _day_tables(self) -> list[tuple[Any, Any]]:
        """The derived tables (all but ``message_score``) with their local day or week column."""
        m = self.m
        days = [m.WordCount, m.Activity, m.SpeakerCount, m.WordDay, m.SenderWordCount, m.ChatDay,
                m.DayHour, m.SentimentBin]  # fmt: skip
        return [(t, t.day) for t in days] + [(t, t.week) for t in (m.WordWeek, m.SpeakerWeek)]

    def _write(
        self, model: Any, keys: list[str], sums: list[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert ``rows`` (values of ``keys`` then ``sums``); a row whose key exists adds its
        ``sums`` to the stored ones, or — with no ``sums`` — is ignored (any unique clash).

        One prepared statement run by the driver's ``executemany``: building big multi-row
        INSERTs with peewee's query builder took three quarters of the worker's time."""
        if not rows:
            return
        meta = model._meta
        mysql = self.archive.is_mysql
        quote = "`{}`" if mysql else '"{}"'
        cols = [quote.format(meta.fields[n].column_name) for n in (*keys, *sums)]
        key_cols, sum_cols = cols[: len(keys)], cols[len(keys) :]
        mark = "%s" if mysql else "?"
        verb = "INSERT IGNORE" if mysql and not sums else "INSERT"
        sql = (
            f"{verb} INTO {quote.format(meta.table_name)} ({', '.join(cols)}) "
            f"VALUES ({', '.join([mark] * len(cols))})"
        )
        if mysql and sums:
            sql += " ON DUPLICATE KEY UPDATE " + ", ".join(
                f"{c} = {c} + VALUES({c})" for c in sum_cols
            )
        elif sums:
            sql += f" ON CONFLICT ({', '.join(key_cols)}) DO UPDATE SET " + ", ".join(
                f"{c} = {c} + excluded.{c}" for c in sum_cols
            )
        elif not mysql:
            sql += " ON CONFLICT DO NOTHING"
        # Key order: every worker then locks shared rows (the all-chats roll-ups) in the same
        # order, so two workers wait for each other instead of deadlocking.
        rows = sorted(rows, key=lambda r: r[: len(keys)])
        cursor = self.archive.db.cursor()
        for start in range(0, len(rows), 1000):
            cursor.executemany(sql, rows[start : start + 1000])

    # -- loops ------------------------------------------------------------------------------

    def drain(self, on_progress: Callable[[int], None] | None = None, stop: Any = None) -> int:
        """Process until nothing is left; returns messages covered."""
        total = 0
        while stop is None or not stop.is_set():
            n = self.run_once()
            if n == 0:
                break
            total += n
            if on_progress is not None:
                on_progress(n)
        return total

    def follow(self, stop: threading.Event, idle: float = 0.5) -> None:
        """Keep up with the archive until ``stop`` is set (the worker ``watch`` starts)."""
        while not stop.is_set():
            try:
                n = self.run_once()
            except (pw.OperationalError, pw.InterfaceError) as exc:
                # The archive's outage says so once and sets the pause (the shared back-off).
                stop.wait(self.archive.unavailable("analysis", exc))
                continue
            self.archive.available("analysis")
            if n == 0:
                stop.wait(idle)

    def rebuild(self, since: datetime | None = None, timeout: float = 600.0) -> int:
        """Forget derived counts and make them again — e.g. after changing stopwords, the user
        dictionary or the time zone. Without ``since`` everything is redone by the normal
        range mechanism (call :meth:`drain` next); with ``since`` the days from the Monday of
        that local day's week on are recounted here and now (weekly roll-ups hold whole weeks).
        Returns messages recounted (0 for a full rebuild)."""
        m = self.m
        if since is None:
            with self.archive.transaction():
                m.MessageScore.delete().execute()
                for model, _ in self._day_tables():
                    model.delete().execute()
                m.WorkRange.delete().where(m.WorkRange.kind == KIND).execute()
                self._save_fingerprint()
            return 0
        W, M = m.WorkRange, m.Message
        covered = self.covered_to()
        # Ranges still being worked on would add their counts after our delete: let them end.
        deadline = time.monotonic() + timeout
        while W.select().where(W.kind == KIND, W.done == False, W.end_id <= covered).count():
            if time.monotonic() > deadline:
                raise TimeoutError("analysis ranges still in progress; try again later")
            if self.run_once() == 0:
                time.sleep(0.2)
        day = local_day(since, self.tz)
        day -= timedelta(days=day.weekday())  # the weekly roll-ups are redone by whole weeks
        start = datetime.combine(day, datetime.min.time(), self.tz).astimezone(UTC)
        cutoff = start.replace(tzinfo=None)
        redo = M.select(M.id).where(M.created_at >= cutoff, M.id <= covered)
        with self.archive.transaction():
            for model, column in self._day_tables():
                model.delete().where(column >= day).execute()
            m.MessageScore.delete().where(m.MessageScore.message.in_(redo)).execute()
        done = 0
        last = 0
        while True:
            rows = list(
                M.select(M.id, M.chat, M.sender, M.kind, M.text, M.title, M.created_at, M.is_self)
                .where(M.created_at >= cutoff, M.id <= covered, M.id > last)
                .order_by(M.id)
                .limit(self.batch)
                .tuples()
            )
            if not rows:
                break
            self._process(None, rows)
            last = rows[-1][0]
            done += len(rows)
        with self.archive.transaction():
            self._save_fingerprint()
        return done
