"""The known archive of the stats tests: three chats (one renamed half-way), members who never
speak, our own replies, and a message at 23:30 UTC that belongs to the next day in Shanghai,
stored through the real ingest path and analysed by the real worker (see ``build_archive``).
The exact figures it must give are in tests/test_stats_queries.py."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from wxcli.analysis.segment import Segmenter
from wxcli.analysis.sentiment import SentimentScorer
from wxcli.analysis.worker import AnalysisWorker
from wxcli.config import defaults
from wxcli.protocol.models import Contact, Member
from wxcli.store.archive import Archive, Ingestor
from wxcli.watch.normalize import ChatMessage

SHANGHAI = ZoneInfo("Asia/Shanghai")

SELF = "@self"
G1 = Contact(
    "@@g1",
    "客服一群",
    members=(Member("@u1", "张三"), Member("@u2", "李四"), Member("@u3", "王五"),
             Member(SELF, "客服主号")),
)  # fmt: skip
G2_OLD = Contact(
    "@@g2",
    "售后群",
    members=(Member("@u4", "赵六"), Member("@u5", "钱七"), Member(SELF, "客服主号")),
)
G2_NEW = replace(G2_OLD, nickname="售后服务群")
F1 = Contact("@f1", "孙总", remark="VIP-孙总")


def at(text: str) -> datetime:
    """A UTC time in 2026 written ``MM-DD HH:MM``."""
    month_day, clock = text.split()
    month, day = (int(x) for x in month_day.split("-"))
    hour, minute = (int(x) for x in clock.split(":"))
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def message(
    n: int, chat: Contact, sender: str, name: str, text: str, when: str, kind: str = "text"
) -> ChatMessage:
    created = at(when)
    return ChatMessage(
        msg_id=f"{1000 + n}",
        chat_user=chat.user_name,
        chat_kind="group" if chat.is_group else "friend",
        chat_name=chat.remark or chat.nickname,
        sender_user=sender,
        sender_name=name,
        is_self=sender == SELF,
        kind=kind,
        msg_type={"text": 1, "image": 3, "system": 10000}[kind],
        app_msg_type=0,
        text=text,
        created_at=created,
        received_at=created + timedelta(seconds=1),
    )


# Shanghai is UTC+8: the comments give the local day and time.
BEFORE_RENAME = [
    message(11, G1, "@u2", "李四", "物流 物流", "10-31 15:59"),  # 10-31 23:59 Sat
    message(12, G1, "@u2", "李四", "客服 在吗 快递", "10-31 16:00"),  # 11-01 00:00 Sun
    message(1, G1, "@u1", "张三", "退款 退款 发货", "11-02 01:00"),  # 11-02 09:00 Mon
    message(2, G1, "@u2", "李四", "发货太慢了，差评！", "11-02 02:00"),  # 11-02 10:00
    message(3, G1, SELF, "客服主号", "退款已经处理", "11-02 02:30"),  # ours: no words, no mood
    message(4, G1, "@u1", "张三", "", "11-02 03:00", kind="image"),  # activity only
    message(5, G2_OLD, "@u4", "赵六", "快递 破损，我要退款", "11-02 04:00"),  # 11-02 12:00
    message(6, G2_OLD, "", "", "张三邀请钱七加入了群聊", "11-02 05:00", kind="system"),  # nothing
]
AFTER_RENAME = [
    # 23:30 UTC on the 2nd is 07:30 on Tuesday the 3rd in Shanghai; URL, number, smiley,
    # mention and emoji are filtered out
    message(7, G2_NEW, "@u4", "赵六",
            "看看 https://example.com/a 订单号 12345678 [微笑] @李四\u2005退款 😡", "11-02 23:30"),
    message(8, G1, "@u2", "李四", "质量 很好 谢谢", "11-03 02:00"),  # 11-03 10:00 ("很好" is a
    message(9, F1, "@f1", "孙总", "发货 发货 质量", "11-03 03:00"),  # stopword) 11-03 11:00
    message(10, G1, "@u1", "张三", "快递 快递 快递", "11-04 16:30"),  # 11-05 00:30 Thu
]  # fmt: skip
ALL = BEFORE_RENAME + AFTER_RENAME
IN_PERIOD = [m for m in ALL if m.msg_id != "1011"]  # 2026-11-01 … 2026-11-05 in Shanghai
SCORED = [m.text for m in IN_PERIOD if m.kind == "text" and not m.is_self]

#: Words of 2026-11-01 … 2026-11-05 in Shanghai.
WORDS = {
    "快递": 5, "发货": 4, "退款": 4, "质量": 2, "太慢": 1, "客服": 1, "差评": 1, "看看": 1,
    "破损": 1, "订单号": 1, "谢谢": 1,
}  # fmt: skip


class Engines:
    """jieba and the sentiment tables, loaded once per session and shared by the workers."""

    def __init__(self, cache: Path):
        self.cache = cache
        self.segmenter = Segmenter(cache_dir=cache)
        self.segmenter.load()
        self.scorer = SentimentScorer(cache)

    def seed_home(self, home: Path) -> None:
        """Copy the caches into ``<home>/cache``, so a `wxcli analyze` there starts at once."""
        target = home / "cache"
        target.mkdir(parents=True, exist_ok=True)
        for f in self.cache.iterdir():
            if f.is_file() and f.suffix in (".cache", ".bin"):
                shutil.copy2(f, target / f.name)


def analysis_config(timezone: str = "Asia/Shanghai", **analysis: Any) -> Any:
    cfg = defaults()
    cfg.data["analysis"]["timezone"] = timezone
    cfg.data["analysis"].update(analysis)
    return cfg


def build_archive(
    db_url: str,
    home: Path,
    engines: Engines | None,
    *,
    timezone: str = "Asia/Shanghai",
    messages: tuple[list[ChatMessage], list[ChatMessage]] = (BEFORE_RENAME, AFTER_RENAME),
) -> Archive:
    """The known archive at ``db_url``: rosters, messages with a rename in between, analysed
    (unless ``engines`` is None)."""
    archive = Archive(db_url, home)
    account = archive.account_id(4242, "客服主号")
    directory = {c.user_name: c for c in (G1, G2_OLD, F1)}
    ingest = Ingestor(
        archive,
        account,
        "sid-1",
        describe_chat=directory.get,
        self_user=SELF,
        self_nickname="客服主号",
    )
    ingest.sync_directory([G1, G2_OLD], now=at("10-30 00:00"))
    before, after = messages
    ingest.store(before, None, now=at("11-02 05:30"))
    directory[G2_NEW.user_name] = G2_NEW
    ingest.store(after, None, group_changes=[(G2_OLD, G2_NEW)], now=at("11-02 23:31"))
    if engines is not None:
        analyse(archive, engines, timezone)
    return archive


def analyse(archive: Archive, engines: Engines, timezone: str = "Asia/Shanghai") -> int:
    worker = AnalysisWorker(
        archive, analysis_config(timezone), segmenter=engines.segmenter, scorer=engines.scorer
    )
    return worker.drain()


_ENGINES: dict[Path, Engines] = {}


def shared_engines(request: Any, tmp_path_factory: Any) -> Engines:
    """One set of engines per test session (tests/test_stats_cli.py uses it too). The sentiment
    tables live in pytest's cache, next to the ones tests/test_analysis.py uses: building them
    takes ~10 s."""
    cache = getattr(request.config, "cache", None)
    where = (
        Path(cache.mkdir("wxcli-sentiment-tables"))
        if cache is not None
        else tmp_path_factory.getbasetemp() / "analysis-cache"
    )
    if where not in _ENGINES:
        where.mkdir(parents=True, exist_ok=True)
        _ENGINES[where] = Engines(where)
    return _ENGINES[where]
