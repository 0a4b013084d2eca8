"""Fault soak for `wxcli watch`: inject tagged messages and images around a fault, then count
what the archive holds. Prints, per fault: injected / stored / lost / duplicated, for messages
and for images (an image counts as stored when its download is done). Not a test.

    python bench/soak.py [--messages N] [--images N] [--faults kill9,db_down_at_start,spool_full]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import login, start_simulator  # noqa: E402

GROUP = "云帆Pro客服1群"


def write_config(home: Path, url: str, db_url: str) -> None:
    (home / "wxcli.toml").write_text(
        f'[wechat]\nlogin_url = "{url}"\nsynccheck_timeout = 5.0\n'
        f'[database]\nurl = "{db_url}"\n'
        "[watch]\nhealth_seconds = 1.0\nsession_save_seconds = 1.0\n"
        "[media]\nretry_seconds = 0.5\n",
        encoding="utf-8",
    )


def start_watch(home: Path) -> subprocess.Popen:
    env = dict(os.environ, WXCLI_HOME=str(home))
    return subprocess.Popen(
        [sys.executable, "-m", "wxcli", "watch", "--no-analysis"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "watch.log", "ab"),
    )


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateMariaDB:
    """A mariadbd of our own (never the shared one on :3306), so it can be killed."""

    def __init__(self, work: Path):
        self.data = work / "mariadb"
        self.port = free_port()
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, capture_output=True,
        )  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["/usr/sbin/mariadbd", "--no-defaults", f"--datadir={self.data}",
             f"--port={self.port}", f"--socket={self.data}/sock", "--user=root",
             "--bind-address=127.0.0.1", "--skip-grant-tables", "--skip-log-bin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        import pymysql

        deadline = time.monotonic() + 30
        while True:
            try:
                pymysql.connect(host="127.0.0.1", port=self.port, user="root").close()
                return
            except pymysql.err.MySQLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(60)

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/soak"


def inject(control, tag: str, texts: int, images: int) -> tuple[list[str], list[str]]:
    t = control.messages(
        [{"group": GROUP, "sender": "张伟", "content": f"{tag}-{i}"} for i in range(texts)]
    )
    im = control.messages(
        [
            {"group": GROUP, "sender": "张伟", "type": "image", "image": f"{tag}-{i}"}
            for i in range(images)
        ]
    )
    return t, im


def archive_rows(db_url: str, home: Path) -> list[tuple[str, str, str]]:
    from wxcli.store.archive import Archive

    a = Archive(db_url, home)
    try:
        M = a.m.Message
        return list(M.select(M.msg_id, M.kind, M.media_status).tuples())
    finally:
        a.close()


def settle(db_url: str, home: Path, texts: set[str], images: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rows = archive_rows(db_url, home)
        except Exception:
            time.sleep(1)
            continue
        have = {m for m, _, _ in rows}
        done = {m for m, _, s in rows if s == "done"}
        if texts <= have and images <= done:
            return
        time.sleep(0.5)


def run_fault(fault: str, n_text: int, n_img: int) -> dict:
    from wxcli.simulator.control_client import SimControl

    work = Path(tempfile.mkdtemp(prefix=f"soak-{fault}-"))
    home = work / "home"
    home.mkdir()
    sim, url = start_simulator()
    mounted = None
    mdb: PrivateMariaDB | None = None
    try:
        control = SimControl(url)
        db_path = work / "db" / "archive.db"
        blocked = work / "db"
        if fault in ("db_down_at_start", "spool_full"):
            blocked.write_text("a file where the database directory should be")
        db_url = f"sqlite:///{db_path}"
        if fault.startswith("mariadb"):
            mdb = PrivateMariaDB(work)
            mdb.start()
            db_url = mdb.url
        write_config(home, url, db_url)
        os.environ["WXCLI_HOME"] = str(home)
        login(home, url)
        if fault == "spool_full":
            mounted = home / "spooldisk"
            mounted.mkdir()
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=48k", "tmpfs", str(mounted)], check=True
            )
            # The spool lives in the home; put it on the small disk.
            (home / "spool.jsonl").symlink_to(mounted / "spool.jsonl")
        texts: list[str] = []
        images: list[str] = []
        watch = start_watch(home)
        time.sleep(2)
        a, b = inject(control, "w1", n_text // 2, n_img // 2)
        texts += a
        images += b
        time.sleep(3)
        if fault == "kill9":
            watch.send_signal(signal.SIGKILL)
            watch.wait()
            a, b = inject(control, "w2", n_text // 2, n_img // 2)
            watch = start_watch(home)
        elif fault.startswith("mariadb"):
            mdb.stop(signal.SIGKILL if fault == "mariadb_kill9" else signal.SIGTERM)
            a, b = inject(control, "w2", n_text // 2, n_img // 2)
            time.sleep(3)
            mdb.start()
        elif fault == "db_down_at_start":
            a, b = inject(control, "w2", n_text // 2, n_img // 2)
            time.sleep(3)
            blocked.unlink()
        elif fault == "spool_full":
            a, b = inject(control, "w2", n_text // 2, n_img // 2)
            watch.wait(60)  # watch stops: the spool cannot be written
            last = (home / "watch.log").read_text(errors="replace").strip().splitlines()[-1:]
            print(f"  spool_full: watch exited {watch.returncode}: {last}", file=sys.stderr)
            blocked.unlink()
            subprocess.run(["umount", "-l", str(mounted)], check=False)
            mounted = None
            (home / "spool.jsonl").unlink(missing_ok=True)  # a dangling link to the old disk
            watch = start_watch(home)
        texts += a
        images += b
        settle(db_url, home, set(texts), set(images), timeout=120)
        watch.send_signal(signal.SIGTERM)
        watch.wait(30)
        rows = archive_rows(db_url, home)
    finally:
        sim.terminate()
        sim.wait(10)
        if fault.startswith("mariadb") and mdb.proc is not None and mdb.proc.poll() is None:
            mdb.stop(signal.SIGTERM)
        if mounted is not None:
            subprocess.run(["umount", "-l", str(mounted)], check=False)
    counts = Counter(m for m, _, _ in rows)
    done = {m for m, _, s in rows if s == "done"}
    shutil.rmtree(work, ignore_errors=True)
    return {
        "fault": fault,
        "msg": (len(texts), sum(1 for t in texts if t in counts), len(set(texts) - set(counts))),
        "msg_dup": sum(counts[t] - 1 for t in texts if counts[t] > 1),
        "img": (len(images), len(set(images) & done), len(set(images) - done)),
        "img_dup": sum(counts[i] - 1 for i in images if counts[i] > 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=400)
    p.add_argument("--images", type=int, default=40)
    p.add_argument(
        "--faults",
        default="mariadb_sigterm,mariadb_kill9,kill9,db_down_at_start,spool_full",
    )
    args = p.parse_args()
    print(
        "| fault | messages injected / stored / lost / dup "
        "| images injected / stored / lost / dup |"
    )
    print("|---|---|---|")
    for fault in args.faults.split(","):
        r = run_fault(fault, args.messages, args.images)
        m, i = r["msg"], r["img"]
        print(
            f"| {fault} | {m[0]} / {m[1]} / {m[2]} / {r['msg_dup']} "
            f"| {i[0]} / {i[1]} / {i[2]} / {r['img_dup']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
