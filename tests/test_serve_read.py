"""The read API of ``wxcli serve`` over real sockets, on SQLite and MariaDB: pages of messages
with opaque cursors, long polls that wake when ``watch`` stores a message, chats with former
names, stats rows equal to ``wxcli stats --format json``, per-app scopes and allow-lists that
hide everything outside them, and hostile parameters answered 4xx (never 5xx)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests

from tests.helpers.cli import run_cli
from tests.helpers.known_archive import G1, build_archive, message
from tests.helpers.send import logged_in
from wxcli.server.app import RestApp, start_server
from wxcli.server.auth import AppStore, signed_headers
from wxcli.server.read import decode_cursor, encode_cursor
from wxcli.store.archive import Archive, Ingestor

PERIOD = {"since": "2026-11-01", "until": "2026-11-05"}


class Ctx:
    url: str
    db: str
    apps: dict[str, dict[str, str]]

    def get(self, path: str, app: str = "reader", **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, headers=self.apps[app], timeout=30)


def _bearer(created: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}


@pytest.fixture
def api(sim, wx_home, db_url, engines):
    build_archive(db_url, wx_home, engines).close()
    profile = logged_in(
        sim,
        wx_home,
        database={"url": db_url},
        serve={"poll_seconds": 0.05, "max_wait_seconds": 5, "threads": 4},
    )
    store = AppStore(profile.paths.apps)
    ctx = Ctx()
    ctx.db = db_url
    ctx.apps = {
        "reader": _bearer(store.add("reader", scopes=["read"])),
        "both": _bearer(store.add("both", scopes=["read", "send"])),
        "sender": _bearer(store.add("sender")),
        "after_sales": _bearer(store.add("after_sales", ["售后*"], scopes=["read"])),
        "nobody": _bearer(store.add("nobody", ["不存在*"], scopes=["read"])),
        "none": {},
    }
    ctx.keys = {"reader": store.list()[0]}
    handle = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    ctx.url = handle.url
    ctx.profile = profile
    yield ctx
    handle.stop()


def _walk_back(ctx: Ctx, app: str = "reader", **params: Any) -> list[dict[str, Any]]:
    """Every page from the newest back to the first, oldest message first."""
    pages = []
    page = ctx.get("/v1/messages", app, limit=3, **params).json()
    pages.append(page["messages"])
    while page["previous"]:
        page = ctx.get("/v1/messages", app, limit=3, before=page["previous"], **params).json()
        pages.append(page["messages"])
    return [m for p in reversed(pages) for m in p]


def test_pages_walk_back_to_the_first_message_and_forward_from_a_cursor(api):
    first = api.get("/v1/messages", limit=3)
    assert first.status_code == 200, first.text
    body = first.json()
    assert [m["msg_id"] for m in body["messages"]] == ["1008", "1009", "1010"]  # newest last
    assert body["previous"] and body["cursor"]
    everything = _walk_back(api)
    assert len(everything) == 12
    assert [m["seq"] for m in everything] == sorted(m["seq"] for m in everything)
    m = everything[0]
    assert m["type"] == "message" and m["chat_id"] and m["created_at"].startswith("2026-")
    # forward from the start of the archive, in pages, reaches the same 12
    start = encode_cursor(everything[0]["seq"] - 1)
    seen, cursor = [], start
    while True:
        page = api.get("/v1/messages", cursor=cursor, limit=5).json()
        seen += page["messages"]
        cursor = page["cursor"]
        if not page["messages"]:
            break
    assert [x["msg_id"] for x in seen] == [x["msg_id"] for x in everything]


def test_filters_are_those_of_history(api):
    got = api.get("/v1/messages", chat="售后*", kind="text", limit=50).json()["messages"]
    assert {m["msg_id"] for m in got} == {"1005", "1007"}  # the old and the new name match
    got = api.get("/v1/messages", **{"from": "李四"}, limit=50).json()["messages"]
    assert {m["sender"] for m in got} == {"李四"} and len(got) == 4
    got = api.get("/v1/messages", exclude_self="true", limit=50).json()["messages"]
    assert not any(m["is_self"] for m in got)
    got = api.get("/v1/messages", text="退款", since="2026-11-02", limit=50).json()["messages"]
    assert {m["msg_id"] for m in got} == {"1001", "1003", "1005", "1007"}
    two = api.get("/v1/messages", kind=["image", "system"], limit=50).json()["messages"]
    assert sorted(m["kind"] for m in two) == ["image", "system"]


def test_a_long_poll_wakes_when_a_message_is_stored(api, wx_home):
    cursor = api.get("/v1/messages", limit=1).json()["cursor"]
    got: dict[str, Any] = {}

    def poll() -> None:
        got["resp"] = api.get("/v1/messages", cursor=cursor, wait=5, chat="客服*")
        got["back"] = time.monotonic()

    t = threading.Thread(target=poll)
    t.start()
    time.sleep(0.3)
    a = Archive(api.db, wx_home)
    try:
        ing = Ingestor(a, a.account_id(4242, "客服主号"), "sid-1", self_user="@self")
        ing.store([message(50, G1, "@u1", "张三", "还没发货吗", "11-06 01:00")], None)
        stored = time.monotonic()
    finally:
        a.close()
    t.join(10)
    body = got["resp"].json()
    assert [m["msg_id"] for m in body["messages"]] == ["1050"]
    # held until the message was stored, then answered within a few polls (0.05 s apart)
    assert stored < got["back"] < stored + 2
    # nothing new: the poll returns empty after `wait`, with a cursor to go on from
    started = time.monotonic()
    again = api.get("/v1/messages", cursor=body["cursor"], wait=1).json()
    assert again["messages"] == [] and 0.9 < time.monotonic() - started < 3
    assert decode_cursor(again["cursor"]) >= decode_cursor(body["cursor"])


def test_long_polls_are_capped_so_sends_and_health_keep_a_thread(api):
    cursor = api.get("/v1/messages", limit=1).json()["cursor"]
    holders = [
        threading.Thread(
            target=api.get, args=("/v1/messages",), kwargs={"cursor": cursor, "wait": 3}
        )
        for _ in range(2)  # threads = 4: two may wait
    ]
    for t in holders:
        t.start()
    time.sleep(0.5)
    third = api.get("/v1/messages", cursor=cursor, wait=3)
    assert third.status_code == 429 and third.headers["Retry-After"] == "1"
    assert third.json()["error"]["code"] == "too_many_waits"
    assert requests.get(api.url + "/v1/health", timeout=2).status_code in (200, 503)
    assert api.get("/v1/chats").status_code == 200
    for t in holders:
        t.join(10)


def test_chats_have_former_names_and_member_counts(api):
    chats = {c["name"]: c for c in api.get("/v1/chats").json()["chats"]}
    assert chats["售后服务群"]["former_names"] == ["售后群"]
    assert chats["客服一群"]["members"] == 4 and chats["客服一群"]["kind"] == "group"
    assert chats["VIP-孙总"]["members"] is None
    only = api.get("/v1/chats", q="售后群").json()["chats"]  # a former name finds it too
    assert [c["name"] for c in only] == ["售后服务群"]
    assert api.get("/v1/chats", kind="bogus").status_code == 400


@pytest.mark.parametrize(
    ("which", "args", "params"),
    [
        ("words", [], {}),
        ("words", ["--by", "chat"], {"by": "chat"}),
        ("words", ["--keywords"], {"keywords": "1"}),
        ("activity", [], {}),
        ("activity", ["--view", "hours"], {"view": "hours"}),
        ("activity", ["--view", "chats"], {"view": "chats"}),
        ("speakers", [], {}),
        ("speakers", ["--overall", "--no-lurkers"], {"overall": "1", "no_lurkers": "1"}),
        ("sentiment", [], {}),
        ("sentiment", ["--view", "negatives"], {"view": "negatives"}),
        ("sentiment", ["--view", "chat-days"], {"view": "chat-days"}),
    ],
)
def test_stats_rows_are_what_the_cli_prints(api, capsys, which, args, params):
    resp = api.get(f"/v1/stats/{which}", chat="*", **PERIOD, **params)
    assert resp.status_code == 200, resp.text
    code, out, err = run_cli(
        capsys,
        "stats", which, *args, "--chat", "*", "--since", PERIOD["since"],
        "--until", PERIOD["until"], "--format", "json", "--db", api.db,
    )  # fmt: skip
    assert code == 0, err
    want = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert resp.json()["rows"] == want
    assert want  # the archive has something for every view


def test_an_allow_list_limits_reading_and_hides_the_rest(api):
    got = _walk_back(api, "after_sales")
    assert {m["chat"] for m in got} == {"售后群", "售后服务群"} and len(got) == 3
    assert api.get("/v1/messages", "after_sales", chat="客服*").json()["messages"] == []
    chats = api.get("/v1/chats", "after_sales").json()["chats"]
    assert [c["name"] for c in chats] == ["售后服务群"]
    # a chat outside the list answers as a chat that does not exist, naming nothing else
    outside = api.get("/v1/stats/words", "after_sales", chat="客服一群", **PERIOD)
    inside_missing = api.get("/v1/stats/words", "after_sales", chat="没有这个群", **PERIOD)
    assert outside.status_code == inside_missing.status_code == 404
    assert "客服一群" not in outside.json()["error"]["message"].replace("'客服一群'", "")
    assert "孙总" not in outside.text and "孙总" not in inside_missing.text
    words = api.get("/v1/stats/words", "after_sales", **PERIOD).json()["rows"]
    assert {w["word"] for w in words} <= {"快递", "破损", "退款", "看看", "订单号"}
    speakers = api.get("/v1/stats/speakers", "after_sales", **PERIOD).json()["rows"]
    assert {r["chat"] for r in speakers} == {"售后服务群"}
    # an app whose list matches no chat sees an empty archive
    assert api.get("/v1/messages", "nobody").json()["messages"] == []
    assert api.get("/v1/chats", "nobody").json()["chats"] == []
    assert api.get("/v1/stats/words", "nobody", **PERIOD).status_code == 404


def test_scopes_least_privilege(api):
    denied = api.get("/v1/messages", "sender")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "scope_denied"
    assert api.get("/v1/stats/words", "sender").status_code == 403
    send = requests.post(
        api.url + "/v1/msg/text",
        json={"to": "filehelper", "text": "hi"},
        headers=api.apps["reader"],
        timeout=10,
    )
    assert send.status_code == 403 and "may not send" in send.json()["error"]["message"]
    ok = requests.post(
        api.url + "/v1/msg/text",
        json={"to": "filehelper", "text": "hi"},
        headers=api.apps["both"],
        timeout=10,
    )
    assert ok.status_code == 200, ok.text
    assert api.get("/v1/messages", "both").status_code == 200
    assert api.get("/v1/messages", "none").status_code == 401


def test_apps_stored_before_scopes_may_only_send(api):
    path = api.profile.paths.apps
    data = json.loads(path.read_text())
    for a in data["apps"]:
        a.pop("scopes", None)
    path.write_text(json.dumps(data))
    assert api.get("/v1/messages", "reader").status_code == 403


def test_signed_reads_cover_the_query_string(api):
    store = AppStore(api.profile.paths.apps)
    created = store.add("signer", scopes=["read"])
    path = "/v1/messages?limit=2&chat=%E5%94%AE%E5%90%8E%2A"
    headers = signed_headers(created.app.app_id, created.app_key, "GET", path)
    resp = requests.get(api.url + path, headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["messages"]) == 2
    tampered = signed_headers(created.app.app_id, created.app_key, "GET", path)
    resp = requests.get(api.url + path.replace("limit=2", "limit=3"), headers=tampered, timeout=10)
    assert resp.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "nope"},
        {"cursor": encode_cursor(1) + "x"},
        {"before": "bTE6LTE"},  # "m1:-1"
        {"cursor": "A" * 5000},
        {"limit": "0"},
        {"limit": "501"},
        {"limit": "²"},
        {"limit": "1e3"},
        {"wait": "6"},  # over [serve] max_wait_seconds
        {"wait": "-1"},
        {"since": "99999999999999999d"},
        {"until": "10000-01-01"},
        {"since": "yesterday-ish"},
        {"kind": "bogus"},
        {"exclude_self": "maybe"},
        {"cursor": encode_cursor(1), "before": encode_cursor(5)},
    ],
)
def test_bad_parameters_are_400_with_a_json_error(api, params):
    resp = api.get("/v1/messages", **params)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] in ("bad_cursor", "bad_parameter")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/stats/words", {"top": "0"}),
        ("/v1/stats/words", {"by": "mood"}),
        ("/v1/stats/words", {"by": "chat", "keywords": "1"}),
        ("/v1/stats/activity", {"view": "weeks"}),
        ("/v1/stats/sentiment", {"since": "2026-11-05", "until": "2026-11-01"}),
        ("/v1/stats/sentiment", {"since": "99999999999999999d"}),
    ],
)
def test_bad_stats_parameters_are_400(api, path, params):
    resp = api.get(path, **params)
    assert resp.status_code == 400, resp.text


def test_hostile_text_comes_back_exact(api, wx_home):
    hostile = "\x1b]52;c;ZXZpbA==\x07\u202e\x00 " + "长" * 100_000 + " 😡"
    a = Archive(api.db, wx_home)
    try:
        ing = Ingestor(a, a.account_id(4242, "客服主号"), "sid-1", self_user="@self")
        ing.store([message(60, G1, "@u1", "\x1b[2J张三", hostile, "11-06 02:00")], None)
    finally:
        a.close()
    got = api.get("/v1/messages", limit=1).json()["messages"][0]
    assert got["text"] == hostile and got["sender"] == "\x1b[2J张三"
    weird = api.get("/v1/messages", chat="[", text="%_\\")
    assert weird.status_code == 200 and weird.json()["messages"] == []


def test_no_archive_yet_is_409(sim, wx_home):
    profile = logged_in(sim, wx_home)
    created = AppStore(profile.paths.apps).add("r", scopes=["read"])
    with start_server(profile.paths, profile.config, "127.0.0.1", 0) as handle:
        resp = requests.get(handle.url + "/v1/messages", headers=_bearer(created), timeout=10)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "no_archive"
    assert not profile.paths.default_db.exists()  # reading never creates an archive


def test_an_unreachable_database_is_503_with_retry_after(sim, wx_home):
    profile = logged_in(
        sim, wx_home, database={"url": "mysql://root@127.0.0.1:1/nothing", "connect_timeout": 2}
    )
    created = AppStore(profile.paths.apps).add("r", scopes=["read"])
    app = RestApp(profile.paths, profile.config)
    with start_server(profile.paths, profile.config, "127.0.0.1", 0, app=app) as handle:
        resp = requests.get(handle.url + "/v1/chats", headers=_bearer(created), timeout=10)
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] == "5"
        assert resp.json()["error"]["code"] == "archive_unavailable"
        assert "mysql://" not in resp.text


@pytest.mark.mysql
def test_reads_survive_a_database_restart(sim, wx_home, mysql_url, engines):
    """The connection each worker thread holds dies with the database: the read in flight is
    a 503 with Retry-After, and the next one after the database is back is answered again."""
    from tests.helpers.db import MYSQL_HOST, MYSQL_PORT
    from tests.helpers.tcpproxy import TcpProxy

    build_archive(mysql_url, wx_home, engines).close()
    with TcpProxy(MYSQL_HOST, MYSQL_PORT) as proxy:
        url = f"mysql://root@127.0.0.1:{proxy.port}/{mysql_url.rsplit('/', 1)[1]}"
        profile = logged_in(
            sim, wx_home, database={"url": url, "connect_timeout": 2}, serve={"threads": 1}
        )
        created = AppStore(profile.paths.apps).add("r", scopes=["read"])
        with start_server(profile.paths, profile.config, "127.0.0.1", 0) as handle:

            def get() -> requests.Response:
                return requests.get(handle.url + "/v1/chats", headers=_bearer(created), timeout=10)

            assert get().status_code == 200
            proxy.cut()  # as in a restart: the held connection dies, new ones are refused
            down = get()
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "archive_unavailable"
            assert down.headers["Retry-After"] == "5"
            proxy.restore()
            back = get()
            assert back.status_code == 200, back.text
            assert {c["name"] for c in back.json()["chats"]} >= {"客服一群", "售后服务群"}
