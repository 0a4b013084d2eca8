"""Simulator faults: every kind, one-shot and persistent, on the endpoints clients meet them."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from tests.helpers.simulator import Web, login


@pytest.fixture
def web(sim):
    sim.control.settings(synccheck_hold=0.1)
    return login(sim)


def test_retcode_faults_answer_synccheck_with_that_code_once(sim, web):
    sim.control.settings(synccheck_hold=0.01)
    for kind, code in [("retcode", 1101), ("ret", 1102), ("retcode", 1100), ("retcode", 1205)]:
        sim.control.fault(kind, endpoint="synccheck", code=code)
        assert web.synccheck_raw().text == f'window.synccheck={{retcode:"{code}",selector:"0"}}'
        assert web.synccheck() == ("0", "0")


@pytest.mark.parametrize("code", [1, -14, 1100, 1101, 1102, 1205])
def test_ret_faults_hit_only_the_named_endpoint(sim, web, code):
    sim.control.fault("ret", endpoint="webwxsync", code=code)
    assert web.send_text("filehelper", "fine")["BaseResponse"]["Ret"] == 0
    failed = web.sync()
    assert failed["BaseResponse"] == {"Ret": code, "ErrMsg": ""}
    assert failed["AddMsgList"] == [] and failed["SyncKey"] == {"Count": 0, "List": []}
    assert web.sync()["BaseResponse"]["Ret"] == 0


def test_ret_faults_on_every_json_endpoint_use_its_error_form(sim, web):
    checks = {
        "webwxinit": lambda: web.post("webwxinit"),
        "webwxstatusnotify": web.status_notify,
        "webwxsendmsg": lambda: web.send_text("filehelper", "x"),
        "webwxbatchgetcontact": lambda: web.post("webwxbatchgetcontact", {"Count": 0, "List": []}),
        "webwxgetcontact": lambda: json.loads(
            web.http.get(web.url("webwxgetcontact"), params={"seq": 0}).content
        ),
        "webwxrevokemsg": lambda: web.post("webwxrevokemsg", {"SvrMsgId": "1"}),
    }
    for endpoint, call in checks.items():
        sim.control.fault("ret", endpoint=endpoint, code=1101)
        out = call()
        assert out["BaseResponse"]["Ret"] == 1101, endpoint
    assert sim.control.faults() == []
    assert web.status_notify()["MsgID"]


def test_persistent_and_counted_faults(sim, web):
    sim.control.fault("ret", endpoint="webwxsendmsg", code=1205, times=None)
    for _ in range(4):
        assert web.send_text("filehelper", "x")["BaseResponse"]["Ret"] == 1205
    assert [f["kind"] for f in sim.control.faults()] == ["ret"]
    sim.control.clear_faults()
    assert web.send_text("filehelper", "x")["BaseResponse"]["Ret"] == 0
    sim.control.fault("ret", endpoint="webwxsendmsg", code=1, times=2)
    rets = [web.send_text("filehelper", "x")["BaseResponse"]["Ret"] for _ in range(3)]
    assert rets == [1, 1, 0]


@pytest.mark.parametrize("status", [500, 502])
def test_http_error_faults(sim, web, status):
    sim.control.fault("http", endpoint="webwxsync", status=status)
    r = web.post_raw("webwxsync", {"BaseRequest": web.base_request(), "SyncKey": web.sync_key})
    assert r.status_code == status
    assert r.headers["Content-Type"] == "text/html"
    assert web.sync()["BaseResponse"]["Ret"] == 0


def test_delay_fault(sim, web):
    sim.control.fault("delay", endpoint="webwxsendmsg", seconds=0.15)
    t0 = time.monotonic()
    assert web.send_text("filehelper", "slow")["BaseResponse"]["Ret"] == 0
    assert time.monotonic() - t0 >= 0.15


def test_hang_outlasts_the_client_timeout_without_wedging_the_server(sim, web):
    sim.control.fault("hang", endpoint="synccheck", seconds=30)
    with pytest.raises(requests.exceptions.ReadTimeout):
        web.http.get(web.url("synccheck"), params={"sid": web.sid}, timeout=0.15)
    # the server goes on answering other connections meanwhile
    assert login(sim).sid
    assert sim.control.state()["logged_in"]
    t0 = time.monotonic()
    sim.stop()  # releases the hung handler at once
    assert time.monotonic() - t0 < 1


def test_hang_uses_the_hang_seconds_setting_and_then_drops(sim, web):
    sim.control.settings(hang_seconds=0.15)
    sim.control.fault("hang", endpoint="webwxsync")
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError):
        web.sync()
    assert 0.12 < time.monotonic() - t0 < 5


def test_drop_fault_closes_the_connection_without_an_answer(sim, web):
    sim.control.fault("drop", endpoint="webwxsync")
    with pytest.raises(requests.exceptions.ConnectionError):
        web.sync()
    assert web.sync()["BaseResponse"]["Ret"] == 0


def test_malformed_bodies(sim, web):
    sim.control.fault("malformed", endpoint="webwxsync", body="truncated")
    r = web.post_raw("webwxsync", {"BaseRequest": web.base_request(), "SyncKey": web.sync_key})
    with pytest.raises(ValueError):
        json.loads(r.content)
    assert r.text.startswith('{\n"BaseResponse"')
    sim.control.fault("malformed", endpoint="synccheck", body="js")
    text = web.synccheck_raw().text
    assert text.startswith("window.synccheck=") and "selector" not in text
    sim.control.fault("malformed", endpoint="login", body="js")
    fresh = Web(sim.base_url)
    fresh.jslogin()
    sim.control.settings(login_hold=0.05)
    assert fresh.poll()[0] == 0  # "window.code=;" has no code: ItChat treats it as 400
    sim.control.fault("malformed", endpoint="webwxsendmsg", body="empty")
    r = web.post_raw("webwxsendmsg", {"BaseRequest": web.base_request()})
    assert r.status_code == 200 and r.content == b""
    sim.control.fault("malformed", endpoint="webwxinit", body="garbage")
    assert web.post_raw("webwxinit", {"BaseRequest": web.base_request()}).text.startswith("<html>")
    sim.control.fault("malformed", endpoint="jslogin", body="js")
    assert "uuid = ;" in requests.get(f"{sim.base_url}/jslogin?appid=wx782c26e4c19acffb").text
    sim.control.fault("malformed", endpoint="webwxnewloginpage", body="xml")
    second = Web(sim.base_url)
    second.jslogin()
    sim.control.scan(second.uuid)
    sim.control.confirm(second.uuid)
    second.wait_for(200)
    r = second.http.get(second.redirect_uri, allow_redirects=False)
    assert r.text == "<error><ret>0</ret><message></message><skey>@crypt_"


def test_spin_answers_a_selector_while_sync_brings_nothing(sim, web):
    sim.control.settings(synccheck_hold=5)
    key = web.sync_key
    sim.control.fault("spin", selector="2", times=None)
    for _ in range(3):
        t0 = time.monotonic()
        assert web.synccheck() == ("0", "2")
        assert time.monotonic() - t0 < 1
        out = web.sync()
        assert out["AddMsgList"] == [] and out["SyncKey"]["List"][0] == key["List"][0]
    sim.control.fault("spin", endpoint="synccheck", selector="7")
    sim.control.clear_faults()
    sim.control.fault("spin", endpoint="synccheck", selector="7")
    assert web.synccheck() == ("0", "7")
    sim.control.settings(synccheck_hold=0.1)
    assert web.synccheck() == ("0", "0")


def test_duplicate_delivers_the_next_batch_twice(sim, web):
    sim.control.fault("duplicate", endpoint="webwxsync")
    assert web.sync()["AddMsgList"] == []  # an empty batch does not use the fault up
    ids = sim.control.messages([{"group": "内部员工群", "sender": "客服-小王", "content": "a"}] * 3)
    first = web.sync()
    second = web.sync()
    assert [m["MsgId"] for m in first["AddMsgList"]] == ids
    assert [m["MsgId"] for m in second["AddMsgList"]] == ids
    assert first["SyncKey"]["List"][0]["Val"] < second["SyncKey"]["List"][0]["Val"]
    assert web.sync()["AddMsgList"] == []


@pytest.mark.parametrize("code", [1100, 1101, 1102])
def test_logout_fault_ends_the_session_with_its_code(sim, web, code):
    sim.control.fault("logout", code=code)
    assert web.synccheck() == (str(code), "0")
    assert web.sync()["BaseResponse"]["Ret"] == code
    assert web.post("webwxinit")["BaseResponse"]["Ret"] == code
    state = sim.control.state()
    assert not state["logged_in"] and state["session"]["dead_code"] == code
    sim.control.logout(1100)  # the control route: already dead, the first code stays
    assert web.synccheck() == (str(code), "0")


def test_expire_fault_and_the_control_route_expire_the_qr(sim):
    web = Web(sim.base_url)
    web.jslogin()
    sim.control.fault("expire")
    assert web.poll()[0] == 400
    web.jslogin()
    sim.control.expire_qr()
    assert web.poll()[0] == 400


def test_faults_fire_on_login_endpoints_too(sim):
    sim.control.fault("http", endpoint="jslogin", status=502)
    assert requests.get(f"{sim.base_url}/jslogin?appid=wx782c26e4c19acffb").status_code == 502
    sim.control.fault("drop", endpoint="qrcode")
    web = Web(sim.base_url)
    web.jslogin()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{sim.base_url}/qrcode/{web.uuid}")
    assert requests.get(f"{sim.base_url}/qrcode/{web.uuid}").status_code == 200


def test_unknown_fault_kinds_are_refused(sim):
    with pytest.raises(RuntimeError, match="unknown fault kind"):
        sim.control.fault("explode")


def test_a_hang_on_a_long_poll_does_not_block_other_requests(sim, web):
    sim.control.fault("hang", endpoint="synccheck", seconds=30)
    errors: list[Exception] = []

    def hung_call() -> None:
        try:
            web.http.get(web.url("synccheck"), timeout=2)
        except requests.exceptions.RequestException as exc:
            errors.append(exc)

    hung = threading.Thread(target=hung_call, daemon=True)
    hung.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    assert web.send_text("filehelper", "still here")["BaseResponse"]["Ret"] == 0
    assert time.monotonic() - t0 < 1
    sim.stop()
    hung.join(3)
    assert not hung.is_alive()
    assert len(errors) == 1  # dropped at stop(), not answered
