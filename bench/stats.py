"""Benchmark: `wxcli stats` on a big archive next to the naive way (fetch texts, jieba, Counter).

The archive (``bench/make_archive.py``: 1,000,000 messages, 200 groups, 90 days of realistic
Chinese customer-service chat, analysed by the real analysis worker) is built once and cached: a
SQLite file under ``~/.cache/wxcli-bench`` and a MariaDB database ``wxcli_bench_stats``
(a copy of the analysed SQLite tables). Later runs reuse both.

For each back-end it times, over the last 30 days of the data:

* ``stats words`` over all groups, ``stats words`` for one group (the busiest),
  ``stats activity`` (days, heat map, busiest groups) and ``stats report`` (everything the HTML
  report shows) — as library calls (median of several runs, a fresh query object each time) and
  as whole ``wxcli`` processes (interpreter start and imports included);
* the naive way on the same rows: fetch the messages of the period, segment with jieba (loaded
  beforehand, not timed), count with ``Counter``, bucket times in Python; for the report the
  sentiment of every text with snownlp, extrapolated from a timed sample (scoring 300,000 texts
  with snownlp takes longer than the rest of this benchmark).

It also reports the analysis worker: messages/s of the whole worker (the build, several
processes), of segmentation and of sentiment alone (one process), and peak RSS, with snownlp's
own rate and RSS for comparison. Run from the repository root:

    python bench/stats.py                     # 1M messages, SQLite and MariaDB (first run ~15 min)
    python bench/stats.py --messages 100000   # a quick run
    python bench/stats.py --no-mysql --rebuild
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from make_archive import TZ, Plan, analyse, copy_archive, generate  # noqa: E402

MYSQL = "mysql://root@127.0.0.1:3306/"
META_KEY = "bench_stats"
WXCLI = [sys.executable, "-m", "wxcli"]
NO = False  # peewee compares columns with ==; a name keeps ruff's E712 quiet


def _cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "wxcli-bench"


# --- the cached archive ------------------------------------------------------------------------


def _read_meta(url: str, home: Path) -> dict[str, Any] | None:
    from wxcli.store.archive import Archive

    try:
        archive = Archive(url, home)
    except Exception:  # a missing or broken cache is rebuilt
        return None
    try:
        Meta = archive.m.AnalysisMeta
        row = Meta.get_or_none(Meta.key == META_KEY)
        return json.loads(row.value) if row is not None else None
    finally:
        archive.close()


def _write_meta(url: str, home: Path, meta: dict[str, Any]) -> None:
    from wxcli.store.archive import Archive, upsert

    archive = Archive(url, home)
    Meta = archive.m.AnalysisMeta
    value = json.dumps(meta)
    upsert(Meta.insert(key=META_KEY, value=value), [Meta.key], {Meta.value: value}).execute()
    archive.close()


def ensure_sqlite(plan: Plan, cache: Path, home: Path, workers: int, rebuild: bool) -> tuple:
    """The analysed SQLite archive for ``plan`` (built unless cached) and its build figures."""
    path = cache / f"stats-{plan.messages}.db"
    url = f"sqlite:///{path}"
    meta = None if rebuild or not path.exists() else _read_meta(url, home)
    if meta is not None and meta.get("key") == _key(plan):
        print(f"reusing {path}")
        return url, meta
    for f in cache.glob(f"stats-{plan.messages}.db*"):
        f.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    print(f"building {path}: {plan.messages:,} messages, {plan.groups} groups, {plan.days} days")
    made = generate(url, home, plan)
    print("analysing with the real worker …")
    done = analyse(url, home, workers=workers)
    print(
        f"  {done['messages']:,} messages in {done['seconds']:.0f} s "
        f"({done['rate']:,.0f}/s with {workers} processes, peak RSS {done['rss_mb']:.0f} MB each)"
    )
    meta = {"key": _key(plan), "end": plan.end.isoformat(), "generate": made, "analyse": done}
    _write_meta(url, home, meta)
    return url, meta


def _key(plan: Plan) -> str:
    d = json.loads(plan.key())
    d.pop("end")  # a cached archive stays valid on later days: its own end date is kept
    return json.dumps(d, sort_keys=True)


def ensure_mysql(src_url: str, meta: dict[str, Any], plan: Plan, home: Path) -> str:
    name = "wxcli_bench_stats" + ("" if plan.messages == 1_000_000 else f"_{plan.messages}")
    url = MYSQL + name
    if _read_meta(url, home) == meta:
        print(f"reusing MariaDB database {name}")
        return url
    print(f"copying the archive into MariaDB database {name} …")
    seconds = copy_archive(src_url, url, home, log=lambda line: None)
    print(f"  copied in {seconds:.0f} s")
    _write_meta(url, home, meta)
    return url


# --- timing helpers ------------------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int = 5) -> float:
    """Median wall seconds of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def cli_seconds(args: list[str], home: Path, repeat: int = 3) -> float:
    env = {**os.environ, "WXCLI_HOME": str(home), "PYTHONPATH": str(REPO)}
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        done = subprocess.run([*WXCLI, *args], capture_output=True, env=env, check=False)
        times.append(time.perf_counter() - t)
        if done.returncode != 0:
            raise RuntimeError(f"wxcli {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    return statistics.median(times)


# --- the naive way ---------------------------------------------------------------------------


class Naive:
    """What a report costs without the worker's roll-ups: fetch, segment, count, per call."""

    def __init__(self) -> None:
        import logging

        import jieba

        from wxcli.analysis.segment import load_stopwords

        logging.getLogger("jieba").setLevel(logging.WARNING)
        jieba.initialize()  # loading the dictionary is not timed
        self.cut = jieba.lcut
        self.stop = load_stopwords()

    def words(self, texts: list[str], top: int = 20) -> list[tuple[str, int]]:
        counts: Counter[str] = Counter()
        stop = self.stop
        for text in texts:
            counts.update(w for w in self.cut(text) if len(w) >= 2 and w.lower() not in stop)
        return counts.most_common(top)


def _window(archive: Any, since: date, until: date) -> tuple[datetime, datetime]:
    from wxcli.store.archive import naive
    from wxcli.timeutil import local_midnight

    return naive(local_midnight(since, TZ)), naive(local_midnight(until, TZ))


def _local(created: datetime) -> datetime:
    return created.replace(tzinfo=UTC).astimezone(TZ)


def naive_texts(archive: Any, since: date, until: date, chat: int | None) -> list[str]:
    M = archive.m.Message
    a, b = _window(archive, since, until)
    q = M.select(M.text).where(
        M.created_at >= a, M.created_at < b, M.kind == "text", M.is_self == NO
    )
    if chat is not None:
        q = q.where(M.chat == chat)
    return [t for (t,) in q.tuples()]


def naive_activity(archive: Any, since: date, until: date) -> Any:
    M = archive.m.Message
    a, b = _window(archive, since, until)
    q = M.select(M.chat, M.created_at).where(
        M.created_at >= a, M.created_at < b, M.kind.not_in(["system", "recall", "friend-request"])
    )
    per_day: Counter[tuple[int, date]] = Counter()
    heat: Counter[tuple[int, int]] = Counter()
    busiest: Counter[int] = Counter()
    for chat, created in q.tuples():
        local = _local(created)
        per_day[(chat, local.date())] += 1
        heat[(local.weekday(), local.hour)] += 1
        busiest[chat] += 1
    return per_day, heat, busiest.most_common(10)


def naive_report(archive: Any, naive: Naive, since: date, until: date) -> int:
    """Words, activity and speakers from the raw rows; returns the number of texts that would
    still need a sentiment score."""
    M = archive.m.Message
    a, b = _window(archive, since, until)
    q = M.select(M.chat, M.sender, M.kind, M.text, M.created_at, M.is_self).where(
        M.created_at >= a, M.created_at < b
    )
    texts: list[str] = []
    per_day: Counter[tuple[int, date]] = Counter()
    heat: Counter[tuple[int, int]] = Counter()
    speakers: Counter[tuple[int, int]] = Counter()
    for chat, sender, kind, text, created, is_self in q.tuples():
        if kind in ("system", "recall", "friend-request"):
            continue
        local = _local(created)
        per_day[(chat, local.date())] += 1
        heat[(local.weekday(), local.hour)] += 1
        if sender is not None and not is_self:
            speakers[(chat, sender)] += 1
        if kind == "text" and text and not is_self:
            texts.append(text)
    naive.words(texts, 100)
    speakers.most_common(15)
    return len(texts)


# --- the worker's engines (each in a fresh process, for its own RSS) ------------------------------


CHILD = """
import json, sys, time
from pathlib import Path
kind, home, sample = sys.argv[1], Path(sys.argv[2]), json.load(open(sys.argv[3]))
if kind in ("segment", "both"):
    from wxcli.analysis.segment import Segmenter
    engine = Segmenter(cache_dir=home / "cache"); engine.load(); work = engine.words
if kind in ("sentiment", "both"):
    from wxcli.analysis.sentiment import SentimentScorer
    scorer = SentimentScorer(home / "cache")
    work = scorer.score if kind == "sentiment" else (lambda t: (engine.words(t), scorer.score(t)))
if kind == "snownlp":
    from snownlp import SnowNLP
    work = lambda t: SnowNLP(t).sentiments
    sample = [t for t in sample if t.strip()]
t = time.perf_counter()
for text in sample:
    work(text)
seconds = time.perf_counter() - t
from make_archive import peak_rss_mb
print(json.dumps({"rate": len(sample) / seconds, "rss_mb": peak_rss_mb(), "n": len(sample)}))
"""


def engine_rate(kind: str, texts: list[str], home: Path, tmp: Path) -> dict[str, float]:
    sample = tmp / f"{kind}.json"
    sample.write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "bench")])}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(home), str(sample)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- one back-end --------------------------------------------------------------------------------


def measure(url: str, label: str, end: date, home: Path, naive: Naive | None) -> dict[str, Any]:
    from wxcli.stats.queries import Period, Stats
    from wxcli.store.archive import Archive

    archive = Archive(url, home)
    since, until = end - timedelta(days=29), end + timedelta(days=1)
    period = Period(since, until, TZ)
    busiest_id, busiest_name = _busiest(archive, period)
    out: dict[str, Any] = {"backend": label, "group": busiest_name}
    out["messages_in_period"] = Stats(archive, period).total_messages()
    out["group_messages"] = Stats(archive, period, [busiest_name]).total_messages()

    def activity() -> None:  # what `wxcli stats activity` draws
        s = Stats(archive, period)
        s.days(chats=10)
        s.heatmap()
        s.busiest(10)

    ours = {
        "words_all": lambda: Stats(archive, period).words(20),
        "words_group": lambda: Stats(archive, period, [busiest_name]).words(20),
        "activity": activity,
        "report": lambda: Stats(archive, period).report(),
    }
    out["ours"] = {k: timed(fn) for k, fn in ours.items()}
    window = ["--db", url, "--since", since.isoformat(), "--until", end.isoformat()]
    html = home / f"report-{label}.html"
    out["cli"] = {
        "words_all": cli_seconds(["stats", "words", *window, "--format", "json"], home),
        "words_group": cli_seconds(
            ["stats", "words", *window, "--chat", busiest_name, "--format", "json"], home
        ),
        "activity": cli_seconds(["stats", "activity", *window], home),
        "report": cli_seconds(["stats", "report", *window, "--html", str(html)], home),
    }
    if naive is not None:
        t = time.perf_counter()
        texts = naive_texts(archive, since, until, None)
        naive.words(texts)
        words_all = time.perf_counter() - t
        t = time.perf_counter()
        naive.words(naive_texts(archive, since, until, busiest_id))
        words_group = time.perf_counter() - t
        activity_s = timed(lambda: naive_activity(archive, since, until), repeat=1)
        t = time.perf_counter()
        n_texts = naive_report(archive, naive, since, until)
        report_s = time.perf_counter() - t
        out["naive"] = {
            "words_all": words_all,
            "words_group": words_group,
            "activity": activity_s,
            "report_without_sentiment": report_s,
            "texts": n_texts,
        }
    archive.close()
    return out


def _busiest(archive: Any, period: Any) -> tuple[int, str]:
    from wxcli.stats.queries import Stats

    s = Stats(archive, period)
    chat_id = max(s._busiest_ids(), key=lambda cn: cn[1])[0]
    return chat_id, archive.m.Chat.get_by_id(chat_id).name


# --- output --------------------------------------------------------------------------------------


def _s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.0f} s"


def report(results: list[dict[str, Any]], engines: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = []
    a = meta["analyse"]
    lines.append(
        f"Archive: {meta['generate']['messages']:,} messages, last 30 days: "
        + ", ".join(f"{r['backend']} {r['messages_in_period']:,}" for r in results[:1])
        + f" messages; one group = {results[0]['group']} ({results[0]['group_messages']:,})."
    )
    lines.append("")
    lines.append(
        "| back-end | report | ours (library) | ours (`wxcli` process) | naive | naive ÷ ours |"
    )
    lines.append("|---|---|---:|---:|---:|---:|")
    names = {
        "words_all": "`stats words`, 30 days, all groups",
        "words_group": "`stats words`, 30 days, one group",
        "activity": "`stats activity`, 30 days",
        "report": "`stats report`, 30 days",
    }
    for r in results:
        naive = r.get("naive")
        for key, title in names.items():
            ours, cli = r["ours"][key], r["cli"][key]
            if naive is None:
                n_txt, ratio = "–", "–"
            else:
                if key == "report":
                    extra = naive["texts"] / engines["snownlp"]["rate"]
                    n = naive["report_without_sentiment"] + extra
                    n_txt = f"{_s(n)} (≈{_s(naive['report_without_sentiment'])} + snownlp)"
                else:
                    n = naive[key]
                    n_txt = _s(n)
                ratio = f"{n / ours:,.0f}× ({n / cli:,.0f}×)"
            lines.append(
                f"| {r['backend']} | {title} | {_s(ours)} | {_s(cli)} | {n_txt} | {ratio} |"
            )
    lines.append("")
    lines.append(
        "Ratios: naive time over the library call (over the whole `wxcli` process in brackets)."
    )
    lines.append("")
    lines.append("| analysis worker | messages/s | peak RSS |")
    lines.append("|---|---:|---:|")
    lines.append(
        f"| whole worker (the build: {a['workers']} processes, segmentation + sentiment + "
        f"writes, SQLite) | {a['rate']:,.0f} | see below |"
    )
    for key, title in (
        ("both", "segmentation + sentiment (the worker's engines), 1 process"),
        ("segment", "segmentation alone (jieba + wxcli filters), 1 process"),
        ("sentiment", "sentiment alone (wxcli SentimentScorer), 1 process"),
        ("snownlp", "sentiment with snownlp itself, 1 process"),
    ):
        e = engines[key]
        lines.append(f"| {title} | {e['rate']:,.0f} | {e['rss_mb']:.0f} MB |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=1_000_000)
    p.add_argument("--groups", type=int, default=200)
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--workers", type=int, default=2, help="analysis processes for the build")
    p.add_argument("--rebuild", action="store_true", help="ignore the cached archive")
    p.add_argument("--no-mysql", action="store_true", help="SQLite only")
    p.add_argument("--no-naive", action="store_true", help="skip the naive timings")
    p.add_argument("--cache-dir", type=Path, default=_cache_dir())
    a = p.parse_args()
    cache = a.cache_dir
    home = cache / "home"
    home.mkdir(parents=True, exist_ok=True)
    plan = Plan(a.messages, a.groups, a.days)
    url, meta = ensure_sqlite(plan, cache, home, a.workers, a.rebuild)
    end = date.fromisoformat(meta["end"])
    backends = [("SQLite", url)]
    if not a.no_mysql:
        backends.append(("MariaDB", ensure_mysql(url, meta, plan, home)))
    naive = None if a.no_naive else Naive()
    results = []
    for label, db in backends:
        print(f"measuring {label} …")
        results.append(measure(db, label, end, home, naive))
    print("measuring the engines …")
    from wxcli.store.archive import Archive

    archive = Archive(url, home)
    M = archive.m.Message
    texts = [
        t
        for (t,) in M.select(M.text)
        .where(M.kind == "text", M.is_self == NO)
        .order_by(M.id)
        .limit(20_000)
        .tuples()
    ]
    archive.close()
    tmp = cache / "tmp"
    tmp.mkdir(exist_ok=True)
    engines = {
        "both": engine_rate("both", texts, home, tmp),
        "segment": engine_rate("segment", texts, home, tmp),
        "sentiment": engine_rate("sentiment", texts, home, tmp),
        "snownlp": engine_rate("snownlp", texts[:400], home, tmp),
    }
    print()
    print(report(results, engines, meta))
    print()
    print(json.dumps({"results": results, "engines": engines, "build": meta}, default=str))


if __name__ == "__main__":
    main()
