"""`wxcli history`: filters, JSON fields, recalls, renamed chats, and clear errors."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.helpers.messages import msg
from wxcli.cli import run
from wxcli.store.archive import Archive, Ingestor
from wxcli.watch.normalize import RosterChange


@pytest.fixture
def archive_url(db_url, wx_home):
    a = Archive(db_url, wx_home)
    ing = Ingestor(a, a.account_id(42, "me"), "sid", self_user="@me", self_nickname="me")
    ing.store(
        [
            msg(1, "三天前的问题", ago=72),
            msg(2, "质量太差，我要退款", ago=2),
            msg(3, "好的 <b>谢谢</b> 😀", sender="@u2", name="李娜", ago=1),
            msg(4, "VIP 的消息", chat="@@g2", chat_name="VIP群", ago=1),
            msg(5, "说错了", ago=0.5),
        ],
        None,
    )
    ing.store(
        [
            msg(
                6,
                '"张伟" 撤回了一条消息',
                kind="recall",
                msg_type=10002,
                recall_of="5005",
                ago=0.4,
            ),
            msg(
                7,
                '"张伟"修改群名为“客服一群”',
                kind="system",
                msg_type=10000,
                sender="",
                name="",
                roster=RosterChange(kind="rename", actor="张伟", new_name="客服一群"),
                ago=0.3,
            ),
            msg(8, "改名之后", chat_name="客服一群", ago=0.2),
        ],
        None,
    )
    a.close()
    return db_url


def history(capsys, *args):
    code = run(["history", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(out: str):
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_json_fields_and_order(archive_url, capsys):
    code, out, _ = history(capsys, "--db", archive_url, "--json", "--limit", "100")
    assert code == 0
    got = rows(out)
    assert [r["msg_id"] for r in got] == [str(5000 + i) for i in range(1, 9)]  # oldest first
    r = got[2]
    assert set(r) >= {
        "msg_id",
        "chat",
        "chat_kind",
        "sender",
        "kind",
        "text",
        "media_url",
        "sentiment",
        "created_at",
        "revoked",
    }
    assert r["text"] == "好的 <b>谢谢</b> 😀" and r["sender"] == "李娜"
    assert datetime.fromisoformat(r["created_at"]).tzinfo is not None


def test_filters(archive_url, capsys):
    def ids(*args):
        return [r["msg_id"] for r in rows(history(capsys, "--db", archive_url, "--json", *args)[1])]

    assert ids("--since", "1d", "--grep", "退款") == ["5002"]
    assert ids("--from", "李娜") == ["5003"]
    assert ids("--chat", "VIP*") == ["5004"]
    assert "5001" not in ids("--since", "1d")
    assert ids("--kind", "recall") == ["5006"]
    assert ids("--limit", "2") == ["5007", "5008"]  # the latest two


def test_old_chat_names_still_match_after_a_rename(archive_url, capsys):
    code, out, _ = history(capsys, "--db", archive_url, "--json", "--chat", "客服1群")
    got = [r["msg_id"] for r in rows(out)]
    assert "5008" in got and "5001" in got  # same chat, before and after the rename


def test_recalled_message_is_kept_and_marked(archive_url, capsys):
    got = {r["msg_id"]: r for r in rows(history(capsys, "--db", archive_url, "--json")[1])}
    assert got["5005"]["revoked"] is True and got["5005"]["text"] == "说错了"
    assert got["5006"]["recall_of"] == "5005"


def test_table_view(archive_url, capsys):
    code, out, _ = history(capsys, "--db", archive_url, "--chat", "客服*")
    assert code == 0
    assert "质量太差" in out and "(recalled)" in out


def test_no_archive_is_a_clear_error(capsys):
    code, out, err = history(capsys)
    assert code == 2
    assert err.startswith("Error: the archive is empty") and "Traceback" not in err


def test_bad_since_is_a_usage_error(archive_url, capsys):
    code, _, err = history(capsys, "--db", archive_url, "--since", "last tuesday")
    assert code == 2 and "cannot read the time" in err


def test_grep_matches_like_wildcards_literally(db_url, wx_home, capsys):
    a = Archive(db_url, wx_home)
    ing = Ingestor(a, a.account_id(42, "me"), "sid", self_user="@me", self_nickname="me")
    texts = ["order_id 7", "orderXid 7", "50% off", "50 percent off", r"C:\tmp\x", "C:tmpx"]
    ing.store([msg(20 + i, t, ago=1 - i / 100) for i, t in enumerate(texts)], None)
    a.close()

    def grep(pattern):
        out = history(capsys, "--db", db_url, "--json", "--grep", pattern)[1]
        return [r["text"] for r in rows(out)]

    assert grep("order_id") == ["order_id 7"]
    assert grep("50%") == ["50% off"]
    assert grep("C:\\tmp") == [r"C:\tmp\x"]
    assert grep("\\") == [r"C:\tmp\x"]
