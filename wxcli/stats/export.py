"""The rows each ``wxcli stats`` command prints with ``--format json`` or ``csv``.

One function per command, so the CLI and ``serve``'s ``GET /v1/stats/*`` answer with the very
same rows for the same options; the terminal charts are drawn from the same queries elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wxcli.errors import UsageError
from wxcli.stats.queries import SPLITS, Stats
from wxcli.stats.render import row_dict

ACTIVITY_VIEWS = ("days", "hours", "chats")
SENTIMENT_VIEWS = ("days", "chats", "chat-days", "negatives")


@dataclass(frozen=True)
class Rows:
    """Rows in order and the columns a CSV writer puts first."""

    rows: list[Any]
    columns: list[str]

    def dicts(self) -> list[dict[str, Any]]:
        """Each row as the JSON object of one ``--format json`` line."""
        return [row_dict(r) for r in self.rows]


def words_rows(
    s: Stats,
    top: int = 20,
    by: str | None = None,
    groups: int | None = None,
    keywords: bool = False,
) -> Rows:
    if keywords and by:
        raise UsageError("--keywords ranks the whole period; it cannot be used with --by")
    if keywords:
        return Rows(list(s.keywords(top)), ["word", "weight", "count"])
    if by:
        if by not in SPLITS:
            raise UsageError(f"cannot split by {by!r}: use one of {', '.join(SPLITS)}")
        keyed = [
            {by: r.group, "word": r.word, "count": r.count, "share": r.share}
            for r in s.words_by(by, top, groups)
        ]
        return Rows(keyed, [by, "word", "count", "share"])
    return Rows(list(s.words(top)), ["word", "count", "share"])


def activity_rows(s: Stats, top: int = 10, view: str = "days") -> Rows:
    if view == "days":
        return Rows(list(s.days()), ["day", "chat", "messages"])
    if view == "hours":
        return Rows(list(s.chat_hours()), ["chat", "weekday", "hour", "messages"])
    if view == "chats":
        total = s.total_messages()
        busiest = [
            {"chat": c, "messages": n, "share": n / total if total else 0.0}
            for c, n in s.busiest(top)
        ]
        return Rows(busiest, ["chat", "messages", "share"])
    raise UsageError(f"unknown view {view!r}: use one of {', '.join(ACTIVITY_VIEWS)}")


def speakers_rows(s: Stats, top: int = 10, overall: bool = False, lurkers: bool = True) -> Rows:
    rows: list[Any] = [
        {**r.to_dict(), "role": "speaker"} for r in s.speakers(top, per_chat=not overall)
    ]
    if lurkers:
        rows += [
            {**r.to_dict(), "messages": 0, "share": 0.0, "role": "lurker"} for r in s.lurkers()
        ]
    return Rows(rows, ["chat", "name", "messages", "share", "role"])


def sentiment_rows(s: Stats, top: int = 10, view: str = "days") -> Rows:
    if view in ("days", "chat-days"):
        return Rows(
            list(s.sentiment_days(per_chat=view == "chat-days")),
            ["day", "chat", "mean", "median", "negative_share", "messages"],
        )
    if view == "chats":
        return Rows(
            list(s.sentiment_chats()), ["chat", "mean", "median", "negative_share", "messages"]
        )
    if view == "negatives":
        return Rows(
            list(s.negatives(top)),
            ["score", "chat", "sender", "created_at", "text", "msg_id", "history_hint"],
        )
    raise UsageError(f"unknown view {view!r}: use one of {', '.join(SENTIMENT_VIEWS)}")
