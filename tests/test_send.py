"""`wxcli send` and the Sender library against the simulator over sockets."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers.send import GIF, JPEG, PNG, WEBP, logged_in, run_cli
from wxcli.errors import (
    AmbiguousRecipientError,
    MediaError,
    NotLoggedInError,
    RateLimitedError,
    RecipientNotFoundError,
    SessionExpiredError,
)
from wxcli.media_input import MediaTypeError, load_image_file, sniff_image
from wxcli.sending import Sender, send_image, send_text
from wxcli.session import SessionStore


@pytest.fixture
def profile(sim, wx_home):
    sim.control.add_contacts(
        groups=[
            {"name": "重名群", "members": ["张伟"]},
            {"name": "重名群", "members": ["周杰"]},
        ],
        announce=False,
    )
    return logged_in(sim, wx_home)


def last_sent(sim):
    return sim.control.sent()[-1]


# --- library ---------------------------------------------------------------------------------


def test_send_text_by_name(profile):
    out = send_text(profile.paths, profile.config, "工单已处理", to="云帆Pro客服1群")
    s = last_sent(profile.sim)
    assert (s["to_name"], s["text"], s["ret"]) == ("云帆Pro客服1群", "工单已处理", 0)
    assert out.msg_id == s["msg_id"]
    assert out.to == s["to_user_name"]
    assert out.to_name == "云帆Pro客服1群"
    assert out.kind == "text"


def test_send_text_by_remark_and_by_id(profile):
    sender = Sender(profile.paths, profile.config)
    sender.send_text("hi", to="客服-小王")  # a friend's remark
    assert last_sent(profile.sim)["to_name"] == "客服-小王"
    group = sender.resolve(to="VIP客户群💎")
    sender.send_text("by id", to_id=group.user_name)
    assert last_sent(profile.sim)["to_name"] == "VIP客户群💎"


@pytest.mark.parametrize("name", ["filehelper", "文件传输助手"])
def test_filehelper_names(profile, name):
    send_text(profile.paths, profile.config, "note to self", to=name)
    assert last_sent(profile.sim)["to_user_name"] == "filehelper"


def test_ambiguous_name_is_refused_with_the_matches(profile):
    with pytest.raises(AmbiguousRecipientError) as info:
        send_text(profile.paths, profile.config, "x", to="重名群")
    assert len(info.value.matches) == 2
    assert all("重名群" in m for m in info.value.matches)
    assert profile.sim.control.sent() == []  # never sent to the first hit


def test_unknown_name_lists_near_matches(profile):
    with pytest.raises(RecipientNotFoundError) as info:
        send_text(profile.paths, profile.config, "x", to="云帆Pro客服3群")
    assert "云帆Pro客服1群" in info.value.near
    assert profile.sim.control.sent() == []


def test_unknown_id_is_left_to_wechat(profile):
    from wxcli.errors import ProtocolError

    with pytest.raises(ProtocolError) as info:
        send_text(profile.paths, profile.config, "x", to_id="@" + "0" * 64)
    assert info.value.code == 1
    with pytest.raises(RecipientNotFoundError):
        send_text(profile.paths, profile.config, "x", to_id="not-an-id")


def test_send_images_of_each_type(profile):
    sender = Sender(profile.paths, profile.config)
    for data, endpoint, mime in (
        (JPEG, "webwxsendmsgimg", "image/jpeg"),
        (PNG, "webwxsendmsgimg", "image/png"),
        (WEBP, "webwxsendmsgimg", "image/webp"),
        (GIF, "webwxsendemoticon", "image/gif"),
    ):
        from wxcli.media_input import image_from_bytes

        out = sender.send_image(image_from_bytes(data, "x", max_bytes=1 << 20), to="内部员工群")
        s = last_sent(profile.sim)
        assert (s["endpoint"], s["ret"], s["media"]["mime"]) == (endpoint, 0, mime)
        assert s["media"]["size"] == len(data)
        assert out.kind == "image"


def test_send_big_image_in_chunks(profile):
    big = JPEG + bytes(1_200_000)  # still starts like a JPEG: 3 upload chunks
    path = profile.home / "big.jpg"
    path.write_bytes(big)
    send_image(profile.paths, profile.config, str(path), to="内部员工群")
    s = last_sent(profile.sim)
    assert s["media"]["size"] == len(big)
    uploads = profile.sim.control.requests("webwxuploadmedia")
    assert len(uploads) == 3


def test_image_type_is_checked_by_content(tmp_path):
    fake = tmp_path / "report.png"
    fake.write_text("not an image at all")
    with pytest.raises(MediaTypeError):
        load_image_file(fake, max_bytes=1000)
    renamed = tmp_path / "photo.txt"
    renamed.write_bytes(PNG)
    img = load_image_file(renamed, max_bytes=1000)
    assert (img.mime, img.name) == ("image/png", "photo.png")
    assert sniff_image(b"GIF89a....") == "image/gif"
    assert sniff_image(b"RIFF\x00\x00\x00\x00WEBP") == "image/webp"
    assert sniff_image(b"\x00\x00\x00\x18ftypmp4") is None


def test_image_size_limit(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_bytes(JPEG)
    with pytest.raises(MediaError, match="limit"):
        load_image_file(path, max_bytes=len(JPEG) - 1)
    with pytest.raises(MediaError, match="no such file"):
        load_image_file(tmp_path / "missing.jpg", max_bytes=10)


def test_1205_is_backed_off_and_retried(profile):
    sim = profile.sim
    sim.control.fault("ret", "webwxsendmsg", code=1205, times=2)
    sleeps: list[float] = []
    from wxcli.pacer import Pacer, PacerSettings

    settings = PacerSettings(burst=5, rate=100.0, jitter=0.0, retries=3, backoff=4.0)
    clock = FakeClock()
    pacer = Pacer(profile.paths.pacer_state, settings, clock=clock, sleep=clock.sleep)
    sender = Sender(profile.paths, profile.config, pacer=pacer)
    out = sender.send_text("after the storm", to="云帆Pro客服2群")
    sleeps = clock.sleeps
    assert out.msg_id
    assert sum(sleeps) >= 3.0 + 6.0  # ~4 s then ~8 s (±25 %), on the injected clock
    assert [s["ret"] for s in sim.control.sent()] == [0]
    assert len(sim.control.requests("webwxsendmsg")) == 3
    assert pacer.status().rate_limited == 2


def test_1205_exhausted_is_a_clear_error(profile):
    profile.sim.control.fault("ret", "webwxsendmsg", code=1205, times=10)
    from wxcli.pacer import Pacer, PacerSettings

    clock = FakeClock()
    pacer = Pacer(
        profile.paths.pacer_state,
        PacerSettings(burst=5, rate=100.0, jitter=0.0, retries=1, backoff=1.0),
        clock=clock,
        sleep=clock.sleep,
    )
    with pytest.raises(RateLimitedError, match="after 1 retry"):
        Sender(profile.paths, profile.config, pacer=pacer).send_text("x", to="内部员工群")


def test_session_loss_marks_the_session_file(profile):
    profile.sim.control.logout(1101)
    with pytest.raises(SessionExpiredError) as info:
        send_text(profile.paths, profile.config, "x", to="内部员工群")
    assert info.value.code == 1101
    state = SessionStore(profile.paths).load()
    assert (state.alive, state.ended_code) == (False, 1101)
    # The next sender does not even try: the file says the session is over.
    before = len(profile.sim.control.requests("webwxsendmsg"))
    with pytest.raises(SessionExpiredError):
        send_text(profile.paths, profile.config, "y", to="内部员工群")
    assert len(profile.sim.control.requests("webwxsendmsg")) == before


def test_not_logged_in(wx_home):
    from wxcli.config import defaults
    from wxcli.paths import ProfilePaths

    with pytest.raises(NotLoggedInError):
        send_text(ProfilePaths("default", wx_home), defaults(), "x", to="a")


def test_sender_follows_a_new_login(profile):
    """A long-lived Sender (as in serve) picks up a re-login from the session file."""
    from wxcli import account

    sender = Sender(profile.paths, profile.config)
    sender.send_text("one", to="内部员工群")
    old_sid = sender.session().sid
    profile.sim.control.logout(1101)
    account.login(profile.paths, profile.config)
    sender.send_text("two", to="内部员工群")
    assert sender.session().sid != old_sid
    assert [s["ret"] for s in profile.sim.control.sent()] == [0, 0]


def test_audit_sink_receives_each_send(profile):
    records = []
    sender = Sender(profile.paths, profile.config, audit=records.append)
    sender.send_text("audited", to="内部员工群", app="ops", extra={"via": "test"})
    profile.sim.control.fault("ret", "webwxsendmsg", code=1204)
    with pytest.raises(Exception, match="1204"):
        sender.send_text("refused", to="内部员工群", app="ops")
    ok, bad = records
    assert (ok["app"], ok["kind"], ok["result"], ok["to_name"], ok["via"]) == (
        "ops",
        "text",
        "sent",
        "内部员工群",
        "test",
    )
    assert ok["msg_id"]
    assert ok["at"]
    assert bad["result"] == "failed"
    assert bad["error"]["code"] == 1204


def test_audit_failure_never_fails_a_send(profile, caplog):
    def broken(record):
        raise OSError("disk full")

    out = Sender(profile.paths, profile.config, audit=broken).send_text("x", to="内部员工群")
    assert out.msg_id
    assert "audit" in caplog.text


def test_concurrent_threads_share_one_sender(profile):
    sender = Sender(profile.paths, profile.config)
    errors = []

    def worker(i: int) -> None:
        try:
            sender.send_text(f"t{i}", to="内部员工群")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(s["text"] for s in profile.sim.control.sent()) == sorted(
        f"t{i}" for i in range(8)
    )


# --- CLI (real subprocesses) --------------------------------------------------------------


def test_cli_text_json(profile):
    p = run_cli(profile, "send", "text", "--to", "云帆Pro客服1群", "--json", "工单已处理")
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    s = last_sent(profile.sim)
    assert out["msg_id"] == s["msg_id"]
    assert out["to"] == s["to_user_name"]
    assert s["text"] == "工单已处理"


def test_cli_text_from_stdin_keeps_lines(profile):
    p = run_cli(profile, "send", "text", "--to", "filehelper", "-", input="第一行\n第二行\n\n")
    assert p.returncode == 0, p.stderr
    assert "Sent to" in p.stderr
    assert last_sent(profile.sim)["text"] == "第一行\n第二行"


def test_cli_text_by_id(profile):
    group = Sender(profile.paths, profile.config).resolve(to="售后问题反馈群")
    p = run_cli(profile, "send", "text", "--to-id", group.user_name, "hello")
    assert p.returncode == 0, p.stderr
    assert last_sent(profile.sim)["to_name"] == "售后问题反馈群"


def test_cli_image_path_and_url(profile, tmp_path):
    path = tmp_path / "chart.png"
    path.write_bytes(PNG)
    p = run_cli(profile, "send", "image", "--to", "内部员工群", str(path), "--json")
    assert p.returncode == 0, p.stderr
    assert last_sent(profile.sim)["media"]["mime"] == "image/png"

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")  # sniffed anyway
            self.send_header("Content-Length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/chart"
        p = run_cli(profile, "send", "image", "--to", "内部员工群", url)
    finally:
        server.shutdown()
        server.server_close()
    assert p.returncode == 0, p.stderr
    assert (
        last_sent(profile.sim)["media"]["sha256"] == __import__("hashlib").sha256(JPEG).hexdigest()
    )


def test_cli_exit_codes(profile, tmp_path):
    p = run_cli(profile, "send", "text", "--to", "重名群", "x")
    assert p.returncode == 1
    assert "matches 2 chats" in p.stderr
    assert "--to-id" in p.stderr
    p = run_cli(profile, "send", "text", "--to", "云帆Pro客服9群", "x")
    assert p.returncode == 1
    assert "did you mean" in p.stderr
    assert "云帆Pro客服1群" in p.stderr
    p = run_cli(profile, "send", "text", "x")
    assert p.returncode == 2
    assert "--to" in p.stderr
    text_file = tmp_path / "notes.png"
    text_file.write_text("hello")
    p = run_cli(profile, "send", "image", "--to", "内部员工群", str(text_file))
    assert p.returncode == 1
    assert "not a JPEG" in p.stderr
    profile.sim.control.fault("ret", "webwxsendmsg", code=1205, times=20)
    p = run_cli(profile, "send", "text", "--to", "内部员工群", "x")
    assert p.returncode == 4
    assert "1205" in p.stderr
    profile.sim.control.clear_faults()
    profile.sim.control.fault("drop", "webwxsendmsg", times=5)
    p = run_cli(profile, "send", "text", "--to", "内部员工群", "x")
    assert p.returncode == 5, p.stderr
    profile.sim.control.clear_faults()
    profile.sim.control.logout(1100)
    p = run_cli(profile, "send", "text", "--to", "内部员工群", "x")
    assert p.returncode == 3
    assert "1100" in p.stderr


def test_send_path_keeps_heavy_modules_out(profile):
    """The whole `wxcli send text` command, in a fresh interpreter: nothing heavy imported."""
    code = (
        "import sys, atexit\n"
        "heavy = ('jieba', 'snownlp', 'oss2', 'peewee', 'waitress', 'rich', 'pymysql', "
        "'tomlkit', 'qrcode', 'PIL', 'wxcli.store', 'wxcli.analysis', 'wxcli.server')\n"
        "atexit.register(lambda: print('LOADED=' + ','.join("
        "m for m in heavy if m in sys.modules), file=sys.stderr))\n"
        "from wxcli.cli import main\n"
        "main(['send', 'text', '--to', '内部员工群', 'startup check'])\n"
    )
    import subprocess

    p = subprocess.run(
        [sys.executable, "-c", code], env=profile.env(), capture_output=True, text=True
    )
    assert p.returncode == 0, p.stderr
    assert last_sent(profile.sim)["text"] == "startup check"
    assert "LOADED=\n" in p.stderr or p.stderr.rstrip().endswith("LOADED=")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
