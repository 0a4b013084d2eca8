"""The spool: self-verifying records, damaged ones kept aside, a full disk stops watch cleanly."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import uuid

import pytest

from tests.helpers.watch import RunningWatch, messages
from wxcli.errors import SpoolError
from wxcli.watch.spool import Spool

GROUP = "云帆Pro客服1群"


def test_records_verify_themselves_and_damage_is_kept_aside(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    for i in range(3):
        spool.append({"n": i, "text": "客服 😀"})
    lines = spool.path.read_bytes().split(b"\n")
    # Damage the middle record in place (one byte flipped, length unchanged).
    lines[1] = lines[1].replace(b'"n":1', b'"n":7')
    spool.path.write_bytes(b"\n".join(lines))
    assert [r["n"] for r in spool.read()] == [0, 2]
    damaged = spool.damaged_path.read_bytes()
    assert b'"n":7' in damaged  # kept, not skipped
    assert [r["n"] for r in spool.read()] == [0, 2]  # and reported once, not every read


def test_torn_tail_is_moved_aside_not_glued_to_the_next_batch(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append({"n": 0})
    with spool.path.open("ab") as fh:
        fh.write(b'#2 0badc0de 99 {"n":')  # a write torn by a crash, no newline
    spool.append({"n": 2})
    assert [r["n"] for r in spool.read()] == [0]
    assert spool.damaged_path.exists()


def test_old_format_lines_are_still_read(tmp_path):
    spool = Spool(tmp_path / "spool.jsonl")
    spool.path.write_bytes(json.dumps({"n": 0}).encode() + b"\n")
    spool.append({"n": 1})
    assert [r["n"] for r in spool.read()] == [0, 1]
    spool.drop_first(1)
    assert [r["n"] for r in spool.read()] == [1]


def test_a_short_write_then_enospc_leaves_no_torn_line(tmp_path, monkeypatch):
    """Injected at the write call: a real disk does not reliably produce a short write."""
    spool = Spool(tmp_path / "spool.jsonl")
    spool.append({"n": 0})
    before = spool.path.read_bytes()
    real_write = os.write
    calls = []

    def short_then_full(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(SpoolError, match=r"No space left.*bytes free"):
        spool.append({"n": 1, "text": "x" * 1000})
    monkeypatch.setattr(os, "write", real_write)
    assert spool.path.read_bytes() == before
    assert [r["n"] for r in spool.read()] == [0]


@contextlib.contextmanager
def small_tmpfs(path, size: str):
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_full_spool_disk_stops_watch_cleanly_and_loses_nothing(logged_in, sim, wx_home, tmp_path):
    paths, config, state = logged_in
    blocked = tmp_path / "not-yet"
    blocked.write_text("a file where the database directory should be")
    url = f"sqlite:///{blocked / 'archive.db'}"
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        spool_path = disk / "spool.jsonl"
        w = RunningWatch(paths, config, url)
        w.watcher.spool = Spool(spool_path)
        big = "长" * 4000  # 12 KB a message: the 64 KB disk fills after a few batches
        with w:
            ids = []
            for _ in range(8):
                ids += sim.control.messages(
                    [{"group": GROUP, "sender": "张伟", "content": f"{uuid.uuid4()} {big}"}]
                )
            with pytest.raises(SpoolError, match=f"cannot write the spool {spool_path}"):
                w.join(timeout=30)
        health = w.watcher.health
        assert health.state == "spool_failed"
        assert any(e["where"] == "spool" for e in health.errors)
        assert any(e.kind == "error" and e.data.get("where") == "spool" for e in w.events)
        # Free the disk and the database: a new watch picks up every message.
        blocked.unlink()
        w2 = RunningWatch(paths, config, url)
        w2.watcher.spool = Spool(spool_path)
        with w2:
            w2.until(
                lambda: {r["msg_id"] for r in messages(url, wx_home)} >= set(ids),
                timeout=30,
                message="every message after the disk was freed",
            )
    stored = [r["msg_id"] for r in messages(url, wx_home)]
    assert sorted(stored) == sorted(set(stored))  # none doubled
    assert set(ids) <= set(stored)


def test_sqlite_disk_full_is_reported_as_such(logged_in, sim, wx_home, tmp_path):
    paths, config, state = logged_in
    with small_tmpfs(tmp_path / "dbdisk", "1m") as disk:
        url = f"sqlite:///{disk / 'archive.db'}"
        big = "满" * 30_000  # 90 KB a message: the disk fills after a few
        with RunningWatch(paths, config, url) as w:
            for _ in range(8):
                sim.control.message(group=GROUP, sender="张伟", content=big)
            w.until(lambda: w.watcher.stats.spooled >= 1, timeout=30, message="spooling")
            errors = [e["message"] for e in w.watcher.health.errors if e["where"] == "database"]
    assert any("database or disk is full" in e for e in errors), errors
    assert not any("cannot rollback" in e for e in errors), errors
