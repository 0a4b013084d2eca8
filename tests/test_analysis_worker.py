"""The analysis worker: exact counts, several workers without double counting, rebuilds."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import peewee as pw
import pytest

from wxcli.analysis.worker import AnalysisWorker
from wxcli.config import defaults
from wxcli.store.archive import Archive, Ingestor
from wxcli.watch.normalize import ChatMessage

T0 = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def row(i: int, text: str, chat: str = "@@g1", sender: str = "@u1", when: datetime = T0, **kw):
    return ChatMessage(
        msg_id=str(1000 + i),
        chat_user=chat,
        chat_kind="group",
        chat_name="客服1群" if chat == "@@g1" else "客服2群",
        sender_user=sender,
        sender_name="张伟" if sender == "@u1" else "李娜",
        is_self=kw.get("is_self", False),
        kind=kw.get("kind", "text"),
        msg_type=1,
        app_msg_type=0,
        text=text,
        created_at=when,
        received_at=when,
    )


@pytest.fixture
def archive(db_url, wx_home):
    a = Archive(db_url, wx_home)
    yield a
    a.close()


def ingest(archive, rows):
    ing = Ingestor(
        archive, archive.account_id(1, "me"), "sid-1", self_user="@me", self_nickname="我"
    )
    ing.store(rows, None)


_SEGMENTERS: dict = {}


def worker(archive, cache, **kw):
    """A worker whose jieba dictionary is loaded once per test session (it costs ~1.5 s)."""
    from wxcli.analysis.segment import Segmenter, SegmentOptions

    cfg = defaults()
    cfg.data["analysis"].update(kw)
    base = _SEGMENTERS.get("base")
    if base is None:
        base = _SEGMENTERS["base"] = Segmenter(cache_dir=cache)
    options = SegmentOptions(**{k: v for k, v in kw.items() if k == "stopwords_file"})
    segmenter = base if not kw else base.with_options(options)
    return AnalysisWorker(archive, cfg, cache_dir=cache, batch=7, segmenter=segmenter)


def word_counts(archive) -> dict[str, int]:
    W = archive.m.WordCount
    return dict(W.select(W.word, pw.fn.SUM(W.count)).group_by(W.word).tuples())


TEXTS = [
    "请问云帆的发票怎么申请？",
    "发票什么时候能开好",
    "质量太差了，我要退款",
    "退款申请已经提交",
    "谢谢客服，问题解决了",
]


def test_counts_words_activity_speakers_and_scores(archive, analysis_cache):
    rows = [row(i, t) for i, t in enumerate(TEXTS)]
    rows.append(row(10, "我们自己的回复不算", sender="@me", is_self=True))
    rows.append(row(11, "", kind="image"))
    ingest(archive, rows)
    w = worker(archive, analysis_cache)
    assert w.drain() >= len(rows)
    counts = word_counts(archive)
    assert counts["发票"] == 2 and counts["退款"] == 2
    assert "回复" not in counts  # the account's own messages are not customer words
    m = archive.m
    a = m.Activity.get()
    assert (a.day.isoformat(), a.hour, a.messages, a.scored) == ("2026-11-03", 10, 7, 5)
    assert m.MessageScore.select().count() == 5
    scored = dict(
        m.Message.select(m.Message.text, m.MessageScore.sentiment)
        .join(m.MessageScore, on=(m.MessageScore.message == m.Message.id))
        .tuples()
    )
    from wxcli.analysis.sentiment import SentimentScorer

    scorer = SentimentScorer(analysis_cache)
    assert scored == {t: scorer.score(t) for t in TEXTS}  # exactly what the scorer says
    speakers = dict(m.SpeakerCount.select(m.SpeakerCount.person, m.SpeakerCount.messages).tuples())
    assert sorted(speakers.values()) == [1, 6]  # 张伟 6 (5 texts + image), me 1
    assert w.pending() == 0


def test_local_day_boundary_uses_the_configured_time_zone(archive, analysis_cache):
    late = datetime(2026, 11, 3, 16, 30, tzinfo=UTC)  # 00:30 on the 4th in Shanghai
    ingest(archive, [row(1, "发票发票", when=late)])
    worker(archive, analysis_cache).drain()
    days = {d.isoformat() for (d,) in archive.m.WordCount.select(archive.m.WordCount.day).tuples()}
    assert days == {"2026-11-04"}


def test_two_workers_split_the_archive_without_double_counting(archive, analysis_cache, db_url):
    ingest(archive, [row(i, TEXTS[i % len(TEXTS)]) for i in range(60)])
    single = worker(archive, analysis_cache)
    single.drain()
    expected = word_counts(archive)
    single.rebuild()

    second = Archive(db_url)
    try:
        workers = [worker(archive, analysis_cache), worker(second, analysis_cache)]
        done = []
        threads = [threading.Thread(target=lambda w=w: done.append(w.drain())) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        second.close()
    assert word_counts(archive) == expected
    assert sum(done) >= 60
    assert all(w.progress.ranges > 0 for w in workers) or sum(done) >= 60


def test_rebuild_after_a_stopwords_change_changes_the_counts(archive, analysis_cache, tmp_path):
    ingest(archive, [row(i, t) for i, t in enumerate(TEXTS)])
    w = worker(archive, analysis_cache)
    w.drain()
    assert word_counts(archive)["退款"] == 2
    stop = tmp_path / "stop.txt"
    stop.write_text("退款\n", encoding="utf-8")
    w2 = worker(archive, analysis_cache, stopwords_file=str(stop))
    assert w2.outdated()  # different stopwords than the counts were made with
    w2.rebuild()
    w2.drain()
    counts = word_counts(archive)
    assert "退款" not in counts and counts["发票"] == 2
    assert not w2.outdated()


def test_partial_rebuild_recounts_from_a_day(archive, analysis_cache):
    day1 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)
    day2 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
    ingest(
        archive, [row(1, "发票", when=day1), row(2, "发票", when=day2), row(3, "退款", when=day2)]
    )
    w = worker(archive, analysis_cache)
    w.drain()
    before = word_counts(archive)
    n = w.rebuild(since=day2)
    assert n == 2
    assert word_counts(archive) == before  # same settings: same counts, nothing doubled
