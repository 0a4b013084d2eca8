"""Each rule against a real archive with an injected clock: unanswered (working hours, staff,
restarts), silence (normally busy chats), negative (per message and per window, scoring done
out of order), watch_down, error, session_lost and login_needed."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from wxcli.alerts.history import AlertHistoryStore
from wxcli.alerts.rules import (
    Gate,
    RuleContext,
    Sources,
    build_rules,
    scored_through,
)
from wxcli.alerts.settings import parse_alert_settings, parse_rule
from wxcli.health import Health
from wxcli.pacer import Pacer, PacerSettings
from wxcli.store.archive import Archive, Ingestor
from wxcli.watch.normalize import ChatMessage

TZ_NAME = "Asia/Shanghai"


def local(text: str) -> datetime:
    """'2026-03-06 17:55' in Shanghai, as an aware UTC datetime."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(TZ_NAME)).astimezone(UTC)


class Chats:
    """Writes messages into a real archive through the Ingestor, at chosen times."""

    def __init__(self, archive: Archive):
        self.archive = archive
        self.account = archive.account_id(2911234567, "云帆客服中心")
        self.ingestor = Ingestor(
            archive, self.account, "sid-1", self_user="@me", self_nickname="云帆客服中心"
        )
        self.n = 0

    def say(self, chat: str, sender: str, text: str, at: datetime, **kw) -> str:
        self.n += 1
        is_self = kw.pop("is_self", False)
        msg_id = str(5_000_000 + self.n)
        row = ChatMessage(
            msg_id=msg_id,
            chat_user="@@" + hashlib.md5(chat.encode()).hexdigest(),
            chat_kind=kw.pop("chat_kind", "group"),
            chat_name=chat,
            sender_user="@me" if is_self else "@" + hashlib.md5(sender.encode()).hexdigest(),
            sender_name="云帆客服中心" if is_self else sender,
            is_self=is_self,
            kind=kw.pop("kind", "text"),
            msg_type=1,
            app_msg_type=0,
            text=text,
            created_at=at,
            received_at=at,
            **kw,
        )
        self.ingestor.store([row], None)
        return msg_id


@pytest.fixture
def archive(db_url, tmp_path):
    """The rules' queries run on SQLite and on the real MariaDB."""
    a = Archive(db_url, tmp_path)
    yield a
    a.close()


@pytest.fixture
def chats(archive):
    return Chats(archive)


def make(rules: dict, archive=None, **section):
    section = {"timezone": TZ_NAME, "rules": rules, "channels": {}, **section}
    settings = parse_alert_settings(section)
    ctx = RuleContext(profile="default", settings=settings, hostname="ops-host")
    [rule] = build_rules(settings.rules, ctx)
    history = AlertHistoryStore(archive) if archive is not None else None
    sources = Sources(archive=lambda: archive, state=history)
    return rule, sources


# --- unanswered ------------------------------------------------------------------------------

WAITING = {"waiting": {"kind": "unanswered", "chats": ["客服*"], "minutes": 15}}


def test_unanswered_counts_only_working_time_and_fires_only_within_it(archive, chats):
    rule, sources = make(WAITING, archive, working_hours="mon-fri 09:00-18:00", staff=["客服-小王"])
    asked = local("2026-03-06 17:55")  # a Friday, five minutes before closing
    mid = chats.say("客服1群", "张伟", "发票怎么开？", asked)
    assert rule.check(local("2026-03-06 18:30"), sources) == []  # after hours
    assert rule.check(local("2026-03-07 11:00"), sources) == []  # Saturday
    assert rule.check(local("2026-03-09 09:09"), sources) == []  # 5 + 9 = 14 working minutes
    [alert] = rule.check(local("2026-03-09 09:11"), sources)
    assert alert.kind == "unanswered"
    assert alert.key == f"unanswered:waiting:{_chat_id(archive, '客服1群')}:{mid}"
    f = alert.fields
    assert (f["chat"], f["customer"], f["asked at"]) == ("客服1群", "张伟", "2026-03-06 17:55:00")
    assert f["waiting"] == "16 min (working time)"
    assert f["staff"] == "客服-小王 and the account itself"
    assert (
        f["history"] == "wxcli history --chat '客服1群' --since 2026-03-06T17:50+08:00 --limit 30"
    )
    assert alert.text == "发票怎么开？"


def _chat_id(archive, name):
    C = archive.m.Chat
    return C.get(C.name == name).id


def test_an_answer_by_staff_or_the_account_clears_the_wait(archive, chats):
    rule, sources = make(WAITING, archive, staff=["客服-小王"])
    t = local("2026-03-09 10:00")
    chats.say("客服1群", "张伟", "在吗", t)
    chats.say("客服1群", "客服-小王", "在的，请讲", t + timedelta(minutes=3))
    chats.say("客服2群", "李四", "退货地址？", t)
    chats.say("客服2群", "", "已私信您", t + timedelta(minutes=1), is_self=True)
    chats.say("内部群", "王五", "开会", t)  # not a customer group
    assert rule.check(t + timedelta(hours=1), sources) == []
    # A new question after the answer starts a new wait: only that one counts.
    chats.say("客服1群", "张伟", "还有一个问题", t + timedelta(minutes=20))
    chats.say("客服1群", "张伟", "快递到哪了", t + timedelta(minutes=21))
    [alert] = rule.check(t + timedelta(minutes=36), sources)
    assert alert.fields["messages waiting"] == "2"
    assert alert.text == "还有一个问题\n(and 1 more message(s) since)"


def test_unanswered_survives_a_restart_because_it_reads_the_archive(archive, chats):
    t = local("2026-03-09 10:00")
    chats.say("客服1群", "张伟", "在吗", t)
    first, sources = make(WAITING, archive)
    assert first.check(t + timedelta(minutes=5), sources) == []
    restarted, sources = make(WAITING, archive)  # a new process knows nothing in memory
    assert len(restarted.check(t + timedelta(minutes=16), sources)) == 1


def test_system_messages_and_friends_are_not_customer_questions(archive, chats):
    rule, sources = make(WAITING, archive)
    t = local("2026-03-09 10:00")
    chats.say("客服1群", "", "张伟邀请李四加入了群聊", t, kind="system")
    chats.say("客服-赵总", "客服-赵总", "在吗", t, chat_kind="friend")
    assert rule.check(t + timedelta(hours=1), sources) == []


# --- silence -----------------------------------------------------------------------------------

SILENCE = {"quiet": {"kind": "silence", "minutes": 30, "min_messages": 5}}


def test_a_normally_busy_chat_that_goes_silent_alerts(archive, chats):
    now = local("2026-03-09 10:30")
    for day in range(1, 8):
        for i in range(6):  # busy between 10:00 and 10:30 every day of the last week
            chats.say("客服1群", "张伟", f"d{day} m{i}", now - timedelta(days=day, minutes=25 - i))
        chats.say("客服2群", "李四", f"d{day}", now - timedelta(days=day, minutes=10))  # quiet
    chats.say("客服1群", "张伟", "昨晚的消息", now - timedelta(hours=12))
    rule, sources = make(SILENCE, archive)
    [alert] = rule.check(now, sources)
    assert alert.kind == "silence"
    assert alert.fields["chat"] == "客服1群"
    assert alert.fields["usual messages"] == "6.0 per 30 min"
    assert "zombie" in alert.text
    # One message in the window is enough to be "not silent".
    chats.say("客服1群", "张伟", "又来了", now - timedelta(minutes=2))
    rule2, sources = make(SILENCE, archive)
    assert rule2.check(now, sources) == []


def test_silence_waits_after_a_watch_start_and_during_a_lost_session(archive, chats):
    now = local("2026-03-09 10:30")
    for day in range(1, 8):
        for i in range(6):
            chats.say("客服1群", "张伟", f"d{day} m{i}", now - timedelta(days=day, minutes=20 - i))
    rule, sources = make(SILENCE, archive)
    health = Health(state="running", started_at=(now - timedelta(minutes=10)).isoformat())
    sources.health = lambda: health
    assert rule.check(now, sources) == []  # watch started 10 min ago: its own gap
    health.state = "session_lost"
    health.started_at = (now - timedelta(hours=2)).isoformat()
    assert rule.check(now, sources) == []  # the session_lost alert says it already
    health.state = "running"
    assert len(rule.check(now, sources)) == 1


# --- negative ----------------------------------------------------------------------------------


def score(archive, msg_ids_scores: dict[str, float], ranges: list[tuple[int, int, bool]]):
    """Write what the analysis worker writes: scores and its work ranges."""
    m = archive.m
    M = m.Message
    for msg_id, s in msg_ids_scores.items():
        row = M.get(M.msg_id == msg_id)
        m.MessageScore.insert(message=row.id, sentiment=s).on_conflict_ignore().execute()
    now = datetime.now(UTC).replace(tzinfo=None)
    for start, end, done in ranges:
        m.WorkRange.insert(
            kind="analysis", start_id=start, end_id=end, claimed_by="w", claimed_at=now, done=done
        ).on_conflict_replace().execute()


def _id(archive, msg_id):
    M = archive.m.Message
    return M.get(M.msg_id == msg_id).id


def test_scored_through_waits_for_ranges_finished_out_of_order(archive):
    score(archive, {}, [(1, 10, True), (11, 20, False), (21, 30, True)])
    assert scored_through(archive) == 10
    score(archive, {}, [(11, 20, True)])
    assert scored_through(archive) == 30


def test_negative_per_message_from_a_high_water_mark(archive, chats):
    rule, sources = make({"mood": {"kind": "negative", "threshold": 0.2}}, archive)
    t = local("2026-03-09 10:00")
    old = chats.say("客服1群", "张伟", "老的差评", t - timedelta(days=1))
    score(archive, {old: 0.01}, [(1, _id(archive, old), True)])
    assert rule.check(t, sources) == []  # a new rule starts at the current mark
    good = chats.say("客服1群", "张伟", "很好", t)
    bad = chats.say("客服1群", "李四", "垃圾，退货", t)
    worse = chats.say("客服1群", "王五", "气死了", t)
    score(archive, {good: 0.9, bad: 0.05}, [(_id(archive, good), _id(archive, bad), True)])
    [alert] = rule.check(t, sources)
    assert alert.fields["sender"] == "李四"
    assert alert.fields["sentiment"] == "0.05 (below 0.2)"
    assert alert.title == "[wxcli] 客服1群: negative message from 李四 (0.05)"
    score(archive, {worse: 0.1}, [(_id(archive, worse), _id(archive, worse), True)])
    # A restarted engine continues from the stored mark: only the new message.
    again, sources = make({"mood": {"kind": "negative", "threshold": 0.2}}, archive)
    [alert] = again.check(t, sources)
    assert alert.fields["sender"] == "王五"
    assert again.check(t, sources) == []


def test_negative_share_in_a_window(archive, chats):
    rules = {
        "mood": {
            "kind": "negative",
            "threshold": 0.3,
            "window_minutes": 60,
            "share": 0.5,
            "min_messages": 4,
            "chats": ["客服*"],
        }
    }
    rule, sources = make(rules, archive)
    t = local("2026-03-09 10:00")
    assert rule.check(t, sources) == []  # sets the mark (nothing scored yet)
    ids = [
        chats.say("客服1群", f"客户{i}", f"m{i}", t - timedelta(minutes=50 - i)) for i in range(3)
    ]
    score(archive, dict(zip(ids, [0.1, 0.2, 0.9], strict=True)), [(1, _id(archive, ids[-1]), True)])
    assert rule.check(t, sources) == []  # 3 scored < min_messages 4
    four = chats.say("客服1群", "客户9", "一般般吧", t - timedelta(minutes=5))
    score(archive, {four: 0.25}, [(_id(archive, four), _id(archive, four), True)])
    [alert] = rule.check(t, sources)
    assert alert.title == "[wxcli] 客服1群: 75% of messages negative in 60 min"
    assert alert.fields["negative"] == "3 of 4 scored messages"
    assert alert.text.splitlines()[1].startswith("客户0 (0.10): m0")


# --- watch_down, error -------------------------------------------------------------------------


def test_watch_down_from_a_stale_sync_a_stuck_process_or_a_crash():
    rule, sources = make({"down": {"kind": "watch_down", "minutes": 10}})
    now = local("2026-03-09 10:00")

    def stamp(minutes):
        return (now - timedelta(minutes=minutes)).isoformat()

    health = Health(
        pid=4242,
        state="running",
        started_at=stamp(60),
        updated_at=stamp(0),
        last_synccheck_at=stamp(2),
    )
    running = {"value": True}
    sources.health = lambda: health
    sources.watch_running = lambda: running["value"]
    assert rule.check(now, sources) == []
    health.last_synccheck_at = stamp(12)
    [alert] = rule.check(now, sources)
    assert "no successful sync with WeChat for 12 min" in alert.text
    assert alert.severity == "critical"
    assert alert.fields["watch pid"] == "4242"
    health.updated_at = stamp(11)
    [alert] = rule.check(now, sources)
    assert "has not updated its health record for 11 min" in alert.text
    running["value"] = False
    [alert] = rule.check(now, sources)
    assert "not running" in alert.text
    health.state = "stopped"  # stopped on purpose: not "down"
    assert rule.check(now, sources) == []


def test_error_rule_reports_new_media_failures_and_1205s(tmp_path):
    rule, sources = make({"errors": {"kind": "error"}})
    now = local("2026-03-09 10:00")
    health = Health(state="running", queues={"media_failed": 2})
    pacer = Pacer(tmp_path / "pacer.json", PacerSettings(backoff=1.0))
    sources.health = lambda: health
    sources.pacer_status = pacer.status
    assert rule.check(now, sources) == []  # the first look is the baseline
    health.queues["media_failed"] = 5
    health.add_error("media", "message 123: HTTP 404")
    pacer.rate_limited(0)
    alerts = {a.key: a for a in rule.check(now, sources)}
    assert set(alerts) == {"error:errors:media", "error:errors:send"}
    assert alerts["error:errors:media"].fields["last error"] == "message 123: HTTP 404"
    assert alerts["error:errors:media"].fields["failed now"] == "3"
    assert alerts["error:errors:send"].fields["1205 answers"] == "1"
    assert rule.check(now, sources) == []
    [db] = rule.on_event("db_spooling", {"error": "gone", "spool": "/x/spool.jsonl"}, now)
    assert db.title == "[wxcli] default: database unreachable, spooling messages to disk"
    [back] = rule.on_event("db_recovered", {"replayed": 3}, now)
    assert back.severity == "info"
    [sync] = rule.on_event("error", {"where": "synccheck", "message": "timed out"}, now)
    assert sync.key == "error:errors:sync:synccheck"
    only_db, _ = make({"db": {"kind": "error", "sources": ["database"]}})
    assert only_db.on_event("error", {"where": "sync", "message": "x"}, now) == []


# --- the session -------------------------------------------------------------------------------


def test_session_lost_names_the_code_and_each_session_once():
    rule, _ = make({"lost": {"kind": "session_lost"}})
    now = local("2026-03-09 10:00")
    [a] = rule.on_event("session_lost", {"code": 1100, "meaning": "logged out", "sid": "S1"}, now)
    [b] = rule.on_event("session_lost", {"code": 1101, "meaning": "elsewhere", "sid": "S2"}, now)
    assert a.title == "[wxcli] default: WeChat session lost (1100)"
    assert "Run `wxcli login` on ops-host" in a.text
    assert a.key != b.key
    assert a.severity == "critical"


def test_login_needed_links_the_qr_when_a_base_url_is_set():
    png = b"\x89PNG\r\n\x1a\n..."
    data = {
        "qr_path": "/h/login-qr.png",
        "qr_png": png,
        "url": "https://x/l/ab",
        "valid_seconds": 240,
    }
    now = local("2026-03-09 10:00")
    rule, _ = make({"qr": {"kind": "login_needed"}})
    [plain] = rule.on_event("login_needed", data, now)
    assert plain.image_url is None
    assert [(a.filename, a.content) for a in plain.attachments] == [("login-qr.png", png)]
    assert "until 10:04 Asia/Shanghai" in plain.text
    assert "https://x/l/ab" in plain.text
    rule, _ = make({"qr": {"kind": "login_needed"}}, qr_url_base="https://ops.example.com/qr")
    [linked] = rule.on_event("login_needed", data, now)
    digest = hashlib.sha256(png).hexdigest()
    assert linked.image_url == f"https://ops.example.com/qr/login-qr.png?v={digest[:12]}"


# --- keyword and the gate ----------------------------------------------------------------------


def test_keyword_words_globs_self_and_link_titles():
    rule, _ = make(
        {"kw": {"kind": "keyword", "words": ["差评", "投诉"], "chats": ["客服*", "VIP*"]}}
    )
    now = local("2026-03-09 10:00")

    def msg(text="", chat="客服1群", **kw):
        values = dict(
            msg_id="1",
            chat_user="@@c",
            chat_kind="group",
            chat_name=chat,
            sender_user="@s",
            sender_name="张伟",
            is_self=False,
            kind="text",
            msg_type=1,
            app_msg_type=0,
            text=text,
            created_at=now,
            received_at=now,
        )
        values.update(kw)
        return ChatMessage(**values)

    rows = [
        msg("给你们差评"),
        msg("差评", chat="内部群"),
        msg("投诉", is_self=True),
        msg("", kind="link", title="如何投诉", msg_type=49),
        msg("差评", kind="recall"),
    ]
    alerts = rule.on_event("messages", {"rows": rows}, now)
    assert [a.fields["matched"] for a in alerts] == ["差评", "投诉"]
    assert alerts[1].text == "如何投诉"


def test_gate_cooldown_and_quiet_hours():
    spec = parse_rule("kw", {"kind": "keyword", "words": ["x"], "quiet_hours": "22:00-07:00"})
    from zoneinfo import ZoneInfo

    gate = Gate(tz=ZoneInfo(TZ_NAME))
    rule, _ = make({"kw": {"kind": "keyword", "words": ["x"]}})
    day = local("2026-03-09 10:00")
    alert = rule.make(title="t", text="", fields={}, key="k", now=day)
    assert gate.admit(spec, alert, local("2026-03-09 23:30")) == "quiet"
    assert gate.admit(spec, alert, local("2026-03-10 06:59")) == "quiet"
    assert gate.admit(spec, alert, day) == "send"
    assert gate.admit(spec, alert, day + timedelta(minutes=9)) == "cooldown"
    assert gate.admit(spec, alert, day + timedelta(minutes=10)) == "send"


def test_alert_fields_are_json_friendly():
    rule, _ = make({"kw": {"kind": "keyword", "words": ["x"]}})
    alert = rule.make(
        title="t", text="", fields={"n": 3, "empty": ""}, key="k", now=datetime.now(UTC)
    )
    assert json.loads(json.dumps(alert.fields)) == {
        "n": "3",
        "profile": "default",
        "host": "ops-host",
        "rule": "kw",
    }
