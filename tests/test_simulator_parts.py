"""The simulator's parts on their own, without HTTP: layering, faults, login, session log,
mailbox, outbox, media store, directory, message builders and the traffic driver.

The wire behaviour of each part is tested end to end in the other test_simulator_* files;
these pin down the rules each part owns, fast and in isolation.
"""

from __future__ import annotations

import ast
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from wxcli.simulator.core import Core, Settings, SimError
from wxcli.simulator.directory import Directory
from wxcli.simulator.faults import FaultBoard
from wxcli.simulator.login import LoginDesk
from wxcli.simulator.mailbox import Mailbox
from wxcli.simulator.mediastore import MediaStore
from wxcli.simulator.messages import Composer, build_message
from wxcli.simulator.outbox import TOO_FREQUENT, Outbox
from wxcli.simulator.session import WebSession
from wxcli.simulator.traffic import apply_entry

PACKAGE = Path(__file__).resolve().parent.parent / "wxcli" / "simulator"

# Each module may import only modules of earlier layers (none of its own layer).
LAYERS = [
    {"wire", "world", "media"},
    {"session"},
    {"core"},
    {"faults", "login", "directory", "mediastore"},
    {"messages"},
    {"mailbox"},
    {"roster", "outbox", "traffic"},
    {"engine"},
    {"control", "control_client"},
    {"server"},
    {"__init__"},
    {"foreground"},
    {"__main__"},
]


def _imports(path: Path) -> set[str]:
    """Every wxcli module a file imports, wherever the import statement stands."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("wxcli"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wxcli"):
            mod = node.module or ""
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                is_module = mod == "wxcli.simulator" and (PACKAGE / f"{alias.name}.py").exists()
                out.add(sub if is_module else mod)
    return out


def _sim_name(module: str) -> str:
    return "__init__" if module == "wxcli.simulator" else module.removeprefix("wxcli.simulator.")


def test_every_simulator_module_has_a_layer():
    names = {p.stem for p in PACKAGE.glob("*.py")}
    assert names == set().union(*LAYERS)


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda p: p.stem)
def test_modules_import_only_lower_layers_and_the_protocol(path):
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    for target in _imports(path):
        if target.startswith("wxcli.protocol"):
            continue
        assert target.startswith("wxcli.simulator"), f"{path.name} imports {target}"
        name = _sim_name(target)
        assert rank[name] < rank[path.stem], f"{path.name} imports {target} (same or higher)"


def test_serving_loads_nothing_of_wxcli_outside_the_simulator():
    code = (
        "import sys, requests\n"
        "from wxcli.simulator import Simulator\n"
        "with Simulator(login_hold=0.01) as sim:\n"
        "    r = requests.get(sim.base_url + '/jslogin', params={'appid': 'wx782c26e4c19acffb'})\n"
        "    uuid = r.text.split('\"')[1]\n"
        "    assert requests.get(sim.base_url + '/qrcode/' + uuid).status_code == 200\n"
        "print([m for m in sys.modules if m.startswith('wxcli.')\n"
        "       and not m.startswith(('wxcli.simulator', 'wxcli.protocol'))])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- faults -----------------------------------------------------------------------------------


def test_fault_board_fires_by_endpoint_and_kind_and_counts_down():
    core = Core(None, 0, Settings())
    board = FaultBoard(core.lock)
    with pytest.raises(SimError):
        board.make({"kind": "nope"})
    twice = board.make({"kind": "ret", "endpoint": "webwxsync", "times": 2, "code": 1100})
    always = board.make({"kind": "drop", "times": "always"})
    assert (twice.fid, always.fid, always.times) == (1, 2, None)
    board.arm(twice)
    board.arm(always)
    assert board.take("webwxinit", {"ret"}) is None  # wrong endpoint
    assert board.take("webwxsync", {"spin"}) is None  # wrong kind
    assert board.peek("webwxsync", "ret") is twice
    assert board.take("webwxsync", {"ret"}) is twice
    assert board.take("webwxsync", {"ret"}) is twice
    assert board.take("webwxsync", {"ret"}) is None  # used up and gone
    for _ in range(5):
        assert board.take("anything", {"drop"}) is always
    board.clear()
    assert board.faults == []


# -- login ------------------------------------------------------------------------------------


def _desk(**settings):
    core = Core(None, 0, Settings(login_hold=0.0, **settings))
    return core, LoginDesk(core)


def _log_in(desk: LoginDesk, host: str = "127.0.0.1") -> WebSession:
    qr = desk.confirm(desk.new_uuid(desktop=False).uuid)
    sess = desk.redeem_ticket(qr.ticket, qr.uuid, host)
    assert sess is not None
    return sess


def test_login_desk_reports_the_scan_once_then_holds_until_confirmed():
    _core, desk = _desk()
    qr = desk.new_uuid(desktop=False)
    assert desk.poll(qr.uuid)[0] == 408
    desk.scan()
    assert desk.poll(qr.uuid)[0] == 201
    assert desk.poll(qr.uuid)[0] == 408  # 201 only once
    desk.confirm()
    code, same = desk.poll(qr.uuid)
    assert code == 200 and same.ticket
    assert desk.poll("unknown")[0] == 400


def test_auto_confirm_scans_at_the_first_poll_and_confirms_at_the_next():
    _core, desk = _desk(auto_confirm=True)
    qr = desk.new_uuid(desktop=True)
    assert [desk.poll(qr.uuid)[0], desk.poll(qr.uuid)[0]] == [201, 200]


def test_tickets_are_single_use_and_a_new_session_ends_the_old_one():
    core, desk = _desk()
    first = _log_in(desk)
    qr = desk.confirm(desk.new_uuid(desktop=False).uuid)
    assert desk.redeem_ticket(qr.ticket, "other-uuid", "h") is None  # wrong uuid
    second = desk.redeem_ticket(qr.ticket, qr.uuid, "h")
    assert second is not None and core.session is second
    assert desk.redeem_ticket(qr.ticket, qr.uuid, "h") is None  # used
    assert (first.alive, first.dead_code) == (False, 1101)
    assert desk.session_by_sid(first.sid) is first  # stale clients still get their 1101
    assert desk.check_base_request({"Sid": first.sid, "Uin": first.uin}) == (first, 1101)
    base = {"Sid": second.sid, "Uin": str(second.uin), "Skey": ""}
    assert desk.check_base_request(base) == (second, 0)
    assert desk.check_base_request({**base, "Skey": "wrong"})[1] == 1100
    assert desk.login_count == 2


def test_push_login_needs_the_auth_ticket_of_an_earlier_session():
    core, desk = _desk()
    sess = _log_in(desk)
    uin = str(core.world.account.uin)
    assert desk.push_login(uin, None, desktop=True) is None
    assert desk.push_login("1", sess.auth_ticket, desktop=True) is None
    qr = desk.push_login(uin, sess.auth_ticket, desktop=True)
    assert qr is not None and qr.state == "scanned" and qr.push
    assert desk.cancel(qr.uuid).state == "expired"  # a cancelled push prompt dies


# -- the session's event log ------------------------------------------------------------------


def test_session_sync_keys_positions_and_selector():
    _core, desk = _desk()
    sess = _log_in(desk)
    assert [i["Key"] for i in sess.sync_key(full=False)["List"]] == [1, 2, 3, 1000]
    assert [i["Key"] for i in sess.sync_key()["List"]] == [1, 2, 3, 11, 201, 1000, 1001]
    key1 = sess.sync_key()["List"][0]["Val"]
    sess.append("mod", {"UserName": "@x"})
    assert sess.selector(0) == "4"  # only a contact change waits
    sess.append("msg", {"MsgId": "1", "CreateTime": 5})
    assert sess.selector(0) == "2" and sess.selector(sess.seq) == "0"
    assert sess.seq_of(key1) == 0
    assert sess.seq_of(key1 + 99) is None  # never issued
    assert sess.seq_of(key1 - 10**6) == 0  # an older session's key starts from the beginning
    assert [e.kind for e in sess.pending(0, limit=1)] == ["mod"]


def test_session_prunes_only_behind_the_acknowledged_position_in_chunks():
    _core, desk = _desk()
    sess = _log_in(desk)
    for i in range(1000):
        sess.append("msg", {"MsgId": str(i)})
    sess.acked = 600
    sess.prune(retention=500)
    assert len(sess.events) == 1000  # 100 to drop: not worth moving the list yet
    sess.acked = 900
    sess.prune(retention=500)
    assert sess.events[0].seq == 401 and len(sess.pending(0)) == 600
    sess.retire()
    assert sess.events == [] and sess.sent_ids == {}


# -- mailbox ----------------------------------------------------------------------------------


def _parts(**settings):
    core = Core(None, 0, Settings(login_hold=0.0, synccheck_hold=0.0, **settings))
    board = FaultBoard(core.lock)
    desk = LoginDesk(core)
    store = MediaStore(core)
    composer = Composer(core, store)
    mailbox = Mailbox(core, board, Directory(core), composer)
    outbox = Outbox(core, store, composer)
    return core, board, desk, store, composer, mailbox, outbox


def _key1(sess: WebSession, seq: int) -> int:
    return sess.sync_key(seq=seq)["List"][0]["Val"]


def test_mailbox_batches_acknowledges_and_duplicates_on_a_fault():
    core, board, desk, _store, _composer, mailbox, _outbox = _parts(sync_batch=2)
    sess = _log_in(desk)
    group = core.world.find_group("VIP客户群💎")
    ids = mailbox.inject({"group": group.gid, "sender": "马丽", "content": "#{i}", "count": 3})
    assert mailbox.wait_synccheck(sess, _key1(sess, 0)) == ("0", "2")
    out = mailbox.sync(sess, _key1(sess, 0))
    assert [json.loads(m.data)["MsgId"] for m in out["AddMsgList"]] == ids[:2]
    assert out["SyncKey"] == out["SyncCheckKey"] and out["SyncKey"]["Count"] == 7
    board.arm(board.make({"kind": "duplicate", "endpoint": "webwxsync"}))
    again = mailbox.sync(sess, _key1(sess, 2))
    assert again["SyncKey"]["List"][0]["Val"] == _key1(sess, 2)  # the key did not move
    last = mailbox.sync(sess, _key1(sess, 2))
    assert [json.loads(m.data)["MsgId"] for m in last["AddMsgList"]] == ids[2:]
    assert mailbox.sync(sess, _key1(sess, 0) + 10**6) is None  # a key we never issued
    assert sess.acked == 2 and mailbox.sync_count == 4


def test_mailbox_remembers_injections_without_a_session_within_the_history_limit():
    core, _board, _desk_, _store, _composer, mailbox, _outbox = _parts(history_limit=2)
    group = core.world.find_group("VIP客户群💎")
    ids = mailbox.inject({"group": group.gid, "sender": "马丽", "content": "x", "count": 3})
    assert [e["msg_id"] for e in mailbox.injected_since(0)] == ids[1:]
    assert mailbox.find_injected(ids[0]) is None
    with pytest.raises(SimError):  # nothing delivered, nothing to recall
        mailbox.recall(ids[2])


def test_flood_path_and_inject_use_the_same_msg_id_sequence():
    core, _board, desk, _store, _composer, mailbox, _outbox = _parts()
    _log_in(desk)
    group = core.world.find_group("VIP客户群💎")
    sender = core.world.find_member(group, "马丽").pid
    fast = mailbox.inject_group_texts([(group.gid, sender, "a"), (group.gid, sender, "b")])
    slow = mailbox.inject({"group": group.gid, "sender": sender, "content": "c"})
    assert len(set(fast + slow)) == 3
    assert [json.loads(e.raw)["MsgId"] for e in core.session.events] == fast + slow


# -- outbox -----------------------------------------------------------------------------------


def test_outbox_limits_refuses_strangers_and_echoes():
    core, _board, desk, _store, _composer, _mailbox, outbox = _parts(send_burst=2, send_rate=0.0)
    sess = _log_in(desk)
    friend = next(p for p in core.world.persons.values() if p.friend and not p.official)
    stranger = next(p for p in core.world.persons.values() if not p.friend)
    to_friend = {"Type": 1, "Content": "hi", "ToUserName": sess.name_for(friend.pid)}
    assert outbox.send(sess, "webwxsendmsg", {**to_friend, "ToUserName": "@nobody"})[0] == 1
    stranger_msg = {**to_friend, "ToUserName": sess.name_for(stranger.pid)}
    assert outbox.send(sess, "webwxsendmsg", stranger_msg)[0] == 1204
    ok1, ok2, limited = (outbox.send(sess, "webwxsendmsg", to_friend) for _ in range(3))
    assert ok1[0] == ok2[0] == 0 and limited == (1205, TOO_FREQUENT, "")
    assert [r["ret"] for r in outbox.sent] == [1, 1204, 0, 0, 1205]
    echoes = [json.loads(e.raw) for e in sess.events if e.kind == "msg"]
    assert [m["MsgId"] for m in echoes] == [ok1[2], ok2[2]]
    assert echoes[0]["FromUserName"] == sess.user_name
    assert outbox.revoke(sess, ok1[2], "@wrong-chat") == 1
    assert outbox.revoke(sess, ok1[2], to_friend["ToUserName"]) == 0
    assert outbox.revoke(sess, ok1[2], to_friend["ToUserName"]) == 1  # once


def test_image_send_needs_an_upload_first():
    core, _board, desk, store, _composer, _mailbox, outbox = _parts()
    sess = _log_in(desk)
    msg = {"Type": 3, "MediaId": "", "ToUserName": "filehelper"}
    assert outbox.send(sess, "webwxsendmsgimg", msg)[0] == 1
    fields = {"name": "a.gif", "size": "6", "type": "image/gif"}
    media_id = store.upload_chunk(sess, fields, b"GIF89a", "a.gif")["MediaId"]
    ret, _msg, msg_id = outbox.send(sess, "webwxsendmsgimg", {**msg, "MediaId": media_id})
    assert ret == 0 and store.media_item(msg_id)["full"] == b"GIF89a"
    assert outbox.sent[-1]["media"]["size"] == 6


# -- media store ------------------------------------------------------------------------------


def test_uploads_join_chunks_in_any_order_and_check_the_size():
    core, desk = _desk()
    sess = _log_in(desk)
    store = MediaStore(core)
    base = {"id": "WU_FILE_0", "name": "f.bin", "size": "6", "chunks": "2"}
    first = store.upload_chunk(sess, {**base, "chunk": "1"}, b"def", "")
    assert first == {"MediaId": "", "StartPos": 3}
    done = store.upload_chunk(sess, {**base, "chunk": "0"}, b"abc", "")
    assert store.uploads[done["MediaId"]]["data"] == b"abcdef"
    assert store.upload_chunk(sess, {**base, "chunks": "1", "size": "9"}, b"abc", "") == {
        "error": 1
    }


def test_media_store_forgets_the_oldest_beyond_the_limit():
    core = Core(None, 0, Settings(media_limit=2))
    store = MediaStore(core)
    store.add_media("1", {"kind": "file", "data": b"1", "media_id": "@m1"})
    store.add_media("2", {"kind": "image", "key": "k"})
    store.add_media("3", {"kind": "voice", "data": b"3"})
    assert store.media_item("1") is None and store.media_by_media_id("@m1") is None
    image = store.media_item("2")
    assert image["full"].startswith(b"\xff\xd8") and "full" not in store.media["2"]  # re-made


# -- directory and messages -------------------------------------------------------------------


def test_directory_group_forms():
    core, desk = _desk()
    sess = _log_in(desk)
    directory = Directory(core)
    group = core.world.find_group("VIP客户群💎")
    full = directory.group_contact(sess, group)
    zero = directory.group_contact(sess, group, members="zero")
    stub = directory.group_contact(sess, group, members="stub")
    assert full["MemberCount"] == len(group.members) == len(full["MemberList"])
    assert full["EncryChatRoomId"] and not zero["EncryChatRoomId"]
    assert (zero["MemberCount"], zero["MemberList"]) == (0, [])
    assert {m["NickName"] for m in stub["MemberList"]} == {""}
    book = {c["UserName"] for c in directory.address_book(sess)}
    unsaved = core.world.find_group("临时对接群")
    assert full["UserName"] in book and sess.name_for(unsaved.gid, group=True) not in book


def test_message_builders_need_only_a_composer():
    core = Core(None, 0, Settings())
    composer = Composer(core, MediaStore(core))
    msg, chat = build_message(composer, {"type": "friend_request", "nickname": "新客户甲"})
    assert chat == "fmessage" and msg["MsgType"] == 37
    ticket = msg["RecommendInfo"]["Ticket"]
    assert core.world.persons[composer.pending_requests[ticket]].nickname == "新客户甲"
    with pytest.raises(SimError, match="unknown message type"):
        build_message(composer, {"type": "fax"})


# -- traffic ----------------------------------------------------------------------------------


class RecordingDriver:
    """Anything with the Driver calls can run a timeline: here, a recorder."""

    def __init__(self):
        self.calls: list[tuple[str, tuple]] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args)) or name


def test_timeline_entries_drive_any_driver():
    driver = RecordingDriver()
    apply_entry(driver, {"at": 1, "action": "rename", "group": "g", "new_name": "n"})
    apply_entry(driver, {"at": 2, "fault": {"kind": "drop"}})
    apply_entry(driver, {"at": 3, "group": "g", "sender": "s", "content": "hi"})
    assert driver.calls == [
        ("rename_group", ("g", "n", None)),
        ("add_fault", ({"kind": "drop"},)),
        ("inject", ({"group": "g", "sender": "s", "content": "hi"},)),
    ]


# -- python -m wxcli.simulator ----------------------------------------------------------------


def test_module_entry_point_serves_until_sigterm():
    proc = subprocess.Popen(
        [sys.executable, "-m", "wxcli.simulator", "--port", "0", "--hold", "0.1", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        state = requests.get(url + "/_sim/state", timeout=10).json()
        assert state["settings"]["synccheck_hold"] == 0.1 and not state["logged_in"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "Simulator serving" in err and "WXCLI_LOGIN_URL=" in err
