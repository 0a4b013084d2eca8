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


def sniff_mime(data: bytes) -> str:
    """Content type of image bytes (the media endpoints answer with the real type)."""
    from wxcli.media_input import sniff_image

    return sniff_image(data) or "application/octet-stream"
