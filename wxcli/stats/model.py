"""The report model: plain dataclasses that the stats queries fill and every renderer reads.

Keeping the model free of database and rendering code lets the queries and the renderers be
built, tested and changed apart; ``to_dict``/``from_dict`` give a stable JSON shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def _plain(value: Any) -> Any:
    """Turn dates, datetimes, tuples and nested dataclasses into JSON-ready values."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


class _Row:
    """Mixin: a flat ``to_dict`` whose keys are the field names, in declaration order."""

    def to_dict(self: DataclassInstance) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _when(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@dataclass
class WordCount(_Row):
    """One word and how often it was said; ``share`` is its part of all counted words."""

    word: str
    count: int
    share: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WordCount:
        return cls(word=d["word"], count=int(d["count"]), share=float(d["share"]))


@dataclass
class DayCount(_Row):
    """Messages on one day in one chat; ``chat`` None means all chats together."""

    day: date
    chat: str | None
    messages: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DayCount:
        return cls(day=_day(d["day"]), chat=d.get("chat"), messages=int(d["messages"]))


@dataclass
class HourCell(_Row):
    """Messages in one hour of one weekday over the period; ``weekday`` 0 is Monday."""

    weekday: int
    hour: int
    messages: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HourCell:
        return cls(weekday=int(d["weekday"]), hour=int(d["hour"]), messages=int(d["messages"]))


@dataclass
class Speaker(_Row):
    """A member who spoke, with their part of the chat's messages."""

    chat: str
    name: str
    messages: int
    share: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Speaker:
        return cls(
            chat=d["chat"], name=d["name"], messages=int(d["messages"]), share=float(d["share"])
        )


@dataclass
class Lurker(_Row):
    """A member of a chat who sent nothing in the period."""

    chat: str
    name: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Lurker:
        return cls(chat=d["chat"], name=d["name"])


@dataclass
class SentimentDay(_Row):
    """Sentiment of one day's messages (0 negative … 1 positive); ``chat`` None = all chats."""

    day: date
    chat: str | None
    mean: float
    median: float | None
    negative_share: float
    messages: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SentimentDay:
        median = d.get("median")
        return cls(
            day=_day(d["day"]),
            chat=d.get("chat"),
            mean=float(d["mean"]),
            median=None if median is None else float(median),
            negative_share=float(d["negative_share"]),
            messages=int(d["messages"]),
        )


@dataclass
class NegativeMessage(_Row):
    """One of the most negative messages, with the ``wxcli history`` command that shows it."""

    chat: str
    sender: str
    text: str
    score: float
    created_at: datetime
    msg_id: str
    history_hint: str

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NegativeMessage:
        return cls(
            chat=d["chat"],
            sender=d["sender"],
            text=d["text"],
            score=float(d["score"]),
            created_at=_when(d["created_at"]),
            msg_id=str(d["msg_id"]),
            history_hint=d.get("history_hint", ""),
        )


@dataclass
class ReportMeta(_Row):
    """What the report covers: period, chats, when and for whom it was made."""

    title: str
    since: datetime
    until: datetime
    chats: list[str]
    generated_at: datetime
    timezone: str
    total_messages: int
    account: str = ""

    def zone(self) -> tzinfo:
        """The zone to show times in: ``timezone`` if known, else the datetimes' own offset."""
        if self.timezone:
            try:
                return ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        return self.since.tzinfo or ZoneInfo("UTC")

    def local(self, when: datetime) -> datetime:
        """``when`` in the report's zone (naive datetimes are taken to be in it already)."""
        tz = self.zone()
        return when.astimezone(tz) if when.tzinfo else when.replace(tzinfo=tz)

    def period_label(self) -> str:
        """The period for people: whole days as ``first – last`` (``until`` at midnight is
        exclusive, so the day before it is the last one), else minutes on both ends."""
        a, b = self.local(self.since), self.local(self.until)
        if a.time() == b.time() == datetime.min.time():
            last = (b - timedelta(days=1)).date() if b.date() > a.date() else b.date()
            return f"{a.date().isoformat()} – {last.isoformat()}"
        return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M}"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReportMeta:
        return cls(
            title=d["title"],
            since=_when(d["since"]),
            until=_when(d["until"]),
            chats=list(d.get("chats", [])),
            generated_at=_when(d["generated_at"]),
            timezone=d.get("timezone", ""),
            total_messages=int(d.get("total_messages", 0)),
            account=d.get("account", ""),
        )


@dataclass
class Report:
    """Everything one ``wxcli stats report`` shows; lists may be empty."""

    meta: ReportMeta
    words: list[WordCount] = field(default_factory=list)
    days: list[DayCount] = field(default_factory=list)
    heatmap: list[HourCell] = field(default_factory=list)
    sentiment: list[SentimentDay] = field(default_factory=list)
    speakers: list[Speaker] = field(default_factory=list)
    lurkers: list[Lurker] = field(default_factory=list)
    negatives: list[NegativeMessage] = field(default_factory=list)
    busiest_chats: list[tuple[str, int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``busiest_chats`` becomes ``[{"chat", "messages"}]`` objects."""
        out: dict[str, Any] = {"meta": self.meta.to_dict()}
        for name in ("words", "days", "heatmap", "sentiment", "speakers", "lurkers", "negatives"):
            out[name] = [row.to_dict() for row in getattr(self, name)]
        out["busiest_chats"] = [{"chat": c, "messages": n} for c, n in self.busiest_chats]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict` output (e.g. a saved JSON report)."""
        return cls(
            meta=ReportMeta.from_dict(d["meta"]),
            words=[WordCount.from_dict(r) for r in d.get("words", [])],
            days=[DayCount.from_dict(r) for r in d.get("days", [])],
            heatmap=[HourCell.from_dict(r) for r in d.get("heatmap", [])],
            sentiment=[SentimentDay.from_dict(r) for r in d.get("sentiment", [])],
            speakers=[Speaker.from_dict(r) for r in d.get("speakers", [])],
            lurkers=[Lurker.from_dict(r) for r in d.get("lurkers", [])],
            negatives=[NegativeMessage.from_dict(r) for r in d.get("negatives", [])],
            busiest_chats=[(r["chat"], int(r["messages"])) for r in d.get("busiest_chats", [])],
        )
