"""The self-contained HTML report: one file with inline CSS and hand-drawn inline SVG charts.

Nothing is fetched when the file is opened (no fonts, scripts or styles from the network), so the
report can be mailed or archived and still look the same; tooltips use SVG ``<title>``, not JS.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from html import escape

from wxcli import __version__
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
from wxcli.stats.wordcloud import layout_wordcloud, svg_text_elements, text_width

logger = logging.getLogger(__name__)

#: Line colours for chats, from the Okabe–Ito set, darkened where needed for 3:1 on white.
SERIES_COLORS: tuple[str, ...] = ("#0072b2", "#d55e00", "#009e73", "#7c3aed", "#cc79a7", "#8c6d1f")
TOTAL_COLOR = "#1d2433"
SENTIMENT_COLOR = "#0072b2"
NEGATIVE_COLOR = "#d55e00"
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

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "lang": "zh-CN",
        "period": "统计区间",
        "timezone": "时区",
        "account": "账号",
        "generated": "生成于",
        "chats": "覆盖群聊",
        "more_chats": "另有 {n} 个群聊",
        "all_chats": "全部群聊",
        "total": "合计",
        "kpi_messages": "消息总数",
        "kpi_chats": "群聊数",
        "kpi_per_day": "日均消息",
        "kpi_mood": "平均情绪分",
        "kpi_negative": "负面消息占比",
        "kpi_peak": "最忙时段",
        "words": "热门词汇",
        "words_cap": "出现次数最多的词；条形长度为次数，括号内为占全部统计词数的比例。",
        "cloud": "词云",
        "cloud_cap": "字号随出现次数增大；把鼠标停在词上可看次数。",
        "daily": "每日消息量",
        "daily_cap": "所有群聊合计，以及消息最多的 {n} 个群聊；灰底为周末。",
        "heatmap": "活跃时段",
        "heatmap_cap": "一周七天 × 二十四小时的消息数，颜色越深越忙。",
        "heatmap_peak": "最忙：{slot}，共 {n} 条。",
        "ticks_mondays": "刻度为每周一",
        "busiest": "最活跃的群聊",
        "busiest_cap": "统计区间内的消息数。",
        "sentiment": "情绪趋势",
        "sentiment_cap": (
            "上：每日平均情绪分（0 = 负面，1 = 正面，虚线为中性 0.5）；下：当天负面消息的占比。"
        ),
        "mean": "平均分",
        "median": "中位数",
        "neg_share": "负面占比",
        "messages": "消息",
        "speakers": "发言最多的成员",
        "speakers_cap": "按发言条数排序；占比为该成员在所在群聊消息中的份额。",
        "rank": "#",
        "member": "成员",
        "chat": "群聊",
        "share": "占比",
        "lurkers": "潜水成员",
        "lurkers_cap": "统计区间内一条消息都没有发的群成员。",
        "more_people": "另有 {n} 人",
        "negatives": "最负面的消息",
        "negatives_cap": "情绪分最低的消息；复制下方命令可在终端查看前后文。",
        "score": "情绪分",
        "no_data": "暂无数据",
        "no_data_hint": "这个时间段里没有可统计的消息。",
        "no_data_lurkers": "没有潜水成员：每位成员都发过言，或者没有群成员名单。",
        "no_data_negatives": "没有打过情绪分的消息。",
        "no_data_sentiment": "没有打过情绪分的消息。",
        "footer_sentiment": (
            "情绪分由 snownlp 计算。它的模型是用购物评论训练的，单条消息的分数可能不准，"
            "请把分数当作趋势来看，而不是定论。"
        ),
        "footer_offline": "本报告是一个独立文件，打开时不会加载任何网络资源。",
        "weekdays": "周一,周二,周三,周四,周五,周六,周日",
        "slot": "{wd} {h:02d}:00–{h2:02d}:00",
        "chart_words": "热门词汇条形图",
        "chart_cloud": "词云",
        "chart_daily": "每日消息量折线图",
        "chart_heatmap": "星期与小时活跃热力图",
        "chart_busiest": "最活跃群聊条形图",
        "chart_sentiment": "每日情绪趋势图",
    },
    "en": {
        "lang": "en",
        "period": "Period",
        "timezone": "Time zone",
        "account": "Account",
        "generated": "Generated",
        "chats": "Chats",
        "more_chats": "{n} more chats",
        "all_chats": "All chats",
        "total": "Total",
        "kpi_messages": "Messages",
        "kpi_chats": "Chats",
        "kpi_per_day": "Messages per day",
        "kpi_mood": "Mean sentiment",
        "kpi_negative": "Negative share",
        "kpi_peak": "Busiest hour",
        "words": "Top words",
        "words_cap": "The most frequent words; bar length is the count, the bracket its share of "
        "all counted words.",
        "cloud": "Word cloud",
        "cloud_cap": "Bigger means more frequent; hover a word for its count.",
        "daily": "Messages per day",
        "daily_cap": "All chats together and the {n} busiest chats; grey columns are weekends.",
        "heatmap": "When chats are busy",
        "heatmap_cap": "Messages by weekday and hour; darker is busier.",
        "heatmap_peak": "Busiest: {slot}, {n} messages.",
        "ticks_mondays": "ticks on Mondays",
        "busiest": "Busiest chats",
        "busiest_cap": "Messages in the period.",
        "sentiment": "Sentiment trend",
        "sentiment_cap": "Top: daily mean score (0 = negative, 1 = positive; dashed line is "
        "neutral 0.5). Bottom: share of that day's messages that read negative.",
        "mean": "mean",
        "median": "median",
        "neg_share": "negative",
        "messages": "messages",
        "speakers": "Top speakers",
        "speakers_cap": "By messages sent; share is the member's part of their chat's messages.",
        "rank": "#",
        "member": "Member",
        "chat": "Chat",
        "share": "Share",
        "lurkers": "Lurkers",
        "lurkers_cap": "Members who sent nothing in the period.",
        "more_people": "{n} more",
        "negatives": "Most negative messages",
        "negatives_cap": "Lowest-scoring messages; run the command shown to read the context.",
        "score": "score",
        "no_data": "No data",
        "no_data_hint": "Nothing to count in this period.",
        "no_data_lurkers": "No lurkers: everyone spoke, or no member lists were recorded.",
        "no_data_negatives": "No scored messages.",
        "no_data_sentiment": "No scored messages.",
        "footer_sentiment": "Sentiment scores come from snownlp, whose model was trained on "
        "shopping reviews: single scores can be off, so read them as trends, not verdicts.",
        "footer_offline": "This report is a single file and loads nothing from the network.",
        "weekdays": "Mon,Tue,Wed,Thu,Fri,Sat,Sun",
        "slot": "{wd} {h:02d}:00–{h2:02d}:00",
        "chart_words": "Bar chart of top words",
        "chart_cloud": "Word cloud",
        "chart_daily": "Line chart of messages per day",
        "chart_heatmap": "Heat map of messages by weekday and hour",
        "chart_busiest": "Bar chart of the busiest chats",
        "chart_sentiment": "Daily sentiment trend",
    },
}


def render_html(report: Report, *, lang: str = "zh") -> str:
    """The whole report as one HTML document (a ``str``; write it with UTF-8).

    ``lang`` is ``"zh"`` (default) or ``"en"`` for the labels; user data is shown as given.
    """
    t = STRINGS.get(lang, STRINGS["zh"])
    tz = report.meta.zone()
    days = _day_range(report, tz)
    sections = [
        _header(report, t, tz),
        _kpis(report, t, days),
        '<div class="grid">',
        _card("words", t["words"], t["words_cap"], _words_bars(report.words, t), t, span=6),
        _card("wordcloud", t["cloud"], t["cloud_cap"], _cloud(report.words, t), t, span=6),
        _daily_card(report, t, days),
        _heatmap_card(report.heatmap, t),
        _card(
            "busiest",
            t["busiest"],
            t["busiest_cap"],
            _busiest_bars(report.busiest_chats, t),
            t,
            span=5,
        ),
        _card(
            "sentiment",
            t["sentiment"],
            t["sentiment_cap"],
            _sentiment_chart(report.sentiment, days, t),
            t,
            span=12,
        ),
        _card(
            "speakers", t["speakers"], t["speakers_cap"], _speakers(report.speakers, t), t, span=7
        ),
        _card("lurkers", t["lurkers"], t["lurkers_cap"], _lurkers(report.lurkers, t), t, span=5),
        _card(
            "negatives",
            t["negatives"],
            t["negatives_cap"],
            _negatives(report.negatives, t, tz),
            t,
            span=12,
        ),
        "</div>",
        _footer(t),
    ]
    title = escape(report.meta.title or "wxcli")
    return (
        f'<!DOCTYPE html>\n<html lang="{t["lang"]}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light">\n'
        f'<meta name="generator" content="wxcli">\n<title>{title}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(s for s in sections if s)
        + "\n</main>\n</body>\n</html>\n"
    )


# --- page parts ----------------------------------------------------------------------------


def _header(report: Report, t: dict[str, str], tz: tzinfo) -> str:
    meta = report.meta
    chats = meta.chats
    shown = "".join(f'<li class="chip">{escape(c)}</li>' for c in chats[:HEADER_CHATS])
    extra = ""
    if len(chats) > HEADER_CHATS:
        rest = "".join(f'<li class="chip">{escape(c)}</li>' for c in chats[HEADER_CHATS:])
        more = t["more_chats"].format(n=len(chats) - HEADER_CHATS)
        extra = f'<details><summary>{escape(more)}</summary><ul class="chips">{rest}</ul></details>'
    facts = [
        (t["period"], meta.period_label()),
        (t["timezone"], meta.timezone or str(tz)),
    ]
    if meta.account:
        facts.append((t["account"], meta.account))
    facts.append((t["generated"], _local(meta.generated_at, tz).strftime("%Y-%m-%d %H:%M")))
    dl = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    chats_html = (
        f'<div class="chats"><span class="label">{escape(t["chats"])}'
        f' <b>{len(chats)}</b></span><ul class="chips">{shown}</ul>{extra}</div>'
        if chats
        else ""
    )
    return (
        f'<header id="header"><h1>{escape(meta.title or "wxcli")}</h1>'
        f'<dl class="facts">{dl}</dl>{chats_html}</header>'
    )


def _kpis(report: Report, t: dict[str, str], days: list[date]) -> str:
    meta = report.meta
    overall = _overall_sentiment(report.sentiment)
    n_msgs = sum(s.messages for s in overall)
    mood = sum(s.mean * s.messages for s in overall) / n_msgs if n_msgs else None
    neg = sum(s.negative_share * s.messages for s in overall) / n_msgs if n_msgs else None
    peak = max(report.heatmap, key=lambda c: (c.messages, -c.weekday, -c.hour), default=None)
    wd = t["weekdays"].split(",")
    tiles = [
        (t["kpi_messages"], f"{meta.total_messages:,}", ""),
        (t["kpi_chats"], f"{len(meta.chats):,}", ""),
        (
            t["kpi_per_day"],
            f"{meta.total_messages / len(days):,.0f}" if days else "–",
            "",
        ),
        (t["kpi_mood"], f"{mood:.2f}" if mood is not None else "–", _mood_class(mood)),
        (t["kpi_negative"], f"{neg:.0%}" if neg is not None else "–", ""),
        (
            t["kpi_peak"],
            f"{wd[peak.weekday % 7]} {peak.hour:02d}:00" if peak and peak.messages else "–",
            "",
        ),
    ]
    body = "".join(
        f'<div class="kpi"><div class="kpi-value {cls}">{escape(v)}</div>'
        f'<div class="kpi-label">{escape(k)}</div></div>'
        for k, v, cls in tiles
    )
    return f'<section id="summary" class="kpis" aria-label="summary">{body}</section>'


def _mood_class(mood: float | None) -> str:
    if mood is None:
        return ""
    if mood < 0.4:
        return "bad"
    if mood >= 0.6:
        return "good"
    return ""


def _card(ident: str, title: str, caption: str, body: str, t: dict[str, str], *, span: int) -> str:
    return (
        f'<section id="{ident}" class="card span-{span}"><h2>{escape(title)}</h2>'
        f'<p class="caption">{escape(caption)}</p>{body or _empty(t, ident)}</section>'
    )


def _empty(t: dict[str, str], ident: str) -> str:
    hint = t.get(f"no_data_{ident}", t["no_data_hint"])
    return (
        f'<div class="empty" role="note"><div class="empty-icon" aria-hidden="true">∅</div>'
        f"<div><b>{escape(t['no_data'])}</b><br>{escape(hint)}</div></div>"
    )


def _footer(t: dict[str, str]) -> str:
    return (
        f'<footer id="footer"><p>{escape(t["footer_sentiment"])}</p>'
        f"<p>{escape(t['footer_offline'])} · wxcli {escape(__version__)}</p></footer>"
    )


# --- charts --------------------------------------------------------------------------------


def _svg(width: float, height: float, label: str, body: Iterable[str], cls: str = "") -> str:
    return (
        f'<svg class="chart {cls}" viewBox="0 0 {width:g} {height:g}" '
        f'preserveAspectRatio="xMidYMid meet" role="img" aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


@dataclass
class _Bar:
    label: str
    value: float
    text: str
    tooltip: str


def _hbars(bars: Sequence[_Bar], label: str, *, width: float = 560, color: str = "#1f5f99") -> str:
    """Horizontal bars, biggest on top: label column, bar, value text at the bar's end."""
    if not bars:
        return ""
    row_h, gap, font = 24.0, 6.0, 13.0
    label_w = min(180.0, max(text_width(_clip(b.label, 14), font) for b in bars) + 8)
    value_w = max(text_width(b.text, 11.5) for b in bars) + 10
    x0 = label_w
    avail = width - x0 - value_w
    top = max(b.value for b in bars) or 1
    height = len(bars) * (row_h + gap) - gap + 4
    out = []
    for i, b in enumerate(bars):
        y = 2 + i * (row_h + gap)
        w = max(2.0, avail * b.value / top) if b.value > 0 else 0
        out.append(
            f'<g class="bar"><title>{escape(b.tooltip)}</title>'
            f'<text class="bar-label" x="{x0 - 8:g}" y="{y + row_h / 2:g}" '
            f'text-anchor="end" dominant-baseline="central">{escape(_clip(b.label, 14))}</text>'
            f'<rect x="{x0:g}" y="{y:g}" width="{w:.1f}" height="{row_h:g}" rx="3" '
            f'fill="{color}" fill-opacity="{0.95 - 0.45 * i / max(1, len(bars) - 1):.2f}"/>'
            f'<text class="bar-value" x="{x0 + w + 6:.1f}" y="{y + row_h / 2:g}" '
            f'dominant-baseline="central">{escape(b.text)}</text></g>'
        )
    return _svg(width, height, label, out, "hbars")


def _words_bars(words: Sequence[WordCount], t: dict[str, str]) -> str:
    top = sorted(words, key=lambda w: (-w.count, w.word))[:TOP_WORDS_BARS]
    bars = [
        _Bar(w.word, w.count, f"{w.count:,} ({_pct(w.share)})", f"{w.word}: {w.count:,}")
        for w in top
    ]
    return _hbars(bars, t["chart_words"])


def _busiest_bars(busiest: Sequence[tuple[str, int]], t: dict[str, str]) -> str:
    top = sorted(busiest, key=lambda cn: (-cn[1], cn[0]))[:BUSIEST_CHATS]
    bars = [_Bar(c, n, f"{n:,}", f"{c}: {n:,}") for c, n in top]
    return _hbars(bars, t["chart_busiest"], width=460, color="#247a5c")


def _cloud(words: Sequence[WordCount], t: dict[str, str]) -> str:
    width, height = 560.0, 380.0
    placed = layout_wordcloud(
        ((w.word, w.count) for w in words), width, height, max_words=CLOUD_WORDS
    )
    if not placed:
        return ""
    return _svg(width, height, t["chart_cloud"], svg_text_elements(placed), "wordcloud")


def _daily_card(report: Report, t: dict[str, str], days: list[date]) -> str:
    series = _daily_series(report.days, days, t)
    body = ""
    legend = ""
    if series and any(v for _, _, values in series for v in values):
        body = _line_chart(days, series, t)
        legend = (
            '<ul class="legend">'
            + "".join(
                f'<li title="{escape(name)}">'
                f'<span class="swatch" style="background:{color}"></span>{escape(name)}</li>'
                for name, color, _ in series
            )
            + "</ul>"
        )
    n_chats = len(series) - 1 if series else DAILY_TOP_CHATS
    return _card(
        "daily",
        t["daily"],
        t["daily_cap"].format(n=n_chats),
        body + legend if body else "",
        t,
        span=12,
    )


def _daily_series(
    rows: Sequence[DayCount], days: list[date], t: dict[str, str]
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


def _line_chart(
    days: list[date], series: list[tuple[str, str, list[float]]], t: dict[str, str]
) -> str:
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

    out = [_weekend_bands(days, f)]
    out.append(_y_grid(ticks, y, f, lambda v: f"{int(v):,}"))
    out.append(_x_axis(days, f, t))
    # Thin chat lines first so the total is drawn on top of them.
    for k, (name, color, values) in reversed(list(enumerate(series))):
        is_total = k == 0
        pts = " ".join(f"{f.x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        sw = 2.6 if is_total else 1.8
        out.append(
            f'<polyline class="series" points="{pts}" fill="none" stroke="{color}" '
            f'stroke-width="{sw}" stroke-linejoin="round" stroke-linecap="round">'
            f"<title>{escape(name)}</title></polyline>"
        )
        if len(days) <= 62:
            r = (3.0 if is_total else 2.2) * (2 if len(days) <= 3 else 1)
            out.extend(
                f'<circle cx="{f.x(i):.1f}" cy="{y(v):.1f}" r="{r}" fill="{color}"/>'
                for i, v in enumerate(values)
            )
    # One invisible column per day carries the tooltip with every line's value.
    wd = t["weekdays"].split(",")
    for i, d in enumerate(days):
        tip = f"{d.isoformat()} {wd[d.weekday()]}\n" + "\n".join(
            f"{name}: {int(values[i]):,}" for name, _, values in series
        )
        out.append(_hover_column(f, i, tip))
    return _svg(width, height, t["chart_daily"], out, "line")


def _day_span(f: _Frame, i: int) -> tuple[float, float]:
    """The x range that belongs to day ``i``: its slot, half-way to each neighbour."""
    half = f.step / 2
    return f.x(i) - half, f.x(i) + half


def _hover_column(f: _Frame, i: int, tip: str) -> str:
    x0, x1 = _day_span(f, i)
    return (
        f'<rect class="hover" x="{x0:.1f}" y="{f.top:g}" width="{x1 - x0:.1f}" '
        f'height="{f.height:g}"><title>{escape(tip)}</title></rect>'
    )


def _weekend_bands(days: list[date], f: _Frame) -> str:
    out = []
    for i, d in enumerate(days):
        if d.weekday() >= 5:
            x0, x1 = _day_span(f, i)
            out.append(
                f'<rect class="weekend" x="{x0:.1f}" y="{f.top:g}" width="{x1 - x0:.1f}" '
                f'height="{f.height:g}"/>'
            )
    return "".join(out)


def _y_grid(
    ticks: list[float], y: Callable[[float], float], f: _Frame, fmt: Callable[[float], str]
) -> str:
    out = ['<g class="axis y">']
    for v in ticks:
        yy = y(v)
        out.append(
            f'<line x1="{f.left:g}" x2="{f.left + f.width:g}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text x="{f.left - 8:g}" y="{yy:.1f}" text-anchor="end" '
            f'dominant-baseline="central">{escape(fmt(v))}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _x_axis(days: list[date], f: _Frame, t: dict[str, str], *, labels: bool = True) -> str:
    """Day ticks: every day for short periods, else Mondays (weekly) or every other Monday."""
    n = len(days)
    out = [
        f'<g class="axis x"><line class="base" x1="{f.left:g}" x2="{f.left + f.width:g}" '
        f'y1="{f.bottom:g}" y2="{f.bottom:g}"/>'
    ]
    if not labels:
        out.append("</g>")
        return "".join(out)
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
    for i in picks:
        d = days[i]
        text = d.strftime(fmt)
        x = f.x(i)
        out.append(
            f'<line class="tick" x1="{x:.1f}" x2="{x:.1f}" y1="{f.bottom:g}" '
            f'y2="{f.bottom + 5:g}"/><text x="{x:.1f}" y="{f.bottom + 18:g}" '
            f'text-anchor="middle">{text}</text>'
        )
    if n > max_labels:
        out.append(
            f'<text class="axis-note" x="{f.left + f.width:g}" y="{f.bottom + 34:g}" '
            f'text-anchor="end">{escape(t["ticks_mondays"])}</text>'
        )
    out.append("</g>")
    return "".join(out)


def _heatmap_card(cells: Sequence[HourCell], t: dict[str, str]) -> str:
    grid = [[0] * 24 for _ in range(7)]
    for c in cells:
        if 0 <= c.weekday < 7 and 0 <= c.hour < 24:
            grid[c.weekday][c.hour] += c.messages
    top = max(max(row) for row in grid)
    if top <= 0:
        return _card("heatmap", t["heatmap"], t["heatmap_cap"], "", t, span=7)
    wd = t["weekdays"].split(",")
    width = 640.0
    label_w, top_pad = 44.0, 22.0
    cell_w = (width - label_w - 4) / 24
    cell_h = 26.0
    out = ['<g class="axis">']
    for h in range(0, 24, 2):
        out.append(
            f'<text x="{label_w + (h + 0.5) * cell_w:.1f}" y="{top_pad - 8:g}" '
            f'text-anchor="middle">{h:02d}</text>'
        )
    for d in range(7):
        out.append(
            f'<text x="{label_w - 8:g}" y="{top_pad + (d + 0.5) * cell_h:.1f}" '
            f'text-anchor="end" dominant-baseline="central">{escape(wd[d])}</text>'
        )
    out.append("</g>")
    for d in range(7):
        for h in range(24):
            v = grid[d][h]
            fill = _heat_color(v / top) if v else HEAT_EMPTY
            tip = t["slot"].format(wd=wd[d], h=h, h2=(h + 1) % 24 or 24) + f": {v:,}"
            out.append(
                f'<rect class="cell" x="{label_w + h * cell_w + 1:.1f}" '
                f'y="{top_pad + d * cell_h + 1:.1f}" width="{cell_w - 2:.1f}" '
                f'height="{cell_h - 2:g}" rx="3" fill="{fill}"><title>{escape(tip)}</title></rect>'
            )
    # Colour key under the grid: an empty cell is 0, then the scale from 1 to the maximum.
    ky = top_pad + 7 * cell_h + 12
    x = label_w + 1
    out.append('<g class="axis key">')
    out.append(f'<rect x="{x:g}" y="{ky:g}" width="16" height="12" rx="2" fill="{HEAT_EMPTY}"/>')
    out.append(f'<text x="{x + 22:g}" y="{ky + 6:g}" dominant-baseline="central">0</text>')
    x += 44
    out.append(f'<text x="{x:g}" y="{ky + 6:g}" dominant-baseline="central">1</text>')
    x += 12
    for i, color in enumerate(HEAT_STOPS):
        out.append(f'<rect x="{x + i * 20:g}" y="{ky:g}" width="20" height="12" fill="{color}"/>')
    x += len(HEAT_STOPS) * 20 + 6
    out.append(f'<text x="{x:g}" y="{ky + 6:g}" dominant-baseline="central">{top:,}</text></g>')
    height = ky + 16
    peak_d, peak_h = max(
        ((d, h) for d in range(7) for h in range(24)),
        key=lambda dh: (grid[dh[0]][dh[1]], -dh[0], -dh[1]),
    )
    slot = t["slot"].format(wd=wd[peak_d], h=peak_h, h2=(peak_h + 1) % 24 or 24)
    note = f'<p class="note">{escape(t["heatmap_peak"].format(slot=slot, n=f"{top:,}"))}</p>'
    body = _svg(width, height, t["chart_heatmap"], out, "heatmap") + note
    return _card("heatmap", t["heatmap"], t["heatmap_cap"], body, t, span=7)


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


def _sentiment_chart(rows: Sequence[SentimentDay], days: list[date], t: dict[str, str]) -> str:
    overall = [r for r in _overall_sentiment(rows) if r.messages > 0]
    if not overall or not days:
        return ""
    index = {d: i for i, d in enumerate(days)}
    overall = [r for r in overall if r.day in index]
    if not overall:
        return ""
    width = 1160.0
    label_w = 52.0
    top_h, gap, bar_h = 170.0, 26.0, 76.0
    f = _Frame(left=label_w, top=10, width=width - label_w - 14, height=top_h, n=len(days))
    fb = _Frame(left=label_w, top=f.bottom + gap, width=f.width, height=bar_h, n=len(days))
    height = fb.bottom + 40

    def y(v: float) -> float:
        return f.bottom - f.height * v

    neg_top = max(r.negative_share for r in overall)
    neg_ticks = _nice_ticks(0, max(neg_top, 0.05), count=3)
    neg_max = neg_ticks[-1] or 1

    def yb(v: float) -> float:
        return fb.bottom - fb.height * v / neg_max

    out = [_weekend_bands(days, f), _weekend_bands(days, fb)]
    out.append(
        _y_grid([0, 0.25, 0.5, 0.75, 1.0], y, f, lambda v: f"{v:.2f}".rstrip("0").rstrip("."))
    )
    out.append(
        f'<line class="neutral" x1="{f.left:g}" x2="{f.left + f.width:g}" y1="{y(0.5):.1f}" '
        f'y2="{y(0.5):.1f}"/>'
    )
    out.append(_y_grid(neg_ticks, yb, fb, _pct_tick))
    out.append(_x_axis(days, f, t, labels=False))
    out.append(_x_axis(days, fb, t))
    bw = max(1.5, min(18.0, fb.step * 0.7))
    for r in overall:
        x = fb.x(index[r.day])
        top = yb(r.negative_share)
        out.append(
            f'<rect class="negbar" x="{x - bw / 2:.1f}" y="{top:.1f}" width="{bw:.1f}" '
            f'height="{fb.bottom - top:.1f}" fill="{NEGATIVE_COLOR}"/>'
        )
    # Break the line where days have no scored messages instead of drawing across the gap.
    runs: list[list[SentimentDay]] = []
    prev = None
    for r in overall:
        i = index[r.day]
        if prev is None or i != prev + 1:
            runs.append([])
        runs[-1].append(r)
        prev = i
    for run in runs:
        pts = " ".join(f"{f.x(index[r.day]):.1f},{y(r.mean):.1f}" for r in run)
        out.append(
            f'<polyline class="series" points="{pts}" fill="none" stroke="{SENTIMENT_COLOR}" '
            f'stroke-width="2.4" stroke-linejoin="round" stroke-linecap="round"/>'
        )
    if len(days) <= 93:
        for r in overall:
            fill = NEGATIVE_COLOR if r.mean < 0.4 else SENTIMENT_COLOR
            out.append(
                f'<circle cx="{f.x(index[r.day]):.1f}" cy="{y(r.mean):.1f}" r="3" fill="{fill}"/>'
            )
    wd = t["weekdays"].split(",")
    for r in overall:
        parts = [
            f"{r.day.isoformat()} {wd[r.day.weekday()]}",
            f"{t['mean']}: {r.mean:.2f}",
        ]
        if r.median is not None:
            parts.append(f"{t['median']}: {r.median:.2f}")
        parts.append(f"{t['neg_share']}: {_pct(r.negative_share)}")
        parts.append(f"{t['messages']}: {r.messages:,}")
        hf = _Frame(f.left, f.top, f.width, fb.bottom - f.top, f.n)
        out.append(_hover_column(hf, index[r.day], "\n".join(parts)))
    out.append(
        f'<text class="panel-label" x="{f.left + 6:g}" y="{f.top + 12:g}">'
        f"{escape(t['mean'])}</text>"
        f'<text class="panel-label" x="{fb.left + 6:g}" y="{fb.top - 6:g}">'
        f"{escape(t['neg_share'])}</text>"
    )
    return _svg(width, height, t["chart_sentiment"], out, "sentiment")


# --- tables and lists ----------------------------------------------------------------------


def _speakers(speakers: Sequence[Speaker], t: dict[str, str]) -> str:
    top = sorted(speakers, key=lambda s: (-s.messages, s.name, s.chat))[:TOP_SPEAKERS]
    if not top:
        return ""
    rows = []
    for i, s in enumerate(top, 1):
        share = min(1.0, max(0.0, s.share))
        rows.append(
            f'<tr><td class="num rank">{i}</td><td class="name">{escape(s.name)}</td>'
            f'<td class="chat">{escape(s.chat)}</td><td class="num">{s.messages:,}</td>'
            f'<td class="share"><span class="meter" aria-hidden="true">'
            f'<span style="width:{share * 100:.1f}%"></span></span>{_pct(s.share)}</td></tr>'
        )
    head = "".join(
        f'<th scope="col"{cls}>{escape(t[k])}</th>'
        for k, cls in (
            ("rank", ' class="num"'),
            ("member", ""),
            ("chat", ""),
            ("messages", ' class="num"'),
            ("share", ""),
        )
    )
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _lurkers(lurkers: Sequence[Lurker], t: dict[str, str]) -> str:
    if not lurkers:
        return ""
    by_chat: dict[str, list[str]] = defaultdict(list)
    for lk in lurkers:
        by_chat[lk.chat].append(lk.name)
    out = []
    for chat, names in sorted(by_chat.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        names = sorted(set(names))
        chips = "".join(
            f'<li class="chip person">{escape(n)}</li>' for n in names[:LURKERS_PER_CHAT]
        )
        if len(names) > LURKERS_PER_CHAT:
            more = t["more_people"].format(n=len(names) - LURKERS_PER_CHAT)
            chips += f'<li class="chip more">{escape(more)}</li>'
        out.append(
            f'<div class="lurk-group"><h3>{escape(chat)} <span class="count">{len(names)}</span>'
            f'</h3><ul class="chips">{chips}</ul></div>'
        )
    return "".join(out)


def _negatives(rows: Sequence[NegativeMessage], t: dict[str, str], tz: tzinfo) -> str:
    top = sorted(rows, key=lambda m: (m.score, m.created_at))[:NEGATIVES]
    if not top:
        return ""
    out = []
    for m in top:
        when = _local(m.created_at, tz).strftime("%Y-%m-%d %H:%M")
        text = m.text if len(m.text) <= 400 else m.text[:399] + "…"
        hint = (
            f'<code class="hint" title="wxcli history">{escape(m.history_hint)}</code>'
            if m.history_hint
            else ""
        )
        out.append(
            f'<li class="neg"><div class="neg-head">'
            f'<span class="score" title="{escape(t["score"])}">'
            f"{m.score:.2f}</span><b>{escape(m.sender)}</b>"
            f'<span class="in">{escape(m.chat)}</span><time datetime="{m.created_at.isoformat()}">'
            f"{when}</time></div><blockquote>{escape(text)}</blockquote>{hint}</li>"
        )
    return f'<ol class="negatives">{"".join(out)}</ol>'


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


CSS = """
:root{--bg:#f4f6f9;--card:#fff;--ink:#1d2433;--muted:#5b6473;--line:#e3e7ed;--accent:#1f5f99;
--good:#247a5c;--bad:#b23b1e}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.55 system-ui,-apple-system,"Segoe UI","PingFang SC","Hiragino Sans GB",
"Microsoft YaHei","Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",
"Helvetica Neue",Arial,sans-serif}
main{max-width:1440px;margin:0 auto;padding:28px 28px 40px}
header{margin-bottom:18px}
h1{font-size:26px;line-height:1.25;margin:0 0 10px;font-weight:700;letter-spacing:.01em}
h2{font-size:17px;margin:0 0 2px;font-weight:650}
h3{font-size:14px;margin:0 0 6px;font-weight:600}
.facts{display:flex;flex-wrap:wrap;gap:6px 28px;margin:0 0 12px;color:var(--muted);font-size:14px}
.facts div{display:flex;gap:8px}.facts dt{font-weight:400}.facts dd{margin:0;color:var(--ink);
font-weight:550;font-variant-numeric:tabular-nums}
.chats{display:flex;flex-wrap:wrap;align-items:center;gap:8px}
.chats .label{color:var(--muted);font-size:14px;margin-right:4px}
.chips{display:flex;flex-wrap:wrap;gap:6px;list-style:none;margin:0;padding:0}
.chip{background:#e8eef6;color:#1f3f66;border-radius:999px;padding:2px 10px;font-size:13px;
max-width:22em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.chip.person{background:#f0f1f4;color:var(--ink)}.chip.more{background:none;color:var(--muted)}
details{font-size:13px;color:var(--muted)}details summary{cursor:pointer}
details .chips{margin-top:6px}
.kpis{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:14px;margin:0 0 16px}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:14px 16px}
.kpi-value{font-size:26px;font-weight:700;line-height:1.2;font-variant-numeric:tabular-nums;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.kpi-value.good{color:var(--good)}.kpi-value.bad{color:var(--bad)}
.kpi-label{color:var(--muted);font-size:13px;margin-top:2px}
.grid{display:grid;grid-template-columns:repeat(12,minmax(0,1fr));gap:16px}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 20px;
min-width:0;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.span-5{grid-column:span 5}.span-6{grid-column:span 6}.span-7{grid-column:span 7}
.span-12{grid-column:span 12}
.caption{color:var(--muted);font-size:13px;margin:0 0 12px}
.note{color:var(--muted);font-size:13px;margin:8px 0 0}
svg.chart{display:block;width:100%;height:auto;overflow:visible}
svg.chart:not(.wordcloud) text{fill:var(--ink);font-size:12px}
svg.hbars .bar-label{font-size:13px}svg.hbars .bar-value{font-size:11.5px;fill:var(--muted);
font-variant-numeric:tabular-nums}
svg.hbars .bar:hover rect{fill-opacity:1}
svg.wordcloud{max-height:420px}
svg.wordcloud text:hover{opacity:.7}
.axis text{fill:var(--muted)!important;font-size:11.5px!important;font-variant-numeric:tabular-nums}
.axis line{stroke:#e8ebf0;stroke-width:1}.axis line.base{stroke:#b8bfca}
.axis line.tick{stroke:#b8bfca}
.axis .axis-note{font-size:10.5px!important}
.weekend{fill:#f3f4f7}
.neutral{stroke:#8a93a3;stroke-dasharray:4 4;stroke-width:1}
.panel-label{font-size:11.5px!important;fill:var(--muted)!important;font-weight:600}
.negbar{fill-opacity:.85}
rect.hover{fill:transparent}rect.hover:hover{fill:rgba(29,36,51,.06)}
rect.cell:hover{stroke:var(--ink);stroke-width:1.5}
.legend{display:flex;flex-wrap:wrap;gap:6px 18px;list-style:none;padding:0;margin:10px 0 0;
font-size:13px}
.legend li{display:flex;align-items:center;gap:6px;max-width:20em;overflow:hidden;
text-overflow:ellipsis;white-space:nowrap}
.swatch{display:inline-block;width:14px;height:4px;border-radius:2px;flex:none}
.legend li:first-child .swatch{height:5px}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:14px}
th{font-weight:600;color:var(--muted);font-size:12.5px;text-align:left;padding:6px 8px;
border-bottom:1px solid var(--line)}
td{padding:6px 8px;border-bottom:1px solid #f0f2f5;vertical-align:middle}
tbody tr:hover{background:#f8f9fb}
.num{text-align:right;font-variant-numeric:tabular-nums}.rank{color:var(--muted);width:2em}
td.name{font-weight:550}td.chat{color:var(--muted)}
td.name,td.chat{max-width:14em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
td.share{white-space:nowrap;font-variant-numeric:tabular-nums;color:var(--muted);width:9em}
.meter{display:inline-block;width:56px;height:6px;background:#eef1f5;border-radius:3px;
margin-right:8px;vertical-align:middle;overflow:hidden}
.meter span{display:block;height:100%;background:var(--accent)}
.lurk-group{margin-bottom:14px}.lurk-group:last-child{margin-bottom:0}
.count{display:inline-block;min-width:1.6em;padding:0 6px;border-radius:999px;background:#fdf0e6;
color:#8a3d12;font-size:12px;text-align:center;font-weight:600}
.negatives{list-style:none;margin:0;padding:0;display:grid;
grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
.neg{border:1px solid var(--line);border-left:4px solid #d55e00;border-radius:8px;
padding:10px 14px;min-width:0}
.neg-head{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 10px;font-size:13px}
.neg-head .in{color:var(--muted)}.neg-head time{color:var(--muted);margin-left:auto;
font-variant-numeric:tabular-nums}
.score{background:#fbe9e0;color:#8a2b0c;border-radius:6px;padding:0 6px;font-weight:700;
font-variant-numeric:tabular-nums}
blockquote{margin:6px 0 8px;font-size:14.5px;white-space:pre-wrap;overflow-wrap:anywhere}
code.hint{display:block;font:12px/1.5 ui-monospace,"SFMono-Regular",Menlo,Consolas,
"DejaVu Sans Mono",monospace;background:#f4f6f9;color:#33405a;border-radius:6px;
padding:4px 8px;overflow-x:auto;white-space:nowrap}
.empty{display:flex;align-items:center;gap:14px;color:var(--muted);background:#fafbfc;
border:1px dashed #d5dae2;border-radius:10px;padding:22px 18px;font-size:14px}
.empty b{color:var(--ink)}.empty-icon{font-size:26px;line-height:1;color:#a3abb8}
footer{margin-top:22px;color:var(--muted);font-size:13px;border-top:1px solid var(--line);
padding-top:12px}
footer p{margin:4px 0}
@media (max-width:1100px){.kpis{grid-template-columns:repeat(3,minmax(0,1fr))}
.span-5,.span-6,.span-7{grid-column:span 12}.negatives{grid-template-columns:1fr}}
@media (max-width:640px){main{padding:16px}.kpis{grid-template-columns:repeat(2,minmax(0,1fr))}}
@media print{body{background:#fff}.card,.kpi{box-shadow:none;break-inside:avoid}
rect.hover{display:none}}
"""
