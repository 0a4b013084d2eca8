"""Word segmentation for the word-count tables: jieba, plus wxcli's stopwords and filters.

jieba is imported only when a :class:`Segmenter` first segments (or on :meth:`Segmenter.load`),
so importing this module stays cheap for commands that never look at words.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.metadata
import importlib.resources
import io
import json
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from wxcli.errors import ConfigError

log = logging.getLogger(__name__)

#: Part of every fingerprint: bump when the filtering rules below change what words come out.
SEGMENTER_VERSION = 1

# NFKC turns full-width letters, digits and punctuation into ASCII but would also turn U+2005
# (which WeChat puts after an @name) into a plain space; this stand-in keeps it recognisable.
# str.isspace() is true for it, so jieba and the filters treat it as whitespace.
_MENTION_END = "\x1f"

_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]"
_URL_LAST = r"[A-Za-z0-9\-_~/#=&%+]"  # a URL does not end with the sentence's punctuation
_TLDS = r"(?i:com|cn|net|org|edu|gov|io|me|cc|tv|info|top|xyz|vip|shop|link|hk|tw)"
_URL = (
    rf"(?:(?i:https?|ftp)://|(?i:www)\.){_URL_CHARS}*{_URL_LAST}"
    r"|[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"  # e-mail
    rf"|(?<![A-Za-z0-9@._\-])(?:[A-Za-z0-9\-]+\.)+{_TLDS}(?![A-Za-z0-9\-])"
    rf"(?:/{_URL_CHARS}*{_URL_LAST})?"
)
# "@name" followed by U+2005 (the name may contain spaces), else "@name" up to whitespace,
# sentence punctuation or the end.
_MENTION_STOP = r"\s@,.!?;:。、"
_MENTION = (
    rf"(?<![A-Za-z0-9_])@(?:[^@{_MENTION_END}\n]{{1,32}}(?={_MENTION_END})"
    rf"|[^{_MENTION_STOP}]{{1,32}}(?=[{_MENTION_STOP}]|$))"
)
# WeChat's built-in smileys are bracketed names ([微笑], [OK], [666]); Web WeChat may deliver
# Unicode emoji as <span class="emoji emoji1f600"></span> markup.
_SMILEY = (
    r"\[(?:[\u4e00-\u9fff]{1,4}|[A-Za-z]{1,6}|\d{3})\]"
    r"|<span class=\"emoji emoji[0-9a-fA-F]+\"></span>?"
)
_EMOJI_BASE = (
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff\u2300-\u23ff\u2190-\u21ff"
    "\u25a0-\u25ff\u3030\u303d\u3297\u3299]"
)
_EMOJI_MOD = "(?:\ufe0f|\u20e3|[\U0001f3fb-\U0001f3ff])*"
_EMOJI = (
    rf"(?:[\U0001f1e6-\U0001f1ff]{{2}}|{_EMOJI_BASE}{_EMOJI_MOD}"
    rf"(?:\u200d{_EMOJI_BASE}{_EMOJI_MOD})*)"
)
# Prices, quantities, dates, times, percentages, order numbers (optionally with a short letter
# prefix such as SF1234567890). Not part of a Latin word: iphone15 and 5G stay words.
# A comma only groups thousands: NFKC has turned the Chinese comma into an ASCII one.
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:[.:/\-]\d+)*%?"
_NUMBER = rf"(?<![A-Za-z0-9_.])[$¥€£]?(?:[A-Za-z]{{1,4}}(?=\d{{6}}))?{_DIGITS}(?![A-Za-z0-9_])"
_SPECIAL = re.compile(
    rf"(?P<url>{_URL})|(?P<mention>{_MENTION})|(?P<smiley>{_SMILEY})"
    rf"|(?P<emoji>{_EMOJI})|(?P<number>{_NUMBER})"
)
_NUMBER_TOKEN = re.compile(rf"[$¥€£]?{_DIGITS}")
_WORD_CHAR = re.compile(r"[^\W_]")  # a letter or digit of any script
_CHUNK_CACHE_SIZE = 20_000

_PACKAGE = "wxcli.analysis"
_STOPWORDS_RESOURCE = ("data", "stopwords.txt")


@dataclass(frozen=True)
class SegmentOptions:
    """What counts as a word. Each ``filter_*`` flag drops that kind of token when true and
    keeps it as one whole token (a URL, ``@name``, ``[微笑]``, ``12.5``) when false.

    ``stopwords_file`` adds to the shipped stopword list (one word per line, ``#`` comments);
    ``user_dict`` is a jieba user dictionary (``word [freq] [tag]`` per line, UTF-8), e.g. the
    company's product names. ``min_length`` counts characters and applies to words and numbers;
    whitespace and punctuation are always dropped and Latin letters are lower-cased.
    """

    stopwords_file: str = ""
    user_dict: str = ""
    min_length: int = 2
    filter_emoji: bool = True
    filter_urls: bool = True
    filter_mentions: bool = True
    filter_numbers: bool = True


def _span_to_emoji(markup: str) -> str:
    """``<span class="emoji emoji1f600"></span>`` -> the emoji itself (8 or 10 hex digits are two
    code points of 4 or 5 digits, as Web WeChat encodes flags)."""
    digits = markup.split("emoji emoji", 1)[1].split('"', 1)[0]
    size = len(digits) // 2 if len(digits) in (8, 10) else len(digits)
    try:
        return "".join(chr(int(digits[i : i + size], 16)) for i in range(0, len(digits), size))
    except (ValueError, OverflowError):
        return markup


def _read_text_file(path: str, what: str) -> bytes:
    try:
        data = Path(path).expanduser().read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path=path)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror}", path=path)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} is not UTF-8 text", path=path)
    return data


def _shipped_stopwords() -> bytes:
    return importlib.resources.files(_PACKAGE).joinpath(*_STOPWORDS_RESOURCE).read_bytes()


def _parse_stopwords(data: bytes) -> set[str]:
    words = set()
    for line in data.decode("utf-8-sig").splitlines():
        word = line.strip()
        if word and not word.startswith("#"):
            words.add(unicodedata.normalize("NFKC", word).lower())
    return words


def load_stopwords(extra_file: str = "") -> frozenset[str]:
    """The shipped stopword list plus the words in ``extra_file`` (lower-cased, NFKC)."""
    words = _parse_stopwords(_shipped_stopwords())
    if extra_file:
        words |= _parse_stopwords(_read_text_file(extra_file, "stopwords file"))
    return frozenset(words)


def _default_cache_dir() -> Path:
    from wxcli.paths import home_dir

    return home_dir() / "cache"


class Segmenter:
    """Splits chat text into the words that the word-count tables count.

    Owns a private ``jieba.Tokenizer`` (so a user dictionary never leaks into other users of
    jieba in the process), whose prefix-dictionary cache is kept in ``cache_dir`` (default
    ``<wxcli home>/cache``) instead of the system temp directory. Not thread-safe.
    """

    def __init__(self, options: SegmentOptions | None = None, cache_dir: Path | None = None):
        self.options = options or SegmentOptions()
        if self.options.min_length < 1:
            raise ConfigError("min_length must be at least 1")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        # Read every input now, so the fingerprint describes exactly what this instance uses.
        self._stopword_bytes = _shipped_stopwords()
        self._extra_stopword_bytes = b""
        self.stopwords = set(_parse_stopwords(self._stopword_bytes))
        if self.options.stopwords_file:
            self._extra_stopword_bytes = _read_text_file(
                self.options.stopwords_file, "stopwords file"
            )
            self.stopwords |= _parse_stopwords(self._extra_stopword_bytes)
        self._user_dict_bytes = b""
        if self.options.user_dict:
            self._user_dict_bytes = _read_text_file(self.options.user_dict, "jieba user dictionary")
        self._tokenizer: Any = None
        self._blocks: re.Pattern[str] = re.compile("(.+)", re.S)  # jieba's, once loaded
        self._chunk_cache: dict[str, tuple[str, ...]] = {}

    def load(self) -> None:
        """Import jieba and load its dictionary now (~0.7 s) instead of on the first text."""
        if self._tokenizer is not None:
            return
        import jieba

        # jieba logs "Building prefix dict ..." to stderr through its own handler.
        logging.getLogger("jieba").setLevel(logging.WARNING)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tokenizer = jieba.Tokenizer()
        tokenizer.tmp_dir = str(self.cache_dir)
        # Versioned: jieba trusts a cache of its default dictionary without checking dates.
        tokenizer.cache_file = f"jieba-{jieba.__version__}.cache"
        tokenizer.initialize()
        self._tokenizer = tokenizer
        self._blocks = jieba.re_han_default
        self._load_user_dict()
        log.debug("jieba loaded, cache in %s", self.cache_dir)

    def _load_user_dict(self) -> None:
        if self._user_dict_bytes:
            stream = io.BytesIO(self._user_dict_bytes)
            stream.name = self.options.user_dict  # for jieba's error messages
            self._tokenizer.load_userdict(stream)

    def with_options(self, options: SegmentOptions) -> Segmenter:
        """A segmenter with other options that reuses this one's loaded jieba dictionary.

        Stopwords, filters and ``min_length`` apply after jieba, so a changed configuration does
        not pay jieba's load again. A different user dictionary gets a private copy of the
        dictionary when this segmenter has none of its own, and a fresh load otherwise.
        """
        other = Segmenter(options, self.cache_dir)
        if self._tokenizer is None:
            return other
        if other._user_dict_bytes == self._user_dict_bytes:
            other._tokenizer = self._tokenizer
            other._blocks = self._blocks
        elif not self._user_dict_bytes:
            other._tokenizer = _copy_tokenizer(self._tokenizer)
            other._blocks = self._blocks
            other._load_user_dict()
        return other

    def words(self, text: str) -> list[str]:
        """The words of ``text`` in order, duplicates kept, after every filter."""
        if self._tokenizer is None:
            self.load()
        opts = self.options
        text = unicodedata.normalize("NFKC", text.replace("\u2005", _MENTION_END))
        out: list[str] = []
        pos = 0
        for match in _SPECIAL.finditer(text):
            if match.start() > pos:
                self._jieba_words(text[pos : match.start()], out)
            pos = match.end()
            kind = match.lastgroup
            token = match.group()
            if kind == "number":
                if not opts.filter_numbers and len(token) >= opts.min_length:
                    self._keep(token, out)
            elif kind == "url":
                if not opts.filter_urls:
                    self._keep(token, out)
            elif kind == "mention":
                if not opts.filter_mentions:
                    self._keep(token, out)
            elif not opts.filter_emoji:  # smiley or emoji
                self._keep(_span_to_emoji(token) if token.startswith("<") else token, out)
        if pos < len(text):
            self._jieba_words(text[pos:], out)
        return out

    def _keep(self, token: str, out: list[str]) -> None:
        if token.lower() not in self.stopwords:
            out.append(token)

    def _jieba_words(self, chunk: str, out: list[str]) -> None:
        # jieba cuts each run of word characters on its own (the rest goes character by
        # character), and chat repeats itself (好的, 谢谢, 在吗): so remember recent runs.
        cache = self._chunk_cache
        for block in self._blocks.split(chunk):
            if not block:
                continue
            words = cache.get(block)
            if words is None:
                words = tuple(self._filter(self._tokenizer.cut(block)))
                if len(cache) >= _CHUNK_CACHE_SIZE:
                    cache.clear()
                cache[block] = words
            out.extend(words)

    def _filter(self, tokens: Iterable[str]) -> Iterator[str]:
        min_length = self.options.min_length
        numbers = self.options.filter_numbers
        stop = self.stopwords
        for token in tokens:
            if len(token) < min_length or not _WORD_CHAR.search(token):
                continue  # whitespace, punctuation, symbols, stray emoji modifiers
            token = token.lower()
            if token in stop or (numbers and _NUMBER_TOKEN.fullmatch(token)):
                continue
            if len(set(token)) == 1 and token[:2] in stop:
                continue  # 哈哈哈哈 / 嗯嗯嗯嗯: filler of any length
            yield token

    def count(self, texts: Iterable[str]) -> collections.Counter[str]:
        """How often each word occurs across ``texts``."""
        counts: collections.Counter[str] = collections.Counter()
        for text in texts:
            counts.update(self.words(text))
        return counts

    def options_fingerprint(self) -> str:
        """A hash of everything that decides which words come out: stopword and user-dictionary
        contents, the filter flags, jieba's version and ours. Stored next to word counts, it
        tells the worker when they must be rebuilt."""
        try:
            jieba_version = importlib.metadata.version("jieba")
        except importlib.metadata.PackageNotFoundError:
            jieba_version = "?"
        options = asdict(self.options)
        # the paths themselves do not matter, only what was in the files
        del options["stopwords_file"], options["user_dict"]
        described = {
            "segmenter": SEGMENTER_VERSION,
            "jieba": jieba_version,
            "options": options,
            "stopwords": hashlib.sha256(self._stopword_bytes).hexdigest(),
            "extra_stopwords": hashlib.sha256(self._extra_stopword_bytes).hexdigest(),
            "user_dict": hashlib.sha256(self._user_dict_bytes).hexdigest(),
        }
        blob = json.dumps(described, sort_keys=True).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:32]


def _copy_tokenizer(source: Any) -> Any:
    """A new jieba tokenizer holding a copy of ``source``'s loaded dictionary (tens of ms,
    instead of reading jieba's cache again)."""
    import jieba

    copy = jieba.Tokenizer()
    copy.tmp_dir = source.tmp_dir
    copy.cache_file = source.cache_file
    copy.FREQ = dict(source.FREQ)
    copy.total = source.total
    copy.initialized = True
    return copy


def load_idf() -> tuple[dict[str, float], float]:
    """jieba.analyse's IDF table and its median (the IDF of words the table lacks)."""
    import jieba.analyse

    logging.getLogger("jieba").setLevel(logging.WARNING)
    idf, median = jieba.analyse.default_tfidf.idf_loader.get_idf()
    return idf, median


def keywords(
    source: Iterable[str] | Mapping[str, int],
    top: int = 20,
    segmenter: Segmenter | None = None,
    idf: tuple[dict[str, float], float] | None = None,
) -> list[tuple[str, float]]:
    """The ``top`` words by TF-IDF, as ``(word, weight)`` with the highest weight first.

    ``source`` is either texts (segmented with ``segmenter``, by default one with default
    options) or an already counted ``word -> count`` mapping such as a word-count table. The
    weight is jieba.analyse's: ``count * idf / total count``; ties are broken by the word so the
    result is deterministic. Pass ``idf`` (from :func:`load_idf`) to reuse a loaded table.
    """
    if isinstance(source, Mapping):
        counts: Mapping[str, int] = source
    else:
        counts = (segmenter or Segmenter()).count(source)
    total = sum(c for c in counts.values() if c > 0)
    if total <= 0 or top <= 0:
        return []
    table, median = idf if idf is not None else load_idf()
    weights = [(w, c * (table.get(w, median) / total)) for w, c in counts.items() if c > 0]
    weights.sort(key=lambda item: (-item[1], item[0]))
    return weights[:top]
