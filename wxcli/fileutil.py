"""Atomic private file writes and advisory file locks, shared by every file wxcli keeps.

Secrets live in these files (cookies, skey, app keys), so they are created 0600 and replaced
atomically: a reader sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def private_dir(path: Path) -> None:
    """Create a missing directory, and every missing parent, 0700; leave existing ones alone.

    ``Path.mkdir(parents=True, mode=...)`` applies the mode to the last component only (the
    parents get 0777 minus the umask), so each missing level is made here, and chmod-ed so a
    umask of 000 cannot widen it.
    """
    path = Path(path)
    if path.is_dir():
        return
    missing: list[Path] = []
    p = path
    while not p.is_dir():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made by a concurrent writer: theirs, leave its mode alone
        os.chmod(d, 0o700)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory, fsync, then rename."""
    path = Path(path)
    private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    with contextlib.suppress(OSError):
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def temp_files_of(path: Path) -> list[Path]:
    """Temp files :func:`atomic_write_bytes` left for ``path`` (a writer killed mid-write)."""
    path = Path(path)
    try:
        return sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    except OSError:
        return []


def remove_temp_files(path: Path) -> int:
    """Delete leftover temp files of ``path``; call it only while holding the file's lock, when
    no other writer can be mid-write. Returns how many were removed."""
    removed = 0
    for tmp in temp_files_of(path):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
            removed += 1
    return removed


def atomic_write_json(path: Path, obj: Any, mode: int = 0o600, compact: bool = False) -> None:
    """Atomically write ``obj`` as UTF-8 JSON. ``compact`` skips indentation, which lets the
    C encoder run — ~10x faster for big files written often (the session file)."""
    if compact:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    else:
        text = json.dumps(obj, ensure_ascii=False, indent=1)
    atomic_write_bytes(path, text.encode("utf-8") + b"\n", mode)


@contextlib.contextmanager
def locked(path: Path, exclusive: bool = True, blocking: bool = True) -> Iterator[int]:
    """Hold an advisory ``flock`` on ``path`` (a separate lock file) for the with-block.

    Yields the lock file descriptor. With ``blocking=False`` raises ``BlockingIOError`` when held.
    """
    path = Path(path)
    private_dir(path.parent)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        if not blocking:
            flags |= fcntl.LOCK_NB
        fcntl.flock(fd, flags)
        yield fd
    finally:
        os.close(fd)  # closing releases the flock


class PidLock:
    """A non-blocking exclusive lock that records the holder's pid, for 'only one watch'."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> bool:
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        os.fsync(fd)
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        """The pid written by the current holder, if the lock is held by someone."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def is_held(self) -> bool:
        """True when some process (possibly this one) holds the lock."""
        if self._fd is not None:
            return True
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PidLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
