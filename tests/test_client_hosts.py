"""Host mapping (protocol §2) end to end: the simulator in vhost mode plays wx.qq.com, wx2, wx8,
web.wechat.com and web2.wechat.com; the client reaches it through a test-only transport adapter
(see LoopbackRouter) and must send login, synccheck and upload to the right hosts."""

from __future__ import annotations

import pytest

from tests.helpers.cli import (
    RecordingEvents,
    make_client,
    routed_session,
    simulator,
)
from wxcli.errors import SessionExpiredError
from wxcli.protocol.hosts import Hosts, hosts_from_redirect, is_wechat_host, push_login_base
from wxcli.simulator.media import asset

#: web host -> (push host, file host, cookie domain of webwx_data_ticket)
HOSTS = {
    "wx.qq.com": ("webpush.wx.qq.com", "file.wx.qq.com", ".qq.com"),
    "wx2.qq.com": ("webpush.wx2.qq.com", "file.wx2.qq.com", ".qq.com"),
    "wx8.qq.com": ("webpush.wx8.qq.com", "file.wx8.qq.com", ".qq.com"),
    "web.wechat.com": ("webpush.web.wechat.com", "file.web.wechat.com", ".wechat.com"),
    "web2.wechat.com": ("webpush.web2.wechat.com", "file.web2.wechat.com", ".wechat.com"),
}


@pytest.mark.parametrize("web_host", list(HOSTS))
def test_each_redirect_host_maps_login_sync_and_upload(web_host):
    push_host, file_host, ticket_domain = HOSTS[web_host]
    with simulator(web_host=web_host) as sim:
        http, router = routed_session(sim)
        # the default login URL: https://login.weixin.qq.com, reached through the router
        client = make_client("https://login.weixin.qq.com", http=http)
        state = client.login(RecordingEvents(phone=sim.control))

        assert state.hosts == Hosts(
            login=f"https://login.{web_host}",
            web=f"https://{web_host}",
            push=f"https://{push_host}",
            file=f"https://{file_host}",
        )
        jar = {c.name: c for c in client.http.cookies}
        assert jar["wxsid"].secure
        assert jar["wxsid"].domain == f".{web_host}"
        assert jar["webwx_data_ticket"].domain == ticket_domain

        check = client.sync_check()  # the simulator answers 1100 on any other host
        assert check.retcode == 0
        result = client.sync()
        client.advance(result)
        photo = asset("photo1.jpg")
        sent = client.send_image("filehelper", photo, "photo1.jpg", "image/jpeg")
        assert sent.msg_id
        big = bytes(range(256)) * 4400  # 1.1 MB: three 512 KiB chunks
        media_id = client.upload_media(
            big, "big.bin", "application/octet-stream", "filehelper", media_type="doc"
        )
        assert sim.engine.uploads[media_id]["data"] == big
        assert client.probe()

        seen = {(r["endpoint"], r["host"]) for r in sim.control.requests()}
        assert ("jslogin", "login.weixin.qq.com") in seen
        assert ("login", "login.weixin.qq.com") in seen
        for endpoint in ("webwxnewloginpage", "webwxinit", "webwxsync", "webwxsendmsgimg"):
            assert (endpoint, web_host) in seen
        synccheck_hosts = {h for ep, h in seen if ep == "synccheck"}
        uploads = [r for r in sim.control.requests() if r["endpoint"] == "webwxuploadmedia"]
        assert len(uploads) == 1 + 3
        upload_hosts = {r["host"] for r in uploads}
        assert synccheck_hosts == {push_host}
        assert upload_hosts == {file_host}
        assert set(router.hosts) == {"login.weixin.qq.com", web_host, push_host, file_host}
        [record] = sim.control.sent()
        assert record["ret"] == 0
        assert record["media"]["size"] == len(photo)


def test_push_login_goes_to_the_previous_web_host_with_its_cookies():
    with simulator(web_host="wx2.qq.com") as sim:
        http, _ = routed_session(sim)
        first = make_client("https://login.weixin.qq.com", http=http)
        previous = first.login(RecordingEvents(phone=sim.control))
        sim.control.clear_requests()

        http2, _ = routed_session(sim)
        second = make_client("https://login.weixin.qq.com", http=http2)
        second.import_cookies(previous.cookies)
        base = push_login_base(previous.hosts, second.login_url)
        events = RecordingEvents(phone=sim.control)
        second.login(events, push_uin=previous.uin, push_base=base)

        assert events.kinds[:3] == ["push_sent", "scanned", "confirmed"]
        [push] = sim.control.requests("webwxpushloginurl")
        assert push["host"] == "wx2.qq.com"
        assert second.probe()
        with pytest.raises(SessionExpiredError):
            first.probe()


def test_a_wrong_push_host_is_reported_as_1100():
    # What users of clients with a fixed push host saw (wxBot issue #130).
    with simulator(web_host="wx2.qq.com") as sim:
        http, _ = routed_session(sim)
        client = make_client("https://login.weixin.qq.com", http=http)
        state = client.login(RecordingEvents(phone=sim.control))
        client.state.hosts = Hosts(
            state.hosts.login, state.hosts.web, "https://webpush.wx.qq.com", state.hosts.file
        )
        with pytest.raises(SessionExpiredError) as info:
            client.sync_check()
        assert info.value.code == 1100


@pytest.mark.parametrize(
    ("redirect", "push", "file", "login"),
    [
        (
            "https://wx2.qq.com/x",
            "https://webpush.wx2.qq.com",
            "https://file.wx2.qq.com",
            "https://login.wx2.qq.com",
        ),
        (
            "https://wx8.qq.com/x",
            "https://webpush.wx8.qq.com",
            "https://file.wx8.qq.com",
            "https://login.wx8.qq.com",
        ),
        (
            "https://wx.qq.com/x",
            "https://webpush.wx.qq.com",
            "https://file.wx.qq.com",
            "https://login.wx.qq.com",
        ),
        (
            "https://web2.wechat.com/x",
            "https://webpush.web2.wechat.com",
            "https://file.web2.wechat.com",
            "https://login.web2.wechat.com",
        ),
        (
            "https://web.wechat.com/x",
            "https://webpush.web.wechat.com",
            "https://file.web.wechat.com",
            "https://login.web.wechat.com",
        ),
        # not WeChat (a simulator, a proxy): every role on the redirect's host
        (
            "http://127.0.0.1:8765/x",
            "http://127.0.0.1:8765",
            "http://127.0.0.1:8765",
            "http://base:1",
        ),
        (
            "http://notqq.com.example/x",
            "http://notqq.com.example",
            "http://notqq.com.example",
            "http://base:1",
        ),
    ],
)
def test_hosts_from_redirect_table(redirect, push, file, login):
    hosts = hosts_from_redirect(redirect, "http://base:1/")
    assert (hosts.push, hosts.file, hosts.login) == (push, file, login)
    assert hosts.web == redirect.rsplit("/", 1)[0]
    assert Hosts.from_dict(hosts.to_dict()) == hosts


def test_is_wechat_host():
    assert is_wechat_host("https://wx.qq.com/")
    assert is_wechat_host("https://webpush.web2.wechat.com")
    assert not is_wechat_host("https://fakeqq.com")
    assert not is_wechat_host("http://127.0.0.1:8765")
