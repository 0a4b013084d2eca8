"""QR codes without Pillow: a module matrix from ``qrcode``, rendered as PNG bytes or terminal text.

``qrcode`` only needs Pillow (or pypng) for images; a greyscale PNG is a few lines of zlib, so we
write it ourselves and keep the install small. The login URL is never sent to any QR service.
"""

from __future__ import annotations

import struct
import zlib


def qr_matrix(text: str, border: int = 2) -> list[list[bool]]:
    """The QR module matrix of ``text`` (True = dark), with a quiet zone of ``border`` modules."""
    import qrcode

    qr = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(text)
    qr.make(fit=True)
    return [list(row) for row in qr.get_matrix()]


def png_bytes(matrix: list[list[bool]], scale: int = 8) -> bytes:
    """Encode a boolean matrix as an 8-bit greyscale PNG, ``scale`` pixels per module."""
    rows = []
    for row in matrix:
        line = b"".join((b"\x00" if dark else b"\xff") * scale for dark in row)
        rows.extend([b"\x00" + line] * scale)  # filter type 0 per scanline
    raw = b"".join(rows)
    height = len(matrix) * scale
    width = (len(matrix[0]) if matrix else 0) * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )


def qr_png(text: str, scale: int = 8) -> bytes:
    """PNG image bytes of a QR code for ``text``."""
    return png_bytes(qr_matrix(text), scale)


def qr_terminal(text: str, invert: bool = False) -> str:
    """The QR code as text using half-block characters: two modules per character cell.

    Terminals are usually light text on dark; scanners want dark modules on a light quiet zone, so
    by default dark modules are drawn as spaces and light ones as blocks (``invert`` flips that).
    """
    matrix = qr_matrix(text, border=2)
    if len(matrix) % 2:
        matrix.append([False] * len(matrix[0]))
    chars = {
        (False, False): "█",
        (True, True): " ",
        (True, False): "▄",
        (False, True): "▀",
    }
    if invert:
        chars = {
            (False, False): " ",
            (True, True): "█",
            (True, False): "▀",
            (False, True): "▄",
        }
    lines = []
    for y in range(0, len(matrix), 2):
        top, bottom = matrix[y], matrix[y + 1]
        lines.append("".join(chars[(t, b)] for t, b in zip(top, bottom, strict=True)))
    return "\n".join(lines)
