"""Terminal charts for ``wxcli stats`` built from the report model as rich renderables.

Each chart uses block and shade characters as well as colour, so it still reads on a terminal
without colour or when the output is pasted into a ticket.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, tzinfo

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wxcli.stats.labels import LABELS
from wxcli.stats.model import (
    DayCount,
    HourCell,
    Lurker,
    NegativeMessage,
    Report,
    SentimentDay,
    Speaker,
    WordCount,
)

SPARKS = "▁▂▃▄▅▆▇█"
_EIGHTHS = " ▏▎▍▌▋▊▉"
_SHADES = "·░▒▓█"
_HEAT = ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c")

#: The terminal's names for its labels (``wxcli.cli.stats`` reads them too) and the key of each
#: in :mod:`wxcli.stats.labels`, the one table per language both renderers share.
_LABEL_KEYS: dict[str, str] = {
    "words": "words",
    "heatmap": "heatmap_grid",
    "daily": "daily",
    "all_chats": "all_chats",
    "sentiment": "sentiment",
    "mean": "mean",
    "neg_share": "neg_share",
    "speakers": "speakers",
    "lurkers": "lurkers",
    "negatives": "negatives",
    "no_data": "no_data_inline",
    "weekdays": "weekdays",
    "messages": "messages_column",
    "member": "member",
    "chat": "chat",
    "share": "share",
    "total": "total_inline",
    "period": "period",
    "chats": "chats_unit",
    "score": "score",
    "footer": "footer_terminal",
}

TEXT: dict[str, dict[str, str]] = {
    lang: {name: table[key] for name, key in _LABEL_KEYS.items()} for lang, table in LABELS.items()
}


def _t(lang: str) -> dict[str, str]:
    return TEXT.get(lang, TEXT["zh"])


def _no_data(lang: str) -> Text:
    return Text(_t(lang)["no_data"], style="dim italic")


def sparkline(
    values: Sequence[float | None], lo: float | None = None, hi: float | None = None
) -> str:
    """One character per value on an eight-step scale; ``None`` becomes a space.

    ``lo``/``hi`` fix the scale (e.g. 0..1 for sentiment) so that small wiggles are not blown
    up into cliffs; by default the values' own range is used.
    """
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values) if values else ""
    lo = min(known) if lo is None else lo
    hi = max(known) if hi is None else hi
    span = hi - lo
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif span <= 0:
            out.append(SPARKS[len(SPARKS) // 2 - 1])
        else:
            frac = min(1.0, max(0.0, (v - lo) / span))
            out.append(SPARKS[min(len(SPARKS) - 1, int(frac * len(SPARKS)))])
    return "".join(out)


def bar(value: float, top: float, width: int) -> str:
    """A horizontal bar ``width`` cells long at ``top``, drawn in eighths of a cell."""
    if top <= 0 or value <= 0:
        return ""
    eighths = max(1, round(width * 8 * min(1.0, value / top)))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def words_chart(
    words: Sequence[WordCount], *, limit: int = 15, width: int = 40, lang: str = "zh"
) -> RenderableType:
    """Top words as a bar chart: word, bar, count and share of all words."""
    top = sorted(words, key=lambda w: (-w.count, w.word))[:limit]
    if not top:
        return _no_data(lang)
    table = Table.grid(padding=(0, 1))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True, style="dim")
    peak = top[0].count
    for w in top:
        table.add_row(
            Text(w.word, style="bold"),
            Text(bar(w.count, peak, width), style="#4292c6"),
            Text(f"{w.count:,}  {w.share:.1%}"),
        )
    return table


def heatmap_chart(cells: Sequence[HourCell], *, lang: str = "zh") -> RenderableType:
    """Seven rows (Mon–Sun) of 24 hour cells, shaded and coloured by message count."""
    grid = [[0] * 24 for _ in range(7)]
    for c in cells:
        if 0 <= c.weekday < 7 and 0 <= c.hour < 24:
            grid[c.weekday][c.hour] += c.messages
    top = max(max(row) for row in grid)
    if top <= 0:
        return _no_data(lang)
    names = _t(lang)["weekdays"].split(",")
    # Pad by terminal cells, not characters: a CJK weekday name is two cells per character.
    label_w = max(cell_len(n) for n in names) + 1
    hours = "".join(f"{h:<6d}" for h in range(0, 24, 3)).rstrip()
    lines = [Text(" " * label_w + hours, style="dim")]
    for d in range(7):
        line = Text(names[d] + " " * (label_w - cell_len(names[d])))
        for h in range(24):
            v = grid[d][h]
            if v <= 0:
                line.append("  ")
                continue
            level = min(len(_HEAT) - 1, int(v / top * len(_HEAT)))
            line.append(_SHADES[level] * 2, style=_HEAT[level])
        line.append(f"  {sum(grid[d]):,}", style="dim")
        lines.append(line)
    key = Text(" " * label_w)
    for i, color in enumerate(_HEAT):
        key.append(_SHADES[i] * 2, style=color)
    key.append(f"  1 … {top:,}", style="dim")
    lines.append(key)
    return Group(*lines)


def daily_chart(
    days: Sequence[DayCount], *, top_chats: int = 5, lang: str = "zh"
) -> RenderableType:
    """A sparkline per chat (busiest few) and for all chats, with totals and the daily peak."""
    if not days:
        return _no_data(lang)
    t = _t(lang)
    all_days = sorted({r.day for r in days})
    index = {d: i for i, d in enumerate(all_days)}
    per_chat: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(all_days))
    total = [0.0] * len(all_days)
    have_total = any(r.chat is None for r in days)
    for r in days:
        if r.chat is None:
            total[index[r.day]] += r.messages
        else:
            per_chat[r.chat][index[r.day]] += r.messages
            if not have_total:
                total[index[r.day]] += r.messages
    rows = [(t["all_chats"], total)]
    rows += sorted(per_chat.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:top_chats]
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, max_width=16, overflow="ellipsis")
    table.add_column(no_wrap=True)
    table.add_column(justify="right", style="dim", no_wrap=True)
    for i, (name, values) in enumerate(rows):
        table.add_row(
            Text(name, style="bold" if i == 0 else ""),
            Text(sparkline(values, lo=0), style="#2171b5" if i == 0 else "#6baed6"),
            f"Σ {int(sum(values)):,}  max {int(max(values)):,}",
        )
    span = Text(f"{_fmt_day(all_days[0])} … {_fmt_day(all_days[-1])}", style="dim")
    return Group(table, span)


def sentiment_chart(sentiment: Sequence[SentimentDay], *, lang: str = "zh") -> RenderableType:
    """Daily mean sentiment on a fixed 0–1 scale, coloured by mood, and the negative share."""
    overall = [s for s in sentiment if s.chat is None]
    if not overall and sentiment:
        acc: dict[date, list[float]] = {}
        for s in sentiment:
            a = acc.setdefault(s.day, [0.0, 0.0, 0.0])
            a[0] += s.mean * s.messages
            a[1] += s.negative_share * s.messages
            a[2] += s.messages
        overall = [
            SentimentDay(d, None, a[0] / a[2], None, a[1] / a[2], int(a[2]))
            for d, a in acc.items()
            if a[2]
        ]
    overall.sort(key=lambda s: s.day)
    if not overall:
        return _no_data(lang)
    t = _t(lang)
    means = Text()
    for s, ch in zip(overall, sparkline([s.mean for s in overall], 0, 1), strict=True):
        means.append(
            ch, style="#d55e00" if s.mean < 0.4 else "#b45309" if s.mean < 0.55 else "#009e73"
        )
    negs = Text(sparkline([s.negative_share for s in overall], lo=0), style="#d55e00")
    weight = sum(s.messages for s in overall) or 1
    mean = sum(s.mean * s.messages for s in overall) / weight
    neg = sum(s.negative_share * s.messages for s in overall) / weight
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", style="dim", no_wrap=True)
    table.add_row(t["mean"], means, f"{mean:.2f}")
    table.add_row(t["neg_share"], negs, f"{neg:.0%}")
    span = Text(f"{_fmt_day(overall[0].day)} … {_fmt_day(overall[-1].day)}", style="dim")
    return Group(table, span)


def speakers_table(
    speakers: Sequence[Speaker], *, limit: int = 10, lang: str = "zh"
) -> RenderableType:
    """The most active members with their share of their chat."""
    top = sorted(speakers, key=lambda s: (-s.messages, s.name, s.chat))[:limit]
    if not top:
        return _no_data(lang)
    t = _t(lang)
    table = Table(box=None, header_style="bold dim", pad_edge=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column(t["member"], overflow="ellipsis", max_width=16)
    table.add_column(t["chat"], overflow="ellipsis", max_width=20, style="dim")
    table.add_column(t["messages"], justify="right")
    table.add_column(t["share"], justify="right")
    for i, s in enumerate(top, 1):
        table.add_row(str(i), Text(s.name), Text(s.chat), f"{s.messages:,}", f"{s.share:.1%}")
    return table


def lurkers_list(
    lurkers: Sequence[Lurker], *, per_chat: int = 12, lang: str = "zh"
) -> RenderableType:
    """Silent members, grouped by chat, the longest lists first."""
    if not lurkers:
        return _no_data(lang)
    by_chat: dict[str, list[str]] = defaultdict(list)
    for lk in lurkers:
        by_chat[lk.chat].append(lk.name)
    lines = []
    for chat, names in sorted(by_chat.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        names = sorted(set(names))
        line = Text()
        line.append(chat, style="bold")
        line.append(f" ({len(names)}): ", style="dim")
        line.append("、".join(names[:per_chat]))
        if len(names) > per_chat:
            line.append(f" … +{len(names) - per_chat}", style="dim")
        lines.append(line)
    return Group(*lines)


def negatives_list(
    negatives: Sequence[NegativeMessage],
    *,
    limit: int = 5,
    lang: str = "zh",
    tz: tzinfo | None = None,
) -> RenderableType:
    """The most negative messages with who, where, when, and the command to see the context."""
    top = sorted(negatives, key=lambda m: (m.score, m.created_at))[:limit]
    if not top:
        return _no_data(lang)
    lines = []
    for m in top:
        head = Text()
        head.append(f"{m.score:.2f} ", style="bold #d55e00")
        head.append(m.sender, style="bold")
        when = m.created_at.astimezone(tz) if tz and m.created_at.tzinfo else m.created_at
        head.append(f"  {m.chat}  {when:%Y-%m-%d %H:%M}", style="dim")
        text = m.text if len(m.text) <= 200 else m.text[:199] + "…"
        lines.append(head)
        lines.append(Text("  " + text))
        if m.history_hint:
            lines.append(Text("  $ " + m.history_hint, style="cyan"))
    return Group(*lines)


def report_renderables(report: Report, *, lang: str = "zh") -> list[RenderableType]:
    """Every section of the report as titled panels, in reading order."""
    t = _t(lang)
    meta = report.meta
    head = Text()
    head.append(meta.title or "wxcli", style="bold")
    head.append(
        f"\n{t['period']}: {meta.period_label()}"
        f" ({meta.timezone})  ·  {len(meta.chats)} {t['chats']}"
        f"  ·  {meta.total_messages:,} {t['messages']}",
        style="dim",
    )

    def panel(body: RenderableType, title: str) -> Panel:
        return Panel(body, title=title, title_align="left", border_style="dim", expand=True)

    return [
        head,
        panel(words_chart(report.words, lang=lang), t["words"]),
        panel(daily_chart(report.days, lang=lang), t["daily"]),
        panel(heatmap_chart(report.heatmap, lang=lang), t["heatmap"]),
        panel(sentiment_chart(report.sentiment, lang=lang), t["sentiment"]),
        panel(speakers_table(report.speakers, lang=lang), t["speakers"]),
        panel(lurkers_list(report.lurkers, lang=lang), t["lurkers"]),
        panel(negatives_list(report.negatives, lang=lang, tz=meta.zone()), t["negatives"]),
        Text(t["footer"], style="dim italic"),
    ]


def render_report(console: Console, report: Report, *, lang: str = "zh") -> None:
    """Print the whole report to ``console``."""
    for part in report_renderables(report, lang=lang):
        console.print(part)


def _fmt_day(d: date) -> str:
    return d.isoformat()
