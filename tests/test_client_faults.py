"""Every fault the simulator can inject ends in the right exception and message, in time:
server codes, HTTP errors, dropped and hung connections, malformed bodies; retries with
back-off for idempotent requests, none for sends that may have reached the server."""

from __future__ import annotations

import time

import pytest
import requests

from tests.helpers.cli import (
    LosingProxy,
    RecordingEvents,
    Sleeps,
    login_client,
    make_client,
    simulator,
)
from wxcli.client import ClientConfig, WebWeChatClient
from wxcli.errors import (
    EXIT_ERROR,
    EXIT_NETWORK,
    EXIT_PROTOCOL,
    EXIT_SESSION,
    SESSION_CODE_MEANINGS,
    DecodeError,
    LoginForbiddenError,
    LoginTimeoutError,
    NetworkError,
    ProtocolError,
    RateLimitedError,
    SessionExpiredError,
)
from wxcli.protocol.hosts import Hosts
from wxcli.protocol.responses import parse_json


class Live:
    """One simulator and one logged-in client for the whole module (a login per test would
    dominate the run time); each test gets it with faults and the request log cleared."""

    def __init__(self, sim):
        self.sim = sim
        self.sleeps = Sleeps()
        self.client: WebWeChatClient | None = None

    def fresh(self) -> WebWeChatClient:
        control = self.sim.control
        control.clear_faults()
        session = control.state()["session"]
        stale = (
            self.client is None
            or session is None
            or not session["alive"]
            or session["user_name"] != self.client.state.user_name
        )
        if stale:
            self.client = login_client(self.sim, sleeps=self.sleeps, read_timeout=0.5)
        control.clear_requests()
        self.sleeps.clear()
        return self.client


@pytest.fixture(scope="module")
def live():
    with simulator() as sim:
        yield Live(sim)


@pytest.fixture
def client(live):
    yield live.fresh()
    live.sim.control.clear_faults()


def count(live, endpoint: str) -> int:
    return len(live.sim.control.requests(endpoint))


# --------------------------------------------------------------------------- server codes


@pytest.mark.parametrize("code", [1100, 1101, 1102])
def test_synccheck_session_codes_end_the_session(client, live, code):
    live.sim.control.fault("retcode", "synccheck", code=code)
    with pytest.raises(SessionExpiredError) as info:
        client.sync_check()
    err = info.value
    assert err.code == code
    assert err.exit_code == EXIT_SESSION
    assert err.endpoint == "synccheck"
    assert f"{code}: {SESSION_CODE_MEANINGS[code]}" in str(err)
    assert "wxcli login" in str(err)


@pytest.mark.parametrize(
    ("code", "exc", "text"),
    [
        (1205, RateLimitedError, "too frequent"),
        (9999, ProtocolError, "wrong server host"),
        (2, ProtocolError, "unknown error"),
    ],
)
def test_other_synccheck_codes(client, live, code, exc, text):
    live.sim.control.fault("retcode", "synccheck", code=code)
    with pytest.raises(exc) as info:
        client.sync_check()
    assert type(info.value) is exc
    assert info.value.code == code
    assert info.value.exit_code == EXIT_PROTOCOL
    assert text in str(info.value)
    assert "synccheck" in str(info.value)


OPS = {
    "webwxinit": lambda c: c.init(),
    "webwxstatusnotify": lambda c: c.status_notify(3),
    "webwxgetcontact": lambda c: c.get_contacts(),
    "webwxbatchgetcontact": lambda c: c.batch_get_contacts([("filehelper", "")]),
    "webwxsync": lambda c: c.sync(),
    "webwxsendmsg": lambda c: c.send_text("filehelper", "hello"),
    "webwxuploadmedia": lambda c: c.upload_media(
        b"\xff\xd8" + b"x" * 100, "a.jpg", "image/jpeg", "filehelper"
    ),
    "webwxrevokemsg": lambda c: c.revoke("1234", "filehelper", "5678"),
}


@pytest.mark.parametrize(
    ("endpoint", "code", "exc", "exit_code", "text"),
    [
        ("webwxsync", 1, ProtocolError, EXIT_PROTOCOL, "code 1 (generic failure"),
        ("webwxsync", -14, ProtocolError, EXIT_PROTOCOL, "code -14 (ticket error)"),
        ("webwxsync", 1101, SessionExpiredError, EXIT_SESSION, "1101: the session ended"),
        ("webwxsendmsg", 1205, RateLimitedError, EXIT_PROTOCOL, "too frequent (1205)"),
        ("webwxsendmsg", 1, ProtocolError, EXIT_PROTOCOL, "webwxsendmsg failed with code 1"),
        ("webwxinit", 1100, SessionExpiredError, EXIT_SESSION, "1100: logged out"),
        ("webwxstatusnotify", 1101, SessionExpiredError, EXIT_SESSION, "1101"),
        ("webwxgetcontact", 1, ProtocolError, EXIT_PROTOCOL, "webwxgetcontact failed"),
        ("webwxbatchgetcontact", 1102, SessionExpiredError, EXIT_SESSION, "cookies"),
        ("webwxuploadmedia", 1205, RateLimitedError, EXIT_PROTOCOL, "webwxuploadmedia"),
        ("webwxrevokemsg", 1, ProtocolError, EXIT_PROTOCOL, "webwxrevokemsg failed"),
    ],
)
def test_ret_codes_become_typed_errors(client, live, endpoint, code, exc, exit_code, text):
    live.sim.control.fault("ret", endpoint, code=code)
    with pytest.raises(exc) as info:
        OPS[endpoint](client)
    err = info.value
    assert type(err) is exc
    assert err.code == code
    assert err.endpoint == endpoint
    assert err.exit_code == exit_code
    assert text in str(err)
    assert count(live, endpoint) == 1  # a server answer is final: never retried


def test_a_logout_on_the_phone_is_seen_by_synccheck_and_sync(client, live):
    live.sim.control.logout(1101)
    with pytest.raises(SessionExpiredError) as info:
        client.sync_check()
    assert info.value.code == 1101
    with pytest.raises(SessionExpiredError):
        client.sync()
    with pytest.raises(SessionExpiredError):
        client.probe()


# --------------------------------------------------------------------------- HTTP errors


def test_a_5xx_is_retried_with_backoff_and_jitter(client, live):
    live.sim.control.fault("http", "webwxsync", status=502, times=2)
    result = client.sync()
    assert result.sync_key
    assert count(live, "webwxsync") == 3
    first, second = live.sleeps
    assert 0.005 <= first <= 0.015  # backoff 0.01 s, jitter 50–150 %
    assert 0.01 <= second <= 0.03  # doubled


def test_5xx_until_retries_run_out_is_a_network_error(client, live):
    live.sim.control.fault("http", "webwxsync", status=500, times="always")
    with pytest.raises(NetworkError) as info:
        client.sync()
    assert info.value.exit_code == EXIT_NETWORK
    assert "webwxsync: network error: server answered HTTP 500 (3 attempts)" in str(info.value)
    assert count(live, "webwxsync") == 3
    assert len(live.sleeps) == 2


def test_a_5xx_on_a_send_is_not_retried(client, live):
    live.sim.control.fault("http", "webwxsendmsg", status=502)
    with pytest.raises(NetworkError, match="may or may not"):
        client.send_text("filehelper", "once")
    assert count(live, "webwxsendmsg") == 1
    assert live.sleeps == []


def test_a_4xx_is_a_protocol_error(client, live):
    live.sim.control.fault("http", "webwxgetcontact", status=404)
    with pytest.raises(ProtocolError, match="HTTP 404") as info:
        client.get_contacts()
    assert info.value.exit_code == EXIT_PROTOCOL
    assert count(live, "webwxgetcontact") == 1


# --------------------------------------------------------------------------- dropped connections


def test_a_dropped_idempotent_request_is_retried(client, live):
    live.sim.control.fault("drop", "webwxgetcontact")
    assert client.get_contacts()
    assert count(live, "webwxgetcontact") == 2
    assert len(live.sleeps) == 1


def test_drops_until_retries_run_out_is_a_network_error(client, live):
    live.sim.control.fault("drop", "webwxsync", times="always")
    with pytest.raises(NetworkError, match="webwxsync: network error: connection dropped"):
        client.sync()
    assert count(live, "webwxsync") == 3


def test_a_dropped_send_is_not_retried_and_says_it_may_have_been_sent(client, live):
    # The simulator's "drop" closes the connection before acting on the request, so nothing
    # was sent here — but the client cannot know that, and must neither retry nor claim it.
    live.sim.control.fault("drop", "webwxsendmsg")
    with pytest.raises(NetworkError) as info:
        client.send_text("filehelper", "maybe")
    assert "may or may not have acted on it" in str(info.value)
    assert info.value.exit_code == EXIT_NETWORK
    assert count(live, "webwxsendmsg") == 1
    assert live.sim.control.sent() == []
    assert live.sleeps == []


def test_a_send_whose_reply_is_lost_is_sent_exactly_once(live):
    # The reply-losing proxy lets the server act and then drops the answer: the real
    # "did it go out?" case. The message must exist exactly once on the server.
    with LosingProxy(live.sim.base_url, lose={"webwxsendmsg"}) as proxy:
        sleeps = Sleeps()
        client = make_client(proxy.url, sleeps=sleeps)
        client.login(RecordingEvents(phone=live.sim.control))
        live.sim.control.clear_requests()
        before = len(live.sim.control.sent())
        with pytest.raises(NetworkError, match="may or may not"):
            client.send_text("filehelper", "exactly once")
        sent = live.sim.control.sent()[before:]
        assert [s["text"] for s in sent] == ["exactly once"]
        assert proxy.lost == ["/cgi-bin/mmwebwx-bin/webwxsendmsg"]
        assert count(live, "webwxsendmsg") == 1
        assert sleeps == []
        # idempotent calls through the same proxy still work
        assert client.sync_check().retcode == 0


def test_a_send_that_never_connected_is_retried(client):
    from tests.helpers.servers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    st = client.state
    saved = st.hosts
    st.hosts = Hosts(dead, dead, dead, dead)
    sleeps = client.sleep
    try:
        with pytest.raises(NetworkError) as info:
            client.send_text("filehelper", "never left")
    finally:
        st.hosts = saved
    assert "connection refused" in str(info.value)
    assert "may or may not" not in str(info.value)
    assert len(sleeps) == 2  # provably not sent: safe to retry even a send


# --------------------------------------------------------------------------- malformed bodies


@pytest.mark.parametrize(
    ("endpoint", "body", "problem", "quoted"),
    [
        ("webwxsync", "truncated", "not JSON", "{"),
        ("webwxinit", "garbage", "not JSON", "<html><head><title>502"),
        ("webwxbatchgetcontact", "empty", "empty body", ""),
        ("webwxgetcontact", "xml", "not JSON", "<error><ret>0</ret>"),
        ("synccheck", "js", "unexpected text", 'window.synccheck={retcode:"0"}'),
        ("synccheck", "garbage", "unexpected text", "bad gateway"),
        ("webwxsendmsg", "truncated", "probably sent", "{"),
    ],
)
def test_malformed_replies_are_decode_errors(client, live, endpoint, body, problem, quoted):
    live.sim.control.fault("malformed", endpoint, body=body)
    op = OPS.get(endpoint) or (lambda c: c.sync_check())
    with pytest.raises(DecodeError) as info:
        op(client)
    err = info.value
    message = str(err)
    assert err.endpoint == endpoint
    assert err.exit_code == EXIT_PROTOCOL
    assert message.startswith(f"{endpoint}: malformed reply (")
    assert problem in message
    assert quoted in err.snippet
    if body == "empty":
        assert err.snippet == ""
    assert count(live, endpoint) == 1
    for secret in (client.state.skey, client.state.sid, client.state.pass_ticket):
        assert secret not in message


def test_json_that_python_refuses_is_a_decode_error():
    """json.loads refuses an integer of over 4300 digits with a plain ValueError, not a
    JSONDecodeError: still a malformed reply (it was an AttributeError on ``exc.msg``)."""
    body = b'{"BaseResponse": {"Ret": 0}, "MsgId": ' + b"9" * 5000 + b"}"
    with pytest.raises(DecodeError) as info:
        parse_json("webwxsync", body)
    assert "malformed reply (not JSON (Exceeds the limit" in str(info.value)


@pytest.mark.parametrize(
    ("endpoint", "body", "problem"),
    [
        ("jslogin", "js", "no QRLogin code/uuid"),
        ("login", "js", "no window.code"),
        ("webwxnewloginpage", "xml", "not XML"),
        ("webwxnewloginpage", "truncated", "not XML"),
        ("webwxnewloginpage", "garbage", "no <ret>"),
        ("webwxinit", "empty", "empty body"),
    ],
)
def test_malformed_replies_during_login(live, endpoint, body, problem):
    live.fresh()
    live.sim.control.fault("malformed", endpoint, body=body)
    client = make_client(live.sim.base_url)
    with pytest.raises(DecodeError) as info:
        client.login(RecordingEvents(phone=live.sim.control))
    message = str(info.value)
    assert message.startswith(f"{endpoint}: malformed reply ({problem}")
    session = live.sim.engine.session
    if session is not None:  # the half-read login XML carries the new skey: never quoted
        for secret in (session.skey, session.sid, session.pass_ticket):
            assert secret not in message
    if endpoint == "webwxnewloginpage":
        assert "<skey>***" in message or "skey" not in message
    live.sim.control.clear_faults()
    live.client = None


def test_1203_fault_on_newloginpage(live):
    live.fresh()
    live.sim.control.fault("ret", "webwxnewloginpage")
    client = make_client(live.sim.base_url)
    with pytest.raises(LoginForbiddenError) as info:
        client.login(RecordingEvents(phone=live.sim.control))
    assert info.value.exit_code == EXIT_PROTOCOL
    assert "1203" in str(info.value)


# --------------------------------------------------------------------------- timeouts
# (last in the module: the simulator logs a hung request only when its hang ends, which would
# add late entries to the request counts of the tests above)


HUNG_OPS = {
    "jslogin": lambda c: c.get_uuid(),
    "synccheck": lambda c: c.sync_check(),
    "webwxsync": lambda c: c.sync(),
    "webwxsendmsg": lambda c: c.send_text("filehelper", "hang"),
    "webwxgetcontact": lambda c: c.get_contacts(),
    "webwxbatchgetcontact": lambda c: c.probe(timeout=0.2),
    "webwxuploadmedia": lambda c: c.upload_media(
        b"abc", "a.txt", "text/plain", "filehelper", media_type="doc"
    ),
    "webwxgetmsgimg": lambda c: c.get_image("123"),
}


@pytest.mark.parametrize("endpoint", list(HUNG_OPS))
def test_a_hung_server_is_a_timely_network_error(client, live, endpoint):
    client.config.read_timeout = 0.15
    client.config.synccheck_timeout = 0.15
    live.sim.control.fault("hang", "*", times="always", seconds=2)
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        HUNG_OPS[endpoint](client)
    elapsed = time.monotonic() - started
    assert "timed out waiting for the reply" in str(info.value)
    assert info.value.exit_code == EXIT_NETWORK
    # a read timeout is retried at most once (one back-off sleep); never for a send, a long
    # poll or the status probe
    once = endpoint in ("webwxsendmsg", "synccheck", "webwxbatchgetcontact")
    assert len(live.sleeps) == (0 if once else 1)
    assert elapsed < 1.0
    client.config.read_timeout = 0.5
    client.config.synccheck_timeout = 3.0


def test_a_hung_login_poll_ends_in_the_login_timeout(live):
    live.sim.control.fault("hang", "login", times="always", seconds=3)
    client = make_client(live.sim.base_url, login_poll_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(LoginTimeoutError) as info:
        client.login(RecordingEvents(), timeout=0.5)
    assert info.value.exit_code == EXIT_ERROR
    assert time.monotonic() - started < 1.5
    live.sim.control.clear_faults()


def test_logout_on_a_hung_server_still_drops_the_session(client, live):
    client.config.read_timeout = 0.15
    live.sim.control.fault("hang", "webwxlogout", times="always", seconds=2)
    started = time.monotonic()
    client.logout()  # never raises: the local session ends either way
    assert time.monotonic() - started < 1.0
    assert list(client.http.cookies) == []
    live.client = None  # cookies are gone: the next test logs in again


def test_a_delay_shorter_than_the_timeout_is_fine(client, live):
    live.sim.control.fault("delay", "webwxsync", seconds=0.1)
    assert client.sync().sync_key
    assert live.sleeps == []


class TimeoutRecorder(requests.Session):
    """A real Session that notes the timeout of every request it makes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, object]] = []

    def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        self.seen.append((url.rsplit("/", 1)[-1].split("?")[0], kwargs.get("timeout")))
        return super().request(method, url, *args, **kwargs)


def test_every_request_has_a_timeout_and_synccheck_outlasts_the_hold():
    with simulator(auto_confirm=True) as sim:
        http = TimeoutRecorder()
        client = WebWeChatClient(ClientConfig(login_url=sim.base_url), http=http)
        client.login()
        client.sync_check()
        client.advance(client.sync())
        sent = client.send_text("filehelper", "hi")
        client.revoke(sent.msg_id, "filehelper", sent.local_id)
        client.upload_media(b"data", "a.txt", "text/plain", "filehelper", media_type="doc")
        client.probe()
        client.logout()
    timeouts = dict(http.seen)
    assert len(http.seen) > 10
    for endpoint, timeout in http.seen:
        assert isinstance(timeout, tuple), endpoint
        connect, read = timeout
        assert 0 < connect <= 10
        assert 0 < read <= 60, endpoint
    assert 0.5 <= timeouts["synccheck"][1] <= 1.0  # the last synccheck was the probe's
    assert ClientConfig().synccheck_timeout > 25  # the server holds ~25 s
    assert ClientConfig().login_poll_timeout > 27
