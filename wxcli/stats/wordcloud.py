"""A deterministic word-cloud layout in pure Python, drawn as SVG ``<text>`` elements.

No fonts are measured: widths are estimated (CJK ≈ 1 em, Latin ≈ 0.6 em) with a margin, so
the layout is the same on every machine and needs no imaging library.
"""

from __future__ import annotations

import logging
import math
import unicodedata
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

#: Colour-blind-friendly, dark enough for text on white (each passes WCAG AA for large text).
PALETTE: tuple[str, ...] = (
    "#1f5f99",
    "#b4531a",
    "#247a5c",
    "#8a3f7e",
    "#5a6b1f",
    "#2f6f8f",
    "#a23b3b",
    "#5b4a99",
)

#: Vertical padding of a word's box in em: glyphs of a line stand a little taller than 1 em.
_LINE_EM = 1.12
_PAD_PX = 2.0


@dataclass(frozen=True)
class PlacedWord:
    """A word laid out on the canvas: centre ``(x, y)``, box size, font size, colour."""

    word: str
    count: int
    x: float
    y: float
    width: float
    height: float
    font_size: float
    rotated: bool
    color: str

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """The box ``(x0, y0, x1, y1)`` the word occupies on the canvas (rotation applied)."""
        w, h = (self.height, self.width) if self.rotated else (self.width, self.height)
        return (self.x - w / 2, self.y - h / 2, self.x + w / 2, self.y + h / 2)


def char_em(ch: str) -> float:
    """Estimated advance width of one character, in em."""
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 1.0
    if ch.isupper() or ch in "mwMW@%":
        return 0.72
    if ch in "iljtf.,:;'!|":
        return 0.34
    return 0.6


def text_width(text: str, font_size: float) -> float:
    """Estimated width in px of ``text`` at ``font_size`` px (bold-ish, so slightly generous)."""
    return sum(char_em(ch) for ch in text) * font_size * 1.04


def _font_sizes(counts: Sequence[int], min_size: float, max_size: float) -> list[float]:
    """Sizes by the square root of the count, so areas (not heights) follow frequency."""
    top = max(counts)
    low = min(counts)
    span = math.sqrt(top) - math.sqrt(low)
    if span <= 0:
        return [(min_size + max_size) / 2] * len(counts)
    return [
        min_size + (max_size - min_size) * (math.sqrt(c) - math.sqrt(low)) / span for c in counts
    ]


class _Occupancy:
    """Which cells of a coarse grid are taken, one Python int of bits per row.

    Boxes are snapped outwards to whole cells, so two boxes that do not share a cell cannot
    overlap; and a row band's free runs can be found for every column at once with shifts.
    """

    def __init__(self, width: float, height: float, cell: float):
        self.cell = cell
        self.cols = max(1, math.ceil(width / cell))
        self.nrows = max(1, math.ceil(height / cell))
        self.full = (1 << self.cols) - 1
        self.rows = [0] * self.nrows

    def find(
        self, bw: float, bh: float, cx: float, cy: float, aspect: float
    ) -> tuple[int, int, int, int] | None:
        """The free ``(col, row, wcells, hcells)`` spot nearest ``(cx, cy)``, or None.

        Distance is measured on an ellipse of the canvas's aspect ratio so the cloud grows
        in the canvas's shape.
        """
        cell = self.cell
        wc = math.ceil(bw / cell)
        hc = math.ceil(bh / cell)
        if wc > self.cols or hc > self.nrows:
            return None
        jc = min(max(0, round(cx / cell - wc / 2)), self.cols - wc)
        ic = min(max(0, round(cy / cell - hc / 2)), self.nrows - hc)
        xscale = cell / aspect**0.5
        yscale = cell * aspect**0.5
        best: tuple[float, int, int] | None = None
        rows = self.rows
        full = self.full
        last_top = self.nrows - hc
        # Visit rows outwards from the centre row so the search can stop as soon as the
        # vertical distance alone is worse than the best spot found.
        for k in range(2 * max(ic, last_top - ic) + 1):
            off = (k + 1) // 2 if k % 2 else -(k // 2)
            i = ic + off
            if i < 0 or i > last_top:
                continue
            dy = off * yscale
            if best is not None and dy * dy >= best[0]:
                break
            band = 0
            for r in range(i, i + hc):
                band |= rows[r]
            free = ~band & full
            have = 1
            while have < wc and free:
                s = have if have < wc - have else wc - have
                free &= free >> s
                have += s
            if not free:
                continue
            low = free & ((1 << (jc + 1)) - 1)
            high = free >> jc
            choices = []
            if low:
                choices.append(low.bit_length() - 1)
            if high:
                choices.append(jc + (high & -high).bit_length() - 1)
            for j in choices:
                dx = (j - jc) * xscale
                d = dx * dx + dy * dy
                if best is None or d < best[0]:
                    best = (d, j, i)
        if best is None:
            return None
        return best[1], best[2], wc, hc

    def take(self, col: int, row: int, wc: int, hc: int) -> None:
        mask = ((1 << wc) - 1) << col
        for r in range(row, row + hc):
            self.rows[r] |= mask


def _wants_rotation(word: str, rank: int) -> bool:
    """A stable few words (never the top eight) stand upright, as word clouds often do."""
    return rank >= 8 and zlib.crc32(word.encode("utf-8")) % 7 == 0


def layout_wordcloud(
    words: Iterable[tuple[str, int]],
    width: float = 600,
    height: float = 360,
    *,
    max_words: int = 100,
    min_size: float = 12,
    max_size: float | None = None,
    rotate: bool = True,
    palette: Sequence[str] = PALETTE,
) -> list[PlacedWord]:
    """Place up to ``max_words`` words, biggest first, each at the free spot nearest the centre.

    This is what walking a spiral outwards until the box stops colliding finds, but instead of
    testing thousands of spiral points one by one (too slow in Python for 100 words) every row
    band of a bit-per-cell occupancy grid is searched at once, nearest rows first. Distances
    are elliptic so the cloud takes the canvas's shape. The result depends only on the input
    (ties are broken by the word), so the same report renders the same cloud; words that do
    not fit even at ``min_size`` are left out. Boxes never overlap.
    """
    items = sorted(((w, int(c)) for w, c in words if w and int(c) > 0), key=lambda t: (-t[1], t[0]))
    items = items[:max_words]
    if not items:
        return []
    if max_size is None:
        max_size = max(min_size, min(height * 0.24, width * 0.14))
    sizes = _font_sizes([c for _, c in items], min_size, max_size)
    # Shrink everything if the words would cover more than about half the canvas; a cloud that
    # is too dense has no room left for the small words.
    area = sum(text_width(w, s) * s * _LINE_EM for (w, _), s in zip(items, sizes, strict=True))
    budget = 0.5 * width * height
    if area > budget:
        factor = math.sqrt(budget / area)
        sizes = [max(min_size, s * factor) for s in sizes]
    cell = max(2.0, width / 200)
    grid = _Occupancy(width, height, cell)
    cx, cy = width / 2, height / 2
    aspect = width / height
    placed: list[PlacedWord] = []
    for rank, ((word, count), size) in enumerate(zip(items, sizes, strict=True)):
        spot = None
        rotated = False
        while spot is None:
            rotated = rotate and _wants_rotation(word, rank)
            w = text_width(word, size) + 2 * _PAD_PX
            h = size * _LINE_EM + 2 * _PAD_PX
            spot = grid.find(h, w, cx, cy, aspect) if rotated else None
            if spot is None:
                rotated = False
                spot = grid.find(w, h, cx, cy, aspect)
            if spot is None:
                if size <= min_size:
                    break
                size = max(min_size, size * 0.85)
        if spot is None:
            logger.debug("word cloud: no room for %r", word)
            continue
        grid.take(*spot)
        col, row, wc, hc = spot
        placed.append(
            PlacedWord(
                word=word,
                count=count,
                x=round((col + wc / 2) * cell, 2),
                y=round((row + hc / 2) * cell, 2),
                width=round(w - 2 * _PAD_PX, 2),
                height=round(h - 2 * _PAD_PX, 2),
                font_size=round(size, 1),
                rotated=rotated,
                color=palette[rank % len(palette)],
            )
        )
    return placed
