"""The session file: private modes, atomic replacement, the exclusive lock (real processes),
clear errors for corrupt and newer files, no clobbering of a newer login, and reuse of a
session (cookies included) by another process."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.cli import REPO, login_client, make_client, simulator
from tests.helpers.waiting import wait_until
from wxcli.contacts import ContactDirectory
from wxcli.errors import NotLoggedInError, SessionExpiredError, SessionFileError
from wxcli.paths import ProfilePaths
from wxcli.protocol.hosts import Hosts
from wxcli.protocol.models import Contact, Member
from wxcli.session import FORMAT_VERSION, SessionState, SessionStore


def sample_state(sid: str = "U+UgYzLIzyoTXaGZ", **kw) -> SessionState:
    contacts = ContactDirectory(
        [
            Contact(user_name="@me", nickname="客服中心", sex=1),
            Contact(user_name="@a1", nickname="张三", remark="老张", contact_flag=3),
            Contact(
                user_name="@@g1",
                nickname="客服1群",
                member_count=2,
                encry_chat_room_id="@e1",
                members=(Member("@me", "客服中心"), Member("@a1", "张三", "张经理")),
            ),
        ]
    )
    values = {
        "uin": 2911234567,
        "user_name": "@me",
        "nickname": "客服中心",
        "skey": "@crypt_63d18dea_a7de6934c67e2f89ac399fa35b689a50",
        "sid": sid,
        "pass_ticket": "kbmy5Jt9nj%2BJzBaJZYNpUBQyBwRTejeXq1sM%2FYH7iOI%3D",
        "hosts": Hosts(
            "https://login.wx2.qq.com",
            "https://wx2.qq.com",
            "https://webpush.wx2.qq.com",
            "https://file.wx2.qq.com",
        ),
        "cookies": [
            {
                "name": "wxsid",
                "value": sid,
                "domain": ".wx2.qq.com",
                "path": "/",
                "secure": True,
                "expires": None,
                "host_only": False,
            }
        ],
        "sync_key": ((1, 698325105), (2, 698325109), (1000, 1546210682)),
        "sync_check_key": ((1, 698325105), (2, 698325111)),
        "login_time": datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        "contacts": contacts,
    }
    values.update(kw)
    return SessionState(**values)


@pytest.fixture
def store(wx_home) -> SessionStore:
    return SessionStore(ProfilePaths("default", wx_home))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --------------------------------------------------------------------------- format


def test_round_trip_keeps_every_field(store):
    state = sample_state()
    store.save(state)
    loaded = store.load()
    for name in SessionState.__dataclass_fields__:
        if name != "contacts":
            assert getattr(loaded, name) == getattr(state, name), name
    assert loaded.login_time.tzinfo is not None
    assert loaded.contacts.to_json() == state.contacts.to_json()
    group = loaded.contacts.get("@@g1")
    assert group.member_count == 2
    assert group.members[1].shown_name == "张经理"
    data = json.loads(store.path.read_text(encoding="utf-8"))
    assert data["version"] == FORMAT_VERSION
    assert data["account"] == {"uin": 2911234567, "user_name": "@me", "nickname": "客服中心"}


def test_files_are_private_even_with_a_permissive_umask(tmp_path):
    home = tmp_path / "fresh" / "home"
    store = SessionStore(ProfilePaths("work", home))
    old = os.umask(0)
    try:
        store.save(sample_state())
        assert store.update(sample_state())
    finally:
        os.umask(old)
    assert store.path.name == "session.work.json"
    assert mode(store.path) == 0o600
    assert mode(store.lock_path) == 0o600
    assert mode(home) == 0o700
    assert not list(home.glob(".*.tmp"))  # no temp files left behind


def test_missing_file_is_not_logged_in(store):
    assert store.load_optional() is None
    assert not store.exists()
    with pytest.raises(NotLoggedInError, match="wxcli login"):
        store.load()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"version": 1, "account": {"uin"', "corrupt (not JSON)"),
        ("", "corrupt (not JSON)"),
        ("[1, 2]", "corrupt (not a JSON object)"),
        ('{"account": {}}', "no format version"),
        ('{"version": 1, "account": {"uin": 1}}', "corrupt (KeyError"),
        ('{"version": "1"}', "no format version"),
    ],
)
def test_a_corrupt_file_is_a_clear_error_naming_the_path(store, text, problem):
    store.path.write_text(text, encoding="utf-8")
    with pytest.raises(SessionFileError) as info:
        store.load()
    assert str(info.value).startswith(f"session file {store.path}: ")
    assert problem in str(info.value)
    assert info.value.path == str(store.path)
    assert info.value.exit_code == 1


def test_a_newer_format_is_refused_clearly(store):
    data = sample_state().to_json()
    data["version"] = FORMAT_VERSION + 1
    store.path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(SessionFileError, match=r"written by a newer wxcli \(format 2"):
        store.load_optional()


def test_an_ended_session_is_expired_when_alive_is_required(store):
    store.save(sample_state())
    assert store.mark_ended(1101, sid="U+UgYzLIzyoTXaGZ")
    state = store.load()
    assert state.alive is False
    assert state.ended_code == 1101
    assert state.cookies  # kept for push login
    with pytest.raises(SessionExpiredError) as info:
        store.load(require_alive=True)
    assert info.value.code == 1101


def test_mark_ended_leaves_a_newer_login_alone(store):
    store.save(sample_state(sid="NEWERLOGIN000000"))
    assert not store.mark_ended(1100, sid="U+UgYzLIzyoTXaGZ")
    assert store.load().alive


def test_update_never_clobbers_a_newer_login_or_revives_a_deleted_one(store):
    old = sample_state(sid="OLDLOGIN00000000")
    store.save(old)
    old.nickname = "changed by the old process"
    assert store.update(old)
    assert store.load().nickname == "changed by the old process"

    store.save(sample_state(sid="NEWLOGIN00000000"))
    before = store.path.read_bytes()
    applied = []
    assert store.update(old, apply=applied.append) is False
    assert applied == []
    assert store.path.read_bytes() == before

    assert store.delete()
    assert store.update(old) is False
    assert not store.exists()
    assert store.delete() is False


# --------------------------------------------------------------------------- processes

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from tests.test_session import sample_state
    from wxcli.contacts import ContactDirectory
    from wxcli.paths import ProfilePaths
    from wxcli.protocol.models import Contact
    from wxcli.session import SessionStore

    store = SessionStore(ProfilePaths("default", Path(sys.argv[1])))
    state = sample_state()
    # files of different sizes, so that a torn write could not go unnoticed
    sizes = [ContactDirectory(Contact(f"@c{j}", f"客户{j}") for j in range(n)) for n in (0, 150)]
    for i in range(int(sys.argv[2])):
        state.contacts = sizes[i % 2]
        state.nickname = f"writer {i}"
        assert store.update(state)
    print("done")
    """
)

COUNTER = textwrap.dedent(
    """
    import sys
    import time
    from pathlib import Path
    from wxcli.paths import ProfilePaths
    from wxcli.session import SessionStore

    store = SessionStore(ProfilePaths("default", Path(sys.argv[1])))
    state = store.load()

    def bump(s):
        # read-modify-write of the file's value: only safe if update() excludes others
        current = store.load().sync_key[0][1]
        time.sleep(0.002)  # widen the window another writer would need
        s.sync_key = ((1, current + 1),)

    go = Path(sys.argv[3])
    (go.parent / f"ready-{sys.argv[4]}").touch()
    while not go.exists():  # start together
        time.sleep(0.002)
    for _ in range(int(sys.argv[2])):
        assert store.update(state, apply=bump)
    print("done")
    """
)


def python(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "done"


def test_a_reader_never_sees_a_partial_file(store, wx_home):
    store.save(sample_state())
    writer = python(WRITER, str(wx_home), "200")
    reads = 0
    nicknames = set()
    while writer.poll() is None:
        # a torn or half-written file fails to parse; the full load (slower) now and then
        data = json.loads(store.path.read_bytes())
        assert data["version"] == FORMAT_VERSION
        if reads % 10 == 0:
            store.load()
        nicknames.add(data["account"]["nickname"])
        reads += 1
    finish(writer)
    assert reads > 20
    assert len(nicknames) > 2  # we really did read while it was being rewritten
    assert store.load().nickname == "writer 199"


def test_concurrent_updates_from_two_processes_never_lose_or_corrupt(store, wx_home):
    store.save(sample_state(sync_key=((1, 0),)))
    go = wx_home / "go"
    procs = [python(COUNTER, str(wx_home), "40", str(go), str(n)) for n in range(2)]
    wait_until(
        lambda: all((wx_home / f"ready-{n}").exists() for n in range(2)),
        timeout=20,
        interval=0.005,
        message="both writers ready",
    )
    go.touch()
    for proc in procs:
        finish(proc)
    assert store.load().sync_key == ((1, 80),)


def test_a_session_is_usable_from_another_process(wx_home):
    """Log in here; another process loads the file and talks to the server with its cookies
    (host-only cookies on 127.0.0.1 — without them synccheck answers 1102)."""
    script = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from tests.helpers.cli import fast_config
        from wxcli.client import WebWeChatClient
        from wxcli.paths import ProfilePaths
        from wxcli.session import SessionStore

        store = SessionStore(ProfilePaths("default", Path(sys.argv[1])))
        state = store.load()
        client = WebWeChatClient(fast_config(sys.argv[2]), state=state)
        check = client.sync_check()
        result = client.sync()
        client.advance(result)
        sent = client.send_text(state.contacts.resolve("文件传输助手").user_name, "from afar")
        state.cookies = client.export_cookies()
        assert store.update(state)
        print(check.retcode, len(result.messages) > 0, bool(sent.msg_id))
        """
    )
    with simulator() as sim:
        client = login_client(sim)
        store = SessionStore(ProfilePaths("default", wx_home))
        store.save(client.state)
        proc = python(script, str(wx_home), sim.base_url)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out.split() == ["0", "True", "True"]
        assert [s["text"] for s in sim.control.sent()] == ["from afar"]
        # the other process's progress (sync keys) came back through the file
        assert store.load().sync_key != client.state.sync_key


def test_cookies_round_trip_through_the_session_file(store):
    with simulator() as sim:
        first = login_client(sim)
        first.state.cookies = first.export_cookies()
        store.save(first.state)
        exported = {c["name"]: c for c in first.state.cookies}
        assert exported["wxsid"]["host_only"] is True
        assert exported["wxsid"]["domain"] == "127.0.0.1"

        reloaded = store.load()
        second = make_client(sim.base_url)
        second.state = reloaded
        second.import_cookies(reloaded.cookies)
        assert sorted(second.export_cookies(), key=lambda c: c["name"]) == sorted(
            first.state.cookies, key=lambda c: c["name"]
        )
        assert second.sync_check().retcode == 0
        # and without them the server refuses: the cookies are what made it work
        bare = make_client(sim.base_url)
        bare.state = reloaded
        with pytest.raises(SessionExpiredError) as info:
            bare.sync_check()
        assert info.value.code == 1102


def test_timestamps_in_the_file_are_timezone_aware(store):
    store.save(sample_state())
    data = json.loads(store.path.read_text(encoding="utf-8"))
    for key in ("saved_at", "login_time"):
        assert datetime.fromisoformat(data[key]).tzinfo is not None
    assert abs(datetime.fromisoformat(data["saved_at"]).timestamp() - time.time()) < 60


CRASH_MID_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from tests.test_session import sample_state
    from wxcli.paths import ProfilePaths
    from wxcli.session import SessionStore

    def die(src, dst):  # the temp file is written and fsynced; the process dies before rename
        os.kill(os.getpid(), signal.SIGKILL)

    os.replace = die
    SessionStore(ProfilePaths("default", Path(sys.argv[1]))).save(sample_state(sid="crashed"))
    """
)


def test_a_writer_killed_mid_write_leaves_no_credentials_behind(store, wx_home):
    store.save(sample_state())
    proc = python(CRASH_MID_WRITE, str(wx_home))
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    leftovers = list(store.path.parent.glob(f".{store.path.name}.*.tmp"))
    assert leftovers and b"crashed" in leftovers[0].read_bytes()  # what a crash leaves
    assert store.load().sid == "U+UgYzLIzyoTXaGZ"  # the file itself is intact

    store.save(sample_state())  # the next write under the lock sweeps it
    assert not list(store.path.parent.glob(f".{store.path.name}.*.tmp"))

    proc = python(CRASH_MID_WRITE, str(wx_home))
    proc.communicate(timeout=60)
    assert list(store.path.parent.glob(f".{store.path.name}.*.tmp"))
    assert store.delete()  # logout removes the file and the leftover copy
    assert not list(store.path.parent.glob(f".{store.path.name}*"))
