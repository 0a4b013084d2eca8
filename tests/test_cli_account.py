"""`wxcli login / logout / status / contacts` against the simulator: what a user sees, exit
statuses, one `Error:` line and no traceback for every failure, secrets never on stderr."""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.helpers.cli import (
    assert_one_error_line,
    make_client,
    run_cli,
    simulator,
    wxcli_process,
)
from tests.helpers.waiting import wait_until
from wxcli import account
from wxcli.errors import EXIT_ERROR, EXIT_NETWORK, EXIT_PROTOCOL, EXIT_SESSION
from wxcli.paths import ProfilePaths
from wxcli.qr import qr_matrix, qr_terminal
from wxcli.session import SessionStore

FAST_TOML = """\
[wechat]
read_timeout = 0.3
synccheck_timeout = 2.0
login_poll_timeout = 2.0
login_timeout = 10
retries = 1
backoff = 0.01
backoff_max = 0.02
"""


@pytest.fixture(scope="module")
def module_sim():
    with simulator() as sim:
        yield sim


@pytest.fixture
def sim(module_sim, wx_home, monkeypatch):
    """The module's simulator, reset to auto-confirm and no faults; the CLI points at it."""
    control = module_sim.control
    control.clear_faults()
    control.settings(auto_confirm=True, login_forbidden="", desktop_301=False)
    control.clear_requests()
    monkeypatch.setenv("WXCLI_LOGIN_URL", module_sim.base_url)
    monkeypatch.setenv("COLUMNS", "200")
    (wx_home / "wxcli.toml").write_text(FAST_TOML, encoding="utf-8")
    yield module_sim
    control.clear_faults()


def store(wx_home: Path) -> SessionStore:
    return SessionStore(ProfilePaths("default", wx_home))


def login(capsys, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "login", "--no-qr", *extra)


def endpoints(sim) -> list[str]:
    return [r["endpoint"] for r in sim.control.requests()]


#: What a liveness check would call. (Asserting "no requests at all" would be flaky: the
#: simulator logs a hung request of an earlier test only when its hang ends.)
PROBE_ENDPOINTS = {"webwxbatchgetcontact", "synccheck"}


def existing_qrs(control) -> set[str]:
    return {qr["uuid"] for qr in control.state()["qr"]}


def wait_for_qr(control, *, push: bool = False, exclude: set[str] = frozenset(), timeout=5.0):
    """The uuid of the newest QR login (push prompt or QR code) waiting on the phone; QR codes
    of earlier tests (the simulator is shared) are in ``exclude``."""

    def fresh() -> str | None:
        for qr in reversed(control.state()["qr"]):
            wanted = qr["push"] == push and qr["uuid"] not in exclude
            if wanted and qr["state"] in ("waiting", "scanned"):
                return str(qr["uuid"])
        return None

    return str(wait_until(fresh, timeout=timeout, interval=0.02, message="a QR code"))


def in_thread(target) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


def png_modules(png: bytes, modules: int) -> list[list[bool]]:
    """Decode a QR PNG (with Pillow) back into its module matrix."""
    from PIL import Image

    image = Image.open(io.BytesIO(png))
    image.load()
    gray = image.convert("L")
    scale = gray.width // modules
    assert gray.width == gray.height == modules * scale
    return [
        [
            gray.getpixel((x * scale + scale // 2, y * scale + scale // 2)) < 128
            for x in range(modules)
        ]
        for y in range(modules)
    ]


# --------------------------------------------------------------------------- login


def test_login_shows_the_qr_progress_and_who_logged_in(sim, wx_home, capsys, tmp_path, monkeypatch):
    home = tmp_path / "new" / "home"
    monkeypatch.setenv("WXCLI_HOME", str(home))
    home.parent.mkdir()
    (tmp_path / "new").chmod(0o755)
    sim.control.settings(auto_confirm=False)
    png_path = tmp_path / "qr.png"
    seen: dict[str, str] = {}
    old = existing_qrs(sim.control)

    def phone():
        uuid = wait_for_qr(sim.control, exclude=old)
        seen["url"] = sim.control.current_qr()["url"]
        sim.control.scan(uuid)
        time.sleep(0.4)  # the person reads the prompt, then taps "log in"
        sim.control.confirm(uuid)

    thread = in_thread(phone)
    code, out, err = run_cli(capsys, "login", "--qr-png", str(png_path))
    thread.join(5)

    assert code == 0, err
    url = seen["url"]
    assert url.startswith(sim.base_url + "/l/")
    # the terminal QR encodes the login URL
    for line in qr_terminal(url).splitlines():
        assert line.rstrip() in err
    assert "Scan this QR code with WeChat" in err
    assert "waiting" in err
    assert err.index("waiting") < err.index("Scanned") < err.index("Confirmed")
    assert f"QR code written to {png_path}" in err
    # the PNG is a real image of the same QR code
    png = png_path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    matrix = qr_matrix(url)
    assert png_modules(png, len(matrix)) == matrix
    assert stat.S_IMODE(png_path.stat().st_mode) == 0o600
    # who logged in, and how many friends and groups
    state = store(home).load()
    friends, groups = account.contact_counts(state)
    assert (friends, groups) == (12, 6)
    assert out.strip() == f"Logged in as 云帆客服中心 (uin {state.uin}): 12 friends, 6 groups."
    assert "Error" not in err
    # the session file and home are private
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(store(home).path.stat().st_mode) == 0o600


def test_an_expired_qr_is_replaced_and_rewritten(sim, capsys, tmp_path):
    sim.control.settings(auto_confirm=False)
    png_path = tmp_path / "qr.png"
    urls: list[str] = []
    old = existing_qrs(sim.control)

    def phone():
        first = wait_for_qr(sim.control, exclude=old)
        urls.append(sim.control.current_qr()["url"])
        sim.control.expire_qr()
        second = wait_for_qr(sim.control, exclude=old | {first})
        urls.append(sim.control.current_qr()["url"])
        sim.control.scan(second)
        sim.control.confirm(second)

    thread = in_thread(phone)
    code, out, err = run_cli(capsys, "login", "--no-qr", "--qr-png", str(png_path))
    thread.join(5)
    assert code == 0, err
    assert "The QR code expired; here is a new one." in err
    assert err.count(f"QR code written to {png_path}") == 2
    assert urls[0] != urls[1]
    matrix = qr_matrix(urls[1])
    assert png_modules(png_path.read_bytes(), len(matrix)) == matrix
    assert out.startswith("Logged in as ")


def test_login_timeout(sim, capsys):
    sim.control.settings(auto_confirm=False)
    started = time.monotonic()
    code, out, err = login(capsys, "--timeout", "0.5")
    assert code == EXIT_ERROR
    assert time.monotonic() - started < 3
    assert_one_error_line(err, "nobody confirmed the login in time")
    assert out == ""


def test_web_mode_1203_suggests_desktop_mode(sim, capsys):
    sim.control.settings(login_forbidden="web")
    code, _, err = login(capsys, "--no-desktop-mode")
    assert code == EXIT_PROTOCOL
    assert_one_error_line(err, "(1203)", "此微信号不能登录网页微信", "try desktop (UOS) mode")
    # and desktop mode (the default) gets in
    code, out, err = login(capsys)
    assert code == 0, err
    assert out.startswith("Logged in as ")


def test_desktop_mode_1203_does_not_suggest_desktop_mode(sim, capsys):
    sim.control.settings(login_forbidden="all")
    code, _, err = login(capsys)
    assert code == EXIT_PROTOCOL
    line = assert_one_error_line(err, "(1203)", "even in desktop (UOS) mode")
    assert "try desktop" not in line


def test_push_login_on_the_second_login(sim, capsys, wx_home):
    code, _, err = login(capsys)
    assert code == 0, err
    first_sid = store(wx_home).load().sid
    sim.control.clear_requests()

    code, out, err = login(capsys)  # auto-confirm: the phone confirms the prompt itself
    assert code == 0, err
    assert "Confirm the login on your phone (no scan needed)" in err
    assert "Scan this QR code" not in err
    seen = endpoints(sim)
    assert "webwxpushloginurl" in seen
    assert "jslogin" not in seen
    assert store(wx_home).load().sid != first_sid
    assert out.startswith("Logged in as ")


def test_no_push_skips_push_login(sim, capsys):
    assert login(capsys)[0] == 0
    sim.control.clear_requests()
    code, _, err = login(capsys, "--no-push")
    assert code == 0, err
    seen = endpoints(sim)
    assert "webwxpushloginurl" not in seen
    assert "jslogin" in seen


def test_a_declined_push_falls_back_to_the_qr(sim, capsys):
    assert login(capsys)[0] == 0
    sim.control.settings(auto_confirm=False)
    old = existing_qrs(sim.control)

    def phone():
        push = wait_for_qr(sim.control, push=True, exclude=old)
        sim.control.cancel(push)  # "cancel" on the phone's prompt
        qr = wait_for_qr(sim.control, exclude=old)
        sim.control.scan(qr)
        sim.control.confirm(qr)

    thread = in_thread(phone)
    code, out, err = login(capsys)
    thread.join(5)
    assert code == 0, err
    assert "Push login did not work" in err
    assert err.index("Push login did not work") < err.index("Scan this QR code")
    assert out.startswith("Logged in as ")


def test_a_refused_push_falls_back_to_the_qr(sim, capsys, wx_home):
    assert login(capsys)[0] == 0
    st = store(wx_home)
    state = st.load()
    state.cookies = [c for c in state.cookies if c["name"] != "webwx_auth_ticket"]
    st.save(state)
    code, _, err = login(capsys)
    assert code == 0, err
    assert "Push login did not work (the server declined push login)" in err
    assert "jslogin" in endpoints(sim)


def test_a_corrupt_previous_session_does_not_block_login(sim, capsys, wx_home):
    store(wx_home).path.write_text("{not json", encoding="utf-8")
    code, _out, err = login(capsys)
    assert code == 0, err
    assert "ignoring the previous session file" in err
    assert store(wx_home).load().nickname == "云帆客服中心"


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("kind", "endpoint", "fields", "exit_code", "needles"),
    [
        ("ret", "webwxnewloginpage", {}, EXIT_PROTOCOL, ["(1203)"]),
        ("http", "jslogin", {"status": 500}, EXIT_NETWORK, ["jslogin: network error", "HTTP 500"]),
        ("ret", "webwxinit", {"code": 1100}, EXIT_SESSION, ["session expired (1100: logged out"]),
        ("ret", "webwxgetcontact", {"code": 1}, EXIT_PROTOCOL, ["webwxgetcontact failed"]),
        ("ret", "webwxbatchgetcontact", {"code": 1205}, EXIT_PROTOCOL, ["too frequent (1205)"]),
        (
            "malformed",
            "webwxinit",
            {"body": "truncated"},
            EXIT_PROTOCOL,
            ["webwxinit: malformed reply (not JSON"],
        ),
        ("malformed", "login", {"body": "js"}, EXIT_PROTOCOL, ["login: malformed reply"]),
        (
            "malformed",
            "webwxnewloginpage",
            {"body": "xml"},
            EXIT_PROTOCOL,
            ["webwxnewloginpage: malformed reply (not XML", "<skey>***"],
        ),
        (
            "drop",
            "webwxstatusnotify",
            {},
            EXIT_NETWORK,
            ["webwxstatusnotify", "connection dropped"],
        ),
        ("hang", "jslogin", {"seconds": 1}, EXIT_NETWORK, ["jslogin", "timed out waiting"]),
    ],
)
def test_login_failures_exit_with_one_error_line(
    sim, capsys, kind, endpoint, fields, exit_code, needles
):
    sim.control.fault(kind, endpoint, times="always", **fields)
    started = time.monotonic()
    code, out, err = login(capsys)
    assert time.monotonic() - started < 3
    assert code == exit_code, err
    assert_one_error_line(err, *needles)
    assert out == ""


def test_a_hung_login_poll_ends_in_the_timeout(sim, capsys):
    sim.control.fault("hang", "login", times="always", seconds=1)
    code, _, err = login(capsys, "--timeout", "0.4")
    assert code == EXIT_ERROR
    assert_one_error_line(err, "nobody confirmed the login in time")


def test_commands_need_a_login(sim, capsys):
    for args in (["contacts"], ["contacts", "--json"]):
        code, out, err = run_cli(capsys, *args)
        assert code == EXIT_SESSION
        assert_one_error_line(err, "not logged in (profile 'default')", "wxcli login")
    code, out, err = run_cli(capsys, "--profile", "work", "contacts")
    assert_one_error_line(err, "wxcli --profile work login")
    code, out, _ = run_cli(capsys, "logout")
    assert (code, out) == (0, "Not logged in.\n")


@pytest.mark.parametrize(
    ("content", "needle"),
    [("{broken", "corrupt (not JSON)"), ('{"version": 99}', "written by a newer wxcli (format 99")],
)
def test_a_bad_session_file_is_one_clear_error(sim, capsys, wx_home, content, needle):
    path = store(wx_home).path
    path.write_text(content, encoding="utf-8")
    for args in (["status"], ["contacts"], ["logout"]):
        code, _out, err = run_cli(capsys, *args)
        assert code == EXIT_ERROR, args
        assert_one_error_line(err, f"session file {path}: ", needle)


# --------------------------------------------------------------------------- status


def test_status_of_a_live_session(sim, capsys):
    assert login(capsys)[0] == 0
    code, out, err = run_cli(capsys, "status")
    assert code == 0, err
    assert "Account:   云帆客服中心 (uin 2911234567, profile default)" in out
    assert "Session:   alive (from probe)" in out
    assert "Contacts:  12 friends, 6 groups" in out
    assert "Watch:     not running" in out
    code, out, _ = run_cli(capsys, "status", "--json")
    report = json.loads(out)
    assert code == 0
    assert report["logged_in"] is True
    assert report["alive"] is True
    assert report["alive_source"] == "probe"
    assert (report["friends"], report["groups"]) == (12, 6)
    assert 0 <= report["session_age_seconds"] < 60
    assert report["watch_running"] is False
    # the probe never moves the sync position
    assert "webwxsync" not in endpoints(sim)


def test_status_when_not_logged_in(sim, capsys):
    code, out, _ = run_cli(capsys, "status")
    assert code == EXIT_SESSION
    assert "Not logged in (profile default). Run `wxcli login`." in out
    code, out, _ = run_cli(capsys, "status", "--json")
    assert code == EXIT_SESSION
    assert json.loads(out)["logged_in"] is False


@pytest.mark.parametrize("code", [1100, 1101, 1102])
def test_status_reports_a_session_ended_on_synccheck(sim, capsys, wx_home, code):
    assert login(capsys)[0] == 0
    # the JSON check still passes; only the push host knows (as after a phone logout)
    sim.control.fault("retcode", "synccheck", code=code)
    status, out, err = run_cli(capsys, "status")
    assert status == EXIT_SESSION
    assert "Session:   expired (from probe)" in out
    assert f"{code}: " in out
    assert "run `wxcli login`" in out
    assert "Error" not in err
    # remembered: the next status needs no network
    sim.control.clear_requests()
    status, out, _ = run_cli(capsys, "status", "--json")
    assert status == EXIT_SESSION
    report = json.loads(out)
    assert report["alive"] is False
    assert report["alive_source"] == "session file"
    assert report["problem"].startswith(f"{code}: ")
    assert not PROBE_ENDPOINTS & set(endpoints(sim))
    assert store(wx_home).load().ended_code == code


def test_status_after_a_phone_logout(sim, capsys):
    assert login(capsys)[0] == 0
    sim.control.logout(1101)
    code, out, _ = run_cli(capsys, "status")
    assert code == EXIT_SESSION
    assert "1101: the session ended" in out


@pytest.mark.parametrize(
    ("kind", "fields", "exit_code", "needle"),
    [
        ("http", {"status": 502}, EXIT_NETWORK, "network error"),
        ("malformed", {"body": "garbage"}, EXIT_PROTOCOL, "malformed reply"),
    ],
)
def test_status_when_the_server_cannot_tell(sim, capsys, kind, fields, exit_code, needle):
    assert login(capsys)[0] == 0
    sim.control.fault(kind, "webwxbatchgetcontact", times="always", **fields)
    code, out, _ = run_cli(capsys, "status")
    assert code == exit_code
    assert "Session:   unknown (from probe)" in out
    assert needle in out


def test_status_is_quick_even_when_synccheck_holds_25_seconds(wx_home, capsys, monkeypatch):
    with simulator(synccheck_hold=25.0) as sim:
        monkeypatch.setenv("WXCLI_LOGIN_URL", sim.base_url)
        paths = ProfilePaths("default", wx_home)
        client = make_client(sim.base_url)
        client.login(_AutoPhone(sim))
        client.advance(client.sync())  # nothing pending: synccheck will hold
        SessionStore(paths).save(client.state)
        started = time.monotonic()
        code, out, err = run_cli(capsys, "status")
        elapsed = time.monotonic() - started
    assert code == 0, err
    assert "alive (from probe)" in out
    assert elapsed < 1.5


class _AutoPhone:
    """Events that confirm each QR at once (for tests that just need a session)."""

    def __init__(self, sim):
        self.control = sim.control

    def qr_ready(self, uuid, url):
        self.control.scan(uuid)
        self.control.confirm(uuid)

    def __getattr__(self, name):
        return lambda *a: None


# --------------------------------------------------------------------------- contacts


def test_contacts_table_filters_and_json(sim, capsys):
    assert login(capsys)[0] == 0
    code, out, err = run_cli(capsys, "contacts")
    assert code == 0, err
    header = next(line for line in out.splitlines() if "name" in line and "kind" in line)
    for column in ("name", "remark", "kind", "members", "id"):
        assert column in header
    assert "售后问题反馈群" in out
    assert "文件传输助手" in out
    assert "云帆客服中心" not in out  # the account itself is not a contact

    code, out, _ = run_cli(capsys, "contacts", "--groups")
    assert "6 groups" in out
    assert "VIP客户群" in out
    assert "张" not in out  # no friends in a groups listing

    code, out, _ = run_cli(capsys, "contacts", "--groups", "--json")
    groups = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert len(groups) == 6
    assert {g["kind"] for g in groups} == {"group"}
    assert all(g["id"].startswith("@@") and g["members"] > 0 for g in groups)
    assert set(groups[0]) == {"id", "name", "nickname", "remark", "kind", "members"}

    code, out, _ = run_cli(capsys, "contacts", "--friends", "--json")
    friends = [json.loads(line) for line in out.splitlines()]
    assert len(friends) == 12
    assert {f["kind"] for f in friends} == {"friend"}
    assert all(f["members"] is None for f in friends)

    code, out, _ = run_cli(capsys, "contacts", "客服", "--json")
    names = [json.loads(line)["name"] for line in out.splitlines()]
    assert names
    assert all("客服" in n for n in names)

    code, out, _ = run_cli(capsys, "contacts", "no such name at all")
    assert code == 0
    assert "0 contacts" in out


# --------------------------------------------------------------------------- logout


def test_logout_ends_the_session_and_removes_the_file(sim, capsys, wx_home):
    assert login(capsys)[0] == 0
    code, out, _ = run_cli(capsys, "logout")
    assert (code, out) == (0, "Logged out.\n")
    assert not store(wx_home).exists()
    session = sim.control.state()["session"]
    assert session["alive"] is False
    assert session["dead_code"] == 1101
    assert run_cli(capsys, "status")[0] == EXIT_SESSION


def test_logout_of_an_ended_session_needs_no_network(sim, capsys, wx_home):
    assert login(capsys)[0] == 0
    st = store(wx_home)
    st.mark_ended(1100)
    sim.control.clear_requests()
    code, out, _ = run_cli(capsys, "logout")
    assert (code, out) == (0, "Logged out.\n")
    assert "webwxlogout" not in endpoints(sim)
    assert not st.exists()


def test_logout_when_the_server_is_gone_still_logs_out(sim, capsys, wx_home):
    assert login(capsys)[0] == 0
    sim.control.fault("drop", "webwxlogout", times="always")
    code, out, err = run_cli(capsys, "logout")
    assert (code, out) == (0, "Logged out.\n"), err
    assert not store(wx_home).exists()


# --------------------------------------------------------------------------- other processes


def test_another_process_uses_the_session_and_never_logs_secrets(sim, wx_home):
    """Login, status and contacts in separate processes with -vv (real logging setup): the
    session is shared through the file, and stderr carries no secret."""
    env = {"WXCLI_HOME": str(wx_home), "WXCLI_LOGIN_URL": sim.base_url}
    login_run = wxcli_process("-vv", "login", "--no-qr", env=env)
    assert login_run.returncode == 0, login_run.stderr
    status_run = wxcli_process("-vv", "status", "--json", env=env)
    assert status_run.returncode == 0, status_run.stderr
    report = json.loads(status_run.stdout)
    assert report["alive"] is True
    contacts_run = wxcli_process("-vv", "contacts", "--groups", "--json", env=env)
    assert contacts_run.returncode == 0, contacts_run.stderr
    assert len(contacts_run.stdout.splitlines()) == 6

    state = store(wx_home).load()
    secrets = {"skey": state.skey, "sid": state.sid, "pass_ticket": state.pass_ticket}
    for cookie in state.cookies:
        if cookie["name"] not in ("mm_lang", "wxloadtime", "wxuin"):  # not secret
            secrets[f"cookie {cookie['name']}"] = cookie["value"]
    assert "cookie webwx_data_ticket" in secrets
    assert "cookie webwx_auth_ticket" in secrets
    stderr = login_run.stderr + status_run.stderr + contacts_run.stderr
    # -vv really was on: urllib3 logged the URLs, with the secrets masked
    assert "DEBUG urllib3.connectionpool" in stderr
    assert "skey=***" in stderr
    assert "sid=***" in stderr
    assert "pass_ticket=***" in stderr
    for what, value in secrets.items():
        for form in {
            value,
            urllib.parse.quote(value, safe=""),
            urllib.parse.quote(urllib.parse.quote(value, safe=""), safe=""),
            urllib.parse.unquote(value),
        }:
            assert form not in stderr, what
    assert "Traceback" not in stderr


def test_help_is_fast_and_lists_the_account_commands():
    started = time.monotonic()
    run = wxcli_process("--help")
    elapsed = time.monotonic() - started
    assert run.returncode == 0
    for command in ("login", "logout", "status", "contacts"):
        assert command in run.stdout
    assert elapsed < 5  # measured ~0.15 s; generous for loaded CI machines


def test_files_are_0600_after_every_command(sim, capsys, wx_home):
    assert login(capsys)[0] == 0
    run_cli(capsys, "status")
    for path in wx_home.iterdir():
        if path.is_file() and path.name != "wxcli.toml":
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert not [p for p in os.listdir(wx_home) if p.endswith(".tmp")]


def test_status_reads_a_running_watchs_health_instead_of_probing(sim, capsys, wx_home):
    from wxcli.fileutil import PidLock
    from wxcli.health import Health, write_health

    assert login(capsys)[0] == 0
    paths = ProfilePaths("default", wx_home)
    state = store(wx_home).load()
    health = Health(
        state="running",
        last_sync_at="2026-11-30T08:00:00+00:00",
        messages_stored=42,
        sid_hint=state.sid[:4],
    )
    write_health(paths.health, health)
    with PidLock(paths.watch_lock) as lock:
        assert lock.acquire()
        sim.control.clear_requests()
        code, out, _ = run_cli(capsys, "status")
        assert code == 0
        assert "Session:   alive (from watch)" in out
        assert f"Watch:     running (pid {os.getpid()}), last sync 2026-11-30T08:00:00" in out
        assert "42 messages stored" in out
        assert not PROBE_ENDPOINTS & set(endpoints(sim))  # no second poll next to the watch's
        # a record from a watch on an older login is not trusted: probe instead
        health.sid_hint = "????"
        write_health(paths.health, health)
        code, out, _ = run_cli(capsys, "status", "--json")
        report = json.loads(out)
        assert report["alive_source"] == "probe"
        assert report["watch_running"] is True
        assert report["watch_pid"] == os.getpid()
