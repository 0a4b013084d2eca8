"""`wxcli.stats.queries` on a small known archive, stored through the real ingest path and analysed
by the real worker, on SQLite and MariaDB: exact word counts (segmentation, stopwords, filters),
chat globs over current and former names, time ranges and time zones, activity, speakers and
lurkers, sentiment, splits, and the errors a user sees for an empty archive or an unknown chat.

The archive: three chats (one renamed half-way), members who never speak, our own replies, and a
message at 23:30 UTC that belongs to the next day in Shanghai (see ``build_archive``).
"""

from __future__ import annotations

import statistics
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from tests.helpers.known_archive import (
    G1,
    IN_PERIOD,
    SCORED,
    SELF,
    SHANGHAI,
    WORDS,
    analyse,
    analysis_config,
    at,
    build_archive,
    message,
)
from wxcli.analysis.worker import AnalysisWorker
from wxcli.errors import UsageError
from wxcli.stats.queries import Period, Stats, history_hint, median_from_bins, period_from
from wxcli.store.archive import Archive, Ingestor


@pytest.fixture
def archive(db_url, wx_home, engines):
    a = build_archive(db_url, wx_home, engines)
    yield a
    a.close()


def period(since: str = "2026-11-01", until: str = "2026-11-05", tz: Any = SHANGHAI) -> Period:
    return period_from(since, until, tz, now=at("11-30 00:00"))


def stats(archive: Archive, chats: tuple[str, ...] = (), **kw: Any) -> Stats:
    return Stats(archive, period(**kw), chats)


def counts(rows: list[Any]) -> dict[str, int]:
    return {r.word: r.count for r in rows}


# --- periods -------------------------------------------------------------------------------------


def test_period_covers_whole_local_days():
    now = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 11:00 on the 30th in Shanghai
    p = period_from("2026-11-01", "2026-11-05", SHANGHAI, now=now)
    assert (p.since_day, p.until_day) == (date(2026, 11, 1), date(2026, 11, 6))
    assert p.since == datetime(2026, 11, 1, tzinfo=SHANGHAI)
    assert len(p.days()) == 5
    p = period_from("7d", None, SHANGHAI, now=now)  # from the start of the day 7 days ago
    assert (p.since_day, p.until_day) == (date(2026, 11, 23), date(2026, 12, 1))
    p = period_from(None, None, SHANGHAI, now=now)  # default: the last 30 days, today included
    assert (p.since_day, p.until_day) == (date(2026, 11, 1), date(2026, 12, 1))
    p = period_from("2026-11-01T10:00", "2026-11-02T10:00", SHANGHAI, now=now)
    assert (p.since_day, p.until_day) == (date(2026, 11, 1), date(2026, 11, 3))
    # the same instant is another day in another zone
    p = period_from("2026-11-02T23:30+00:00", None, UTC, now=now)
    assert p.since_day == date(2026, 11, 2)
    p = period_from("2026-11-02T23:30+00:00", None, SHANGHAI, now=now)
    assert p.since_day == date(2026, 11, 3)
    with pytest.raises(UsageError, match="period is empty"):
        period_from("2026-11-05", "2026-11-01", SHANGHAI, now=now)
    with pytest.raises(UsageError, match="cannot read the time"):
        period_from("last week", None, SHANGHAI, now=now)


def test_median_from_bins_is_within_half_a_bin():
    assert median_from_bins({}) is None
    assert median_from_bins({2: 1}) == pytest.approx(0.025)
    assert median_from_bins({10: 1, 90: 1}) == pytest.approx(0.505)  # mean of the two middles
    assert median_from_bins({10: 2, 50: 1, 99: 2}) == pytest.approx(0.505)
    assert median_from_bins({0: 3, 99: 1}) == pytest.approx(0.005)


def test_history_hint_escapes_globs_and_quotes():
    when = datetime(2026, 11, 3, 2, 12, 40, tzinfo=UTC)
    hint = history_hint("[VIP] 客户*群", when, SHANGHAI)
    assert hint == "wxcli history --chat '[[]VIP] 客户[*]群' --until 2026-11-03T10:13 --limit 20"


# --- words ---------------------------------------------------------------------------------------


def test_words_exact_counts_after_segmentation_stopwords_and_filters(archive):
    s = stats(archive)
    rows = s.words(top=50)
    assert counts(rows) == WORDS
    # by count, ties in code point order
    assert [r.word for r in rows[:4]] == ["快递", "发货", "退款", "质量"]
    total = sum(WORDS.values())
    assert rows[0].share == pytest.approx(5 / total)
    assert sum(r.share for r in rows) == pytest.approx(1.0)
    assert [r.word for r in s.words(top=2)] == ["快递", "发货"]
    assert s.word_counts() == WORDS
    # our own reply (退款已经处理) and the filtered tokens are nowhere
    assert not {"处理", "example", "12345678", "微笑", "李四"} & set(s.word_counts())


def test_chat_globs_match_current_and_former_names(archive):
    g1 = {"快递": 4, "发货": 2, "退款": 2, "太慢": 1, "差评": 1, "质量": 1, "谢谢": 1, "客服": 1}
    assert counts(stats(archive, ("客服*",)).words(50)) == g1
    g2 = {"退款": 2, "快递": 1, "破损": 1, "看看": 1, "订单号": 1}
    assert counts(stats(archive, ("售后群",)).words(50)) == g2  # the old name
    assert counts(stats(archive, ("售后服务群",)).words(50)) == g2  # the new one
    assert counts(stats(archive, ("售后*",)).words(50)) == g2
    friend = {"发货": 2, "质量": 1}
    assert counts(stats(archive, ("VIP-*",)).words(50)) == friend
    # several patterns: the union, and the same numbers as without --chat for all chats
    every = stats(archive, ("客服*", "售后群", "VIP*"))
    assert counts(every.words(50)) == WORDS
    assert sorted(every.names.values()) == ["VIP-孙总", "售后服务群", "客服一群"]
    with pytest.raises(UsageError, match=r"no chat matches '财务\*'.*Known chats: VIP-孙总"):
        stats(archive, ("客服*", "财务*"))


def test_whole_weeks_come_from_the_weekly_rollups_and_the_ends_from_days(archive):
    # Saturday 10-31 … Sunday 11-08: the week of Monday 11-02 whole, two days before it
    s = stats(archive, since="2026-10-31", until="2026-11-08")
    assert s._weeks_and_days() == (
        [date(2026, 11, 2)],
        [(date(2026, 10, 31), date(2026, 11, 2))],
    )
    assert counts(s.words(50)) == {**WORDS, "物流": 2}
    assert counts(stats(archive, ("客服*",), since="2026-10-31", until="2026-11-08").words(50)) == {
        "快递": 4, "发货": 2, "退款": 2, "太慢": 1, "差评": 1, "质量": 1, "谢谢": 1, "客服": 1,
        "物流": 2,
    }  # fmt: skip
    assert s.word_counts() == {**WORDS, "物流": 2}
    assert [(r.name, r.messages) for r in s.speakers(2, per_chat=False)] == [
        ("李四", 4),
        ("张三", 3),
    ]
    assert [(r.group, r.word, r.count) for r in s.words_by("week", top=1)] == [
        ("2026-10-26", "物流", 2),
        ("2026-11-02", "发货", 4),
    ]
    assert next((r.group, r.word, r.count) for r in s.words_by("chat", top=1)) == (
        "客服一群",
        "快递",
        4,
    )
    # a period that starts before the archive starts at its first day (mid-week)
    two = stats(archive, since="2026-10-26", until="2026-11-08")
    assert two._weeks_and_days() == s._weeks_and_days()
    assert counts(two.words(50)) == {**WORDS, "物流": 2}
    assert {(r.chat, r.name): r.messages for r in two.speakers(5)}[("客服一群", "李四")] == 4


def test_time_ranges_and_the_shanghai_day(archive):
    # 2026-11-03 in Shanghai: the 23:30 UTC message of the 2nd, and two of the 3rd
    day3 = {"发货": 2, "质量": 2, "看看": 1, "订单号": 1, "退款": 1, "谢谢": 1}
    assert counts(stats(archive, since="2026-11-03", until="2026-11-03").words(50)) == day3
    # the message at 23:59 on 10-31 is outside 11-01 … and inside from 10-31
    assert "物流" not in counts(stats(archive).words(50))
    assert counts(stats(archive, since="2026-10-31", until="2026-10-31").words(50)) == {"物流": 2}
    first = {"客服": 1, "快递": 1}  # 00:00 on 11-01 is the first moment of that day
    assert counts(stats(archive, since="2026-11-01", until="2026-11-01").words(50)) == first
    assert stats(archive, since="2026-11-04", until="2026-11-04").words() == []


def test_another_time_zone_moves_the_late_message_to_its_utc_day(db_url, wx_home, engines):
    a = build_archive(db_url, wx_home, engines, timezone="UTC")
    try:
        s = Stats(a, period_from("2026-11-03", "2026-11-03", UTC))
        assert counts(s.words(50)) == {"发货": 2, "质量": 2, "谢谢": 1}
        s = Stats(a, period_from("2026-11-02", "2026-11-02", UTC))
        assert counts(s.words(50))["看看"] == 1
        assert s.analysis_timezone() == "UTC"
        hours = {(c.weekday, c.hour): c.messages for c in s.heatmap() if c.messages}
        assert hours[(0, 23)] == 1  # Monday 23:00 UTC
    finally:
        a.close()


def test_splits_by_chat_day_week_and_sender(archive):
    s = stats(archive)
    by_chat = s.words_by("chat", top=2)
    assert [(r.group, r.word, r.count) for r in by_chat] == [
        ("客服一群", "快递", 4), ("客服一群", "发货", 2),
        ("售后服务群", "退款", 2), ("售后服务群", "快递", 1),
        ("VIP-孙总", "发货", 2), ("VIP-孙总", "质量", 1),
    ]  # fmt: skip
    assert by_chat[0].share == pytest.approx(4 / 13)
    by_day = s.words_by("day", top=1)
    assert [(r.group, r.word, r.count) for r in by_day] == [
        ("2026-11-01", "客服", 1), ("2026-11-02", "退款", 3),
        ("2026-11-03", "发货", 2), ("2026-11-05", "快递", 3),
    ]  # fmt: skip
    # weeks start on Monday: 11-01 (Sunday) belongs to the week of 10-26
    by_week = s.words_by("week", top=1)
    assert [(r.group, r.word, r.count) for r in by_week] == [
        ("2026-10-26", "客服", 1), ("2026-11-02", "发货", 4),
    ]  # fmt: skip
    by_sender = s.words_by("sender", top=1)
    assert [(r.group, r.word, r.count) for r in by_sender] == [
        ("张三", "快递", 3), ("李四", "发货", 1), ("赵六", "退款", 2), ("VIP-孙总", "发货", 2),
    ]  # fmt: skip
    assert [r.group for r in s.words_by("sender", top=1, groups=2)] == ["张三", "李四"]
    narrow = stats(archive, ("客服*",)).words_by("sender", top=5)
    assert {r.group for r in narrow} == {"张三", "李四"}
    assert {(r.group, r.word): r.count for r in narrow}[("张三", "退款")] == 2
    with pytest.raises(UsageError, match="cannot split by 'month'"):
        s.words_by("month")


def test_keywords_use_tfidf_over_counted_words(archive):
    rows = stats(archive).keywords(top=3)
    assert len(rows) == 3
    assert {r.word: r.count for r in rows}.items() <= WORDS.items()
    weights = [r.weight for r in rows]
    assert weights == sorted(weights, reverse=True)
    # jieba's IDF ranks the rarer 破损/差评 above the everyday 质量 despite equal or lower counts
    everything = [r.word for r in stats(archive).keywords(top=50)]
    assert everything.index("差评") < everything.index("质量")


# --- activity and speakers -----------------------------------------------------------------------


def test_activity_per_day_hour_and_chat(archive):
    s = stats(archive)
    days = s.days()
    totals = {r.day.isoformat(): r.messages for r in days if r.chat is None}
    # system messages are not activity; our own replies and images are; 11-04 had none
    assert totals == {
        "2026-11-01": 1, "2026-11-02": 5, "2026-11-03": 3, "2026-11-04": 0, "2026-11-05": 1,
    }  # fmt: skip
    per_chat = {(r.day.isoformat(), r.chat): r.messages for r in days if r.chat}
    assert per_chat == {
        ("2026-11-01", "客服一群"): 1, ("2026-11-02", "客服一群"): 4,
        ("2026-11-02", "售后服务群"): 1, ("2026-11-03", "售后服务群"): 1,
        ("2026-11-03", "客服一群"): 1, ("2026-11-03", "VIP-孙总"): 1,
        ("2026-11-05", "客服一群"): 1,
    }  # fmt: skip
    assert s.total_messages() == 10
    busiest_only = s.days(chats=1)
    assert {r.chat for r in busiest_only} == {None, "客服一群"}
    assert [r for r in busiest_only if r.chat] == [r for r in days if r.chat == "客服一群"]
    assert all(r.chat is None for r in s.days(per_chat=False))
    assert s.busiest() == [("客服一群", 7), ("售后服务群", 2), ("VIP-孙总", 1)]
    assert s.busiest(top=1) == [("客服一群", 7)]
    heat = {(c.weekday, c.hour): c.messages for c in s.heatmap()}
    assert len(heat) == 168
    assert heat[(1, 7)] == 1  # the 23:30 UTC message: Tuesday 07:30 in Shanghai
    assert heat[(0, 9)] == 1 and heat[(0, 10)] == 2 and heat[(6, 0)] == 1
    assert sum(heat.values()) == 10
    cells = {(c.chat, c.weekday, c.hour): c.messages for c in s.chat_hours()}
    assert cells[("售后服务群", 1, 7)] == 1
    assert cells[("客服一群", 0, 10)] == 2
    assert sum(cells.values()) == 10
    only = stats(archive, ("售后群",))
    assert only.busiest() == [("售后服务群", 2)]
    assert only.total_messages() == 2


def test_speakers_and_lurkers(archive):
    s = stats(archive)
    rows = [(r.chat, r.name, r.messages, round(r.share, 3)) for r in s.speakers(top=5)]
    assert rows == [
        ("客服一群", "张三", 3, 0.429), ("客服一群", "李四", 3, 0.429),
        ("售后服务群", "赵六", 2, 1.0), ("VIP-孙总", "VIP-孙总", 1, 1.0),
    ]  # fmt: skip
    assert [(r.chat, r.name) for r in s.speakers(top=1)][:1] == [("客服一群", "张三")]
    overall = s.speakers(top=2, per_chat=False)
    assert [(r.name, r.messages) for r in overall] == [("张三", 3), ("李四", 3)]
    # lurkers: in the roster, silent in the period; our own account is neither
    assert [(lk.chat, lk.name) for lk in s.lurkers()] == [
        ("售后服务群", "钱七"),
        ("客服一群", "王五"),
    ]
    # 李四's only message of 10-31 is outside a period of that day alone … and inside it
    early = stats(archive, since="2026-10-31", until="2026-10-31")
    assert ("客服一群", "李四") not in {(lk.chat, lk.name) for lk in early.lurkers()}
    assert ("客服一群", "张三") in {(lk.chat, lk.name) for lk in early.lurkers()}
    assert stats(archive, ("VIP*",)).lurkers() == []  # a friend chat has no roster


# --- sentiment -----------------------------------------------------------------------------------


def test_sentiment_means_medians_negatives(archive, engines):
    scores = {t: engines.scorer.score(t) for t in SCORED}
    s = stats(archive)
    days = s.sentiment_days()
    assert [d.day.isoformat() for d in days] == ["2026-11-01", "2026-11-02", "2026-11-03",
                                                 "2026-11-05"]  # fmt: skip
    assert sum(d.messages for d in days) == len(SCORED) == 8
    day2 = [scores[m.text] for m in IN_PERIOD if m.text in scores and m.msg_id in
            ("1001", "1002", "1005")]  # fmt: skip
    assert days[1].mean == pytest.approx(statistics.fmean(day2))
    assert days[1].median == pytest.approx(statistics.median(day2), abs=0.005)
    assert days[1].negative_share == pytest.approx(sum(x < 0.3 for x in day2) / 3)
    chats = {c.chat: c for c in s.sentiment_chats()}
    assert set(chats) == {"客服一群", "售后服务群", "VIP-孙总"}
    g1 = [scores[m.text] for m in IN_PERIOD if m.chat_user == "@@g1" and m.text in scores]
    assert chats["客服一群"].messages == 5
    assert chats["客服一群"].mean == pytest.approx(statistics.fmean(g1))
    assert chats["客服一群"].median == pytest.approx(statistics.median(g1), abs=0.005)
    per_chat = s.sentiment_days(per_chat=True)
    assert {(d.day.isoformat(), d.chat) for d in per_chat} >= {("2026-11-03", "售后服务群")}
    assert sum(d.messages for d in per_chat) == 8
    # the most negative messages, lowest first, each with its way back to `wxcli history`
    negatives = s.negatives(limit=20)
    expected = sorted((v, t) for t, v in scores.items() if v < 0.3)
    # (MySQL keeps scores as single-precision FLOAT)
    assert [(n.score, n.text) for n in negatives] == [
        (pytest.approx(v, abs=1e-6), t) for v, t in expected
    ]
    assert expected, "the test texts should include negative ones"
    first = negatives[0]
    local = first.created_at.astimezone(SHANGHAI) + timedelta(minutes=1)
    assert first.history_hint.endswith(f"--until {local:%Y-%m-%dT%H:%M} --limit 20")
    assert "wxcli history --chat '" in first.history_hint
    assert s.negatives(limit=1) == negatives[:1]
    assert all(n.chat == "客服一群" for n in stats(archive, ("客服*",)).negatives())


def test_report_gathers_every_section(archive):
    r = stats(archive).report(title="周报", now=at("11-06 01:00"))
    assert r.meta.title == "周报"
    assert r.meta.total_messages == 10
    assert r.meta.chats == ["客服一群", "售后服务群", "VIP-孙总"]
    assert r.meta.timezone == "Asia/Shanghai"
    assert r.meta.account == "客服主号"
    assert r.meta.period_label() == "2026-11-01 – 2026-11-05"
    assert counts(r.words) == WORDS
    assert len(r.heatmap) == 168 and r.sentiment and r.speakers and r.negatives
    assert {lk.name for lk in r.lurkers} == {"王五", "钱七"}
    assert r.busiest_chats[0] == ("客服一群", 7)
    again = type(r).from_dict(r.to_dict())
    assert again.to_dict() == r.to_dict()


# --- the archive's state -------------------------------------------------------------------------


def test_empty_archive_unanalysed_archive_and_pending_messages(db_url, wx_home, engines):
    empty = Archive(db_url, wx_home)
    try:
        with pytest.raises(UsageError, match="the archive has no messages yet"):
            Stats(empty, period())
    finally:
        empty.close()
    raw = build_archive(db_url, wx_home, None)  # stored, not analysed
    try:
        with pytest.raises(UsageError, match="no message has been analysed yet"):
            Stats(raw, period())
        analyse(raw, engines)
        s = Stats(raw, period())
        assert s.pending() == 0
        ingest = Ingestor(raw, raw.account_id(4242), "sid-1", self_user=SELF)
        # a late message in a chat, day and hour that already have counts: they are added to
        late = message(20, G1, "@u1", "张三", "退款 退款", "11-02 03:30")  # 11:30 in Shanghai
        ingest.store([late], None)
        assert Stats(raw, period()).pending() == 1  # stored, not counted yet
        assert counts(Stats(raw, period()).words(50))["退款"] == 4
        analyse(raw, engines)
        s = Stats(raw, period())
        assert s.pending() == 0
        assert counts(s.words(50))["退款"] == 6
        assert counts(stats(raw, ("客服*",)).words(50))["退款"] == 4
        assert counts(stats(raw, since="2026-10-31", until="2026-11-08").words(50))["退款"] == 6
        assert {r.day.isoformat(): r.messages for r in s.days() if r.chat is None}[
            "2026-11-02"
        ] == 6
        assert {(c.weekday, c.hour): c.messages for c in s.heatmap()}[(0, 11)] == 2
        assert {(r.chat, r.name): r.messages for r in s.speakers()}[("客服一群", "张三")] == 4
        assert sum(d.messages for d in s.sentiment_days()) == 9
    finally:
        raw.close()


def test_wide_period_starts_at_the_first_analysed_day(archive):
    s = stats(archive, since="2020-01-01", until="2026-11-05")
    assert s.period.since_day == date(2026, 10, 31)
    assert next(r.day for r in s.days() if r.chat is None) == date(2026, 10, 31)


def test_rebuild_after_changing_stopwords_changes_the_counts(archive, engines, tmp_path):
    stop = tmp_path / "stop.txt"
    stop.write_text("# ours\n快递\n发货\n", encoding="utf-8")
    opts = replace(engines.segmenter.options, stopwords_file=str(stop))
    worker = AnalysisWorker(
        archive,
        analysis_config(stopwords_file=str(stop)),
        segmenter=engines.segmenter.with_options(opts),
        scorer=engines.scorer,
    )
    assert worker.outdated()
    worker.rebuild()
    worker.drain()
    expected = {w: n for w, n in WORDS.items() if w not in ("快递", "发货")}
    s = stats(archive)
    assert counts(s.words(50)) == expected
    assert {r.word for r in s.words_by("sender", top=10)}.isdisjoint({"快递", "发货"})
    assert {r.word for r in s.words_by("chat", top=10)}.isdisjoint({"快递", "发货"})
    assert sum(d.messages for d in s.sentiment_days()) == 8  # the rest is made again too
    assert s.total_messages() == 10
    # a partial rebuild, here with the shipped list, recounts from the Monday of that day's
    # week (the weekly roll-ups hold whole weeks): 11-02 on, not Sunday 11-01
    plain = AnalysisWorker(
        archive, analysis_config(), segmenter=engines.segmenter, scorer=engines.scorer
    )
    assert plain.rebuild(since=datetime(2026, 11, 3, 12, tzinfo=SHANGHAI)) == 10
    after = counts(stats(archive).words(50))
    assert after["发货"] == 4 and after["快递"] == 4
    assert counts(stats(archive, since="2026-11-01", until="2026-11-01").words(50)) == {"客服": 1}
    assert counts(stats(archive, since="2026-11-02", until="2026-11-03").words(50))["发货"] == 4
    # the week of 11-02, read from the weekly roll-up, was recounted whole
    week = stats(archive, since="2026-11-02", until="2026-11-08")
    assert week._weeks_and_days() == ([date(2026, 11, 2)], [])
    assert counts(week.words(50)) == {w: n for w, n in WORDS.items() if w != "客服"} | {"快递": 4}
