"""`wxcli watch` end to end against the simulator, on SQLite and MariaDB."""

from __future__ import annotations

import json

import pytest

from tests.helpers.watch import RunningWatch, archive_for, count, messages

GROUP = "云帆Pro客服1群"


def by_msg_id(db_url, home):
    return {r["msg_id"]: r for r in messages(db_url, home)}


def test_every_kind_round_trips(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    c = sim.control
    with RunningWatch(paths, config, db_url) as w:
        ids = {
            "text": c.message(
                group=GROUP, sender="张伟", content='价格 <b>&amp; "优惠" 😀🇨🇳\n第二行'
            ),
            "display": c.message(group="VIP客户群💎", sender="马丽-星辰贸易", content="你好"),
            "mention_me": c.message(group=GROUP, sender="张伟", content="在吗", mention_me=True),
            "friend": c.message(**{"from": "VIP-赵总"}, content="合同发你了"),
            "official": c.message(**{"from": "云帆科技服务号"}, type="link", title="周报"),
            "self": c.messages([{"self": True, "to": GROUP, "content": "我从手机发的"}])[0],
            "image": c.message(group=GROUP, sender="张伟", type="image"),
            "voice": c.message(group=GROUP, sender="张伟", type="voice", seconds=4),
            "video": c.message(group=GROUP, sender="张伟", type="video"),
            "emoji": c.message(group=GROUP, sender="张伟", type="emoji"),
            "file": c.message(group=GROUP, sender="张伟", type="file", file_name="报价单.pdf"),
            "link": c.message(
                group=GROUP, sender="张伟", type="link", title="说明书", url="https://e.x/a?b=1&c=2"
            ),
            "music": c.message(group=GROUP, sender="张伟", type="music", title="晴天"),
            "transfer": c.message(**{"from": "VIP-赵总"}, type="transfer", amount="66.00"),
            "miniprogram": c.message(group=GROUP, sender="张伟", type="miniprogram"),
            "history": c.message(group=GROUP, sender="张伟", type="history"),
            "card": c.message(group=GROUP, sender="张伟", type="card", card="客服-小李"),
            "location": c.message(
                group=GROUP, sender="张伟", type="location", poiname="云帆大厦", label="深圳南山"
            ),
            "friend_request": c.message(
                type="friend_request", nickname="新客户", greeting="你好呀"
            ),
            "red_packet": c.message(group=GROUP, sender="张伟", type="red_packet"),
        }
        c.message(group=GROUP, sender="张伟", type="status_notify")  # housekeeping: not stored
        w.until(lambda: count(db_url, wx_home) >= len(ids), message="all kinds stored")
    rows = by_msg_id(db_url, wx_home)
    assert set(ids.values()) <= set(rows)
    assert len(rows) == len(ids)  # MsgType 51 was not stored

    def row(key):
        return rows[ids[key]]

    t = row("text")
    assert t["text"] == '价格 <b>&amp; "优惠" 😀🇨🇳\n第二行'
    assert (t["kind"], t["chat_name"], t["chat_kind"], t["sender_name"]) == (
        "text",
        GROUP,
        "group",
        "张伟",
    )
    assert json.loads(t["raw"])["MsgId"] == ids["text"]
    assert row("display")["sender_name"] == "马丽-星辰贸易"
    assert row("mention_me")["mentions_me"] is True
    assert json.loads(row("mention_me")["mentions"]) == ["云帆客服中心"]
    f = row("friend")
    assert (f["chat_kind"], f["chat_name"], f["sender_name"]) == ("friend", "VIP-赵总", "VIP-赵总")
    assert row("official")["chat_kind"] == "official"
    s = row("self")
    assert s["is_self"] is True
    assert s["sender_name"] == "云帆客服中心"
    assert s["chat_name"] == GROUP
    assert row("image")["kind"] == "image"
    assert row("image")["msg_type"] == 3
    assert row("voice")["kind"] == "voice"
    assert row("video")["kind"] == "video"
    assert row("emoji")["kind"] == "emoji"
    fl = row("file")
    assert (fl["kind"], fl["file_name"]) == ("file", "报价单.pdf")
    assert fl["file_size"]
    assert fl["file_size"] > 0
    lk = row("link")
    assert (lk["kind"], lk["title"], lk["url"]) == ("link", "说明书", "https://e.x/a?b=1&c=2")
    assert row("music")["kind"] == "link"
    assert row("transfer")["app_msg_type"] == 2000
    assert row("miniprogram")["kind"] == "link"
    assert row("history")["kind"] == "other"
    assert (row("card")["kind"], row("card")["text"]) == ("card", "李娜")
    loc = row("location")
    assert (loc["kind"], loc["text"], loc["title"]) == ("location", "云帆大厦", "深圳南山")
    fr = row("friend_request")
    assert (fr["kind"], fr["text"], fr["sender_name"]) == ("friend-request", "你好呀", "新客户")
    assert row("red_packet")["kind"] == "system"


def test_unknown_member_is_fetched_not_unknown(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    c = sim.control
    with RunningWatch(paths, config, db_url) as w:
        c.add_members(GROUP, [{"nickname": "路人甲🐸", "display_name": "甲-新客户"}], notify=False)
        mid = c.message(group=GROUP, sender="甲-新客户", content="我刚进群")
        w.until(lambda: count(db_url, wx_home) >= 1)
    row = by_msg_id(db_url, wx_home)[mid]
    assert row["sender_name"] == "甲-新客户"
    batch = [r for r in sim.control.requests("webwxbatchgetcontact")]
    assert len(batch) >= 2  # the login's group fetch + the one for the newcomer


def test_rename_mid_stream_keeps_history(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    c = sim.control
    with RunningWatch(paths, config, db_url) as w:
        before = c.message(group=GROUP, sender="张伟", content="改名前")
        c.rename_group(GROUP, "云帆Pro客服1群(新)", by="张伟")
        after = c.message(group="云帆Pro客服1群(新)", sender="张伟", content="改名后")
        w.until(lambda: count(db_url, wx_home) >= 3)
    rows = by_msg_id(db_url, wx_home)
    assert rows[before]["chat_name"] == GROUP
    assert rows[after]["chat_name"] == "云帆Pro客服1群(新)"
    assert rows[before]["chat"] == rows[after]["chat"]  # same stable chat
    a = archive_for(db_url, wx_home)
    try:
        names = [
            n.name for n in a.m.ChatName.select().where(a.m.ChatName.chat == rows[after]["chat"])
        ]
        ev = list(a.m.RosterEvent.select().where(a.m.RosterEvent.kind == "rename").dicts())
    finally:
        a.close()
    assert names == [GROUP, "云帆Pro客服1群(新)"]
    assert ev
    assert ev[0]["new_name"] == "云帆Pro客服1群(新)"
    assert ev[0]["actor"] == "张伟"


def test_recall_keeps_the_original(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    c = sim.control
    with RunningWatch(paths, config, db_url) as w:
        mid = c.message(group=GROUP, sender="张伟", content="说错话了")
        w.until(lambda: count(db_url, wx_home) >= 1)
        recall_id = c.recall(mid)
        w.until(lambda: count(db_url, wx_home) >= 2)
    rows = by_msg_id(db_url, wx_home)
    original = rows[mid]
    assert original["revoked"] is True
    assert original["text"] == "说错话了"
    assert original["revoked_at"] is not None
    recall = rows[recall_id]
    assert recall["kind"] == "recall"
    assert recall["recall_of"] == mid
    assert "撤回了一条消息" in recall["text"]


def test_duplicate_delivery_is_stored_once(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    c = sim.control
    c.fault("duplicate", endpoint="webwxsync", times=3)
    with RunningWatch(paths, config, db_url) as w:
        ids = c.messages([{"group": GROUP, "sender": "张伟", "content": f"m{i}"} for i in range(5)])
        w.until(lambda: w.watcher.stats.duplicates >= 5, message="the duplicate batch")
    rows = messages(db_url, wx_home)
    assert sorted(r["msg_id"] for r in rows) == sorted(ids)


def test_roster_changes_from_system_messages_and_member_lists(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    c = sim.control
    with RunningWatch(paths, config, db_url) as w:
        c.add_members(GROUP, ["新人A", "新人B"], inviter="张伟")
        c.remove_members(GROUP, ["新人A"])  # leaves silently: only the member list shows it
        c.remove_members(GROUP, ["新人B"], by="self")
        w.until(lambda: count(db_url, wx_home) >= 2)
        a = archive_for(db_url, wx_home)
        try:
            R = a.m.RosterEvent
            w.until(lambda: R.select().where(R.kind == "leave").count() >= 1)
            events = [(e.kind, e.subject, e.source) for e in R.select().order_by(R.id)]
            M = a.m.Membership
            left = [m.person.nickname for m in M.select().where(M.active == False)]
        finally:
            a.close()
    assert ("invite", "新人A", "system") in events
    assert ("invite", "新人B", "system") in events
    assert ("remove", "新人B", "system") in events
    assert ("leave", "新人A", "roster") in events
    assert sorted(left) == ["新人A", "新人B"]


def test_session_loss_exits_3_and_is_recorded(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    w = RunningWatch(paths, config, db_url).start()
    w.until(lambda: w.watcher.health.state == "running")
    sim.control.logout(1101)
    assert w.join() == 3
    assert "session_lost" in w.kinds()
    lost = next(e for e in w.events if e.kind == "session_lost")
    assert lost.data["code"] == 1101
    from wxcli.health import read_health
    from wxcli.session import SessionStore

    saved = SessionStore(paths).load()
    assert saved.alive is False
    assert saved.ended_code == 1101
    assert read_health(paths.health).state == "session_lost"


def test_selector_spin_backs_off(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    config.data["watch"]["spin_threshold"] = 3
    delays: list[float] = []
    sim.control.fault("spin", endpoint="synccheck", times=12)
    sim.control.fault("spin", endpoint="webwxsync", times=12)
    w = RunningWatch(paths, config, db_url, sleep=delays.append)  # record the back-off
    with w:
        w.until(lambda: len(delays) >= 6, message="back-off delays")
        mid = sim.control.message(group=GROUP, sender="张伟", content="spin over")
        w.until(lambda: count(db_url, wx_home) >= 1)
    assert delays == sorted(delays) or delays[-1] >= delays[0]  # grows (with jitter)
    assert max(delays) > min(delays)
    assert mid in by_msg_id(db_url, wx_home)


def test_restart_resumes_without_gaps_or_duplicates(logged_in, sim, db_url, wx_home):
    paths, config, _state = logged_in
    c = sim.control
    first = c.messages([{"group": GROUP, "sender": "张伟", "content": f"a{i}"} for i in range(30)])
    with RunningWatch(paths, config, db_url) as w:
        w.until(lambda: count(db_url, wx_home) >= 30)
    second = c.messages([{"group": GROUP, "sender": "张伟", "content": f"b{i}"} for i in range(30)])
    with RunningWatch(paths, config, db_url) as w:
        w.until(lambda: count(db_url, wx_home) >= 60)
    ids = [r["msg_id"] for r in messages(db_url, wx_home)]
    assert sorted(ids) == sorted(first + second)


def test_second_watch_is_refused_with_the_holders_pid(logged_in, sim, db_url, wx_home):
    import os

    from wxcli.errors import LockedError

    paths, config, _state = logged_in
    with RunningWatch(paths, config, db_url) as w:
        w.until(lambda: w.watcher.health.state == "running")
        with pytest.raises(LockedError) as info:
            RunningWatch(paths, config, db_url).watcher.run()
    assert info.value.pid == os.getpid()
    assert str(os.getpid()) in str(info.value)
