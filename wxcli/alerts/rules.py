"""Alert rules: each turns watch events, or a periodic look at the archive and the health record,
into :class:`~wxcli.alerts.model.Alert` objects — plus the gate that applies cooldowns and
quiet hours. Rules never deliver anything and never read the wall clock: ``now`` is passed in.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import shlex
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from wxcli.alerts.model import Alert, Attachment
from wxcli.alerts.settings import AlertSettings, RuleSpec
from wxcli.health import age_seconds
from wxcli.timeutil import utc_aware, utc_naive

log = logging.getLogger(__name__)

#: Message kinds that are not somebody talking (never a question, never an answer).
NOT_SPOKEN = ("system", "recall", "friend-request")
#: Message kinds a keyword never matches (a recall notice repeats nothing of its own).
NOT_MATCHED = ("system", "recall")
#: How far back `unanswered` looks for a waiting customer message.
UNANSWERED_LOOKBACK = timedelta(days=4)
#: How often `silence` queries the archive at most (its windows are minutes long).
SILENCE_EVERY = timedelta(seconds=60)
#: At most this many newly scored messages are read per `negative` check.
NEGATIVE_BATCH = 2000
#: How much of a message an alert quotes.
QUOTE_CHARS = 500


@dataclass
class RuleContext:
    """What rules know about where they run."""

    profile: str
    settings: AlertSettings
    hostname: str = ""
    relogin: bool = False  # watch --relogin: a QR alert follows a session loss


@dataclass
class Sources:
    """What periodic checks may read; each getter may return None (not available here)."""

    archive: Callable[[], Any] = lambda: None
    health: Callable[[], Any] = lambda: None
    watch_running: Callable[[], bool | None] = lambda: None
    pacer_status: Callable[[], Any] = lambda: None
    account_id: Callable[[], int | None] = lambda: None
    state: Any = None  # an AlertHistoryStore, for high-water marks that survive restarts


def local_time(dt: datetime, tz: Any) -> str:
    return dt.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def history_pointer(chat: str, since: datetime, tz: Any) -> str:
    """A `wxcli history` command that shows the conversation around ``since``."""
    start = (since - timedelta(minutes=5)).astimezone(tz).isoformat(timespec="minutes")
    return f"wxcli history --chat {shlex.quote(chat)} --since {start} --limit 30"


def minutes_text(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chat_matches(name: str, globs: Sequence[str]) -> bool:
    """Empty globs match every chat; a glob matches the name exactly or as a pattern."""
    return not globs or any(fnmatch.fnmatchcase(name, g) for g in globs)


class Rule:
    """One configured rule. ``events`` lists the watch events it reads; ``periodic`` rules are
    also asked to :meth:`check` every few seconds."""

    kind: ClassVar[str] = ""
    events: ClassVar[frozenset[str]] = frozenset()
    periodic: ClassVar[bool] = False
    severity: ClassVar[str] = "warning"

    def __init__(self, spec: RuleSpec, ctx: RuleContext):
        self.spec = spec
        self.ctx = ctx
        self.settings = ctx.settings
        self.tz = ctx.settings.tz

    @property
    def name(self) -> str:
        return self.spec.name

    def on_event(self, kind: str, data: dict[str, Any], now: datetime) -> list[Alert]:
        return []

    def check(self, now: datetime, sources: Sources) -> list[Alert]:
        return []

    def make(
        self,
        *,
        title: str,
        text: str,
        fields: dict[str, Any],
        key: str,
        now: datetime,
        kind: str | None = None,
        severity: str | None = None,
        **extra: Any,
    ) -> Alert:
        """An alert of this rule: its severity (config wins), the profile and rule in fields."""
        fields = {k: v for k, v in fields.items() if v not in (None, "")}
        fields.setdefault("profile", self.ctx.profile)
        if self.ctx.hostname:
            fields.setdefault("host", self.ctx.hostname)
        fields["rule"] = self.name
        return Alert(
            kind=kind or self.kind,
            title=title,
            text=text,
            fields=fields,
            key=key,
            created_at=now,
            severity=self.spec.severity or severity or self.severity,
            **extra,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# --- the session ------------------------------------------------------------------------------


class SessionLostRule(Rule):
    """WeChat ended the web session (1100/1101/1102), from watch or from keepalive."""

    kind = "session_lost"
    events = frozenset({"session_lost"})
    severity = "critical"

    def on_event(self, kind: str, data: dict[str, Any], now: datetime) -> list[Alert]:
        code = data.get("code", "")
        meaning = data.get("meaning") or "the session is no longer valid"
        if self.ctx.relogin:
            step = "watch --relogin is on: a new QR code follows in a separate alert."
        else:
            where = f" on {self.ctx.hostname}" if self.ctx.hostname else ""
            step = f"Run `wxcli login`{where} and scan the QR code, then start `wxcli watch` again."
        sid = str(data.get("sid") or "")
        session = hashlib.sha256(sid.encode()).hexdigest()[:12] if sid else "unknown"
        return [
            self.make(
                title=f"[wxcli] {self.ctx.profile}: WeChat session lost ({code})",
                text=f"WeChat ended the web session: {meaning}.\n{step}",
                fields={
                    "account": data.get("account", ""),
                    "code": code,
                    "meaning": meaning,
                    "noticed by": data.get("source", "watch"),
                    "endpoint": data.get("endpoint", ""),
                    "next step": step,
                },
                key=f"session_lost:{self.ctx.profile}:{session}",
                now=now,
            )
        ]


class LoginNeededRule(Rule):
    """watch --relogin wrote a new login QR code: send it (attached, linked, or its URL)."""

    kind = "login_needed"
    events = frozenset({"login_needed"})
    severity = "critical"

    def on_event(self, kind: str, data: dict[str, Any], now: datetime) -> list[Alert]:
        png: bytes = data.get("qr_png") or b""
        path = str(data.get("qr_path") or "login-qr.png")
        filename = path.replace("\\", "/").rsplit("/", 1)[-1] or "login-qr.png"
        valid = float(data.get("valid_seconds") or 240)
        until = now + timedelta(seconds=valid)
        digest = hashlib.sha256(png or str(data.get("url", "")).encode()).hexdigest()
        image_url = None
        base = self.settings.qr_url_base
        if base:
            # The file name stays the same for every QR; the version defeats caches.
            image_url = f"{base.rstrip('/')}/{filename}?v={digest[:12]}"
        url = str(data.get("url") or "")
        lines = [
            f"Scan the QR code with WeChat on the account's phone within {valid / 60:.0f} min "
            f"(until {until.astimezone(self.tz):%H:%M} {self.settings.timezone}) to log "
            "wxcli back in.",
        ]
        if png:
            lines.append(f"The email carries it as {filename}.")
        if image_url:
            lines.append(f"QR image: {image_url}")
        if url:
            lines.append(f"QR content (open or encode it as a QR code if no image is shown): {url}")
        lines.append("When it expires, watch writes a new one and alerts again.")
        attachments = [Attachment(filename, png, "image/png")] if png else []
        return [
            self.make(
                title=f"[wxcli] {self.ctx.profile}: scan the QR code to log in again",
                text="\n".join(lines),
                fields={
                    "valid for": f"{valid:.0f} s (until {local_time(until, self.tz)})",
                    "login URL": url,
                    "QR file": path,
                },
                key=f"login_needed:{self.ctx.profile}:{digest[:16]}",
                now=now,
                attachments=attachments,
                image_url=image_url,
            )
        ]


# --- the watch itself --------------------------------------------------------------------------


class WatchDownRule(Rule):
    """No successful sync for N minutes, a stuck process, or a watch that died uncleanly."""

    kind = "watch_down"
    periodic = True
    severity = "critical"

    def check(self, now: datetime, sources: Sources) -> list[Alert]:
        health = sources.health()
        if health is None or health.state not in ("running", "starting"):
            return []  # stopped on purpose, or session_lost / relogin (their own alerts)
        limit = float(self.spec.minutes or 10) * 60
        running = sources.watch_running()
        sync_age = age_seconds(health.last_synccheck_at or health.started_at, now)
        reason = ""
        if running is False:
            reason = "wxcli watch is not running: it ended without a clean stop (crashed or killed)"
        else:
            updated = age_seconds(health.updated_at, now)
            if updated is not None and updated >= limit:
                reason = (
                    f"wxcli watch (pid {health.pid}) has not updated its health record for "
                    f"{minutes_text(updated)}: the process looks stuck"
                )
            elif sync_age is not None and sync_age >= limit:
                reason = (
                    f"wxcli watch has had no successful sync with WeChat for "
                    f"{minutes_text(sync_age)}"
                )
        if not reason:
            return []
        try:
            last = local_time(utc_aware(datetime.fromisoformat(health.last_synccheck_at)), self.tz)
        except (TypeError, ValueError):
            last = "never"
        return [
            self.make(
                title=f"[wxcli] {self.ctx.profile}: watch is down",
                text=f"{reason}. Messages are not being archived meanwhile, so the alerts "
                "about customers are silent too. Check the process and its log; "
                "`wxcli status` shows the health record.",
                fields={
                    "last sync": last,
                    "watch pid": health.pid,
                    "state": health.state,
                    "recent error": (health.errors[-1]["message"] if health.errors else ""),
                },
                key=f"watch_down:{self.ctx.profile}:{health.started_at}",
                now=now,
            )
        ]


class SilenceRule(Rule):
    """A normally busy chat silent for N minutes: the "zombie" session that can still send but
    no longer receives.

    *Normally busy*: over the same N-minute slot of each of the previous ``baseline_days``
    days (same local clock time), the chat averaged at least ``min_messages`` messages. So a
    group that is lively at 10:00 but quiet at night only alerts in the morning.
    """

    kind = "silence"
    periodic = True

    def __init__(self, spec: RuleSpec, ctx: RuleContext):
        super().__init__(spec, ctx)
        self._next: datetime | None = None

    def check(self, now: datetime, sources: Sources) -> list[Alert]:
        if self._next is not None and now < self._next:
            return []
        archive = sources.archive()
        if archive is None:
            return []
        window = timedelta(minutes=float(self.spec.minutes or 30))
        health = sources.health()
        if health is not None:
            if health.state != "running":
                return []  # a lost session has its own alert; silence would only add noise
            started = age_seconds(health.started_at, now)
            if started is not None and started < window.total_seconds():
                return []  # too soon after a start: the gap may be our own downtime
        self._next = now + SILENCE_EVERY
        from peewee import fn

        m = archive.m
        M, C = m.Message, m.Chat
        account = sources.account_id()
        chats = C.select(C.id, C.name)
        if account is not None:
            chats = chats.where(C.account == account)
        names = {cid: name for cid, name in chats.tuples() if chat_matches(name, self.spec.chats)}
        if not names:
            return []
        restrict = bool(self.spec.chats)

        def counts(start: datetime, end: datetime) -> Counter[int]:
            q = M.select(M.chat, fn.COUNT(M.id)).where(
                M.created_at >= utc_naive(start),
                M.created_at < utc_naive(end),
                M.kind.not_in(NOT_SPOKEN),
            )
            if account is not None:
                q = q.where(M.account == account)
            if restrict:
                q = q.where(M.chat.in_(list(names)))
            q = q.group_by(M.chat)
            return Counter({chat: n for chat, n in q.tuples()})

        current = counts(now - window, now)
        days = int(self.spec.baseline_days)
        baseline: Counter[int] = Counter()
        for d in range(1, days + 1):
            shift = timedelta(days=d)
            baseline.update(counts(now - shift - window, now - shift))
        out = []
        minutes = window.total_seconds() / 60
        for chat, total in sorted(baseline.items()):
            average = total / days
            if chat not in names or average < self.spec.min_messages or current.get(chat, 0):
                continue
            name = names[chat]
            out.append(
                self.make(
                    title=f"[wxcli] {name}: silent for {minutes:.0f} min",
                    text=f"No message in {name} for {minutes:.0f} min, though it normally has "
                    f"about {average:.0f} in this slot (average of the last {days} days). If "
                    "several busy chats go quiet at once, the session may be a zombie that can "
                    "still send but no longer receives: check `wxcli status` and the phone.",
                    fields={
                        "chat": name,
                        "silent since": local_time(now - window, self.tz),
                        "usual messages": f"{average:.1f} per {minutes:.0f} min",
                    },
                    key=f"silence:{self.name}:{chat}",
                    now=now,
                )
            )
        return out


class ErrorRule(Rule):
    """Repeated failures: sync errors, the database spooling, media failing, rate-limited sends."""

    kind = "error"
    events = frozenset(
        {"error", "db_spooling", "db_recovered", "feed_parked", "feed_failing", "feed_backlog",
         "feed_recovered"}
    )  # fmt: skip
    periodic = True

    def __init__(self, spec: RuleSpec, ctx: RuleContext):
        super().__init__(spec, ctx)
        self._media_failed: int | None = None
        self._rate_limited: int | None = None

    def _wants(self, source: str) -> bool:
        return source in self.spec.sources

    def on_event(self, kind: str, data: dict[str, Any], now: datetime) -> list[Alert]:
        p = self.ctx.profile
        if kind == "error" and self._wants("sync"):
            where = str(data.get("where") or "sync")
            return [
                self.make(
                    title=f"[wxcli] {p}: repeated {where} failures",
                    text=f"wxcli watch keeps failing to reach WeChat ({where}) and retries "
                    f"with back-off: {data.get('message', '')}",
                    fields={"where": where, "error": data.get("message", "")},
                    key=f"error:{self.name}:sync:{where}",
                    now=now,
                )
            ]
        if kind == "db_spooling" and self._wants("database"):
            return [
                self.make(
                    title=f"[wxcli] {p}: database unreachable, spooling messages to disk",
                    text="The archive database cannot be written. Messages are kept in the "
                    "local spool file and replayed in order when it is back; nothing is lost, "
                    "but reports and alerts that read the database lag behind.",
                    fields={"error": data.get("error", ""), "spool": data.get("spool", "")},
                    key=f"error:{self.name}:database",
                    now=now,
                )
            ]
        if kind.startswith("feed_") and self._wants("feed"):
            return [self._feed_alert(kind, data, now)]
        if kind == "db_recovered" and self._wants("database"):
            return [
                self.make(
                    title=f"[wxcli] {p}: database back",
                    text=f"The archive database answers again after {data.get('seconds', '?')} s; "
                    f"{data.get('messages', 0)} messages kept in the spool meanwhile were "
                    "replayed, and image downloads resumed.",
                    fields={
                        "down for (s)": data.get("seconds", ""),
                        "replayed messages": data.get("messages", ""),
                        "replayed batches": data.get("replayed", ""),
                    },
                    key=f"error:{self.name}:database:recovered",
                    now=now,
                    severity="info",
                )
            ]
        return []

    def _feed_alert(self, kind: str, data: dict[str, Any], now: datetime) -> Alert:
        p, sink = self.ctx.profile, data.get("sink", "?")
        texts = {
            "feed_parked": (
                f"[wxcli] {p}: feed sink {sink} refused a batch and is parked",
                f"{data.get('target', '')} refused delivery ({data.get('error', '')}). Nothing "
                f"was skipped; fix the receiver, then run `wxcli feed resume {sink}`.",
            ),
            "feed_failing": (
                f"[wxcli] {p}: feed sink {sink} unreachable",
                f"Deliveries to {data.get('target', '')} keep failing ({data.get('error', '')}); "
                "retrying with back-off, messages wait in the archive.",
            ),
            "feed_backlog": (
                f"[wxcli] {p}: feed sink {sink} is {data.get('lag', '?')} messages behind",
                f"More than {data.get('limit', '?')} stored messages have not reached "
                f"{data.get('target', '')} yet.",
            ),
            "feed_recovered": (
                f"[wxcli] {p}: feed sink {sink} delivering again",
                f"{data.get('target', '')} takes deliveries again; the backlog is sent in order.",
            ),
        }
        title, text = texts[kind]
        return self.make(
            title=title,
            text=text,
            fields={k: v for k, v in data.items() if k in ("target", "error", "lag", "status")},
            key=f"error:{self.name}:feed:{sink}:{kind}",
            now=now,
            severity="info" if kind == "feed_recovered" else None,
        )

    def check(self, now: datetime, sources: Sources) -> list[Alert]:
        out: list[Alert] = []
        health = sources.health()
        if health is not None and self._wants("media"):
            failed = int((health.queues or {}).get("media_failed", 0))
            if self._media_failed is not None and failed > self._media_failed:
                new = failed - self._media_failed
                last = next(
                    (e["message"] for e in reversed(health.errors) if e.get("where") == "media"),
                    "",
                )
                out.append(
                    self.make(
                        title=f"[wxcli] {self.ctx.profile}: media downloads failing",
                        text=f"{new} image/media download(s) failed after every retry "
                        f"({failed} since watch started). The messages are archived; their "
                        "media are not.",
                        fields={"failed now": new, "failed in total": failed, "last error": last},
                        key=f"error:{self.name}:media",
                        now=now,
                    )
                )
            self._media_failed = failed
        if self._wants("send"):
            status = sources.pacer_status()
            if status is not None:
                limited = int(status.rate_limited)
                if self._rate_limited is not None and limited > self._rate_limited:
                    out.append(
                        self.make(
                            title=f"[wxcli] {self.ctx.profile}: sends rate-limited (1205)",
                            text=f"WeChat answered 1205 (too frequent) to "
                            f"{limited - self._rate_limited} send(s); every sender of this "
                            f"profile pauses (now for {status.blocked_for:.0f} s more). Repeated "
                            "1205s can get the account blocked: lower [send] rate/burst.",
                            fields={
                                "1205 answers": limited - self._rate_limited,
                                "paused for": f"{status.blocked_for:.0f} s",
                                "senders waiting": status.waiting,
                            },
                            key=f"error:{self.name}:send",
                            now=now,
                        )
                    )
                self._rate_limited = limited
        return out


# --- the customers ----------------------------------------------------------------------------


class KeywordRule(Rule):
    """A message matching a regular expression or a word list, in chats matching globs."""

    kind = "keyword"
    events = frozenset({"messages"})

    def find(self, text: str) -> str | None:
        """The matched text, or None."""
        if self.spec.pattern is not None:
            m = self.spec.pattern.search(text)
            if m:
                return m.group(0)
        for word in self.spec.words:
            if word in text:
                return word
        return None

    def on_event(self, kind: str, data: dict[str, Any], now: datetime) -> list[Alert]:
        out = []
        for row in data.get("rows", ()):
            if row.is_self and not self.spec.include_self:
                continue  # our own replies (and alerts sent to WeChat) never trigger
            if row.kind in NOT_MATCHED or not chat_matches(row.chat_name, self.spec.chats):
                continue
            text = "\n".join(t for t in (row.text, row.title) if t)
            matched = self.find(text) if text else None
            if matched is None:
                continue
            chat, sender = row.chat_name, row.sender_name or "(unknown)"
            created = utc_aware(row.created_at)
            out.append(
                self.make(
                    title=f"[wxcli] {chat}: {sender} wrote “{matched}”",
                    text=quote(text),
                    fields={
                        "chat": chat,
                        "sender": sender,
                        "time": local_time(created, self.tz),
                        "matched": matched,
                        "message id": row.msg_id,
                        "history": history_pointer(chat, created, self.tz),
                    },
                    key=f"keyword:{self.name}:{chat}:{sender}",
                    now=now,
                )
            )
        return out


def scored_through(archive: Any) -> int:
    """The message row id up to which sentiment scoring is complete.

    Workers claim id ranges and may finish them out of order, so this is the end of the
    contiguous finished part: one below the lowest range still open, else the highest end."""
    from peewee import fn

    W = archive.m.WorkRange
    open_start = W.select(fn.MIN(W.start_id)).where(W.kind == "analysis", W.done == False)
    lowest = open_start.scalar()
    if lowest is not None:
        return int(lowest) - 1
    return int(W.select(fn.MAX(W.end_id)).where(W.kind == "analysis").scalar() or 0)


class NegativeRule(Rule):
    """Negative sentiment: one message below ``threshold``, or — with ``window_minutes`` — a
    ``share`` of negative messages among at least ``min_messages`` scored in that window.

    Scores come from the analysis worker (a separate process) into ``message_score``; this
    rule polls for newly scored messages above a high-water mark kept in ``alert_state``.
    It starts at the current mark, so old messages never alert when the rule is new.
    """

    kind = "negative"
    periodic = True

    def __init__(self, spec: RuleSpec, ctx: RuleContext):
        super().__init__(spec, ctx)
        self._mark: int | None = None
        self.threshold = (
            spec.threshold if spec.threshold is not None else ctx.settings.negative_threshold
        )

    @property
    def state_key(self) -> str:
        return f"negative:{self.ctx.profile}:{self.name}:mark"

    def _load_mark(self, sources: Sources, through: int) -> int | None:
        if self._mark is not None:
            return self._mark
        stored = sources.state.get_state(self.state_key) if sources.state is not None else None
        if stored is not None and stored.isdigit():
            self._mark = int(stored)
            return self._mark
        self._save_mark(sources, through)  # first run: from now on
        return None

    def _save_mark(self, sources: Sources, mark: int) -> None:
        self._mark = mark
        if sources.state is not None:
            sources.state.set_state(self.state_key, str(mark))

    def check(self, now: datetime, sources: Sources) -> list[Alert]:
        archive = sources.archive()
        if archive is None:
            return []
        through = scored_through(archive)
        mark = self._load_mark(sources, through)
        if mark is None or through <= mark:
            return []
        m = archive.m
        M, S = m.Message, m.MessageScore
        q = (
            M.select(
                M.id,
                M.chat,
                M.chat_name,
                M.sender_name,
                M.text,
                M.created_at,
                M.msg_id,
                S.sentiment,
            )
            .join(S, on=(S.message == M.id))
            .where(M.id > mark, M.id <= through, M.is_self == False)
            .order_by(M.id)
            .limit(NEGATIVE_BATCH)
        )
        account = sources.account_id()
        if account is not None:
            q = q.where(M.account == account)
        fetched = list(q.tuples())
        # A full batch may stop short of ``through``: continue after its last row next time.
        new_mark = fetched[-1][0] if len(fetched) >= NEGATIVE_BATCH else through
        rows = [r for r in fetched if chat_matches(r[2], self.spec.chats)]
        if self.spec.window_minutes is None:
            out = [self._one(r, now) for r in rows if r[7] < self.threshold]
        else:
            out = self._windows(archive, {r[1]: r[2] for r in rows}, now)
        self._save_mark(sources, new_mark)
        return out

    def _one(self, r: tuple[Any, ...], now: datetime) -> Alert:
        _id, chat_id, chat, sender, text, created, msg_id, score = r
        created = utc_aware(created)
        sender = sender or "(unknown)"
        return self.make(
            title=f"[wxcli] {chat}: negative message from {sender} ({score:.2f})",
            text=quote(text),
            fields={
                "chat": chat,
                "sender": sender,
                "time": local_time(created, self.tz),
                "sentiment": f"{score:.2f} (below {self.threshold:g})",
                "message id": msg_id,
                "history": history_pointer(chat, created, self.tz),
            },
            key=f"negative:{self.name}:{chat_id}:{sender}",
            now=now,
        )

    def _windows(self, archive: Any, chats: dict[int, str], now: datetime) -> list[Alert]:
        m = archive.m
        M, S = m.Message, m.MessageScore
        window = timedelta(minutes=float(self.spec.window_minutes or 60))
        out = []
        for chat_id, chat in chats.items():
            scores = list(
                M.select(M.sender_name, M.text, M.created_at, S.sentiment)
                .join(S, on=(S.message == M.id))
                .where(
                    M.chat == chat_id,
                    M.created_at >= utc_naive(now - window),
                    M.created_at <= utc_naive(now),
                    M.is_self == False,
                )
                .tuples()
            )
            negative = [s for s in scores if s[3] < self.threshold]
            if len(scores) < self.spec.min_messages or not scores:
                continue
            share = len(negative) / len(scores)
            if share < self.spec.share:
                continue
            worst = sorted(negative, key=lambda s: s[3])[:3]
            lines = [f"{s[0] or '?'} ({s[3]:.2f}): {quote(s[1], 120)}" for s in worst]
            minutes = window.total_seconds() / 60
            out.append(
                self.make(
                    title=f"[wxcli] {chat}: {share:.0%} of messages negative in {minutes:.0f} min",
                    text="Most negative:\n" + "\n".join(lines),
                    fields={
                        "chat": chat,
                        "negative": f"{len(negative)} of {len(scores)} scored messages",
                        "threshold": f"sentiment below {self.threshold:g}",
                        "window": f"{minutes:.0f} min",
                        "history": history_pointer(chat, now - window, self.tz),
                    },
                    key=f"negative:{self.name}:{chat_id}:window",
                    now=now,
                )
            )
        return out


class UnansweredRule(Rule):
    """A customer's message in a customer group that nobody of the staff answered within N
    minutes of working time.

    Staff are ``[alert] staff`` plus the rule's ``staff`` (matched against the sender's name in
    the group, nickname or remark) and always the account itself. Read from the archive on
    every check, so it survives restarts; only working time counts towards N (a question asked
    at night starts counting when working hours begin), and alerts fire only within them.
    """

    kind = "unanswered"
    periodic = True

    def __init__(self, spec: RuleSpec, ctx: RuleContext):
        super().__init__(spec, ctx)
        self.staff = tuple(dict.fromkeys((*ctx.settings.staff, *spec.staff)))

    def check(self, now: datetime, sources: Sources) -> list[Alert]:
        if not self.settings.in_working_hours(now):
            return []
        archive = sources.archive()
        if archive is None:
            return []
        from peewee import fn

        m = archive.m
        M, C, P = m.Message, m.Chat, m.Person
        account = sources.account_id()
        chats = C.select(C.id, C.name).where(C.kind == "group")
        if account is not None:
            chats = chats.where(C.account == account)
        names = {cid: name for cid, name in chats.tuples() if chat_matches(name, self.spec.chats)}
        if not names:
            return []
        staff_ids: list[int] = []
        if self.staff:
            people = P.select(P.id).where(P.nickname.in_(self.staff) | P.remark.in_(self.staff))
            if account is not None:
                people = people.where(P.account == account)
            staff_ids = [pid for (pid,) in people.tuples()]
        answer = M.is_self == True
        customer = (M.is_self == False) & M.kind.not_in(NOT_SPOKEN)
        if self.staff:
            answer = answer | M.sender_name.in_(self.staff)
            customer = customer & M.sender_name.not_in(self.staff)
        if staff_ids:
            answer = answer | M.sender.in_(staff_ids)
            customer = customer & (M.sender.is_null() | M.sender.not_in(staff_ids))
        since = utc_naive(now - UNANSWERED_LOOKBACK)
        ids = list(names)

        def latest(cond: Any) -> dict[int, datetime]:
            q = (
                M.select(M.chat, fn.MAX(M.created_at))
                .where(M.chat.in_(ids), M.created_at >= since, cond)
                .group_by(M.chat)
            )
            return {chat: at for chat, at in q.tuples() if at is not None}

        answered = latest(answer)
        asked = latest(customer)
        limit = float(self.spec.minutes or 15) * 60
        out = []
        for chat, last_question in sorted(asked.items()):
            last_answer = answered.get(chat)
            if last_answer is not None and last_answer >= last_question:
                continue
            after = max(last_answer, since) if last_answer is not None else since
            waiting = M.select().where(M.chat == chat, M.created_at > after, customer)
            first = waiting.order_by(M.created_at, M.id).first()
            if first is None:
                continue
            asked_at = utc_aware(first.created_at)
            waited = self.settings.working_seconds(asked_at, now)
            if waited < limit:
                continue
            out.append(
                self._alert(names[chat], chat, first, waiting.count(), asked_at, waited, now)
            )
        return out

    def _alert(
        self,
        chat: str,
        chat_id: int,
        first: Any,
        pending: int,
        asked_at: datetime,
        waited: float,
        now: datetime,
    ) -> Alert:
        customer = first.sender_name or "(unknown)"
        body = first.text or first.title or f"[{first.kind}]"
        if first.kind not in ("text", "link"):
            body = f"[{first.kind}] {body}".strip()
        more = f"\n(and {pending - 1} more message(s) since)" if pending > 1 else ""
        hours = "working time" if self.settings.working_hours is not None else "elapsed"
        return self.make(
            title=f"[wxcli] {chat}: {customer} has waited {minutes_text(waited)} for an answer",
            text=quote(body) + more,
            fields={
                "chat": chat,
                "customer": customer,
                "asked at": local_time(asked_at, self.tz),
                "waiting": f"{minutes_text(waited)} ({hours})",
                "messages waiting": pending,
                "staff": ", ".join(self.staff) + " and the account itself"
                if self.staff
                else "the account itself",
                "history": history_pointer(chat, asked_at, self.tz),
            },
            key=f"unanswered:{self.name}:{chat_id}:{first.msg_id}",
            now=now,
        )


RULE_CLASSES: dict[str, type[Rule]] = {
    cls.kind: cls
    for cls in (
        SessionLostRule,
        LoginNeededRule,
        WatchDownRule,
        SilenceRule,
        ErrorRule,
        KeywordRule,
        NegativeRule,
        UnansweredRule,
    )
}


def build_rules(specs: Iterable[RuleSpec], ctx: RuleContext) -> list[Rule]:
    """Rule objects for the enabled specs."""
    return [RULE_CLASSES[s.kind](s, ctx) for s in specs if s.enabled]


# --- cooldown and quiet hours ---------------------------------------------------------------


@dataclass
class Gate:
    """Decides whether an alert goes out: not in its rule's quiet hours, and not within the
    rule's cooldown of the same alert key (restored from the history after restarts)."""

    tz: Any = UTC
    last: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def seed(self, fired: dict[tuple[str, str], datetime]) -> None:
        for key, at in fired.items():
            if key not in self.last or self.last[key] < at:
                self.last[key] = at

    def admit(self, spec: RuleSpec, alert: Alert, now: datetime) -> str:
        """One of "send", "quiet" or "cooldown"; "send" starts the cooldown."""
        if spec.quiet_hours is not None and spec.quiet_hours.contains(now, self.tz):
            return "quiet"
        key = (spec.name, alert.key)
        last = self.last.get(key)
        if last is not None and (now - last).total_seconds() < spec.cooldown_seconds:
            return "cooldown"
        self.last[key] = now
        if len(self.last) > 10_000:
            self._prune(now)
        return "send"

    def _prune(self, now: datetime) -> None:
        cutoff = now - timedelta(days=5)
        self.last = {k: v for k, v in self.last.items() if v >= cutoff}
