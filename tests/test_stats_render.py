"""Renderers of `wxcli stats`: model, HTML report (its view model, templates and escaping of
hostile names and texts), word cloud, terminal charts, the shared labels and writers."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shlex
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from rich.console import Console

from wxcli.stats import labels, render, terminal
from wxcli.stats.html import build_page, render_html
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
from wxcli.stats.wordcloud import layout_wordcloud
from wxcli.textutil import safe_text

CST = timezone(timedelta(hours=8))
CHATS = ["客服群1", "VIP 客户群", "售后处理群", "华东经销商群", "新品反馈群"]
WORDS = [
    "退款", "发货", "快递", "客服", "质量", "价格", "优惠券", "订单", "物流", "售后", "换货",
    "尺码", "颜色", "包装", "速度", "态度", "满意", "失望", "投诉", "发票", "地址", "取消",
    "补发", "破损", "漏发", "赠品", "活动", "预售", "到货", "催单", "保修", "安装", "说明书",
    "充电", "电池", "屏幕", "App", "会员", "积分", "退货", "运费", "延迟", "客服电话", "回复",
    "处理", "谢谢", "好评", "差评", "iPhone", "京东", "顺丰", "申通", "双十一", "客服小王",
]  # fmt: skip
SENDERS = [
    "张伟",
    "王芳",
    "李娜",
    "刘洋",
    "陈静",
    "杨帆",
    "赵磊",
    "黄敏",
    "周杰",
    "吴霞",
    "徐明",
    "孙丽",
]
NEGATIVE_TEXTS = [
    "等了一个星期还没发货，客服也不回，太失望了！",
    "收到的屏幕是碎的，包装也破了，要求退款。",
    "第三次催单了，到底什么时候能到？再不到我就投诉了",
    "说好的赠品没有，优惠券也用不了，体验非常差",
    "退货申请提交五天了没人处理，看这里 https://example.com/order/123 还是待审核",
]


def make_report(*, days: int = 30, chat_name: str | None = None) -> Report:
    """A realistic report: 5 chats, ``days`` days, Chinese words and names, fixed seed."""
    rng = random.Random(20261103)
    chats = list(CHATS)
    if chat_name is not None:
        chats[1] = chat_name
    since = datetime(2026, 10, 5, tzinfo=CST)
    until = since + timedelta(days=days)
    day_rows: list[DayCount] = []
    totals: dict[date, int] = {}
    for k, chat in enumerate(chats):
        base = [120, 70, 45, 25, 12][k]
        for i in range(days):
            d = (since + timedelta(days=i)).date()
            weekend = d.weekday() >= 5
            n = max(0, int(base * (0.45 if weekend else 1.0) * rng.uniform(0.6, 1.4)))
            if k == 2 and 10 <= i <= 13:
                n *= 3  # an incident in after-sales
            day_rows.append(DayCount(d, chat, n))
            totals[d] = totals.get(d, 0) + n
    day_rows += [DayCount(d, None, n) for d, n in totals.items()]
    total = sum(totals.values())
    heat = []
    for wd in range(7):
        for h in range(24):
            office = 9 <= h <= 21
            level = (1.0 if office else 0.08) * (0.4 if wd >= 5 else 1.0)
            peak = 1.6 if h in (10, 11, 15, 20) else 1.0
            heat.append(HourCell(wd, h, int(level * peak * rng.uniform(20, 60))))
    counts = sorted((int(2000 / (i + 1) ** 0.8) for i in range(len(WORDS))), reverse=True)
    all_words = sum(counts) * 3
    words = [WordCount(w, c, c / all_words) for w, c in zip(WORDS, counts, strict=True)]
    sentiment = []
    for d in sorted(totals):
        i = (d - since.date()).days
        dip = 0.22 if 10 <= i <= 13 else 0.0
        mean = max(0.05, min(0.95, 0.66 - dip + rng.uniform(-0.06, 0.06)))
        sentiment.append(
            SentimentDay(d, None, mean, mean + 0.03, min(1.0, 0.12 + dip * 1.1), totals[d])
        )
    speakers = []
    for chat in chats:
        for j, name in enumerate(rng.sample(SENDERS, 5)):
            n = int(300 / (j + 1))
            speakers.append(Speaker(chat, name, n, n / 900))
    lurkers = [Lurker(chat, f"{rng.choice(SENDERS)}{n}") for chat in chats[:3] for n in range(6)]
    lurkers.append(Lurker(chats[1], "<b>bold</b> & co"))
    negatives = [
        NegativeMessage(
            chat=chats[i % len(chats)],
            sender=SENDERS[i],
            text=text,
            score=0.01 + i * 0.013,
            created_at=since + timedelta(days=11 + i, hours=10 + i),
            msg_id=f"m{i:04d}",
            history_hint=f"wxcli history --chat {shlex.quote(chats[i % len(chats)])} "
            f"--since {(since + timedelta(days=11 + i)).date().isoformat()}",
        )
        for i, text in enumerate(NEGATIVE_TEXTS)
    ]
    busiest = sorted(
        ((c, sum(r.messages for r in day_rows if r.chat == c)) for c in chats),
        key=lambda cn: -cn[1],
    )
    meta = ReportMeta(
        title="客服群周报 · 十月",
        since=since,
        until=until,
        chats=chats,
        generated_at=until + timedelta(hours=9),
        timezone="Asia/Shanghai",
        total_messages=total,
        account="客服主号",
    )
    return Report(meta, words, day_rows, heat, sentiment, speakers, lurkers, negatives, busiest)


def empty_report() -> Report:
    since = datetime(2026, 11, 1, tzinfo=CST)
    meta = ReportMeta("空报告", since, since + timedelta(days=7), [], since, "Asia/Shanghai", 0)
    return Report(meta, [], [], [], [], [], [], [], [])


SECTIONS = [
    "header",
    "summary",
    "words",
    "wordcloud",
    "daily",
    "heatmap",
    "busiest",
    "sentiment",
    "speakers",
    "lurkers",
    "negatives",
    "footer",
]


def svg_blocks(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.S)


# --- model ---------------------------------------------------------------------------------


def test_report_to_dict_is_json_and_round_trips():
    report = make_report()
    data = json.loads(json.dumps(report.to_dict(), ensure_ascii=False))
    assert data["meta"]["since"] == "2026-10-05T00:00:00+08:00"
    assert data["days"][0]["day"] == "2026-10-05"
    assert data["busiest_chats"][0] == {"chat": "客服群1", "messages": report.busiest_chats[0][1]}
    assert Report.from_dict(data) == report


# --- HTML ----------------------------------------------------------------------------------


def test_html_has_every_section_and_parsable_svgs():
    html = render_html(make_report())
    assert html.startswith("<!DOCTYPE html>")
    for ident in SECTIONS:
        assert re.search(rf'<(section|header|footer)\b[^>]*\bid="{ident}"', html), ident
    blocks = svg_blocks(html)
    # words, cloud, daily, heatmap, busiest, sentiment
    assert len(blocks) == 6
    for block in blocks:
        ET.fromstring(block)  # raises on malformed markup
    assert html.count('class="series"') >= 7  # total + 5 chats + sentiment run(s)
    assert "退款" in html
    assert "wxcli history --chat &#39;客服群1&#39; --since 2026-10-16" in html
    assert "snownlp" in html
    assert "2026-10-05 – 2026-11-03" in html  # the period, end exclusive at midnight


def test_html_escapes_user_text():
    html = render_html(make_report(chat_name='<script>alert("x")</script>'))
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in html
    for block in svg_blocks(html):
        ET.fromstring(block)


def test_html_loads_nothing_from_outside():
    html = render_html(make_report())
    lowered = html.lower()
    for bad in ("<link", "<script", "@import", "url(", "<img", "<iframe", "<object"):
        assert bad not in lowered, bad
    assert not re.search(r"\b(src|href|xlink:href)\s*=", lowered)
    # A link pasted in a message is shown as text, never inside a tag.
    assert "https://example.com/order/123" in html
    for m in re.finditer(r"https?://", html):
        before = html[: m.start()]
        assert before.rfind("<") < before.rfind(">"), html[m.start() - 80 : m.end() + 20]


def test_empty_report_renders_no_data_states():
    html = render_html(empty_report())
    for ident in SECTIONS:
        assert f'id="{ident}"' in html
    assert html.count('class="empty"') == 9
    assert "暂无数据" in html
    assert "没有潜水成员" in html  # sections say what an empty list means
    for block in svg_blocks(html):
        ET.fromstring(block)


def test_html_english_labels_and_single_day():
    report = make_report(days=1)
    html = render_html(report, lang="en")
    assert 'lang="en"' in html
    assert "Messages per day" in html
    assert "read them as trends" in html
    for block in svg_blocks(html):
        ET.fromstring(block)


def test_html_sums_per_chat_rows_when_total_rows_are_missing():
    report = make_report(days=7)
    report.days = [r for r in report.days if r.chat is not None]
    day = report.days[0].day
    expected = sum(r.messages for r in report.days if r.day == day)
    html = render_html(report)
    assert f"全部群聊: {expected:,}" in html


class _Page(HTMLParser):
    """The parsed page: every start tag with its attributes, and the text of each element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-6:])
        self.stack.pop()

    def handle_data(self, data):
        self.texts.append(data)


VOID = {"meta", "br"}
#: Every element the report is made of; anything else in the page came from the data.
PAGE_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "dl",
    "dt", "dd", "div", "span", "b", "br", "p", "ul", "ol", "li", "details", "summary",
    "section", "table", "thead", "tbody", "tr", "th", "td", "blockquote", "code", "time",
    "footer", "svg", "g", "text", "rect", "line", "polyline", "circle",
}  # fmt: skip


def parse_page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    assert page.stack == [], page.stack
    return page


LONG = "很长的投诉" * 20_000  # 100,000 characters
HOSTILE = [
    '<script>alert("x")</script>',
    '"><svg onload=alert(1)>',
    "'><img src=x onerror=alert(1)>",
    "{{ 7*7 }}{{ self.__init__ }}",
    "{% for x in range(3) %}XyZ{% endfor %}",
    "{# hidden #}",
    "</style><style>body{display:none}</style>",
    "</title><!-- ]]> &amp;",
    "bell\x07 osc\x1b]52;c;ZXZpbA==\x07 csi\x9b2J nul\x00 cr\r",
    "invoice_\u202efdp.exe \u2066isolate\u2069 line\u2028sep",
    "javascript:alert(1)",
]
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def hostile_report(strings: list[str], long_text: str) -> Report:
    """The known report with every name and text the archive could hold taken from ``strings``."""
    report = make_report(days=14)
    pick = lambda i: strings[i % len(strings)]  # noqa: E731
    chats = [pick(i) for i in range(len(report.meta.chats))]
    rename = dict(zip(report.meta.chats, chats, strict=True))
    report.meta = replace(report.meta, title=pick(0), chats=chats, account=pick(1))
    report.words = [replace(w, word=pick(i)) for i, w in enumerate(report.words[: len(strings)])]
    report.days = [replace(r, chat=rename.get(r.chat)) if r.chat else r for r in report.days]
    report.busiest_chats = [(rename[c], n) for c, n in report.busiest_chats]
    report.speakers = [
        replace(s, chat=rename[s.chat], name=long_text if i == 0 else pick(i))
        for i, s in enumerate(report.speakers)
    ]
    report.lurkers = [
        replace(lk, chat=rename.get(lk.chat, pick(i)), name=pick(i))
        for i, lk in enumerate(report.lurkers)
    ]
    report.negatives = [
        replace(
            m,
            chat=rename[m.chat],
            sender=pick(i + 2),
            text=long_text if i == 0 else pick(i + 3),
            history_hint=f"wxcli history --chat {shlex.quote(rename[m.chat])}",
        )
        for i, m in enumerate(report.negatives)
    ]
    return report


def test_hostile_names_and_texts_are_escaped_and_inert():
    report = hostile_report(HOSTILE, LONG)
    html = render_html(report)
    page = parse_page(html)
    # Only the report's own elements, no event handlers, no links, one style sheet, no script.
    assert {tag for tag, _ in page.tags} <= PAGE_TAGS
    attrs = [(tag, name, value) for tag, a in page.tags for name, value in a.items()]
    assert not [a for a in attrs if a[1].startswith("on") or a[1] in ("src", "href")]
    assert [t for t, _ in page.tags].count("style") == 1
    assert [t for t, _ in page.tags].count("svg") == 6
    for tag, name, value in attrs:
        if name == "style":
            assert re.fullmatch(r"width:\d+\.\d%|background:#[0-9a-f]{6}", value), (tag, value)
    # The same elements as for harmless names: the data changed no markup.
    plain = hostile_report([f"name{i}" for i in range(len(HOSTILE))], "x" * 100_000)
    assert [t for t, _ in parse_page(render_html(plain)).tags] == [t for t, _ in page.tags]
    # Every string is shown as text, control and bidi characters as visible stand-ins.
    shown = "\n".join(page.texts) + "\n".join(v or "" for _, _, v in attrs)
    for s in HOSTILE:
        assert safe_text(s, multiline=True) in shown, s
    assert "␇" in shown and "␛" in shown and "<U+009B>" in shown and "<U+202E>" in shown
    assert "␀" in shown and "␍" in shown and "<U+2066>" in shown and "<U+2028>" in shown
    assert _UNSAFE.search(html) is None
    # Template syntax in the data is never evaluated.
    assert "{{ 7*7 }}" in shown and "XyZ" in shown and "XyZXyZ" not in html
    assert "{# hidden #}" in shown
    # A 100,000-character message is cut in the list; the whole name stays in its cell.
    quotes = [re.sub(r"<[^>]+>", "", q) for q in re.findall(r"<blockquote>.*?</blockquote>", html)]
    assert quotes[0] == LONG[:399] + "…"
    assert LONG in shown
    for block in svg_blocks(html):
        ET.fromstring(block)  # well-formed XML: no control character, no stray markup
    assert "<script" not in html.lower() and "<svg onload" not in html.lower()


def test_page_view_model_holds_the_geometry():
    report = make_report()
    page = build_page(report)
    heat = page.heatmap.body
    assert heat is not None and len(heat.cells) == 7 * 24
    assert [c.x for c in heat.cells[:24]] == sorted(c.x for c in heat.cells[:24])
    peak = max(report.heatmap, key=lambda c: c.messages)
    assert heat.cells[peak.weekday * 24 + peak.hour].fill == "#08306b"  # the darkest stop
    daily = page.daily.body
    assert daily is not None and daily.legend[0] == ("全部群聊", "#1d2433")
    assert daily.series[-1].name == "全部群聊"  # the total is drawn last, on top
    assert len(daily.hovers) == 30 and daily.y_axis.ticks[0].text == "0"
    words = page.words.body
    assert words is not None and words.bars[0].width > words.bars[-1].width > 0
    assert page.negatives.body is not None and page.negatives.body.items[0].score == "0.01"
    empty = build_page(empty_report(), "en")
    assert empty.daily.body is None and empty.daily.empty_hint == labels.EN["no_data_hint"]
    assert empty.lurkers.empty_hint == labels.EN["no_data_lurkers"]


def test_templates_only_place_values():
    """Arithmetic and string building stay in Python: a template expression may name, loop,
    test and pick a number format, nothing more."""
    folder = resources.files("wxcli.stats") / "templates"
    names = sorted(p.name for p in folder.iterdir())
    assert {"report.html.j2", "layout.html.j2", "charts.html.j2", "report.css"} <= set(names)
    for name in names:
        if not name.endswith(".j2"):
            continue
        text = (folder / name).read_text(encoding="utf-8")
        assert "|safe" not in text.replace(" ", ""), name
        assert not re.search(r"\{%-?\s*autoescape", text), name
        for expr in re.findall(r"\{\{-?(.*?)-?\}\}|\{%-?(.*?)-?%\}", text, flags=re.S):
            inner = "".join(expr)
            assert not re.search(r"[+*/%~]| - ", inner), (name, inner)


def test_one_label_table_per_language_for_both_renderers():
    assert labels.ZH.keys() == labels.EN.keys()
    assert labels.labels("fr") is labels.ZH
    # The terminal's own names keep their wording, and wxcli.cli.stats reads them from TEXT.
    assert terminal.TEXT["zh"]["heatmap"] == "活跃时段（星期 × 小时）"
    assert terminal.TEXT["en"]["heatmap"] == "When chats are busy (weekday × hour)"
    assert terminal.TEXT["en"]["messages"] == "Messages"
    assert terminal.TEXT["en"]["no_data"] == "no data"
    assert terminal.TEXT["en"]["chats"] == "chats"
    assert terminal.TEXT["zh"]["footer"] == labels.ZH["footer_terminal"]
    for lang, table in labels.LABELS.items():
        shared = ("words", "daily", "sentiment", "speakers", "lurkers", "negatives", "mean")
        for key in shared:
            assert terminal.TEXT[lang][key] == table[key]
        html = render_html(make_report(days=3), lang=lang)
        for key in ("words", "daily", "heatmap", "footer_offline", "kpi_peak"):
            assert table[key] in html, (lang, key)


def test_html_renderer_stays_off_the_start_up_path():
    code = (
        "import sys, json\n"
        "import wxcli.stats.html\n"
        "after_import = 'jinja2' in sys.modules\n"
        "del sys.modules['wxcli.stats.html']\n"
        "from wxcli.cli import run\n"
        "run(['--help'])\n"
        "loaded = [m for m in ('wxcli.stats.html', 'jinja2') if m in sys.modules]\n"
        "print(json.dumps([after_import, loaded]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, []]


# --- word cloud ----------------------------------------------------------------------------


def cloud_words(n: int = 100) -> list[tuple[str, int]]:
    rng = random.Random(7)
    pool = "服务退款发货快递客服质量问题价格优惠活动订单物流售后换货尺码颜色包装速度态度满意失望"
    out = {}
    while len(out) < n - 4:
        out["".join(rng.choice(pool) for _ in range(rng.randint(2, 4)))] = 0
    words = [(w, int(3000 / (i + 1) ** 0.9) + 1) for i, w in enumerate(out)]
    return [*words, ("iPhone", 40), ("OK", 30), ("WeChat Pay", 25), ("<b>", 20)]


def test_wordcloud_has_no_overlaps_and_stays_inside():
    width, height = 560, 380
    placed = layout_wordcloud(cloud_words(), width, height)
    assert len(placed) >= 90
    boxes = [p.bbox for p in placed]
    for i, a in enumerate(boxes):
        assert min(a[0], a[1]) >= 0, placed[i]
        assert a[2] <= width, placed[i]
        assert a[3] <= height, placed[i]
        for b in boxes[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    sizes = [p.font_size for p in placed]
    assert sizes[0] == max(sizes) > sizes[-1]
    assert any(p.rotated for p in placed)


def test_wordcloud_is_deterministic():
    """Same words, same cloud, whatever their order (the template escapes the words; see the
    hostile-report test)."""
    words = cloud_words()
    assert layout_wordcloud(words) == layout_wordcloud(list(reversed(words)))


def test_wordcloud_is_fast():
    words = cloud_words()
    layout_wordcloud(words)  # warm up
    start = time.perf_counter()
    layout_wordcloud(words)
    assert time.perf_counter() - start < 0.1


def test_wordcloud_edge_cases():
    assert layout_wordcloud([]) == []
    assert layout_wordcloud([("零", 0)]) == []
    one = layout_wordcloud([("退款", 5)], 200, 100)
    assert len(one) == 1
    assert one[0].x == pytest.approx(100, abs=2)
    # A word far too long for the canvas is left out instead of looping forever.
    assert layout_wordcloud([("很" * 80, 3)], 100, 60, min_size=12) == []


# --- terminal ------------------------------------------------------------------------------


def test_terminal_renderables_render():
    report = make_report()
    console = Console(record=True, width=100)
    terminal.render_report(console, report)
    text = console.export_text()
    assert "退款" in text
    assert "█" in text
    assert "周一" in text
    assert any(ch in text for ch in "▁▂▃▄▅▆▇")


def test_terminal_empty_report():
    console = Console(record=True, width=100)
    terminal.render_report(console, empty_report())
    assert "暂无数据" in console.export_text()
    console = Console(record=True, width=100)
    terminal.render_report(console, empty_report(), lang="en")
    assert "no data" in console.export_text()


def test_sparkline_scale():
    assert terminal.sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert terminal.sparkline([]) == ""
    assert terminal.sparkline([3, 3]) == "▄▄"
    assert terminal.sparkline([None, 1.0, 0.0]) == " █▁"


# --- writers -------------------------------------------------------------------------------


def test_write_json_lines_round_trip():
    report = make_report(days=3)
    fp = io.StringIO()
    render.write_json(report.negatives, fp)
    lines = fp.getvalue().splitlines()
    assert len(lines) == len(report.negatives)
    assert "客服群1" in lines[0]  # not \\u-escaped
    back = [NegativeMessage.from_dict(json.loads(line)) for line in lines]
    assert back == report.negatives
    fp = io.StringIO()
    render.write_json([{"day": date(2026, 1, 2), "n": 3}], fp)
    assert json.loads(fp.getvalue()) == {"day": "2026-01-02", "n": 3}


def test_write_csv_round_trip_and_bom():
    rows = [Speaker("客服群1", "张伟", 12, 0.25), Speaker("VIP, 客户群", '王"芳', 3, 0.0625)]
    fp = io.StringIO()
    render.write_csv(rows, fp)
    assert not fp.getvalue().startswith("\ufeff")
    back = list(csv.DictReader(io.StringIO(fp.getvalue())))
    assert [Speaker.from_dict(r) for r in back] == rows
    fp = io.StringIO()
    render.write_csv(rows, fp, bom=True)
    assert fp.getvalue().startswith("\ufeffchat,name,messages,share")
    fp = io.StringIO()
    render.write_csv([], fp)
    assert fp.getvalue() == ""


def test_write_table():
    console = Console(record=True, width=100)
    render.write_table(console, "发言", ["成员", "消息"], [["张伟", 12], ["<b>", None]])
    text = console.export_text()
    assert "张伟" in text
    assert "12" in text
    assert "<b>" in text


# --- headless Chromium ---------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.chromium
def test_chromium_renders_report(tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    page = tmp_path / "report.html"
    page.write_text(render_html(make_report()), encoding="utf-8")
    png = tmp_path / "report.png"
    url = page.as_uri()
    shot = _chromium(
        [
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            f"--screenshot={png}",
            "--window-size=1366,2400",
            url,
        ],
        tmp_path,
    )
    assert png.exists(), shot.stderr[-2000:]
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 100_000  # a blank page is a few kB
    console_errors = [
        line for line in shot.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line
    ]
    assert not console_errors, console_errors
    dom = _chromium(["--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<svg") == 6
    assert 'id="negatives"' in dom.stdout
