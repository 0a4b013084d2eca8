"""Real media bytes for the simulator: photos, thumbnails, stickers, voice, video, files, avatars.

Assets are small files shipped in ``assets/``. Distinct images are made by adding a JPEG comment
segment (COM marker) to an asset, so each stays a valid JPEG with its own sha256.
"""

from __future__ import annotations

import hashlib
from functools import cache, lru_cache
from pathlib import Path

ASSETS = Path(__file__).parent / "assets"
PHOTOS = ["photo1", "photo2", "photo3"]


@cache
def asset(name: str) -> bytes:
    return (ASSETS / name).read_bytes()


def tagged_jpeg(base: bytes, tag: str) -> bytes:
    """Insert a COM segment right after SOI: a different, still valid JPEG."""
    payload = tag.encode("utf-8")[:60000]
    segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return base[:2] + segment + base[2:]


@lru_cache(maxsize=64)
def photo(key: str) -> tuple[bytes, bytes, int, int]:
    """(full jpeg, thumbnail jpeg, width, height) for an image identified by ``key``.

    The same key always gives the same bytes; different keys give different bytes.
    """
    digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
    name = PHOTOS[digest % len(PHOTOS)]
    size = {"photo1": (480, 360), "photo2": (360, 480), "photo3": (640, 480)}[name]
    full = tagged_jpeg(asset(f"{name}.jpg"), f"wxsim:{key}")
    thumb = tagged_jpeg(asset(f"{name}-thumb.jpg"), f"wxsim:{key}:thumb")
    return full, thumb, size[0], size[1]


_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_mime(data: bytes) -> str:
    """Content type of image bytes by their magic (the media endpoints answer with the real
    type, whatever name the upload had). Kept here: the simulator stands in for WeChat's
    servers and uses none of the client's modules."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


# -- QR code as a JPEG ------------------------------------------------------------------------
# The login host serves the QR as image/jpeg. With 8 pixels per module every 8x8 block is one
# flat colour, so each block is just its DC coefficient followed by end-of-block: a valid
# baseline JPEG in a few lines, without an imaging library.

_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)  # the standard luminance DC table
_DC_VALS = tuple(range(12))
_AC_BITS = (1,) + (0,) * 15  # one symbol, EOB (0x00), is all a flat block needs
_AC_VALS = (0,)


def _huffman_codes(bits: tuple[int, ...], vals: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes (symbol -> (code, length)) from a DHT bits/values table."""
    codes: dict[int, tuple[int, int]] = {}
    code = 0
    k = 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes((0xFF, marker)) + (len(payload) + 2).to_bytes(2, "big") + payload


def flat_blocks_jpeg(blocks: list[list[bool]]) -> bytes:
    """A greyscale baseline JPEG where each entry of ``blocks`` is one 8x8 block, True = black."""
    height, width = len(blocks) * 8, (len(blocks[0]) if blocks else 0) * 8
    dc_codes = _huffman_codes(_DC_BITS, _DC_VALS)
    eob_code, eob_len = _huffman_codes(_AC_BITS, _AC_VALS)[0]
    acc = 0  # bit accumulator
    nbits = 0
    out = bytearray()

    def put(value: int, length: int) -> None:
        nonlocal acc, nbits
        acc = (acc << length) | (value & ((1 << length) - 1))
        nbits += length
        while nbits >= 8:
            nbits -= 8
            byte = (acc >> nbits) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0)  # byte stuffing
        acc &= (1 << nbits) - 1

    previous = 0
    for row in blocks:
        for dark in row:
            dc = -128 if dark else 127  # (level - 128) * 8 / quantiser 8
            diff = dc - previous
            previous = dc
            size = abs(diff).bit_length()
            code, length = dc_codes[size]
            put(code, length)
            if size:
                put(diff if diff > 0 else diff + (1 << size) - 1, size)
            put(eob_code, eob_len)
    if nbits:
        put((1 << (8 - nbits)) - 1, 8 - nbits)  # pad the last byte with 1 bits
    quant = bytes([8] + [1] * 63)
    header = (
        b"\xff\xd8"
        + _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
        + _segment(0xDB, b"\x00" + quant)
        + _segment(
            0xC0,
            b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x01\x01\x11\x00",
        )
        + _segment(0xC4, b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALS))
        + _segment(0xC4, b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALS))
        + _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
    )
    return header + bytes(out) + b"\xff\xd9"


def qr_modules(text: str, border: int = 2) -> list[list[bool]]:
    """The QR module matrix of ``text`` (True = dark), error correction M, as WeChat's."""
    import qrcode  # imported when the first QR image is served, not at start-up

    qr = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    return [list(row) for row in qr.get_matrix()]


def qr_jpeg(text: str) -> bytes:
    """The QR code of ``text`` as the JPEG the login host serves (8 pixels per module)."""
    return flat_blocks_jpeg(qr_modules(text, border=2))
