"""An append-only, fsynced spool for sync batches while the database is unreachable.

Each line is one batch (its messages, contact changes and sync key). Receiving goes on; the
batches are replayed in order when the database answers again, then removed. Replaying twice
is harmless: messages are unique by account + MsgId.

Format 2 lines verify themselves: ``#2 <crc32 hex> <length> <json>``. A line that fails the
check is moved aside to ``<spool>.damaged`` (never silently dropped); format 1 lines (bare
JSON, from older versions) are still read.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

from wxcli.errors import SpoolError
from wxcli.fileutil import atomic_write_bytes

PREFIX = b"#2 "


def encode_record(record: dict[str, Any]) -> bytes:
    """One self-verifying spool line (with its newline)."""
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return PREFIX + b"%08x %d " % (zlib.crc32(body), len(body)) + body + b"\n"


def decode_record(line: bytes) -> dict[str, Any]:
    """The record of one line; ValueError when it is torn or damaged."""
    if line.startswith(PREFIX):
        try:
            crc, length, body = line[len(PREFIX) :].split(b" ", 2)
            ok = len(body) == int(length) and zlib.crc32(body) == int(crc, 16)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("length or checksum does not match")
        line = body
    record = json.loads(line)
    if not isinstance(record, dict):
        raise ValueError("not a batch")
    return record


def write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written (a short write is not an error by itself)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.EIO, "write made no progress")
        view = view[n:]


log = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: Path):
        self.path = Path(path)

    def __len__(self) -> int:
        try:
            with self.path.open("rb") as fh:
                return sum(1 for line in fh if line.strip())
        except FileNotFoundError:
            return 0

    def __bool__(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False

    @property
    def damaged_path(self) -> Path:
        return self.path.with_name(self.path.name + ".damaged")

    def append(self, record: dict[str, Any]) -> None:
        """Add one batch durably (every byte written and fsynced before returning).

        On failure the file is cut back to where it was, so no torn line stays behind, and
        :class:`SpoolError` says which file and how much space is left.
        """
        line = encode_record(record)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._error(exc) from None
        try:
            start = os.fstat(fd).st_size
            try:
                write_all(fd, line)
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, start)
                    os.fsync(fd)
                except OSError:
                    log.error("could not cut a torn record off %s", self.path)
                raise self._error(exc) from None
        finally:
            os.close(fd)

    def _error(self, exc: OSError) -> SpoolError:
        try:
            # The disk the file is really on (the spool may be a link to another one).
            where = Path(os.path.realpath(self.path)).parent
            free = f"{shutil.disk_usage(where).free} bytes free on {where}"
        except OSError:
            free = "free space unknown"
        return SpoolError(f"cannot write the spool {self.path}: {exc.strerror or exc} ({free})")

    def read(self) -> list[dict[str, Any]]:
        """All intact batches in order. A damaged line is moved to ``<spool>.damaged`` with a
        loud error, and the spool rewritten without it, so it is kept, not skipped."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        bad = []
        for line in data.split(b"\n"):
            if not line.strip():
                continue
            try:
                out.append(decode_record(line))
            except ValueError as exc:
                bad.append(line)
                log.error(
                    "a damaged spool record (%d bytes: %s) was moved to %s",
                    len(line),
                    exc,
                    self.damaged_path,
                )
        if bad:
            fd = os.open(self.damaged_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                write_all(fd, b"".join(b + b"\n" for b in bad))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._rewrite(out)
        return out

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        if not records:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            return
        atomic_write_bytes(self.path, b"".join(encode_record(r) for r in records), mode=0o600)

    def drop_first(self, n: int) -> None:
        """Remove the first ``n`` batches (after they reached the database)."""
        self._rewrite(self.read()[n:])
