"""Sentiment scores equal to snownlp's ``SnowNLP(text).sentiments``, from a lean reimplementation.

snownlp's own import loads every model it has (~3 s, ~420 MB) and its character tagger spends
most of its time in generic probability lookups. :class:`SentimentScorer` reads the same installed
model files (located with ``importlib.util.find_spec``, snownlp itself is never imported), turns the
segmentation model once into compact precomputed log-probability tables cached under the wxcli
home, and runs the same second-order Viterbi search and naive-Bayes sum in the same floating-point
order, so scores match snownlp's bit for bit.
"""

from __future__ import annotations

import array
import bisect
import contextlib
import gc
import gzip
import hashlib
import json
import logging
import marshal
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from wxcli.errors import WxError

log = logging.getLogger(__name__)

#: Bump when the cache layout or the way tables are computed changes.
CACHE_FORMAT = 1
_BUILD_TIMEOUT = 600  # seconds; the build takes ~10 s
_MAGIC = b"WXCLI-SNOWNLP-SEG\n"
#: snownlp's segmenter handles runs of these characters with its tagger, the rest by whitespace.
_CJK_RUN = re.compile("([\u4e00-\u9fa5]+)")
_TAGS = ("b", "m", "e", "s")
_B, _M, _E, _S = range(4)
_BOS = ("", "BOS")
_NEG_INF = float("-inf")
_ARRAYS = (("lu", "d"), ("bk", "q"), ("bv", "d"), ("tk", "q"), ("tv", "d"))

# snownlp keeps its states in insertion order: current tag first, then previous tag. Its final
# ``max`` (and every tie) is resolved in that order, so ours is too.
_FINAL_ORDER = tuple(a * 4 + s for s in range(4) for a in range(4))
#: (16 tag1-independent values, the columns tag2*4+tag3 that trigrams change, all 64 or None)
_Transitions = tuple[list[float], tuple[int, ...], list[float] | None]


def snownlp_dir() -> Path:
    """The installed snownlp package directory, found without importing snownlp."""
    spec = find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise WxError("snownlp is not installed; sentiment scoring needs it (pip install snownlp)")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_marshal(path: Path) -> Any:
    """Read one of snownlp's model files (gzip-compressed marshal, or plain marshal)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise WxError(f"cannot read snownlp model file {path}: {exc.strerror}") from exc
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    # The file belongs to the installed snownlp package, so it is as trusted as its code.
    return marshal.loads(data)  # noqa: S302


# --- the segmentation model, as compact tables --------------------------------------------------


def _seg_model_path() -> Path:
    return snownlp_dir() / "seg" / "seg.marshal.3"


def _cache_path(cache_dir: Path, source: Path) -> Path:
    st = source.stat()
    ident = f"{CACHE_FORMAT}|{source.resolve()}|{st.st_size}|{st.st_mtime_ns}|{sys.byteorder}"
    digest = hashlib.sha256(ident.encode("utf-8")).hexdigest()[:16]
    return cache_dir / f"snownlp-seg-{digest}.bin"


def _compute_tables(model: dict[str, Any]) -> tuple[dict[str, Any], dict[str, array.array]]:
    """Precompute every log-probability snownlp's tagger can ask for, with its exact arithmetic.

    snownlp computes ``log(l1*P(c3) + l2*C(c2,c3)/C(c2) + l3*C(c1,c2,c3)/C(c1,c2))`` for each
    transition. Where the trigram count is zero the value depends only on (c2, c3); where the
    bigram count is zero too it depends only on c3. So three sparse tables hold every value, each
    computed with the same expression (and hence the same float) snownlp evaluates at run time.
    Only states a CJK run can reach are kept: the tagger never sees other characters.
    """
    if tuple(model["status"]) != _TAGS:
        raise WxError(f"unexpected snownlp segmentation tags {model['status']!r}")
    l1, l2, l3 = model["l1"], model["l2"], model["l3"]
    uni: dict = model["uni"]["d"]
    utotal = model["uni"]["total"]
    bi: dict = model["bi"]["d"]
    tri: dict = model["tri"]["d"]
    tag_index = {t: i for i, t in enumerate(_TAGS)}

    chars = sorted({c for (c, t), n in uni.items() if n and t in tag_index and _is_run_char(c)})
    nc = len(chars) + 2  # id 0 is the sentence start (BOS), id len(chars)+1 any unknown char
    # Work on small integer codes (char id * 4 + tag): lookups with snownlp's nested-tuple keys in
    # these million-entry dicts are what makes a naive conversion slow.
    codes: dict[tuple[str, str], int] = {_BOS: 0}
    for i, char in enumerate(chars, start=1):
        for tag, t in tag_index.items():
            codes[(char, tag)] = i * 4 + t
    u_count = [0] * (nc * 4)
    for state, code in codes.items():
        u_count[code] = uni.get(state, 0)

    def logp(total: float) -> float:
        return _NEG_INF if total == 0 else math.log(total)

    lu = array.array("d", [_NEG_INF]) * (nc * 4)
    for code in range(4, (nc - 1) * 4):
        if u_count[code]:
            lu[code] = logp(l1 * (float(u_count[code]) / utotal))

    size = nc * 4
    b_count: dict[int, int] = {}
    bigram: dict[int, float] = {}
    for (s2, s3), count in bi.items():
        c2 = codes.get(s2)
        c3 = codes.get(s3)
        if c2 is None or c3 is None or not count:
            continue
        b_count[c2 * size + c3] = count
        if c3 == 0:
            continue
        u2 = u_count[c2]
        p_uni = l1 * (float(u_count[c3]) / utotal)
        p_bi = float(l2 * count) / u2 if u2 != 0 else 0
        key = (((c2 >> 2) * nc + (c3 >> 2)) << 4) | ((c2 & 3) << 2) | (c3 & 3)
        bigram[key] = logp(p_uni + p_bi)

    trigram: dict[int, float] = {}
    log = math.log
    for (s1, s2, s3), count in tri.items():
        c1 = codes.get(s1)
        c2 = codes.get(s2)
        c3 = codes.get(s3)
        if c1 is None or c2 is None or c3 is None or c3 == 0 or not count:
            continue
        if c2 == 0 and c1 != 0:  # a real character before the sentence start: unreachable
            continue
        u2 = u_count[c2]
        b23 = b_count.get(c2 * size + c3, 0)
        b12 = b_count.get(c1 * size + c2, 0)
        total = (
            l1 * (float(u_count[c3]) / utotal)
            + (float(l2 * b23) / u2 if u2 != 0 else 0)
            + (float(l3 * count) / b12 if b12 != 0 else 0)
        )
        key = ((c1 >> 2) * nc + (c2 >> 2)) * nc + (c3 >> 2)
        trigram[(key << 6) | ((c1 & 3) << 4) | ((c2 & 3) << 2) | (c3 & 3)] = (
            log(total) if total != 0 else _NEG_INF
        )

    bk = sorted(bigram)
    tk = sorted(trigram)
    tables: dict[str, array.array[Any]] = {
        "lu": lu,
        "bk": array.array("q", bk),
        "bv": array.array("d", [bigram[k] for k in bk]),
        "tk": array.array("q", tk),
        "tv": array.array("d", [trigram[k] for k in tk]),
    }
    meta: dict[str, Any] = {"format": CACHE_FORMAT, "chars": "".join(chars), "nc": nc}
    return meta, tables


def _is_run_char(char: str) -> bool:
    return len(char) == 1 and "\u4e00" <= char <= "\u9fa5"


def build_model_cache(cache_dir: Path) -> Path:
    """Convert snownlp's segmentation model into the compact table file; return its path.

    This loads snownlp's 40 MB marshal model (~10 s in all, ~490 MB peak), so
    :class:`SentimentScorer` runs it in a child process by default and only reads the ~15 MB
    result. Safe to run concurrently: a lock file serialises builders.
    """
    from wxcli.fileutil import atomic_write_bytes, locked

    cache_dir = Path(cache_dir)
    source = _seg_model_path()
    dest = _cache_path(cache_dir, source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked(cache_dir / "snownlp-seg.lock"):
        if dest.exists():  # another process built it while we waited
            return dest
        # The model is ~10 million small objects that the collector would traverse over and over
        # while we allocate; nothing here makes reference cycles.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            meta, tables = _compute_tables(_load_marshal(source))
        finally:
            if gc_was_enabled:
                gc.enable()
        meta["lengths"] = {name: len(tables[name]) for name, _ in _ARRAYS}
        meta["source"] = str(source)
        header = json.dumps(meta, ensure_ascii=False).encode("utf-8")
        parts = [_MAGIC, len(header).to_bytes(8, "little"), header]
        parts += [tables[name].tobytes() for name, _ in _ARRAYS]
        atomic_write_bytes(dest, b"".join(parts), mode=0o644)
        for stale in cache_dir.glob("snownlp-seg-*.bin"):  # from an older snownlp or format
            if stale != dest:
                with contextlib.suppress(OSError):
                    stale.unlink()
    log.info("built the sentiment segmentation tables %s", dest)
    return dest


def _build_in_child(cache_dir: Path) -> None:
    """Run :func:`build_model_cache` in a fresh interpreter so its peak memory is not ours."""
    package_root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    code = "import sys; from wxcli.analysis.sentiment import build_model_cache as b; b(sys.argv[1])"
    try:
        result = subprocess.run(
            [sys.executable, "-c", code, str(cache_dir)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            timeout=_BUILD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise WxError(f"building the sentiment tables took over {_BUILD_TIMEOUT} s; gave up")
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise WxError(f"building the sentiment tables failed: {tail}")


def _read_tables(path: Path) -> tuple[dict[str, Any], dict[str, array.array]]:
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise ValueError("not a table file")
    pos = len(_MAGIC)
    size = int.from_bytes(data[pos : pos + 8], "little")
    pos += 8
    meta = json.loads(data[pos : pos + size].decode("utf-8"))
    pos += size
    if meta.get("format") != CACHE_FORMAT:
        raise ValueError("old table format")
    tables = {}
    view = memoryview(data)
    for name, typecode in _ARRAYS:
        arr = array.array(typecode)
        nbytes = meta["lengths"][name] * arr.itemsize
        arr.frombytes(view[pos : pos + nbytes])
        pos += nbytes
        tables[name] = arr
    if pos != len(data):
        raise ValueError("truncated or oversized table file")
    return meta, tables


def default_cache_dir() -> Path:
    """``<wxcli home>/cache``: where the analysis caches live unless the caller says otherwise."""
    from wxcli.paths import home_dir

    return home_dir() / "cache"


# --- the scorer ---------------------------------------------------------------------------------


class SentimentScorer:
    """Scores text like ``SnowNLP(text).sentiments`` (0..1, higher is more positive).

    Loading takes ~0.2 s once the tables exist in ``cache_dir`` (default
    ``<wxcli home>/cache``); the first use builds them (~10 s, in a child process unless
    ``build_in_subprocess`` is false, so this process never holds snownlp's 400 MB model).
    Results of recent CJK runs and character trigrams are cached (sizes settable; caching never
    changes a score). Not thread-safe: give each thread or process its own scorer.

    One difference by design: ``SnowNLP("")`` raises ``ZeroDivisionError`` (in its BM25 set-up,
    before sentiment is reached); ``score("")`` returns what snownlp's classifier gives for no
    words, i.e. ``snownlp.sentiment.classify("")``, the prior ≈ 0.526.
    """

    def __init__(
        self,
        cache_dir: Path | None = None,
        *,
        build_in_subprocess: bool = True,
        run_cache_size: int = 20_000,
        table_cache_size: int = 50_000,
    ):
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self._run_cache: dict[str, tuple[str, ...]] = {}
        self._run_cache_size = run_cache_size
        self._table_cache_size = table_cache_size
        self._load_tables(build_in_subprocess)
        self._load_classifier()
        self._stopwords = _snownlp_stopwords()

    # loading

    def _load_tables(self, build_in_subprocess: bool) -> None:
        path = _cache_path(self.cache_dir, _seg_model_path())
        try:
            meta, tables = _read_tables(path)
        except (OSError, ValueError, KeyError):
            if build_in_subprocess:
                _build_in_child(self.cache_dir)
            else:
                build_model_cache(self.cache_dir)
            meta, tables = _read_tables(path)
        self.tables_path = path
        chars = meta["chars"]
        self._ids = {c: i for i, c in enumerate(chars, start=1)}
        self._unknown = len(chars) + 1
        self._nc = meta["nc"]
        self._lu = tables["lu"].tolist()
        self._bk, self._bv = tables["bk"], tables["bv"]
        self._tk, self._tv = tables["tk"], tables["tv"]
        self._trans_cache: dict[int, _Transitions] = {}
        self._base_cache: dict[int, list[float]] = {}

    def _load_classifier(self) -> None:
        path = snownlp_dir() / "sentiment" / "sentiment.marshal.3"
        data = _load_marshal(path)
        try:
            classes = list(data["d"].items())  # snownlp iterates them in this (stored) order
            total = data["total"]
            self._labels = [name for name, _ in classes]
            self._prior = [math.log(c["total"]) - math.log(total) for _, c in classes]
            self._unseen = tuple(math.log(float(c["none"]) / c["total"]) for _, c in classes)
            words: set[str] = set()
            for _, c in classes:
                words.update(c["d"])
            self._word_logp = {
                w: tuple(math.log(float(c["d"].get(w, c["none"])) / c["total"]) for _, c in classes)
                for w in words
            }
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise WxError(f"unexpected snownlp sentiment model layout in {path}: {exc}") from exc

    # segmentation (snownlp.seg.seg) and the tagger

    def segment(self, text: str) -> list[str]:
        """The words snownlp's ``seg.seg`` gives for ``text``, before stopword removal."""
        words: list[str] = []
        for i, piece in enumerate(_CJK_RUN.split(text)):
            if i % 2:  # a run of CJK characters (never empty)
                cached = self._run_cache.get(piece)
                if cached is None:
                    cached = self._segment_run(piece)
                    if len(self._run_cache) >= self._run_cache_size:
                        self._run_cache.clear()
                    self._run_cache[piece] = cached
                words.extend(cached)
            else:
                words.extend(piece.split())
        return words

    def words(self, text: str) -> list[str]:
        """The words the classifier sees: :meth:`segment` minus snownlp's stopwords."""
        stop = self._stopwords
        return [w for w in self.segment(text) if w not in stop]

    def _transitions(self, id1: int, id2: int, id3: int) -> _Transitions:
        """Transition log-probabilities from (char id1, char id2) to char id3, for all tags.

        Returned as the 16 values for (tag2, tag3) that hold whatever tag1 is, plus the few
        (tag1, tag2, tag3) that the trigram counts change: most character trigrams have none.
        """
        nc = self._nc
        key = (id1 * nc + id2) * nc + id3
        found = self._trans_cache.get(key)
        if found is not None:
            return found
        base = self._bigram_base(id2, id3)
        tk = self._tk
        lo = key << 6
        j = bisect.bisect_left(tk, lo)
        hi = lo + 64
        n = len(tk)
        if j < n and tk[j] < hi:
            full = base * 4  # index tag1*16 + tag2*4 + tag3
            columns: set[int] = set()
            while j < n and tk[j] < hi:
                full[tk[j] - lo] = self._tv[j]
                columns.add((tk[j] - lo) & 15)
                j += 1
            found = (base, tuple(sorted(columns)), full)
        else:
            found = (base, (), None)
        if len(self._trans_cache) >= self._table_cache_size:
            self._trans_cache.clear()
        self._trans_cache[key] = found
        return found

    def _bigram_base(self, id2: int, id3: int) -> list[float]:
        """The 16 values (index tag2*4 + tag3) that hold when no trigram count applies."""
        key = id2 * self._nc + id3
        base = self._base_cache.get(key)
        if base is not None:
            return base
        i3 = id3 * 4
        base = self._lu[i3 : i3 + 4] * 4  # only the unigram term
        bk = self._bk
        lo = key << 4
        j = bisect.bisect_left(bk, lo)
        hi = lo + 16
        n = len(bk)
        while j < n and bk[j] < hi:
            base[bk[j] - lo] = self._bv[j]
            j += 1
        if len(self._base_cache) >= self._table_cache_size:
            self._base_cache.clear()
        self._base_cache[key] = base
        return base

    def _segment_run(self, run: str) -> tuple[str, ...]:
        tags = self._tag(run)
        words: list[str] = []
        buf = ""
        for char, tag in zip(run, tags, strict=True):
            if tag == _E:
                words.append(buf + char)
                buf = ""
            elif tag == _M:
                buf += char
            else:  # b or s start a new word; snownlp emits a lone s only when the next one starts
                if buf:
                    words.append(buf)
                buf = char
        if buf:
            words.append(buf)
        return tuple(words)

    def _tag(self, run: str) -> list[int]:
        """Second-order Viterbi over b/m/e/s, reproducing snownlp's handling of ties exactly.

        State (tag1, tag2) has index tag1*4 + tag2; states that do not exist yet (before the
        second character) hold -inf, which never wins a comparison it should not. The forward pass
        needs only the best *value* per state, and rounding is monotonic, so where a transition
        does not depend on tag1 the best value is ``max(old column) + transition``. Which tag1
        produced it (first in snownlp's order on ties) is recovered afterwards, for the states on
        the best path only, by redoing snownlp's four additions.
        """
        ids = [self._ids.get(c, self._unknown) for c in run]
        unknown = self._unknown
        score = [0.0] + [_NEG_INF] * 15  # only (BOS, BOS) exists
        prev_tags = 1  # how many tag1 values exist: just BOS at first, then all four
        id1 = id2 = 0
        steps: list[tuple[list[float], _Transitions | int]] = []
        for id3 in ids:
            if id3 == unknown:
                # snownlp adds no probability for a character its model never saw, and for each
                # new state keeps the path of the *last* old state it looked at, not the best.
                last = (prev_tags - 1) * 4
                new = [score[last + (k >> 2)] for k in range(16)]
                steps.append((score, prev_tags - 1))
            else:
                trans = self._transitions(id1, id2, id3)
                base, columns, full = trans
                s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15 = score
                m0 = max(s0, s4, s8, s12)
                m1 = max(s1, s5, s9, s13)
                m2 = max(s2, s6, s10, s14)
                m3 = max(s3, s7, s11, s15)
                new = [
                    m0 + base[0], m0 + base[1], m0 + base[2], m0 + base[3],
                    m1 + base[4], m1 + base[5], m1 + base[6], m1 + base[7],
                    m2 + base[8], m2 + base[9], m2 + base[10], m2 + base[11],
                    m3 + base[12], m3 + base[13], m3 + base[14], m3 + base[15],
                ]  # fmt: skip
                if full is not None:
                    for k in columns:
                        a = k >> 2
                        new[k] = max(
                            score[a] + full[k],
                            score[4 + a] + full[16 + k],
                            score[8 + a] + full[32 + k],
                            score[12 + a] + full[48 + k],
                        )
                steps.append((score, trans))
            score = new
            prev_tags = 4 if steps[1:] else 1
            id1, id2 = id2, id3

        state = _FINAL_ORDER[0]
        best = score[state]
        for k in _FINAL_ORDER:
            if score[k] > best:
                best, state = score[k], k
        tags = [0] * len(ids)
        for i in range(len(ids) - 1, -1, -1):
            tags[i] = state & 3
            old, how = steps[i]
            a = state >> 2
            if isinstance(how, int):
                tag1 = how
            else:
                base, _, full = how
                values = [
                    old[t * 4 + a] + (base[state] if full is None else full[t * 16 + state])
                    for t in range(4)
                ]
                tag1 = values.index(max(values))  # the first of equals, as snownlp keeps
            state = tag1 * 4 + a
        return tags

    # classification (snownlp.classification.bayes)

    def score(self, text: str) -> float:
        """Probability that ``text`` is positive, as snownlp computes it."""
        logs = list(self._prior)
        table = self._word_logp
        unseen = self._unseen
        stop = self._stopwords
        n = len(logs)
        for word in self.segment(text):
            if word in stop:
                continue
            wl = table.get(word, unseen)
            for k in range(n):
                logs[k] += wl[k]
        best, prob = -1, 0.0
        for k in range(n):
            try:
                now = 0.0
                for other in range(n):
                    now += math.exp(logs[other] - logs[k])
                now = 1 / now
            except OverflowError:
                now = 0.0
            if now > prob:
                best, prob = k, now
        if best >= 0 and self._labels[best] == "pos":
            return prob
        return 1 - prob

    def score_many(self, texts: Iterable[str]) -> list[float]:
        """Scores for many texts, in order."""
        return [self.score(t) for t in texts]


def _snownlp_stopwords() -> frozenset[str]:
    """snownlp's ``normal.stop``: its stopword file, split the way ``codecs`` reads lines."""
    path = snownlp_dir() / "normal" / "stopwords.txt"
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WxError(f"cannot read snownlp stopwords {path}: {exc}") from exc
    return frozenset(line.strip() for line in text.splitlines())


# --- several processes --------------------------------------------------------------------------

# Set only inside SentimentPool's worker processes, by the pool initializer: a worker has to keep
# its scorer between tasks somewhere, and the parent never touches this.
_worker_scorer: SentimentScorer | None = None


def _pool_init(cache_dir: str, options: dict[str, int]) -> None:
    global _worker_scorer
    _worker_scorer = SentimentScorer(
        Path(cache_dir),
        run_cache_size=options["run_cache_size"],
        table_cache_size=options["table_cache_size"],
    )


def _pool_score(texts: list[str]) -> list[float]:
    assert _worker_scorer is not None
    return _worker_scorer.score_many(texts)


class SentimentPool:
    """Scores batches in ``workers`` processes, each with its own :class:`SentimentScorer`.

    Rarely worth it: a worker needs ~0.3 s to start, fills its own caches, and every chunk
    travels through a pipe, while one scorer already handles tens of thousands of typical chat
    lines a second (see ``bench/sentiment.py``). It pays off for large batches of long or
    mostly distinct texts on a machine with idle cores. Use as a context manager, or call
    :meth:`close`.
    """

    def __init__(
        self,
        workers: int = 2,
        cache_dir: Path | None = None,
        *,
        chunk_size: int = 500,
        start_method: str = "spawn",
        run_cache_size: int = 20_000,
        table_cache_size: int = 50_000,
    ):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.chunk_size = chunk_size
        # Build the tables once here, so the workers do not race to do it.
        path = _cache_path(self.cache_dir, _seg_model_path())
        if not path.exists():
            _build_in_child(self.cache_dir)
        import multiprocessing

        ctx = multiprocessing.get_context(start_method)
        options = {"run_cache_size": run_cache_size, "table_cache_size": table_cache_size}
        self._pool = ctx.Pool(
            workers, initializer=_pool_init, initargs=(str(self.cache_dir), options)
        )

    def score_many(self, texts: Sequence[str]) -> list[float]:
        """Scores for ``texts``, in order."""
        texts = list(texts)
        size = self.chunk_size
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        out: list[float] = []
        for part in self._pool.imap(_pool_score, chunks):
            out.extend(part)
        return out

    def close(self) -> None:
        """Stop the worker processes."""
        self._pool.close()
        self._pool.join()

    def __enter__(self) -> SentimentPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
