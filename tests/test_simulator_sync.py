"""Simulator synccheck and webwxsync (protocol §5, §6): texts, holds, key advance, re-delivery,
retention, the JSON layouts."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.simulator import Web, login
from wxcli.simulator import wire

SYNC_KEYS = [
    "BaseResponse",
    "AddMsgCount",
    "AddMsgList",
    "ModContactCount",
    "ModContactList",
    "DelContactCount",
    "DelContactList",
    "ModChatRoomMemberCount",
    "ModChatRoomMemberList",
    "Profile",
    "ContinueFlag",
    "SyncKey",
    "SKey",
    "SyncCheckKey",
]
MOD_KEYS = [
    "UserName",
    "NickName",
    "Sex",
    "HeadImgUpdateFlag",
    "ContactType",
    "Alias",
    "ChatRoomOwner",
    "HeadImgUrl",
    "ContactFlag",
    "MemberCount",
    "MemberList",
    "HideInputBarFlag",
    "Signature",
    "VerifyFlag",
    "RemarkName",
    "Statues",
    "AttrStatus",
    "Province",
    "City",
    "SnsFlag",
    "KeyWord",
]


def text_of(msg: dict) -> str:
    return msg["Content"].split(":<br/>", 1)[-1]


def inject(sim, n: int, group: str = "内部员工群", sender: str = "客服-小王") -> list[str]:
    return sim.control.messages(
        [{"group": group, "sender": sender, "content": f"m{i}"} for i in range(n)]
    )


@pytest.fixture
def web(sim):
    sim.control.settings(synccheck_hold=0.15)
    return login(sim)


# -- synccheck ---------------------------------------------------------------------------------


def test_idle_synccheck_holds_then_answers_the_exact_text(sim, web):
    t0 = time.monotonic()
    r = web.synccheck_raw()
    assert 0.12 <= time.monotonic() - t0 < 2
    assert r.text == 'window.synccheck={retcode:"0",selector:"0"}'
    assert r.headers["Content-Type"] == "text/javascript"
    assert r.headers["Access-Control-Allow-Origin"] == "*"


def test_a_waiting_message_answers_at_once_and_repeats_until_synced(sim, web):
    sim.control.settings(synccheck_hold=5)
    inject(sim, 1)
    for _ in range(3):  # same key, same answer: selector 2 until webwxsync moves the key
        t0 = time.monotonic()
        assert web.synccheck_raw().text == 'window.synccheck={retcode:"0",selector:"2"}'
        assert time.monotonic() - t0 < 1
    assert [text_of(m) for m in web.sync()["AddMsgList"]] == ["m0"]
    sim.control.settings(synccheck_hold=0.1)
    assert web.synccheck() == ("0", "0")


def test_a_held_synccheck_wakes_when_a_message_arrives(sim, web):
    sim.control.settings(synccheck_hold=5)
    out = []
    thread = threading.Thread(target=lambda: out.append((web.synccheck(), time.monotonic())))
    thread.start()
    time.sleep(0.2)
    sent = time.monotonic()
    inject(sim, 1)
    thread.join(5)
    assert out[0][0] == ("0", "2")
    assert out[0][1] - sent < 1


def test_synccheck_enforces_cookies_and_credentials(sim, web):
    sim.control.settings(synccheck_hold=0.05)
    assert web.synccheck_raw(skey="").text.endswith('selector:"0"}')  # itchat-uos: skey=""
    bare = requests.get(web.url("synccheck"), params=web.synccheck_raw().request.url.split("?")[1])
    assert bare.text == 'window.synccheck={retcode:"1102",selector:"0"}'
    assert web.synccheck_raw(sid="A" * 16).text.startswith('window.synccheck={retcode:"1101"')
    assert web.synccheck_raw(uin=1).text.startswith('window.synccheck={retcode:"1100"')
    assert web.synccheck_raw(skey="@crypt_1_2").text.startswith('window.synccheck={retcode:"1100"')
    web.http.cookies.set("wxsid", "B" * 16, domain="127.0.0.1", path="/")
    assert web.synccheck_raw().text.startswith('window.synccheck={retcode:"1102"')


def test_contact_changes_alone_select_4(sim, web):
    sim.control.add_contacts(friends=[{"nickname": "新朋友"}], announce=False)
    assert web.synccheck() == ("0", "4")
    out = web.sync()
    assert out["AddMsgList"] == [] and out["ModContactCount"] == 1
    mod = out["ModContactList"][0]
    assert list(mod) == MOD_KEYS
    assert mod["NickName"] == "新朋友" and mod["ContactFlag"] & 1
    sim.control.remove_contact("新朋友")
    assert web.synccheck() == ("0", "4")
    out = web.sync()
    assert out["DelContactList"] == [{"UserName": mod["UserName"], "ContactFlag": 0}]
    assert out["DelContactCount"] == 1


# -- webwxsync ---------------------------------------------------------------------------------


def test_sync_answers_every_field_in_order_and_advances_both_keys(sim, web):
    start = {i["Key"]: i["Val"] for i in web.sync_key["List"]}
    ids = inject(sim, 3)
    r = web.post_raw(
        "webwxsync",
        {"BaseRequest": web.base_request(), "SyncKey": web.sync_key, "rr": ~int(time.time())},
        sid=web.sid,
        skey=web.skey,
    )
    out = json.loads(r.content)
    assert list(out) == SYNC_KEYS
    assert out["AddMsgCount"] == 3 and [m["MsgId"] for m in out["AddMsgList"]] == ids
    assert out["SyncKey"] == out["SyncCheckKey"]
    keys = [i["Key"] for i in out["SyncKey"]["List"]]
    assert keys == [1, 2, 3, 11, 201, 1000, 1001] and out["SyncKey"]["Count"] == 7
    vals = {i["Key"]: i["Val"] for i in out["SyncKey"]["List"]}
    assert vals[1] == start[1] + 3 and vals[2] == start[2] + 3
    assert vals[1000] == start[1000]
    assert abs(vals[201] - time.time()) < 5
    assert out["SKey"] == "" and out["ContinueFlag"] == 0
    cookies = {h.split("=", 1)[0]: h for h in r.raw.headers.getlist("Set-Cookie")}
    assert cookies["wxloadtime"].startswith(f"wxloadtime={start[1000]}_expired")
    assert {"wxpluginkey", "wxuin", "wxsid", "webwx_data_ticket"} <= cookies.keys()
    # the official layout: one key per line, nested objects closed by a lone comma line
    assert r.text.startswith(
        '{\n"BaseResponse": {\n"Ret": 0,\n"ErrMsg": ""\n}\n,\n"AddMsgCount": 3,\n'
        '"AddMsgList": [{\n"MsgId": "'
    )
    assert "\n}\n,{\n" in r.text
    assert '"List": [{\n"Key": 1,\n"Val": ' in r.text


def test_wxbot_style_sync_with_the_synccheck_key_works_too(sim, web):
    inject(sim, 1)
    out = web.sync()
    inject(sim, 1)
    again = web.sync(key=out["SyncCheckKey"])
    assert [text_of(m) for m in again["AddMsgList"]] == ["m0"]


def test_a_stale_key_gets_the_same_messages_again(sim, web):
    ids = inject(sim, 5)
    old = web.sync_key
    first = web.sync(commit=False)
    again = web.sync(key=old)
    assert [m["MsgId"] for m in first["AddMsgList"]] == ids
    assert again["AddMsgList"] == first["AddMsgList"]
    assert again["SyncKey"] == first["SyncKey"]
    web.sync_key = first["SyncKey"]
    assert web.sync()["AddMsgList"] == []


def test_a_client_that_restarts_from_an_older_saved_key_gets_the_messages_again(sim, web):
    committed = web.sync_key  # what the client saved to disk
    ids = inject(sim, 10)
    assert [m["MsgId"] for m in web.sync()["AddMsgList"]] == ids
    assert web.sync()["AddMsgList"] == []  # the server has now seen the newer key
    assert sim.control.state()["session"]["acked"] == 10
    # crash before saving the newer key; restart from the saved one
    restarted = Web(sim.base_url)
    restarted.http.cookies = web.http.cookies
    restarted.skey, restarted.sid, restarted.uin = web.skey, web.sid, web.uin
    restarted.sync_key = committed
    assert restarted.synccheck(key=committed) == ("0", "2")
    assert [m["MsgId"] for m in restarted.drain()] == ids


def test_events_behind_the_acknowledged_key_are_pruned_after_the_retention(sim, web):
    sim.control.settings(retention=3, sync_batch=1000)
    committed = web.sync_key
    ids = inject(sim, 600)
    assert len(web.sync()["AddMsgList"]) == 600
    web.sync()  # acknowledges all 600
    events = sim.engine.session.events
    assert len(events) < 300
    replay = web.sync(key=committed)["AddMsgList"]
    assert [m["MsgId"] for m in replay] == ids[-len(replay) :]
    assert 3 <= len(replay) < 300


def test_sync_hands_out_at_most_sync_batch_and_the_selector_stays_until_drained(sim, web):
    sim.control.settings(sync_batch=7)
    ids = inject(sim, 20)
    sizes = []
    got = []
    while web.synccheck() == ("0", "2"):
        out = web.sync()
        sizes.append(out["AddMsgCount"])
        got += [m["MsgId"] for m in out["AddMsgList"]]
    assert sizes == [7, 7, 6]
    assert got == ids


def test_a_key_the_session_never_issued_fails_the_sync(sim, web):
    future = {"Count": 1, "List": [{"Key": 1, "Val": 10**12}]}
    out = web.sync(key=future)
    assert out["BaseResponse"]["Ret"] == -1
    assert list(out) == SYNC_KEYS
    assert out["SyncKey"] == {"Count": 0, "List": []}


def test_compact_style_is_the_captured_compact_form(sim, web):
    sim.control.settings(json_style="compact")
    inject(sim, 2)
    r = web.post_raw(
        "webwxsync", {"BaseRequest": web.base_request(), "SyncKey": web.sync_key, "rr": 1}
    )
    assert "\n" not in r.text
    assert r.text.startswith('{"BaseResponse": {"Ret": 0,"ErrMsg": ""},"AddMsgCount": 2,')
    assert json.loads(r.content)["AddMsgCount"] == 2
    out = web.send_text("filehelper", "hi")
    assert out["BaseResponse"] == {"Ret": 0, "ErrMsg": ""}


# -- the JSON layout ---------------------------------------------------------------------------


def reference_lines(obj) -> str:
    """The layout of the raw captures, written the slow, obvious way."""
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [
            f"{json.dumps(k, ensure_ascii=False)}: {reference_lines(v)}" for k, v in obj.items()
        ]
        return "{\n" + ",\n".join(items) + "\n}\n"
    if isinstance(obj, list):
        return "[" + ",".join(reference_lines(v) for v in obj) + "]"
    return json.dumps(obj, ensure_ascii=False)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab{}[],:"\\\n\t <>&/😀中\u2005'), max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6))
def test_wechat_json_matches_the_reference_layout(obj):
    lines = wire.wechat_json(obj)
    assert lines.decode("utf-8") == reference_lines(obj)
    assert json.loads(lines) == obj
    compact = wire.wechat_json(obj, "compact")
    assert compact.decode("utf-8") == json.dumps(obj, ensure_ascii=False, separators=(",", ": "))


def test_pre_encoded_messages_splice_in_byte_for_byte():
    msg = wire.message_object(
        msg_id="6469713913745187012",
        from_user="@@" + "a" * 64,
        to_user="@" + "b" * 32,
        msg_type=1,
        content=wire.escape_text("a {b} 😀\nc"),
        create_time=1546217453,
    )
    payload = {"BaseResponse": wire.base_response(), "AddMsgCount": 2, "AddMsgList": [msg, msg]}
    raw = {**payload, "AddMsgList": [wire.RawJSON(wire.encode_lines(msg))] * 2}
    assert wire.wechat_json(raw) == wire.wechat_json(payload)
    assert wire.wechat_json(raw).decode() == reference_lines(payload)
    assert wire.wechat_json(raw, "compact") == wire.wechat_json(payload, "compact")
