"""Renderers of `wxcli stats`: model, HTML report, word cloud, terminal charts and writers."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import shlex
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from wxcli.stats import render, terminal
from wxcli.stats.html import render_html
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
from wxcli.stats.wordcloud import layout_wordcloud, wordcloud_svg

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


def test_wordcloud_is_deterministic_and_escapes():
    words = cloud_words()
    assert layout_wordcloud(words) == layout_wordcloud(list(reversed(words)))
    svg = wordcloud_svg(words, label="词云")
    assert svg == wordcloud_svg(words, label="词云")
    ET.fromstring(svg)
    assert "&lt;b&gt;" in svg


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
