"""The login flow of WebWeChatClient against the simulator: QR, scan/confirm, expiry, timeout,
1203 and desktop mode, push login."""

from __future__ import annotations

import time
import urllib.parse

import pytest

from tests.helpers.cli import (
    RecordingEvents,
    login_client,
    make_client,
    requests_for,
    simulator,
)
from wxcli.errors import (
    EXIT_PROTOCOL,
    EXIT_SESSION,
    LoginForbiddenError,
    LoginTimeoutError,
    SessionExpiredError,
)
from wxcli.protocol.hosts import push_login_base


@pytest.fixture
def sim():
    with simulator() as s:
        yield s


def test_qr_login_walks_the_whole_flow(sim):
    client = make_client(sim.base_url)
    events = RecordingEvents(phone=sim.control)

    state = client.login(events)

    assert events.kinds[:4] == ["qr_ready", "scanned", "confirmed", "loading"]
    [qr_url] = events.wait_for("qr_ready")
    uuid = qr_url.rsplit("/", 1)[1]
    assert qr_url == f"{sim.base_url}/l/{uuid}"
    world = sim.control.state()
    assert state.uin == world["account"]["uin"]
    assert state.nickname == world["account"]["nickname"]
    assert state.user_name.startswith("@")
    assert not state.user_name.startswith("@@")
    assert state.skey.startswith("@crypt_")
    assert len(state.sid) == 16
    assert state.pass_ticket
    assert state.sync_key
    assert state.sync_check_key
    assert state.hosts.web == state.hosts.push == state.hosts.file == sim.base_url
    assert state.desktop_mode is True
    # the address book and every group's members are in the directory
    kinds = [c.kind for c in state.contacts if c.user_name != state.user_name]
    assert kinds.count("friend") + kinds.count("official") == world["friends"]
    groups = {g["name"]: g["members"] for g in world["groups"]}
    assert {g.nickname: g.member_count for g in state.contacts.groups()} == groups
    assert all(g.members_known and g.encry_chat_room_id for g in state.contacts.groups())
    assert state.contacts.get("filehelper") is not None
    cookies = {c["name"] for c in state.cookies}
    assert {"wxuin", "wxsid", "webwx_data_ticket", "webwx_auth_ticket"} <= cookies

    order = [r["endpoint"] for r in sim.control.requests()]
    firsts = [order.index(ep) for ep in ("jslogin", "login", "webwxnewloginpage", "webwxinit")]
    assert firsts == sorted(firsts)
    assert order.index("webwxstatusnotify") < order.index("webwxgetcontact")
    assert order.index("webwxgetcontact") < order.index("webwxbatchgetcontact")
    [js] = requests_for(sim, "jslogin")
    assert js["query"]["appid"] == "wx782c26e4c19acffb"
    assert "mod=desktop" in urllib.parse.unquote(js["query"]["redirect_uri"])
    [page] = requests_for(sim, "webwxnewloginpage")
    assert page["query"]["fun"] == "new"
    assert page["query"]["version"] == "v2"
    assert page["status"] == 301  # desktop mode: 301 without Location, as WeChat (§1.4)
    polls = requests_for(sim, "login")
    assert polls[0]["query"]["tip"] == "1"
    assert polls[-1]["query"]["tip"] == "0"


def test_an_expired_qr_is_replaced_within_the_login_timeout(sim):
    events = RecordingEvents(phone=sim.control, expire_first=True)
    state = make_client(sim.base_url).login(events, timeout=10)

    assert state.nickname
    assert events.kinds[:5] == ["qr_ready", "qr_expired", "qr_ready", "scanned", "confirmed"]
    first, second = events.wait_for("qr_ready", 2)
    assert first != second
    assert len(requests_for(sim, "jslogin")) == 2


def test_nobody_confirming_ends_in_login_timeout(sim):
    client = make_client(sim.base_url)
    started = time.monotonic()
    with pytest.raises(LoginTimeoutError, match="in time"):
        client.login(RecordingEvents(), timeout=0.4)
    assert time.monotonic() - started < 2.0


def test_one_long_poll_cannot_outlive_the_login_timeout():
    # The server holds each poll 20 s; the client must still give up at its deadline.
    with simulator(login_hold=20.0) as sim:
        client = make_client(sim.base_url, login_poll_timeout=40.0)
        started = time.monotonic()
        with pytest.raises(LoginTimeoutError):
            client.login(RecordingEvents(), timeout=0.4)
        assert time.monotonic() - started < 2.0


def test_1203_in_web_mode_suggests_desktop_mode():
    with simulator(login_forbidden="web") as sim:
        client = make_client(sim.base_url, desktop_mode=False)
        with pytest.raises(LoginForbiddenError) as info:
            client.login(RecordingEvents(phone=sim.control))
        [js] = requests_for(sim, "jslogin")
    assert "redirect_uri" not in js["query"]
    err = info.value
    assert err.code == 1203
    assert err.exit_code == EXIT_PROTOCOL
    assert "此微信号不能登录网页微信" in err.server_message
    assert "try desktop (UOS) mode" in str(err)
    assert "--no-desktop-mode" in str(err)


def test_desktop_mode_headers_get_past_a_web_only_ban():
    # login_forbidden="web": the simulator answers 1203 unless the QR was made in desktop
    # mode AND webwxnewloginpage carries the client-version and extspam headers.
    with simulator(login_forbidden="web") as sim:
        client = login_client(sim)
        assert client.state is not None
        assert client.state.desktop_mode
        assert sim.control.state()["session"]["desktop"] is True


@pytest.mark.parametrize(("desktop_301", "status"), [(True, 301), (False, 200)])
def test_desktop_mode_reads_the_login_answer_as_301_or_200(desktop_301, status):
    with simulator(desktop_301=desktop_301) as sim:
        client = login_client(sim)
        assert client.state is not None
        assert client.state.skey
        [page] = requests_for(sim, "webwxnewloginpage")
        assert page["status"] == status
        assert client.probe()


def test_web_mode_login_answer_stays_200():
    with simulator() as sim:
        client = login_client(sim, desktop_mode=False)
        assert client.state is not None and not client.state.desktop_mode
        [page] = requests_for(sim, "webwxnewloginpage")
        assert page["status"] == 200


@pytest.mark.parametrize("group_counts", [False, True])
def test_group_members_load_whatever_size_the_address_book_shows(group_counts):
    # WeChat lists groups with MemberCount 0 and no members; older answers carried the size.
    with simulator(group_counts=group_counts) as sim:
        client = login_client(sim)
        state = client.state
        assert state is not None and state.contacts is not None
        world = sim.control.state()
        sizes = {g["name"]: g["members"] for g in world["groups"]}
        assert {g.nickname: g.member_count for g in state.contacts.groups()} == sizes
        assert all(g.members_known for g in state.contacts.groups())
        assert requests_for(sim, "webwxbatchgetcontact")


def test_1203_in_desktop_mode_does_not_suggest_desktop_mode():
    with simulator(login_forbidden="all") as sim:
        client = make_client(sim.base_url, desktop_mode=True)
        with pytest.raises(LoginForbiddenError) as info:
            client.login(RecordingEvents(phone=sim.control))
    message = str(info.value)
    assert "even in desktop (UOS) mode" in message
    assert "try desktop" not in message
    assert "--no-desktop-mode" not in message


# --------------------------------------------------------------------------- push login


def _push_login(sim, first, events, **kw):
    """A second client re-logs in the way `wxcli login` does with a previous session."""
    previous = first.state
    client = make_client(sim.base_url, **kw)
    client.import_cookies(previous.cookies)
    base = push_login_base(previous.hosts, client.login_url)
    assert base == sim.base_url
    client.login(events, push_uin=previous.uin, push_base=base)
    return client


def test_push_login_needs_no_scan_and_ends_the_old_session(sim):
    first = login_client(sim)
    sim.control.clear_requests()
    events = RecordingEvents(phone=sim.control)

    second = _push_login(sim, first, events)

    assert events.kinds[:3] == ["push_sent", "scanned", "confirmed"]
    assert "qr_ready" not in events.kinds
    [push] = requests_for(sim, "webwxpushloginurl")
    assert push["query"] == {"uin": str(first.state.uin), "mod": "desktop"}
    assert not requests_for(sim, "jslogin")
    assert second.state.sid != first.state.sid
    assert second.probe()
    with pytest.raises(SessionExpiredError) as info:  # one web session per account
        first.probe()
    assert info.value.code == 1101
    assert info.value.exit_code == EXIT_SESSION


def test_declined_push_login_falls_back_to_a_qr(sim):
    first = login_client(sim)
    events = RecordingEvents(phone=sim.control, decline_push=True)

    second = _push_login(sim, first, events)

    kinds = events.kinds
    assert kinds[:3] == ["push_sent", "scanned", "push_failed"]
    assert kinds[3:6] == ["qr_ready", "scanned", "confirmed"]
    assert "declined" in events.wait_for("push_failed")[0]
    assert second.probe()


def test_push_login_refused_by_the_server_falls_back_to_a_qr(sim):
    first = login_client(sim)
    # without the webwx_auth_ticket cookie the server answers "need login"
    first.state.cookies = [c for c in first.state.cookies if c["name"] != "webwx_auth_ticket"]
    events = RecordingEvents(phone=sim.control)

    second = _push_login(sim, first, events)

    assert events.kinds[:2] == ["push_failed", "qr_ready"]
    assert "declined" in events.wait_for("push_failed")[0]
    assert len(requests_for(sim, "webwxpushloginurl")) == 1
    assert second.probe()


def test_push_login_base_follows_the_previous_servers():
    from wxcli.protocol.hosts import Hosts, hosts_from_redirect

    wx2 = hosts_from_redirect("https://wx2.qq.com/cgi-bin/mmwebwx-bin/webwxnewloginpage", "")
    assert push_login_base(wx2, "https://login.weixin.qq.com") == "https://wx2.qq.com"
    sim_hosts = Hosts(*(["http://127.0.0.1:8765"] * 4))
    assert push_login_base(sim_hosts, "http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    # switched simulator, or between WeChat and a simulator: no push login at all
    assert push_login_base(sim_hosts, "http://127.0.0.1:9999") is None
    assert push_login_base(sim_hosts, "https://login.weixin.qq.com") is None
    assert push_login_base(wx2, "http://127.0.0.1:8765") is None


# --------------------------------------------------------------------------- liveness probe


def test_probe_is_quick_against_a_25_second_hold_and_does_not_move_the_keys():
    with simulator(synccheck_hold=25.0) as sim:
        client = login_client(sim)
        client.advance(client.sync())  # nothing pending: a synccheck would hold 25 s
        keys = (client.state.sync_key, client.state.sync_check_key)
        sim.control.clear_requests()
        started = time.monotonic()
        assert client.probe() is True
        elapsed = time.monotonic() - started
        assert 0.5 <= elapsed < 1.2
        assert (client.state.sync_key, client.state.sync_check_key) == keys
        # (the held synccheck is logged by the simulator only when it ends)
        assert [r["endpoint"] for r in sim.control.requests()] == ["webwxbatchgetcontact"]
        # a session ended on the phone is known at once, without waiting for the hold
        sim.control.logout(1100)
        started = time.monotonic()
        with pytest.raises(SessionExpiredError) as info:
            client.probe()
        assert info.value.code == 1100
        assert time.monotonic() - started < 0.5
