"""The REST shim over real sockets: waitress in a thread, the simulator behind it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.helpers.send import GIF, JPEG, PNG, logged_in
from wxcli.server.app import ROUTES, start_server, startup_warnings
from wxcli.server.auth import AppStore, signed_headers


@pytest.fixture
def profile(sim, wx_home):
    sim.control.add_contacts(
        groups=[{"name": "重名群", "members": ["张伟"]}, {"name": "重名群", "members": ["周杰"]}],
        announce=False,
    )
    return logged_in(
        sim,
        wx_home,
        serve={"allow_private_urls": True, "max_body_bytes": 200_000, "threads": 4},
        send={
            "burst": 50,
            "rate": 1000.0,
            "jitter": 0.0,
            "retries": 1,
            "backoff": 0.01,
            "max_image_bytes": 100_000,
        },
    )


@pytest.fixture
def server(profile):
    handle = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    yield handle
    handle.stop()


@pytest.fixture
def ops(profile):
    """An app without restrictions: (app_id, app_key)."""
    created = AppStore(profile.paths.apps).add("ops")
    return created.app.app_id, created.app_key


def bearer(creds) -> dict[str, str]:
    return {"Authorization": f"Bearer {creds[0]}:{creds[1]}"}


def error_of(resp) -> dict:
    assert resp.headers["Content-Type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    assert body["error"]["message"]
    return body["error"]


def last_sent(sim):
    return sim.control.sent()[-1]


# --- health, docs, routing -------------------------------------------------------------------


def test_health_needs_no_auth(server, profile):
    r = requests.get(f"{server.url}/v1/health", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["session"]["logged_in"]
    assert body["session"]["alive"]
    assert body["watch"]["running"] is False
    assert body["pacer"]["waiting"] == 0
    assert body["pacer"]["queue_limit"] == 50
    assert "nickname" not in json.dumps(body)  # unauthenticated: no account details


def test_health_reports_a_running_watch(server, profile):
    from wxcli.fileutil import PidLock
    from wxcli.health import Health, write_health

    with PidLock(profile.paths.watch_lock) as lock:
        assert lock.acquire()
        write_health(profile.paths.health, Health(state="running", last_sync_at="2026-01-01"))
        body = requests.get(f"{server.url}/v1/health", timeout=5).json()
        assert body["watch"]["running"]
        assert body["watch"]["pid"] == os.getpid()
        assert body["session"]["source"] == "watch"
        write_health(profile.paths.health, Health(state="session_lost", session_code=1101))
        r = requests.get(f"{server.url}/v1/health", timeout=5)
        assert r.status_code == 503
        assert r.json()["status"] == "session_expired"


def test_openapi_needs_no_auth(server):
    r = requests.get(f"{server.url}/openapi.json", timeout=5)
    assert r.status_code == 200
    assert r.json()["openapi"].startswith("3.")


def test_unknown_route_and_wrong_method(server, ops):
    r = requests.get(f"{server.url}/v2/nothing", timeout=5)
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"
    r = requests.delete(f"{server.url}/v1/msg/text", headers=bearer(ops), timeout=5)
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET, POST"
    assert error_of(r)["code"] == "method_not_allowed"


# --- sending, each auth mode -----------------------------------------------------------------


def test_text_json_with_bearer(server, profile, ops):
    r = requests.post(
        f"{server.url}/v1/msg/text",
        json={"to": "云帆Pro客服1群", "text": "工单已处理"},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    s = last_sent(profile.sim)
    assert (s["to_name"], s["text"]) == ("云帆Pro客服1群", "工单已处理")
    body = r.json()
    assert body["msg_id"] == s["msg_id"]
    assert body["to"] == s["to_user_name"]
    assert body["kind"] == "text"
    assert body["to_name"] == "云帆Pro客服1群"


def test_text_form_and_to_id(server, profile, ops):
    contacts = requests.get(
        f"{server.url}/v1/contacts", params={"q": "售后"}, headers=bearer(ops), timeout=5
    ).json()["contacts"]
    [group] = contacts
    r = requests.post(
        f"{server.url}/v1/msg/text",
        data={"to_id": group["id"], "text": "第一行\n第二行"},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert last_sent(profile.sim)["text"] == "第一行\n第二行"


def test_seed_get_text_with_signature(server, profile, ops):
    params = "to=%E5%86%85%E9%83%A8%E5%91%98%E5%B7%A5%E7%BE%A4&word=hello%20seed"
    path = "/v1/msg/text?" + params
    headers = signed_headers(ops[0], ops[1], "GET", path)
    r = requests.get(server.url + path, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    s = last_sent(profile.sim)
    assert (s["to_name"], s["text"]) == ("内部员工群", "hello seed")


def test_signed_post(server, profile, ops):
    body = json.dumps({"to": "内部员工群", "text": "signed"}).encode()
    headers = signed_headers(ops[0], ops[1], "POST", "/v1/msg/text", body)
    headers["Content-Type"] = "application/json"
    r = requests.post(f"{server.url}/v1/msg/text", data=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text
    # The same request again is a replay.
    r = requests.post(f"{server.url}/v1/msg/text", data=body, headers=headers, timeout=10)
    assert r.status_code == 401
    assert error_of(r)["code"] == "replayed_nonce"
    assert [s["text"] for s in profile.sim.control.sent()] == ["signed"]


def test_bad_signatures(server, profile, ops):
    url = f"{server.url}/v1/msg/text"
    body = json.dumps({"to": "内部员工群", "text": "x"}).encode()

    def post(headers, data=body):
        headers = {**headers, "Content-Type": "application/json"}
        return requests.post(url, data=data, headers=headers, timeout=10)

    good = signed_headers(ops[0], ops[1], "POST", "/v1/msg/text", body)
    cases = {
        "bad_signature": {**good, "X-Signature": "0" * 64},
        "incomplete_signature": {k: v for k, v in good.items() if k != "X-Nonce"},
        "stale_timestamp": signed_headers(
            ops[0], ops[1], "POST", "/v1/msg/text", body, timestamp=int(time.time()) - 301
        ),
        "bad_timestamp": {**good, "X-Timestamp": "yesterday"},
        "bad_nonce": signed_headers(ops[0], ops[1], "POST", "/v1/msg/text", body, nonce="short"),
    }
    for code, headers in cases.items():
        r = post(headers)
        assert r.status_code == 401, (code, r.text)
        assert error_of(r)["code"] == code
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    # Signed with the wrong key, for another path, or over another body:
    for headers, data in (
        (signed_headers(ops[0], "wrong-key", "POST", "/v1/msg/text", body), body),
        (signed_headers(ops[0], ops[1], "POST", "/v1/msg/image", body), body),
        (signed_headers(ops[0], ops[1], "POST", "/v1/msg/text", body), body + b" "),
        (signed_headers("app_unknown", ops[1], "POST", "/v1/msg/text", body), body),
    ):
        r = post(headers, data)
        assert r.status_code == 401
        assert error_of(r)["code"] == "bad_signature"
    # A failed signature does not burn the nonce: the genuine request still goes through.
    assert post(good).status_code == 200
    assert len(profile.sim.control.sent()) == 1


def test_bearer_failures(server, profile, ops):
    url = f"{server.url}/v1/msg/text"
    data = {"to": "内部员工群", "text": "x"}
    for headers, code in (
        ({}, "missing_credentials"),
        ({"Authorization": f"Bearer {ops[0]}:nope"}, "bad_credentials"),
        ({"Authorization": f"Bearer app_0000000000000000:{ops[1]}"}, "bad_credentials"),
        ({"Authorization": f"Basic {ops[0]}:{ops[1]}"}, "bad_authorization"),
        ({"Authorization": f"Bearer {ops[1]}"}, "bad_authorization"),
    ):
        r = requests.post(url, json=data, headers=headers, timeout=5)
        assert r.status_code == 401, r.text
        assert error_of(r)["code"] == code
    r = requests.post(url + f"?appkey={ops[1]}", json=data, timeout=5)
    assert r.status_code == 401
    assert error_of(r)["code"] == "query_key_disabled"
    assert requests.get(f"{server.url}/v1/contacts", timeout=5).status_code == 401
    assert profile.sim.control.sent() == []


def test_revoked_app_stops_working_without_restart(server, profile, ops):
    url = f"{server.url}/v1/contacts"
    assert requests.get(url, headers=bearer(ops), timeout=5).status_code == 200
    AppStore(profile.paths.apps).revoke("ops")
    assert requests.get(url, headers=bearer(ops), timeout=5).status_code == 401


def test_legacy_query_key_when_enabled(profile, ops):
    config = profile.reload(
        serve={"allow_query_key": True, "allow_private_urls": True},
        send={"burst": 50, "rate": 1000.0, "jitter": 0.0},
    )
    assert any("allow_query_key" in w for w in startup_warnings(config, "127.0.0.1"))
    with start_server(profile.paths, config, "127.0.0.1", 0) as handle:
        r = requests.get(
            f"{handle.url}/v1/msg/text",
            params={"to": "内部员工群", "word": "seed style", "appkey": ops[1]},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        r = requests.get(
            f"{handle.url}/v1/msg/text",
            params={"to": "内部员工群", "word": "with id", "appkey": f"{ops[0]}:{ops[1]}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        r = requests.get(
            f"{handle.url}/v1/msg/text",
            params={"to": "内部员工群", "word": "x", "appkey": "guess"},
            timeout=10,
        )
        assert r.status_code == 401
        doc = requests.get(f"{handle.url}/openapi.json", timeout=5).json()
        assert "queryKey" in doc["components"]["securitySchemes"]
    assert [s["text"] for s in profile.sim.control.sent()] == ["seed style", "with id"]


# --- recipients and allow-lists --------------------------------------------------------------


def test_allow_list(server, profile):
    app = AppStore(profile.paths.apps).add("cs", allow_to=["云帆Pro客服*", "filehelper"])
    creds = (app.app.app_id, app.app_key)
    url = f"{server.url}/v1/msg/text"
    r = requests.post(url, json={"to": "云帆Pro客服2群", "text": "ok"}, headers=bearer(creds))
    assert r.status_code == 200, r.text
    r = requests.post(url, json={"to": "文件传输助手", "text": "ok"}, headers=bearer(creds))
    assert r.status_code == 200, r.text
    r = requests.post(url, json={"to": "内部员工群", "text": "no"}, headers=bearer(creds))
    assert r.status_code == 404  # outside the list: as if it did not exist
    assert error_of(r)["code"] == "recipient_not_found"
    # An id outside the list is refused too, even one the directory does not know.
    r = requests.post(url, json={"to_id": "@" + "1" * 64, "text": "no"}, headers=bearer(creds))
    assert r.status_code == 404
    names = {
        c["name"]
        for c in requests.get(f"{server.url}/v1/contacts", headers=bearer(creds), timeout=5).json()[
            "contacts"
        ]
    }
    assert names == {"云帆Pro客服1群", "云帆Pro客服2群", "文件传输助手"}
    assert [s["text"] for s in profile.sim.control.sent()] == ["ok", "ok"]


def test_unknown_ambiguous_and_missing(server, profile, ops):
    url = f"{server.url}/v1/msg/text"
    r = requests.post(url, json={"to": "云帆Pro客服3群", "text": "x"}, headers=bearer(ops))
    assert r.status_code == 404
    err = error_of(r)
    assert err["code"] == "recipient_not_found"
    assert "云帆Pro客服1群" in err["near"]
    r = requests.post(url, json={"to": "重名群", "text": "x"}, headers=bearer(ops))
    assert r.status_code == 409
    err = error_of(r)
    assert err["code"] == "ambiguous_recipient"
    assert len(err["matches"]) == 2
    for body, code in (
        ({"text": "x"}, "bad_recipient"),
        ({"to": "内部员工群", "to_id": "@x", "text": "x"}, "bad_recipient"),
        ({"to": "内部员工群"}, "missing_text"),
        ({"to": "内部员工群", "text": 5}, "bad_field"),
    ):
        r = requests.post(url, json=body, headers=bearer(ops), timeout=5)
        assert r.status_code == 400, (body, r.text)
        assert error_of(r)["code"] == code
    r = requests.post(
        url, data=b"[1,2]", headers={**bearer(ops), "Content-Type": "application/json"}
    )
    assert r.status_code == 400
    assert error_of(r)["code"] == "bad_json"
    assert profile.sim.control.sent() == []


# --- sizes and types -------------------------------------------------------------------------


def test_oversize_bodies(server, profile, ops):
    url = f"{server.url}/v1/msg/text"
    r = requests.post(
        url, json={"to": "内部员工群", "text": "x" * 250_000}, headers=bearer(ops), timeout=10
    )
    assert r.status_code == 413
    assert error_of(r)["code"] == "body_too_large"
    r = requests.post(
        url, json={"to": "内部员工群", "text": "长" * 17_000}, headers=bearer(ops), timeout=10
    )
    assert r.status_code == 413
    assert error_of(r)["code"] == "text_too_long"
    big = JPEG + bytes(120_000)  # under the body limit, over max_image_bytes
    r = requests.post(
        f"{server.url}/v1/msg/image",
        data={"to": "内部员工群"},
        files={"file": ("big.jpg", big, "image/jpeg")},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 413
    assert error_of(r)["code"] == "image_too_large"
    assert profile.sim.control.sent() == []


def test_body_far_over_the_limit_is_cut_off_by_waitress(server, ops):
    r = requests.post(
        f"{server.url}/v1/msg/text",
        data=b"x" * 2_000_000,
        headers={**bearer(ops), "Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 413


def test_wrong_types(server, profile, ops):
    r = requests.post(
        f"{server.url}/v1/msg/text",
        data="to=内部员工群&text=x".encode(),
        headers={**bearer(ops), "Content-Type": "text/plain"},
        timeout=5,
    )
    assert r.status_code == 415
    assert error_of(r)["code"] == "unsupported_media_type"
    r = requests.post(
        f"{server.url}/v1/msg/text",
        files={"text": (None, "x"), "to": (None, "内部员工群")},
        headers=bearer(ops),
        timeout=5,
    )
    assert r.status_code == 415  # multipart only where files make sense
    r = requests.post(
        f"{server.url}/v1/msg/image",
        data={"to": "内部员工群"},
        files={"file": ("chart.png", b"this is a text file\n", "image/png")},
        headers=bearer(ops),
        timeout=5,
    )
    assert r.status_code == 415
    assert error_of(r)["code"] == "not_an_image"
    assert profile.sim.control.sent() == []


# --- images ----------------------------------------------------------------------------------


def test_image_upload(server, profile, ops):
    for data, endpoint in ((PNG, "webwxsendmsgimg"), (GIF, "webwxsendemoticon")):
        r = requests.post(
            f"{server.url}/v1/msg/image",
            data={"to": "内部员工群"},
            files={"file": ("chart", data, "application/octet-stream")},
            headers=bearer(ops),
            timeout=10,
        )
        assert r.status_code == 200, r.text
        s = last_sent(profile.sim)
        assert (s["endpoint"], s["media"]["size"]) == (endpoint, len(data))
        assert r.json()["kind"] == "image"


@pytest.fixture
def image_host():
    """A local web server with /photo.jpg (JPEG) and /notes.txt (text)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body, ctype = {
                "/photo.jpg": (JPEG, "image/jpeg"),
                "/notes.txt": (b"plain text", "text/plain"),
            }.get(self.path, (b"", ""))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", ctype or "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_image_by_url_json_and_seed_query(server, profile, ops, image_host):
    r = requests.post(
        f"{server.url}/v1/msg/image",
        json={"to": "内部员工群", "image_url": f"{image_host}/photo.jpg"},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    r = requests.post(
        f"{server.url}/v1/msg/image",
        params={"imgUrl": f"{image_host}/photo.jpg", "to": "内部员工群"},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert [s["media"]["size"] for s in profile.sim.control.sent()] == [len(JPEG)] * 2
    r = requests.post(
        f"{server.url}/v1/msg/image",
        json={"to": "内部员工群", "image_url": f"{image_host}/notes.txt"},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 415
    r = requests.post(
        f"{server.url}/v1/msg/image",
        json={"to": "内部员工群", "image_url": f"{image_host}/missing.png"},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 422
    assert error_of(r)["code"] == "image_url_unavailable"
    r = requests.post(
        f"{server.url}/v1/msg/image", json={"to": "内部员工群"}, headers=bearer(ops), timeout=5
    )
    assert r.status_code == 400
    assert error_of(r)["code"] == "missing_image"


# --- pacing, session, audit ------------------------------------------------------------------


def test_queue_full_is_429(profile, ops):
    config = profile.reload(send={"burst": 1, "rate": 0.01, "jitter": 0.0, "queue_limit": 1})
    with start_server(profile.paths, config, "127.0.0.1", 0) as handle:
        url = f"{handle.url}/v1/msg/text"
        body = {"to": "内部员工群", "text": "first"}
        assert requests.post(url, json=body, headers=bearer(ops), timeout=5).status_code == 200
        # Someone else (a live process) is now waiting ~100 s for the next slot.
        state = json.loads(profile.paths.pacer_state.read_text())
        state["waiting"] = {"w": {"pid": os.getpid(), "at": time.time() + 100, "gen": 0}}
        profile.paths.pacer_state.write_text(json.dumps(state))
        r = requests.post(url, json={**body, "text": "second"}, headers=bearer(ops), timeout=5)
        assert r.status_code == 429, r.text
        assert error_of(r)["code"] == "queue_full"
        assert int(r.headers["Retry-After"]) >= 1
        health = requests.get(f"{handle.url}/v1/health", timeout=5).json()
        assert health["pacer"]["waiting"] == 1
    assert [s["text"] for s in profile.sim.control.sent()] == ["first"]


def test_wechat_1205_after_retries_is_429(server, profile, ops):
    profile.sim.control.fault("ret", "webwxsendmsg", code=1205, times=5)
    r = requests.post(
        f"{server.url}/v1/msg/text",
        json={"to": "内部员工群", "text": "x"},
        headers=bearer(ops),
        timeout=10,
    )
    assert r.status_code == 429
    assert error_of(r)["code"] == "rate_limited"


def test_dead_session_is_503(server, profile, ops):
    profile.sim.control.logout(1101)
    url = f"{server.url}/v1/msg/text"
    r = requests.post(url, json={"to": "内部员工群", "text": "x"}, headers=bearer(ops), timeout=10)
    assert r.status_code == 503, r.text
    err = error_of(r)
    assert err["code"] == "session_expired"
    assert err["wechat_code"] == "1101"
    r = requests.get(f"{server.url}/v1/health", timeout=5)
    assert r.status_code == 503
    assert r.json()["status"] == "session_expired"
    r = requests.post(url, json={"to": "内部员工群", "text": "y"}, headers=bearer(ops), timeout=10)
    assert r.status_code == 503


def test_not_logged_in_is_503(wx_home):
    from wxcli.config import defaults
    from wxcli.paths import ProfilePaths

    paths = ProfilePaths("default", wx_home)
    created = AppStore(paths.apps).add("ops")
    with start_server(paths, defaults(), "127.0.0.1", 0) as handle:
        r = requests.get(f"{handle.url}/v1/health", timeout=5)
        assert r.status_code == 503
        assert r.json()["status"] == "not_logged_in"
        r = requests.post(
            f"{handle.url}/v1/msg/text",
            json={"to": "a", "text": "b"},
            headers=bearer((created.app.app_id, created.app_key)),
            timeout=5,
        )
        assert r.status_code == 503
        assert error_of(r)["code"] == "not_logged_in"


def test_audit_log(server, profile, ops):
    url = f"{server.url}/v1/msg/text"
    requests.post(url, json={"to": "内部员工群", "text": "a"}, headers=bearer(ops), timeout=10)
    requests.post(url, json={"to": "无此群", "text": "b"}, headers=bearer(ops), timeout=10)
    path = profile.home / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sent, refused = [json.loads(line) for line in path.read_text().splitlines()]
    assert sent["app"] == "ops"
    assert sent["result"] == "sent"
    assert sent["msg_id"]
    assert sent["to_name"] == "内部员工群"
    assert sent["kind"] == "text"
    assert sent["via"] == "rest"
    assert sent["remote"] == "127.0.0.1"
    assert sent["app_id"] == ops[0]
    assert refused["result"] == "refused"
    assert refused["error"]["code"] == 404


def test_custom_audit_sink(profile, ops):
    records = []
    with start_server(profile.paths, profile.config, "127.0.0.1", 0, audit=records.append) as h:
        r = requests.post(
            f"{h.url}/v1/msg/text",
            json={"to": "内部员工群", "text": "db"},
            headers=bearer(ops),
            timeout=10,
        )
        assert r.status_code == 200
    assert [r["result"] for r in records] == ["sent"]
    assert not (profile.home / "audit.jsonl").exists()


# --- apps store and CLI ----------------------------------------------------------------------


def test_apps_store_keeps_no_keys(profile):
    store = AppStore(profile.paths.apps)
    created = store.add("reports", allow_to=["日报*"])
    text = profile.paths.apps.read_text()
    assert created.app_key not in text
    assert stat.S_IMODE(profile.paths.apps.stat().st_mode) == 0o600
    assert [a.name for a in store.list()] == ["reports"]
    with pytest.raises(Exception, match="exists"):
        store.add("reports")
    with pytest.raises(Exception, match="invalid app name"):
        store.add("bad name!")
    store.revoke("reports")
    with pytest.raises(Exception, match="no app named"):
        store.revoke("reports")


def test_bearer_verification_is_fast(profile):
    """A key check is one HMAC: thousands per second, so auth never limits throughput."""
    from wxcli.server.auth import Authenticator, Credentials

    store = AppStore(profile.paths.apps)
    created = store.add("speed")
    auth = Authenticator(store)
    cred = Credentials(authorization=f"Bearer {created.app.app_id}:{created.app_key}")
    start = time.perf_counter()
    for _ in range(2000):
        auth.authenticate("GET", "/v1/contacts", b"", cred)
    per_check = (time.perf_counter() - start) / 2000
    assert per_check < 0.001


def cli(profile, *args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "wxcli", *args],
        env=profile.env(),
        capture_output=True,
        text=True,
        timeout=30,
        **kw,
    )


def test_apps_cli_and_curl_style_send(server, profile):
    p = cli(profile, "apps", "add", "ops", "--allow-to", "内部*", "--json")
    assert p.returncode == 0, p.stderr
    created = json.loads(p.stdout)
    assert created["app_key"]
    assert created["allow_to"] == ["内部*"]
    r = requests.post(
        f"{server.url}/v1/msg/text",
        json={"to": "内部员工群", "text": "from the printed key"},
        headers={"Authorization": f"Bearer {created['app_id']}:{created['app_key']}"},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    p = cli(profile, "apps", "list", "--json")
    listed = json.loads(p.stdout)
    assert listed["name"] == "ops"
    assert "app_key" not in listed
    p = cli(profile, "apps", "add", "ops")
    assert p.returncode == 2
    assert "exists" in p.stderr
    p = cli(profile, "apps", "revoke", "ops")
    assert p.returncode == 0
    p = cli(profile, "apps", "list")
    assert "No apps" in p.stderr


def test_serve_cli_starts_warns_and_stops_on_sigterm(profile):
    proc = subprocess.Popen(
        [sys.executable, "-m", "wxcli", "serve", "--host", "0.0.0.0", "--port", "0"],
        env=profile.env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        url = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if line.startswith("Serving on "):
                url = line.split()[2]
                break
        assert url, lines
        assert any("not loopback" in x for x in lines)
        port = url.rsplit(":", 1)[1]
        r = requests.get(f"http://127.0.0.1:{port}/v1/health", timeout=5)
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


def test_startup_warnings():
    from wxcli.config import defaults

    cfg = defaults()
    assert startup_warnings(cfg, "127.0.0.1") == []
    assert startup_warnings(cfg, "::1") == []
    assert any("not loopback" in w for w in startup_warnings(cfg, "0.0.0.0"))


def test_routes_table_is_what_the_server_answers(server, ops):
    for method, path in ROUTES:
        r = requests.request(method, server.url + path, headers=bearer(ops), timeout=10)
        assert r.status_code not in (404, 405) or r.json()["error"]["code"] not in (
            "not_found",
            "method_not_allowed",
        ), (method, path)


def test_port_in_use_is_a_clear_error(server, profile):
    from wxcli.errors import WxError

    with pytest.raises(WxError, match="cannot listen"):
        start_server(profile.paths, profile.config, "127.0.0.1", server.port)


def test_corrupt_session_file_is_503(server, profile, ops):
    profile.paths.session.write_text("{broken")
    r = requests.post(
        f"{server.url}/v1/msg/text",
        json={"to": "内部员工群", "text": "x"},
        headers=bearer(ops),
        timeout=5,
    )
    assert r.status_code == 503
    assert error_of(r)["code"] == "session_unreadable"
