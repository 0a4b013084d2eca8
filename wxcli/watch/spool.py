"""An append-only, fsynced spool for sync batches while the database is unreachable.

Each line is one batch (its messages, contact changes and sync key). Receiving goes on; the
batches are replayed in order when the database answers again, then removed. Replaying twice
is harmless: messages are unique by account + MsgId.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from wxcli.fileutil import atomic_write_bytes

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

    def append(self, record: dict[str, Any]) -> None:
        """Add one batch durably (flushed and fsynced before returning)."""
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[dict[str, Any]]:
        """All complete batches in order (a torn last line from a crash is skipped)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                log.warning("skipping a torn spool line (%d bytes)", len(line))
        return out

    def drop_first(self, n: int) -> None:
        """Remove the first ``n`` batches (after they reached the database)."""
        remaining = self.read()[n:]
        if not remaining:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass
            return
        body = b"".join(
            json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            for r in remaining
        )
        atomic_write_bytes(self.path, body, mode=0o600)
