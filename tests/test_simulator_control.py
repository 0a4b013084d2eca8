"""The simulator's ``/_sim/`` control API and its Python client, scenarios, traffic, floods, and
the server's lifecycle (prompt stop, no leaked threads, restart, thread safety)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import fields

import pytest
import requests

from tests.helpers.simulator import Web, decode, login
from wxcli.simulator import Settings, SimControl, Simulator


def call(sim, method: str, route: str, body=None, **params):
    r = requests.request(method, f"{sim.base_url}/_sim/{route}", json=body, params=params)
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    return r.status_code, r.json()


def test_state_settings_and_reset_routes(sim):
    status, state = call(sim, "GET", "state")
    assert status == 200
    assert {"logged_in", "account", "session", "logins", "syncs", "friends", "groups", "qr"} <= (
        state.keys()
    )
    assert state["logged_in"] is False and state["account"]["nickname"] == "云帆客服中心"
    status, values = call(sim, "GET", "settings")
    assert list(values) == [f.name for f in fields(Settings)]
    status, values = call(sim, "POST", "settings", {"sync_batch": 5, "auto_confirm": True})
    assert values["sync_batch"] == 5 and values["auto_confirm"] is True
    assert call(sim, "POST", "settings", {"no_such": 1})[0] == 400
    assert call(sim, "POST", "settings", {"sync_batch": "many"})[0] == 400
    web = login(sim)
    assert call(sim, "GET", "state")[1]["logged_in"] is True
    assert call(sim, "POST", "reset", {}) == (200, {"ok": True})
    state = call(sim, "GET", "state")[1]
    assert state["session"] is None and state["settings"]["sync_batch"] == 5
    assert web.synccheck_raw().text.startswith('window.synccheck={retcode:"1101"')
    call(sim, "POST", "reset", {"settings": True})
    assert call(sim, "GET", "settings")[1]["sync_batch"] == Settings().sync_batch


def test_phone_routes(sim):
    assert call(sim, "POST", "login/scan", {})[0] == 400  # no QR shown yet
    web = Web(sim.base_url)
    uuid = web.jslogin()
    status, qr = call(sim, "GET", "login/qr")
    assert qr == {"uuid": uuid, "state": "waiting", "url": f"{sim.base_url}/l/{uuid}"}
    assert call(sim, "POST", "login/scan", {}) == (200, {"uuid": uuid, "state": "scanned"})
    assert call(sim, "POST", "login/cancel", {"uuid": uuid})[1]["state"] == "waiting"
    assert call(sim, "POST", "login/confirm", {"uuid": uuid})[1]["state"] == "confirmed"
    assert web.poll()[0] == 200
    assert call(sim, "POST", "login/expire", {}) == (200, {"ok": True})
    assert call(sim, "POST", "auto-confirm", {"enabled": True}) == (200, {"enabled": True})
    assert sim.control.auto_confirm(False) == {"enabled": False}
    web.open_session()
    web.do_init()
    assert call(sim, "POST", "logout", {"code": 1102}) == (200, {"ok": True})
    assert web.synccheck() == ("1102", "0")


def test_world_routes(sim):
    web = login(sim)
    status, added = call(
        sim,
        "POST",
        "contacts",
        {
            "friends": ["新朋友", {"nickname": "老客户", "remark": "VIP老客户"}],
            "officials": ["云帆订阅号"],
            "groups": [{"name": "新群", "members": ["新朋友", "路人"], "owner": "新朋友"}],
            "announce": False,
        },
    )
    assert status == 200
    assert [len(added[k]) for k in ("friends", "officials", "groups")] == [2, 1, 1]
    assert added["groups"][0].endswith("@chatroom")
    assert call(sim, "POST", "contacts/update", {"name": "老客户", "signature": "hi"})[1] == {
        "id": added["friends"][1]
    }
    assert call(sim, "POST", "groups/rename", {"group": "新群", "new_name": "新群2"})[0] == 200
    status, out = call(
        sim, "POST", "groups/members/add", {"group": "新群2", "members": ["甲", {"nickname": "乙"}]}
    )
    assert len(out["ids"]) == 2
    status, out = call(
        sim, "POST", "groups/members/remove", {"group": "新群2", "members": ["甲"], "by": "self"}
    )
    assert len(out["ids"]) == 1
    assert call(sim, "POST", "contacts/remove", {"name": "新朋友"})[1] == {
        "id": added["friends"][0]
    }
    assert call(sim, "POST", "contacts/remove", {"name": "nobody"})[0] == 400
    assert call(sim, "POST", "groups/rename", {"group": "nope", "new_name": "x"})[0] == 400
    book = {c["NickName"]: c for c in web.contacts()}
    assert "新群2" in book and "云帆订阅号" in book and "新朋友" not in book
    assert book["老客户"]["Signature"] == "hi" and book["老客户"]["RemarkName"] == "VIP老客户"


def test_message_routes(sim):
    web = login(sim)
    status, out = call(
        sim, "POST", "messages", {"group": "内部员工群", "sender": "客服-小王", "content": "1"}
    )
    assert status == 200 and out["delivered"] is True and len(out["msg_ids"]) == 1
    many = [{"from": "张伟", "content": "a"}, {"from": "张伟", "type": "image"}]
    assert len(call(sim, "POST", "messages", many)[1]["msg_ids"]) == 2
    assert len(call(sim, "POST", "messages", {"messages": many})[1]["msg_ids"]) == 2
    assert call(sim, "POST", "messages", {"from": "nobody", "content": "x"})[0] == 400
    assert call(sim, "POST", "messages", {"type": "fax", "from": "张伟"})[0] == 400
    before = time.time()
    status, out = call(sim, "POST", "recall", {"msg_id": out["msg_ids"][0]})
    assert status == 200 and out["msg_id"].isdigit()
    injected = call(sim, "GET", "injected", since=before)[1]
    assert [i["msg_id"] for i in injected] == [out["msg_id"]]
    assert injected[0]["type"] == 10002 and injected[0]["chat"] == "内部员工群"
    assert len(call(sim, "GET", "injected")[1]) == 6
    assert len(web.drain()) == 6


def test_observation_routes(sim):
    web = login(sim)
    web.send_text("filehelper", "hello")
    sent = call(sim, "GET", "sent")[1]
    assert [s["text"] for s in sent] == ["hello"] and sent[0]["to_name"] == "文件传输助手"
    assert call(sim, "DELETE", "sent") == (200, {"ok": True})
    assert call(sim, "GET", "sent")[1] == []
    reqs = call(sim, "GET", "requests", endpoint="webwxsendmsg")[1]
    assert len(reqs) == 1
    req = reqs[0]
    assert req["method"] == "POST" and req["status"] == 200 and req["path"].endswith("webwxsendmsg")
    assert req["host"].startswith("127.0.0.1:") and "pass_ticket" in req["query"]
    everything = call(sim, "GET", "requests")[1]
    assert {"jslogin", "login", "webwxnewloginpage", "webwxinit"} <= {
        r["endpoint"] for r in everything
    }
    assert call(sim, "DELETE", "requests") == (200, {"ok": True})
    assert sim.control.requests() == []


def test_fault_routes(sim):
    status, out = call(sim, "POST", "faults", {"kind": "ret", "endpoint": "webwxsync", "code": 1})
    fault = out["faults"][0]
    assert fault["kind"] == "ret" and fault["times"] == 1 and fault["fid"] >= 1
    status, out = call(
        sim,
        "POST",
        "faults",
        {"faults": [{"kind": "delay", "seconds": 0.01, "times": None}, {"kind": "drop"}]},
    )
    assert [f["times"] for f in out["faults"]] == [None, 1]
    assert len(call(sim, "GET", "faults")[1]) == 3
    assert call(sim, "DELETE", "faults") == (200, {"ok": True})
    assert call(sim, "GET", "faults")[1] == []
    assert call(sim, "POST", "faults", {"kind": "bogus"})[0] == 400


def test_unknown_routes_and_bad_bodies_answer_400(sim):
    assert call(sim, "GET", "nothing")[0] == 400
    r = requests.post(f"{sim.base_url}/_sim/messages", data=b"{not json")
    assert r.status_code == 400 and "error" in r.json()


def test_traffic_generates_chatter_until_stopped(sim):
    web = login(sim)
    out = sim.control.traffic(rate=200, groups=2, seed=3)
    assert out["rate"] == 200 and out["groups"] == 2 and out["running"] is True
    time.sleep(0.15)
    assert sim.control.traffic_state()["injected"] >= 5
    assert sim.control.stop_traffic() == {"running": False}
    assert call(sim, "GET", "traffic")[1] == {"running": False}
    msgs = web.drain()
    assert len(msgs) >= 5
    groups = {m["FromUserName"] for m in msgs if m["MsgType"] != 10002}
    assert len(groups) <= 2 and all(g.startswith("@@") for g in groups)
    assert call(sim, "POST", "traffic", {"rate": 0}) == (200, {"running": False})


def test_traffic_starts_with_the_session_when_the_simulator_has_a_rate():
    with Simulator(rate=200, synccheck_hold=0.1) as sim:
        web = login(sim)
        time.sleep(0.15)
        assert len(web.drain()) > 5


def test_flood_queues_messages_for_a_throughput_run(sim):
    web = login(sim)
    sim.control.settings(sync_batch=100)
    out = sim.control.flood(1000, groups=8)
    assert out["count"] == 1000
    msgs = web.drain(limit=20)
    assert len(msgs) == 1000
    assert msgs[0]["MsgId"] == out["first"] and msgs[-1]["MsgId"] == out["last"]
    assert len({m["FromUserName"] for m in msgs}) == 8
    assert sum(1 for g in sim.control.state()["groups"]) >= 8


def test_control_client_methods_cover_the_routes(sim):
    control = SimControl(sim.base_url, timeout=5)
    web = Web(sim.base_url)
    web.jslogin()
    assert control.current_qr()["uuid"] == web.uuid
    assert control.scan()["state"] == "scanned"
    assert control.cancel()["state"] == "waiting"
    assert control.confirm()["state"] == "confirmed"
    web.wait_for(200)
    web.open_session()
    web.do_init()
    assert control.add_contacts(friends=["丙"])["friends"]
    assert control.update_contact("丙", remark="丙丙")
    assert control.rename_group("内部员工群", "员工群", by="self")
    assert control.add_members("员工群", ["丁"], inviter="self")["ids"]
    assert control.remove_members("员工群", ["丁"])["ids"]
    assert control.remove_contact("丙")
    mid = control.message(group="员工群", sender="客服-小王", content="x")
    assert control.messages([{"self": True, "to": "员工群", "content": "y"}])
    assert control.message(self=True, to="filehelper", content="z")  # `self` as a spec key
    assert control.recall(mid)
    assert control.injected()
    web.send_text("filehelper", "s")
    assert control.sent() and control.clear_sent() == {"ok": True}
    assert control.requests("webwxinit") and control.clear_requests() == {"ok": True}
    assert control.fault("ret", endpoint="webwxsync", code=1)["faults"]
    assert control.faults() and control.clear_faults() == {"ok": True}
    assert control.settings(sync_batch=3)["sync_batch"] == 3
    assert control.flood(5)["count"] == 5
    assert control.traffic(rate=10)["running"]
    assert control.stop_traffic() == {"running": False}
    assert control.state()["logged_in"]
    assert control.logout(1101) == {"ok": True}
    assert control.expire_qr() == {"ok": True}
    assert control.reset() == {"ok": True}
    with pytest.raises(RuntimeError, match="no contact"):
        control.update_contact("nobody")


TOML_SCENARIO = """
[account]
nickname = "测试号"
uin = 1234567890

[[friends]]
nickname = "甲"

[[groups]]
name = "测试群"
members = ["甲", { nickname = "乙", display_name = "乙-群名" }]

[[timeline]]
at = 0.0
group = "测试群"
sender = "乙-群名"
content = "早 <&> 😀"

[[timeline]]
at = 0.05
action = "rename"
group = "测试群"
new_name = "测试群2"

[[timeline]]
at = 0.1
fault = { kind = "ret", endpoint = "webwxsendmsg", code = 1205 }

[[timeline]]
at = 0.15
action = "join"
group = "测试群2"
members = ["丙"]
inviter = "甲"
"""


def test_a_scenario_file_sets_the_world_and_plays_its_timeline(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(TOML_SCENARIO, encoding="utf-8")
    with Simulator(path, synccheck_hold=0.1) as sim:
        web = login(sim)
        assert web.user["NickName"] == "测试号" and web.uin == 1234567890
        time.sleep(0.25)
        msgs = web.drain()
        texts = [decode(m["Content"].split(":<br/>", 1)[-1]) for m in msgs]
        assert texts == ["早 <&> 😀", "你修改群名为“测试群2”", '"甲"邀请"丙"加入了群聊']
        assert web.send_text("filehelper", "x")["BaseResponse"]["Ret"] == 1205
    as_json = tmp_path / "s.json"
    as_json.write_text(
        json.dumps({"account": {"nickname": "JSON号"}, "friends": ["甲"]}), encoding="utf-8"
    )
    with Simulator(as_json) as sim:
        assert sim.control.state()["account"]["nickname"] == "JSON号"
    with Simulator({"account": {"nickname": "dict"}}) as sim:
        assert sim.control.state()["account"]["nickname"] == "dict"


def test_the_builtin_company_scenario_loads_by_name():
    with Simulator("company", synccheck_hold=0.1) as sim:
        state = sim.control.state()
        assert {g["name"] for g in state["groups"]} >= {"云帆Pro客服1群", "内部员工群"}


def test_auto_confirm_constructor_flag():
    with Simulator(auto_confirm=True) as sim:
        web = Web(sim.base_url)
        web.jslogin()
        assert web.poll()[0] == 201 and web.poll()[0] == 200


# -- lifecycle --------------------------------------------------------------------------------


def test_stop_is_prompt_with_long_polls_held_and_leaves_no_threads():
    baseline = set(threading.enumerate())
    sim = Simulator(synccheck_hold=25, login_hold=25)
    sim.start()
    web = login(sim)
    waiting = Web(sim.base_url)
    waiting.jslogin()
    results: list[object] = []

    def hold(fn) -> None:
        try:
            results.append(fn())
        except requests.RequestException as exc:
            results.append(exc)

    threads = [threading.Thread(target=hold, args=(web.synccheck,)) for _ in range(3)]
    threads.append(threading.Thread(target=hold, args=(waiting.poll,)))
    for t in threads:
        t.start()
    time.sleep(0.15)
    idle = requests.Session()  # an idle keep-alive connection holds a handler thread too
    idle.get(f"{sim.base_url}/_sim/state")
    t0 = time.monotonic()
    sim.stop()
    assert time.monotonic() - t0 < 1
    for t in threads:
        t.join(2)
        assert not t.is_alive()
    assert len(results) == 4
    time.sleep(0.05)
    leaked = [t for t in set(threading.enumerate()) - baseline if t.is_alive()]
    assert leaked == []
    idle.close()


def test_a_stopped_simulator_starts_again():
    sim = Simulator(synccheck_hold=0.15)
    sim.start()
    sim.stop()
    sim.start()
    try:
        web = login(sim)
        t0 = time.monotonic()
        assert web.synccheck() == ("0", "0")
        assert time.monotonic() - t0 >= 0.12  # holds again: the stop flag was cleared
    finally:
        sim.stop()
    sim.stop()  # twice is harmless


def test_concurrent_injection_and_sync_lose_and_repeat_nothing(sim):
    sim.control.settings(synccheck_hold=0.05, sync_batch=37)
    web = login(sim)
    sent: list[list[str]] = [[] for _ in range(4)]

    def producer(n: int) -> None:
        control = SimControl(sim.base_url)
        for i in range(60):
            sent[n].append(
                control.message(group="内部员工群", sender="客服-小王", content=f"{n}:{i}")
            )

    producers = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
    for t in producers:
        t.start()
    got: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(got) < 240:
        if web.synccheck()[1] != "0":
            got += [m["MsgId"] for m in web.sync()["AddMsgList"]]
    for t in producers:
        t.join()
    got += [m["MsgId"] for m in web.drain()]
    assert sorted(got) == sorted(i for ids in sent for i in ids)
    for ids in sent:  # each producer's messages arrive in the order it sent them
        assert [g for g in got if g in set(ids)] == ids


def test_flood_messages_are_byte_identical_to_normal_injection(sim):
    from wxcli.simulator import wire
    from wxcli.simulator.messages import build_message

    login(sim)
    engine = sim.engine
    group = engine.world.find_group("VIP客户群💎")
    sender = engine.world.find_member(group, "马丽").pid
    text = "价格 <&> 😀 100% %s {x}\n第二行"
    (msg_id,) = engine.inject_group_texts([(group.gid, sender, text)])
    event = engine.session.events[-1]
    sent = json.loads(event.raw)
    assert sent["MsgId"] == msg_id and event.msg_id == msg_id
    spec = {"group": group.gid, "sender": sender, "content": text}
    ref, chat = build_message(engine.composer, {**spec, "create_time": sent["CreateTime"]})
    ref.update(MsgId=msg_id, NewMsgId=int(msg_id))
    assert wire.encode_lines(ref) == event.raw
    assert chat == "VIP客户群💎" and sim.control.injected()[-1]["msg_id"] == msg_id
