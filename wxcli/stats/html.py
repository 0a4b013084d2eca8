"""The self-contained HTML report: one file with inline CSS and hand-drawn inline SVG charts.

Nothing is fetched when the file is opened (no fonts, scripts or styles from the network), so the
report can be mailed or archived and still look the same; tooltips use SVG ``<title>``, not JS.

How the page is made: :func:`build_page` turns the report into a view model (the dataclasses
below), which holds every number already worked out — scales, ticks, coordinates, colours and
the formatted counts — and the Jinja2 templates in ``templates/`` only place those values. Names
and messages are chosen by anyone in a group, so no HTML is ever put together from strings
here: every template is autoescaped, and every value is first passed through
:func:`wxcli.textutil.safe_text`, so control and bidi characters show as visible stand-ins
instead of reordering or hiding text. Jinja2 is imported on the first render only; this
module is not imported on ``wxcli``'s start-up paths either.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Generic, TypeVar

from wxcli import __version__
from wxcli.stats.labels import labels
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
from wxcli.stats.wordcloud import layout_wordcloud, text_width
from wxcli.textutil import safe_text

if TYPE_CHECKING:
    import jinja2

logger = logging.getLogger(__name__)

#: Line colours for chats, from the Okabe–Ito set, darkened where needed for 3:1 on white.
SERIES_COLORS: tuple[str, ...] = ("#0072b2", "#d55e00", "#009e73", "#7c3aed", "#cc79a7", "#8c6d1f")
TOTAL_COLOR = "#1d2433"
SENTIMENT_COLOR = "#0072b2"
NEGATIVE_COLOR = "#d55e00"
WORDS_COLOR = "#1f5f99"
BUSIEST_COLOR = "#247a5c"
#: ColorBrewer "Blues" stops: a single-hue sequential scale that stays readable in greyscale.
HEAT_STOPS: tuple[str, ...] = (
    "#deebf7",
    "#c6dbef",
    "#9ecae1",
    "#6baed6",
    "#4292c6",
    "#2171b5",
    "#08519c",
    "#08306b",
)
HEAT_EMPTY = "#f1f3f6"

TOP_WORDS_BARS = 15
CLOUD_WORDS = 100
DAILY_TOP_CHATS = 5
BUSIEST_CHATS = 10
TOP_SPEAKERS = 15
LURKERS_PER_CHAT = 60
NEGATIVES = 12
HEADER_CHATS = 12
#: A negative message is shown up to this many characters; the rest is one "…".
NEGATIVE_TEXT_CHARS = 400

Labels = dict[str, str]
Body = TypeVar("Body")


def render_html(report: Report, *, lang: str = "zh") -> str:
    """The whole report as one HTML document (a ``str``; write it with UTF-8).

    ``lang`` is ``"zh"`` (default) or ``"en"`` for the labels; user data is shown as given,
    except that control characters are made visible.
    """
    return _environment().get_template("report.html.j2").render(page=build_page(report, lang))


# --- the view model ------------------------------------------------------------------------


@dataclass(frozen=True)
class Label:
    """A piece of SVG text at ``(x, y)``."""

    x: float
    y: float
    text: str


@dataclass(frozen=True)
class Box:
    """A rectangle: a weekend band, a hover column, a bar or a heat-map cell."""

    x: float
    y: float
    width: float
    height: float
    fill: str = ""
    tip: str = ""


@dataclass(frozen=True)
class Rule:
    """A horizontal line from ``x1`` to ``x2`` at ``y``."""

    x1: float
    x2: float
    y: float


@dataclass(frozen=True)
class Dot:
    """A data point drawn as a circle."""

    x: float
    y: float
    fill: str


@dataclass(frozen=True, kw_only=True)
class Chart:
    """What every ``<svg>`` needs: its size (the viewBox), its accessible name, a CSS class."""

    width: float
    height: float
    label: str
    cls: str


@dataclass(frozen=True)
class HBar:
    """One row of a horizontal bar chart: label, bar and value text, placed."""

    label: str
    tooltip: str
    label_x: float
    y: float
    mid_y: float
    x: float
    width: float
    height: float
    opacity: float
    value_x: float
    text: str


@dataclass(frozen=True, kw_only=True)
class HBarChart(Chart):
    color: str
    bars: list[HBar]


@dataclass(frozen=True)
class CloudWord:
    """A word of the cloud, centred on ``(x, y)``; ``rotated`` words stand upright."""

    word: str
    tooltip: str
    x: float
    y: float
    font_size: float
    color: str
    weight: str
    rotated: bool


@dataclass(frozen=True, kw_only=True)
class CloudChart(Chart):
    words: list[CloudWord]


@dataclass(frozen=True)
class YTick:
    y: float
    text: str


@dataclass(frozen=True)
class YAxis:
    """Horizontal grid lines from ``x1`` to ``x2`` with their values right-aligned at
    ``label_x``."""

    x1: float
    x2: float
    label_x: float
    ticks: list[YTick]


@dataclass(frozen=True)
class XTick:
    x: float
    text: str


@dataclass(frozen=True)
class XAxis:
    """The base line of a time chart at ``y``, with day ticks and a note on how they are
    spaced (no ticks: the base line only)."""

    x1: float
    x2: float
    y: float
    tick_y2: float
    text_y: float
    ticks: list[XTick] = field(default_factory=list)
    note: Label | None = None


@dataclass(frozen=True)
class Series:
    """One line of the daily chart and its dots (``dot_r`` None: too many days for dots)."""

    name: str
    color: str
    points: list[tuple[float, float]]
    stroke_width: float
    dot_r: float | None


@dataclass(frozen=True, kw_only=True)
class LineChart(Chart):
    bands: list[Box]
    y_axis: YAxis
    x_axis: XAxis
    series: list[Series]  # in drawing order: the total last, on top
    hovers: list[Box]
    legend: list[tuple[str, str]]  # (name, colour), the total first


@dataclass(frozen=True)
class HeatKey:
    """The colour key under the heat map: empty is 0, then the scale from 1 to the maximum."""

    empty: Box
    zero: Label
    one: Label
    stops: list[Box]
    top: Label


@dataclass(frozen=True, kw_only=True)
class HeatmapChart(Chart):
    hours: list[Label]
    days: list[Label]
    cells: list[Box]
    key: HeatKey
    note: str


@dataclass(frozen=True, kw_only=True)
class SentimentChart(Chart):
    """Two panels on one day axis: the mean score (top) and the negative share (bottom)."""

    bands: list[Box]
    y_top: YAxis
    neutral: Rule  # the dashed line at 0.5
    y_bottom: YAxis
    x_top: XAxis
    x_bottom: XAxis
    negbars: list[Box]
    runs: list[list[tuple[float, float]]]  # the mean line, broken where days have no scores
    line_color: str
    dots: list[Dot]
    hovers: list[Box]
    panel_labels: list[Label]


@dataclass(frozen=True)
class SpeakerRow:
    rank: int
    name: str
    chat: str
    messages: str
    meter: float  # percent of the meter filled, 0–100
    share: str


@dataclass(frozen=True)
class SpeakersTable:
    head: list[tuple[str, bool]]  # (label, numeric column)
    rows: list[SpeakerRow]


@dataclass(frozen=True)
class LurkerGroup:
    chat: str
    count: int
    names: list[str]
    more: str | None


@dataclass(frozen=True)
class NegativeItem:
    score: str
    sender: str
    chat: str
    iso: str
    when: str
    text: str
    hint: str


@dataclass(frozen=True)
class NegativesList:
    score_label: str
    items: list[NegativeItem]


@dataclass(frozen=True)
class Card(Generic[Body]):
    """A titled section of the grid; without a ``body`` it shows the no-data note."""

    ident: str
    title: str
    caption: str
    span: int
    body: Body | None
    empty_title: str
    empty_hint: str


@dataclass(frozen=True)
class Kpi:
    label: str
    value: str
    cls: str


@dataclass(frozen=True)
class Header:
    title: str
    facts: list[tuple[str, str]]
    chats_label: str
    n_chats: int
    chats: list[str]
    more: str | None
    more_chats: list[str]


@dataclass(frozen=True)
class Page:
    """Everything the page template shows, in reading order."""

    lang: str
    title: str
    header: Header
    kpis: list[Kpi]
    words: Card[HBarChart]
    wordcloud: Card[CloudChart]
    daily: Card[LineChart]
    heatmap: Card[HeatmapChart]
    busiest: Card[HBarChart]
    sentiment: Card[SentimentChart]
    speakers: Card[SpeakersTable]
    lurkers: Card[list[LurkerGroup]]
    negatives: Card[NegativesList]
    footer: list[str]


def build_page(report: Report, lang: str = "zh") -> Page:
    """The view model of the whole page: what :func:`render_html` hands to the templates."""
    t = labels(lang)
    tz = report.meta.zone()
    days = _day_range(report, tz)
    series = _daily_series(report.days, days, t)
    daily = None
    if series and any(v for _, _, values in series for v in values):
        daily = _line_chart(days, series, t)
    n_daily = len(series) - 1 if series else DAILY_TOP_CHATS
    return Page(
        lang=t["lang"],
        title=report.meta.title or "wxcli",
        header=_header(report, t, tz),
        kpis=_kpis(report, t, days),
        words=_card("words", t, "words", 6, _words_bars(report.words, t)),
        wordcloud=_card("wordcloud", t, "cloud", 6, _cloud(report.words, t)),
        daily=_card("daily", t, "daily", 12, daily, n=n_daily),
        heatmap=_card("heatmap", t, "heatmap", 7, _heatmap(report.heatmap, t)),
        busiest=_card("busiest", t, "busiest", 5, _busiest_bars(report.busiest_chats, t)),
        sentiment=_card(
            "sentiment", t, "sentiment", 12, _sentiment_chart(report.sentiment, days, t)
        ),
        speakers=_card("speakers", t, "speakers", 7, _speakers(report.speakers, t)),
        lurkers=_card("lurkers", t, "lurkers", 5, _lurkers(report.lurkers, t)),
        negatives=_card("negatives", t, "negatives", 12, _negatives(report.negatives, t, tz)),
        footer=[t["footer_sentiment"], f"{t['footer_offline']} · wxcli {__version__}"],
    )


def _card(ident: str, t: Labels, key: str, span: int, body: Body | None, **fmt: object) -> Card:
    caption = t[f"{key}_cap"]
    return Card(
        ident=ident,
        title=t[key],
        caption=caption.format(**fmt) if fmt else caption,
        span=span,
        body=body if body else None,
        empty_title=t["no_data"],
        empty_hint=t.get(f"no_data_{ident}", t["no_data_hint"]),
    )


# --- page parts ----------------------------------------------------------------------------


def _header(report: Report, t: Labels, tz: tzinfo) -> Header:
    meta = report.meta
    chats = list(meta.chats)
    facts = [
        (t["period"], meta.period_label()),
        (t["timezone"], meta.timezone or str(tz)),
    ]
    if meta.account:
        facts.append((t["account"], meta.account))
    facts.append((t["generated"], _local(meta.generated_at, tz).strftime("%Y-%m-%d %H:%M")))
    more = len(chats) - HEADER_CHATS
    return Header(
        title=meta.title or "wxcli",
        facts=facts,
        chats_label=t["chats"],
        n_chats=len(chats),
        chats=chats[:HEADER_CHATS],
        more=t["more_chats"].format(n=more) if more > 0 else None,
        more_chats=chats[HEADER_CHATS:],
    )


def _kpis(report: Report, t: Labels, days: list[date]) -> list[Kpi]:
    meta = report.meta
    overall = _overall_sentiment(report.sentiment)
    n_msgs = sum(s.messages for s in overall)
    mood = sum(s.mean * s.messages for s in overall) / n_msgs if n_msgs else None
    neg = sum(s.negative_share * s.messages for s in overall) / n_msgs if n_msgs else None
    peak = max(report.heatmap, key=lambda c: (c.messages, -c.weekday, -c.hour), default=None)
    wd = t["weekdays"].split(",")
    return [
        Kpi(t["kpi_messages"], f"{meta.total_messages:,}", ""),
        Kpi(t["kpi_chats"], f"{len(meta.chats):,}", ""),
        Kpi(t["kpi_per_day"], f"{meta.total_messages / len(days):,.0f}" if days else "–", ""),
        Kpi(t["kpi_mood"], f"{mood:.2f}" if mood is not None else "–", _mood_class(mood)),
        Kpi(t["kpi_negative"], f"{neg:.0%}" if neg is not None else "–", ""),
        Kpi(
            t["kpi_peak"],
            f"{wd[peak.weekday % 7]} {peak.hour:02d}:00" if peak and peak.messages else "–",
            "",
        ),
    ]


def _mood_class(mood: float | None) -> str:
    if mood is None:
        return ""
    if mood < 0.4:
        return "bad"
    if mood >= 0.6:
        return "good"
    return ""


# --- charts --------------------------------------------------------------------------------


@dataclass
class _Bar:
    label: str
    value: float
    text: str
    tooltip: str


def _hbars(
    bars: Sequence[_Bar], label: str, *, width: float = 560, color: str = WORDS_COLOR
) -> HBarChart | None:
    """Horizontal bars, biggest on top: label column, bar, value text at the bar's end."""
    if not bars:
        return None
    row_h, gap, font = 24.0, 6.0, 13.0
    label_w = min(180.0, max(text_width(_clip(b.label, 14), font) for b in bars) + 8)
    value_w = max(text_width(b.text, 11.5) for b in bars) + 10
    x0 = label_w
    avail = width - x0 - value_w
    top = max(b.value for b in bars) or 1
    out = []
    for i, b in enumerate(bars):
        y = 2 + i * (row_h + gap)
        w = max(2.0, avail * b.value / top) if b.value > 0 else 0.0
        out.append(
            HBar(
                label=_clip(b.label, 14),
                tooltip=b.tooltip,
                label_x=x0 - 8,
                y=y,
                mid_y=y + row_h / 2,
                x=x0,
                width=w,
                height=row_h,
                opacity=0.95 - 0.45 * i / max(1, len(bars) - 1),
                value_x=x0 + w + 6,
                text=b.text,
            )
        )
    height = len(bars) * (row_h + gap) - gap + 4
    return HBarChart(width=width, height=height, label=label, cls="hbars", color=color, bars=out)


def _words_bars(words: Sequence[WordCount], t: Labels) -> HBarChart | None:
    top = sorted(words, key=lambda w: (-w.count, w.word))[:TOP_WORDS_BARS]
    bars = [
        _Bar(w.word, w.count, f"{w.count:,} ({_pct(w.share)})", f"{w.word}: {w.count:,}")
        for w in top
    ]
    return _hbars(bars, t["chart_words"])


def _busiest_bars(busiest: Sequence[tuple[str, int]], t: Labels) -> HBarChart | None:
    top = sorted(busiest, key=lambda cn: (-cn[1], cn[0]))[:BUSIEST_CHATS]
    bars = [_Bar(c, n, f"{n:,}", f"{c}: {n:,}") for c, n in top]
    return _hbars(bars, t["chart_busiest"], width=460, color=BUSIEST_COLOR)


def _cloud(words: Sequence[WordCount], t: Labels) -> CloudChart | None:
    width, height = 560.0, 380.0
    placed = layout_wordcloud(
        ((w.word, w.count) for w in words), width, height, max_words=CLOUD_WORDS
    )
    if not placed:
        return None
    cloud = [
        CloudWord(
            word=p.word,
            tooltip=f"{p.word}: {p.count:,}",
            x=p.x,
            y=p.y,
            font_size=p.font_size,
            color=p.color,
            weight="700" if p.font_size >= 28 else "600" if p.font_size >= 18 else "500",
            rotated=p.rotated,
        )
        for p in placed
    ]
    return CloudChart(
        width=width, height=height, label=t["chart_cloud"], cls="wordcloud", words=cloud
    )


def _daily_series(
    rows: Sequence[DayCount], days: list[date], t: Labels
) -> list[tuple[str, str, list[float]]]:
    """The total line (given, or summed from per-chat rows) and the top chats' lines."""
    if not rows or not days:
        return []
    index = {d: i for i, d in enumerate(days)}
    total = [0.0] * len(days)
    per_chat: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(days))
    have_total = any(r.chat is None for r in rows)
    for r in rows:
        i = index.get(r.day)
        if i is None:
            continue
        if r.chat is None:
            total[i] += r.messages
        else:
            per_chat[r.chat][i] += r.messages
            if not have_total:
                total[i] += r.messages
    top = sorted(per_chat.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:DAILY_TOP_CHATS]
    series = [(t["all_chats"], TOTAL_COLOR, total)]
    for k, (chat, values) in enumerate(top):
        series.append((chat, SERIES_COLORS[k % len(SERIES_COLORS)], values))
    return series


@dataclass
class _Frame:
    """Plot area inside an SVG, with day → x mapping shared by the time charts."""

    left: float
    top: float
    width: float
    height: float
    n: int

    def x(self, i: int) -> float:
        """Centre of day ``i``'s slot; slots are inset so end points never touch the axis."""
        return self.left + self.step * (i + 0.5)

    @property
    def step(self) -> float:
        return self.width / max(1, self.n)

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def right(self) -> float:
        return self.left + self.width


def _line_chart(
    days: list[date], series: list[tuple[str, str, list[float]]], t: Labels
) -> LineChart:
    width, height = 1160.0, 300.0
    top_value = max(max(v) for _, _, v in series)
    ticks = _nice_ticks(0, top_value)
    ymax = ticks[-1] or 1
    label_w = max(text_width(f"{int(v):,}", 11) for v in ticks) + 14
    f = _Frame(
        left=label_w, top=12, width=width - label_w - 14, height=height - 12 - 40, n=len(days)
    )

    def y(v: float) -> float:
        return f.bottom - f.height * v / ymax

    lines = []
    # Thin chat lines first so the total is drawn on top of them.
    for k, (name, color, values) in reversed(list(enumerate(series))):
        is_total = k == 0
        dot_r = None
        if len(days) <= 62:
            dot_r = (3.0 if is_total else 2.2) * (2 if len(days) <= 3 else 1)
        lines.append(
            Series(
                name=name,
                color=color,
                points=[(f.x(i), y(v)) for i, v in enumerate(values)],
                stroke_width=2.6 if is_total else 1.8,
                dot_r=dot_r,
            )
        )
    # One invisible column per day carries the tooltip with every line's value.
    wd = t["weekdays"].split(",")
    hovers = []
    for i, d in enumerate(days):
        tip = f"{d.isoformat()} {wd[d.weekday()]}\n" + "\n".join(
            f"{name}: {int(values[i]):,}" for name, _, values in series
        )
        hovers.append(_hover_column(f, i, tip))
    return LineChart(
        width=width,
        height=height,
        label=t["chart_daily"],
        cls="line",
        bands=_weekend_bands(days, f),
        y_axis=_y_axis(ticks, y, f, lambda v: f"{int(v):,}"),
        x_axis=_x_axis(days, f, t),
        series=lines,
        hovers=hovers,
        legend=[(name, color) for name, color, _ in series],
    )


def _day_span(f: _Frame, i: int) -> tuple[float, float]:
    """The x range that belongs to day ``i``: its slot, half-way to each neighbour."""
    half = f.step / 2
    return f.x(i) - half, f.x(i) + half


def _hover_column(f: _Frame, i: int, tip: str) -> Box:
    x0, x1 = _day_span(f, i)
    return Box(x0, f.top, x1 - x0, f.height, tip=tip)


def _weekend_bands(days: list[date], f: _Frame) -> list[Box]:
    out = []
    for i, d in enumerate(days):
        if d.weekday() >= 5:
            x0, x1 = _day_span(f, i)
            out.append(Box(x0, f.top, x1 - x0, f.height))
    return out


def _y_axis(
    ticks: list[float], y: Callable[[float], float], f: _Frame, fmt: Callable[[float], str]
) -> YAxis:
    return YAxis(f.left, f.right, f.left - 8, [YTick(y(v), fmt(v)) for v in ticks])


def _x_axis(days: list[date], f: _Frame, t: Labels, *, labels: bool = True) -> XAxis:
    """Day ticks: every day for short periods, else Mondays (weekly) or every other Monday."""
    x1, x2, y, tick_y2, text_y = f.left, f.right, f.bottom, f.bottom + 5, f.bottom + 18
    if not labels:
        return XAxis(x1, x2, y, tick_y2, text_y)
    n = len(days)
    years = {d.year for d in days}
    fmt = "%m-%d" if len(years) == 1 else "%y-%m-%d"
    spacing = text_width(days[0].strftime(fmt), 11.5) + 22
    max_labels = max(2, int(f.width // spacing))
    if n <= max_labels:
        picks = list(range(n))
    else:
        weeks = 1
        while math.ceil(n / (7 * weeks)) > max_labels:
            weeks *= 2
        mondays = [i for i, d in enumerate(days) if d.weekday() == 0]
        picks = mondays[::weeks] or [0]
    note = Label(f.right, f.bottom + 34, t["ticks_mondays"]) if n > max_labels else None
    return XAxis(
        x1,
        x2,
        y,
        tick_y2,
        text_y,
        ticks=[XTick(f.x(i), days[i].strftime(fmt)) for i in picks],
        note=note,
    )


def _heatmap(cells: Sequence[HourCell], t: Labels) -> HeatmapChart | None:
    grid = [[0] * 24 for _ in range(7)]
    for c in cells:
        if 0 <= c.weekday < 7 and 0 <= c.hour < 24:
            grid[c.weekday][c.hour] += c.messages
    top = max(max(row) for row in grid)
    if top <= 0:
        return None
    wd = t["weekdays"].split(",")
    width = 640.0
    label_w, top_pad = 44.0, 22.0
    cell_w = (width - label_w - 4) / 24
    cell_h = 26.0
    hours = [Label(label_w + (h + 0.5) * cell_w, top_pad - 8, f"{h:02d}") for h in range(0, 24, 2)]
    day_labels = [Label(label_w - 8, top_pad + (d + 0.5) * cell_h, wd[d]) for d in range(7)]
    boxes = []
    for d in range(7):
        for h in range(24):
            v = grid[d][h]
            tip = t["slot"].format(wd=wd[d], h=h, h2=(h + 1) % 24 or 24) + f": {v:,}"
            boxes.append(
                Box(
                    label_w + h * cell_w + 1,
                    top_pad + d * cell_h + 1,
                    cell_w - 2,
                    cell_h - 2,
                    fill=_heat_color(v / top) if v else HEAT_EMPTY,
                    tip=tip,
                )
            )
    # Colour key under the grid: an empty cell is 0, then the scale from 1 to the maximum.
    ky = top_pad + 7 * cell_h + 12
    x = label_w + 1
    empty = Box(x, ky, 16, 12, fill=HEAT_EMPTY)
    zero = Label(x + 22, ky + 6, "0")
    one = Label(x + 44, ky + 6, "1")
    x += 56
    stops = [Box(x + i * 20, ky, 20, 12, fill=color) for i, color in enumerate(HEAT_STOPS)]
    x += len(HEAT_STOPS) * 20 + 6
    peak_d, peak_h = max(
        ((d, h) for d in range(7) for h in range(24)),
        key=lambda dh: (grid[dh[0]][dh[1]], -dh[0], -dh[1]),
    )
    slot = t["slot"].format(wd=wd[peak_d], h=peak_h, h2=(peak_h + 1) % 24 or 24)
    return HeatmapChart(
        width=width,
        height=ky + 16,
        label=t["chart_heatmap"],
        cls="heatmap",
        hours=hours,
        days=day_labels,
        cells=boxes,
        key=HeatKey(empty, zero, one, stops, Label(x, ky + 6, f"{top:,}")),
        note=t["heatmap_peak"].format(slot=slot, n=f"{top:,}"),
    )


def _heat_color(frac: float) -> str:
    """Interpolate the sequential scale; any non-zero count gets at least the lightest stop."""
    frac = min(1.0, max(0.0, frac))
    pos = frac * (len(HEAT_STOPS) - 1)
    i = min(int(pos), len(HEAT_STOPS) - 2)
    a, b = HEAT_STOPS[i], HEAT_STOPS[i + 1]
    k = pos - i
    rgb = [round(int(a[j : j + 2], 16) * (1 - k) + int(b[j : j + 2], 16) * k) for j in (1, 3, 5)]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def _overall_sentiment(rows: Sequence[SentimentDay]) -> list[SentimentDay]:
    """Per-day rows for all chats: the ``chat=None`` rows, else per-chat rows weighted by size."""
    overall = [r for r in rows if r.chat is None]
    if overall or not rows:
        return sorted(overall, key=lambda r: r.day)
    acc: dict[date, list[float]] = {}
    for r in rows:
        a = acc.setdefault(r.day, [0.0, 0.0, 0.0])
        a[0] += r.mean * r.messages
        a[1] += r.negative_share * r.messages
        a[2] += r.messages
    return [
        SentimentDay(d, None, a[0] / a[2], None, a[1] / a[2], int(a[2]))
        for d, a in sorted(acc.items())
        if a[2] > 0
    ]


def _sentiment_chart(
    rows: Sequence[SentimentDay], days: list[date], t: Labels
) -> SentimentChart | None:
    overall = [r for r in _overall_sentiment(rows) if r.messages > 0]
    if not overall or not days:
        return None
    index = {d: i for i, d in enumerate(days)}
    overall = [r for r in overall if r.day in index]
    if not overall:
        return None
    width = 1160.0
    label_w = 52.0
    top_h, gap, bar_h = 170.0, 26.0, 76.0
    f = _Frame(left=label_w, top=10, width=width - label_w - 14, height=top_h, n=len(days))
    fb = _Frame(left=label_w, top=f.bottom + gap, width=f.width, height=bar_h, n=len(days))

    def y(v: float) -> float:
        return f.bottom - f.height * v

    neg_top = max(r.negative_share for r in overall)
    neg_ticks = _nice_ticks(0, max(neg_top, 0.05), count=3)
    neg_max = neg_ticks[-1] or 1

    def yb(v: float) -> float:
        return fb.bottom - fb.height * v / neg_max

    bw = max(1.5, min(18.0, fb.step * 0.7))
    negbars = []
    for r in overall:
        x = fb.x(index[r.day])
        top = yb(r.negative_share)
        negbars.append(Box(x - bw / 2, top, bw, fb.bottom - top, fill=NEGATIVE_COLOR))
    # Break the line where days have no scored messages instead of drawing across the gap.
    runs: list[list[tuple[float, float]]] = []
    prev = None
    for r in overall:
        i = index[r.day]
        if prev is None or i != prev + 1:
            runs.append([])
        runs[-1].append((f.x(i), y(r.mean)))
        prev = i
    dots = []
    if len(days) <= 93:
        dots = [
            Dot(
                f.x(index[r.day]),
                y(r.mean),
                NEGATIVE_COLOR if r.mean < 0.4 else SENTIMENT_COLOR,
            )
            for r in overall
        ]
    wd = t["weekdays"].split(",")
    hf = _Frame(f.left, f.top, f.width, fb.bottom - f.top, f.n)
    hovers = []
    for r in overall:
        parts = [
            f"{r.day.isoformat()} {wd[r.day.weekday()]}",
            f"{t['mean']}: {r.mean:.2f}",
        ]
        if r.median is not None:
            parts.append(f"{t['median']}: {r.median:.2f}")
        parts.append(f"{t['neg_share']}: {_pct(r.negative_share)}")
        parts.append(f"{t['messages']}: {r.messages:,}")
        hovers.append(_hover_column(hf, index[r.day], "\n".join(parts)))
    return SentimentChart(
        width=width,
        height=fb.bottom + 40,
        label=t["chart_sentiment"],
        cls="sentiment",
        bands=_weekend_bands(days, f) + _weekend_bands(days, fb),
        y_top=_y_axis(
            [0, 0.25, 0.5, 0.75, 1.0], y, f, lambda v: f"{v:.2f}".rstrip("0").rstrip(".")
        ),
        neutral=Rule(f.left, f.right, y(0.5)),
        y_bottom=_y_axis(neg_ticks, yb, fb, _pct_tick),
        x_top=_x_axis(days, f, t, labels=False),
        x_bottom=_x_axis(days, fb, t),
        negbars=negbars,
        runs=runs,
        line_color=SENTIMENT_COLOR,
        dots=dots,
        hovers=hovers,
        panel_labels=[
            Label(f.left + 6, f.top + 12, t["mean"]),
            Label(fb.left + 6, fb.top - 6, t["neg_share"]),
        ],
    )


# --- tables and lists ----------------------------------------------------------------------


def _speakers(speakers: Sequence[Speaker], t: Labels) -> SpeakersTable | None:
    top = sorted(speakers, key=lambda s: (-s.messages, s.name, s.chat))[:TOP_SPEAKERS]
    if not top:
        return None
    rows = [
        SpeakerRow(
            rank=i,
            name=s.name,
            chat=s.chat,
            messages=f"{s.messages:,}",
            meter=min(1.0, max(0.0, s.share)) * 100,
            share=_pct(s.share),
        )
        for i, s in enumerate(top, 1)
    ]
    head = [
        (t["rank"], True),
        (t["member"], False),
        (t["chat"], False),
        (t["messages"], True),
        (t["share"], False),
    ]
    return SpeakersTable(head, rows)


def _lurkers(lurkers: Sequence[Lurker], t: Labels) -> list[LurkerGroup]:
    by_chat: dict[str, list[str]] = defaultdict(list)
    for lk in lurkers:
        by_chat[lk.chat].append(lk.name)
    out = []
    for chat, names in sorted(by_chat.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        unique = sorted(set(names))
        extra = len(unique) - LURKERS_PER_CHAT
        out.append(
            LurkerGroup(
                chat=chat,
                count=len(unique),
                names=unique[:LURKERS_PER_CHAT],
                more=t["more_people"].format(n=extra) if extra > 0 else None,
            )
        )
    return out


def _negatives(rows: Sequence[NegativeMessage], t: Labels, tz: tzinfo) -> NegativesList | None:
    top = sorted(rows, key=lambda m: (m.score, m.created_at))[:NEGATIVES]
    if not top:
        return None
    limit = NEGATIVE_TEXT_CHARS
    items = [
        NegativeItem(
            score=f"{m.score:.2f}",
            sender=m.sender,
            chat=m.chat,
            iso=m.created_at.isoformat(),
            when=_local(m.created_at, tz).strftime("%Y-%m-%d %H:%M"),
            text=m.text if len(m.text) <= limit else m.text[: limit - 1] + "…",
            hint=m.history_hint,
        )
        for m in top
    ]
    return NegativesList(t["score"], items)


# --- helpers -------------------------------------------------------------------------------


def _local(when: datetime, tz: tzinfo) -> datetime:
    return when.astimezone(tz) if when.tzinfo else when.replace(tzinfo=tz)


def _day_range(report: Report, tz: tzinfo) -> list[date]:
    """Every day of the period (and of any data outside it), so gaps show as gaps."""
    a = _local(report.meta.since, tz)
    b = _local(report.meta.until, tz)
    first = a.date()
    last = b.date()
    if b.time() == datetime.min.time() and last > first:
        last -= timedelta(days=1)
    data_days = [r.day for r in report.days] + [r.day for r in report.sentiment]
    if data_days:
        first = min(first, *data_days)
        last = max(last, *data_days)
    if (last - first).days > 3660:  # a broken period; keep the chart drawable
        first = last - timedelta(days=3660)
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values from ``lo`` to at least ``hi`` (1, 2, 2.5 or 5 times a power of ten)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / max(1, count - 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v < hi - 1e-9:
        ticks.append(round(v, 10))
        v += step
    ticks.append(round(v, 10))
    return ticks


def _pct(share: float) -> str:
    if share and share < 0.001:
        return "<0.1%"
    return f"{share * 100:.1f}%"


def _pct_tick(v: float) -> str:
    return f"{v * 100:.0f}%" if v * 100 >= 1 or v == 0 else f"{v * 100:.1f}%"


def _clip(text: str, limit: int) -> str:
    """Shorten long labels for chart axes; the full text stays in the tooltip."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the template environment --------------------------------------------------------------


def _finalize(value: object) -> object:
    """Every ``{{ … }}`` value on its way out, before autoescaping: control characters (and
    bidi overrides) become visible stand-ins; newlines and tabs stay for tooltips and messages.
    Rendered macros (``__html__``) were finalized piece by piece already."""
    if isinstance(value, str) and not hasattr(value, "__html__"):
        return safe_text(value, multiline=True)
    return value


def _points(points: Sequence[tuple[float, float]]) -> str:
    """An SVG ``points`` list."""
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in points)


@functools.cache
def _environment() -> jinja2.Environment:
    """The one template environment, built on first use (Jinja2 is imported only here)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wxcli.stats", "templates"),
        # Escape everything: the page templates, the SVG macros, and anything not named either.
        autoescape=jinja2.select_autoescape(
            ("html", "svg", "html.j2", "svg.j2"), default_for_string=True, default=True
        ),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    # Number formats only; every number itself is worked out above.
    env.filters["g"] = lambda v: f"{v:g}"
    env.filters["f1"] = lambda v: f"{v:.1f}"
    env.filters["f2"] = lambda v: f"{v:.2f}"
    env.filters["points"] = _points
    return env
