"""`wxcli serve` under hostile requests: no 500 for odd input, HEAD never sends, and chats
outside an app's allow-list are indistinguishable from chats that do not exist."""

from __future__ import annotations

import pytest
import requests

from tests.test_serve import bearer, error_of, ops, profile, server  # noqa: F401 (fixtures)
from wxcli.server.auth import AppStore, signed_headers


def test_head_runs_only_read_only_routes(server, profile, ops):  # noqa: F811
    url = f"{server.url}/v1/msg/text"
    query = {"to": "云帆Pro客服1群", "text": "HEAD must not send"}
    r = requests.head(url, params=query, headers=bearer(ops), timeout=5)
    assert r.status_code == 405
    assert "HEAD" not in r.headers["Allow"] and "GET" in r.headers["Allow"]
    assert requests.head(f"{server.url}/v1/health", timeout=5).status_code == 200
    assert requests.head(f"{server.url}/v1/contacts", headers=bearer(ops), timeout=5).ok
    assert profile.sim.control.sent() == []


def test_not_allowed_is_answered_exactly_as_not_found(server, profile):  # noqa: F811
    app = AppStore(profile.paths.apps).add("cs", allow_to=["云帆Pro客服*"])
    creds = (app.app.app_id, app.app_key)
    url = f"{server.url}/v1/msg/text"

    def answer(to: str) -> tuple[int, dict]:
        r = requests.post(url, json={"to": to, "text": "x"}, headers=bearer(creds), timeout=5)
        err = error_of(r)
        return r.status_code, {**err, "message": err["message"].replace(to, "NAME")}

    outside = answer("内部员工群")  # exists, outside the list
    missing = answer("不存在的群")  # does not exist at all
    ambiguous_outside = answer("重名群")  # two chats of that name, both outside the list
    assert outside == missing == ambiguous_outside
    assert outside[0] == 404 and outside[1]["code"] == "recipient_not_found"
    r = requests.post(url, json={"to_id": "@" + "1" * 64, "text": "x"}, headers=bearer(creds))
    assert r.status_code == 404
    assert profile.sim.control.sent() == []


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ('{"to": "云帆Pro客服1群", "text": "\\ud800"}', {}),  # a lone surrogate
        ("[" * 100_000 + "]" * 100_000, {}),  # deeper than the decoder's stack
        ('{"to": "云帆Pro客服1群", "text": "x"}', {"X-Timestamp": "176²"}),  # a superscript digit
    ],
)
def test_odd_input_is_a_4xx_with_the_json_error_body(server, profile, ops, body, headers):  # noqa: F811
    hdrs = {**bearer(ops), "Content-Type": "application/json", **headers}
    if "X-Timestamp" in headers:  # the signed scheme, with a timestamp int() cannot read
        hdrs = {
            **signed_headers(ops[0], ops[1], "POST", "/v1/msg/text", body.encode()),
            "Content-Type": "application/json",
            **headers,
        }
    r = requests.post(f"{server.url}/v1/msg/text", data=body.encode(), headers=hdrs, timeout=10)
    assert 400 <= r.status_code < 500, r.text
    error_of(r)
    assert profile.sim.control.sent() == []


CORRUPT_SESSIONS = [
    b'{"version": 1, "credentials": {"sid": ',  # truncated
    b"\xff\xfe\x00binary",  # not UTF-8
    b'{"version": 1, "credentials": [1, 2], "contacts": "x"}',  # wrong types
    b'{"version": 999}',  # a newer format
    b"",  # empty
    b"[" * 50_000,  # nested past the decoder's stack
]


@pytest.mark.parametrize("content", CORRUPT_SESSIONS)
def test_a_corrupt_session_file_is_a_503_or_4xx_never_a_500(server, profile, ops, content):  # noqa: F811
    profile.paths.session.write_bytes(content)
    r = requests.get(f"{server.url}/v1/health", timeout=5)
    assert r.status_code in (200, 503), r.text
    assert r.json()["session"]["problem"]
    for resp in (
        requests.get(f"{server.url}/v1/contacts", headers=bearer(ops), timeout=5),
        requests.post(
            f"{server.url}/v1/msg/text",
            json={"to": "云帆Pro客服1群", "text": "x"},
            headers=bearer(ops),
            timeout=5,
        ),
    ):
        assert resp.status_code != 500 and resp.status_code >= 400, resp.text
        error_of(resp)


def test_a_signed_request_is_accepted_once_across_servers_and_restarts(profile, ops):  # noqa: F811
    """The nonce store is shared by every serve process of the home: a replay to a second
    server, or to the same one after a restart, is refused."""
    from wxcli.server.app import start_server

    body = b'{"to": "\\u4e91\\u5e06Pro\\u5ba2\\u670d1\\u7fa4", "text": "once"}'
    headers = {
        **signed_headers(ops[0], ops[1], "POST", "/v1/msg/text", body, nonce="n" * 24),
        "Content-Type": "application/json",
    }
    first = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    second = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    try:
        r = requests.post(f"{first.url}/v1/msg/text", data=body, headers=headers, timeout=10)
        assert r.status_code == 200, r.text
        r = requests.post(f"{second.url}/v1/msg/text", data=body, headers=headers, timeout=10)
        assert r.status_code == 401 and error_of(r)["code"] == "replayed_nonce"
    finally:
        first.stop()
        second.stop()
    restarted = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    try:
        r = requests.post(f"{restarted.url}/v1/msg/text", data=body, headers=headers, timeout=10)
        assert r.status_code == 401 and error_of(r)["code"] == "replayed_nonce"
    finally:
        restarted.stop()
    assert [s["text"] for s in profile.sim.control.sent()] == ["once"]
    assert profile.paths.nonces.stat().st_mode & 0o777 == 0o600


def test_one_app_filling_its_nonce_quota_does_not_block_another(tmp_path):
    from wxcli.server.auth import AuthError, SharedNonceStore

    store = SharedNonceStore(tmp_path / "nonces.sqlite", per_app=3)
    try:
        for i in range(3):
            assert store.use("greedy", f"nonce-{i}", 1000.0)
        with pytest.raises(AuthError, match="too many signed requests"):
            store.use("greedy", "nonce-3", 1000.0)
        assert store.use("other", "nonce-0", 1000.0)  # others are not affected
        assert not store.use("other", "nonce-0", 1001.0)  # a replay
        assert store.use("greedy", "nonce-4", 1000.0 + 2 * store.window + 1)  # expired: room again
    finally:
        store.close()


def test_slowloris_cannot_take_the_api_down(sim, wx_home):
    """105 unauthenticated connections from one address, each dripping a header byte: beyond
    the per-address cap they are closed at once, the rest at the header deadline, and
    /v1/health (from another loopback address) answers all along."""
    import socket
    import time

    from tests.helpers.send import logged_in
    from wxcli.server.app import start_server

    prof = logged_in(
        sim, wx_home, serve={"header_timeout": 1.0, "connections_per_client": 20, "threads": 4}
    )
    handle = start_server(prof.paths, prof.config, "127.0.0.1", 0)
    attackers: list[socket.socket] = []
    try:
        for _ in range(105):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", handle.port))
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
            attackers.append(s)
        started = time.monotonic()
        closed_at: dict[int, float] = {}
        while time.monotonic() - started < 2.5:
            for i, s in enumerate(attackers):
                if i in closed_at:
                    continue
                try:
                    s.sendall(b"X")
                except OSError:
                    closed_at[i] = time.monotonic() - started
            t0 = time.monotonic()
            r = requests.get(f"{handle.url}/v1/health", timeout=3)
            assert r.status_code in (200, 503) and time.monotonic() - t0 < 1.0
            time.sleep(0.3)
        # every dripping connection was closed: the surplus at once, the rest by the deadline
        assert len(closed_at) == 105, len(closed_at)
    finally:
        for s in attackers:
            s.close()
        handle.stop()
