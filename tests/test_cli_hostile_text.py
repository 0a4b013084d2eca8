"""Text anyone in a group controls (messages, nicknames, group names) never drives the terminal:
escape sequences, C1 controls, bidi overrides and rich markup are shown, not obeyed; --json keeps
the exact text."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers.cli import run_cli
from tests.test_cli_account import login
from tests.test_cli_account import module_sim as module_sim
from tests.test_cli_account import sim as sim
from wxcli.logutil import RedactingFilter
from wxcli.store.archive import Archive, Ingestor
from wxcli.textutil import safe_text
from wxcli.watch.normalize import ChatMessage

OSC52 = "\x1b]52;c;ZWNobyBwd25lZA==\x07"  # writes the clipboard
OSC8 = "\x1b]8;;http://evil.example/\x1b\\click me\x1b]8;;\x1b\\"  # link text ≠ target
TITLE = "\x1b]0;pwned\x07"  # window title
CLEAR = "\x1b[2J\x1b[H"  # clear screen
C1_CSI = "\x9b2J"  # the one-byte CSI
MARKUP = "[bold]x[/bold] [link=http://x]y[/link]"
BIDI = "\u202egnp.exe\u2066"
FORGE = "ok\r\n2026-01-01 00:00:00 INFO wxcli: forged\x00\x08\x7f"
HOSTILE = [OSC52, OSC8, TITLE, CLEAR, C1_CSI, MARKUP, BIDI, FORGE]
FORBIDDEN = ("\x1b", "\x9b", "\x07", "\x00", "\x08", "\x7f", "\r", "\u202e", "\u2066")


def assert_inert(text: str) -> None:
    for ch in FORBIDDEN:
        assert ch not in text, f"{ch!r} reached the output: {text!r}"


@pytest.mark.parametrize("value", HOSTILE)
def test_safe_text_leaves_nothing_a_terminal_obeys(value):
    shown = safe_text(value)
    assert_inert(shown)
    assert "\n" not in shown and "\t" not in safe_text("a\tb")
    assert safe_text("第一行\n第二行\t!", multiline=True) == "第一行\n第二行\t!"
    assert safe_text("普通文本 😀 [x]") == "普通文本 😀 [x]"  # plain text is left alone


# --- history (archive) -----------------------------------------------------------------------

NOW = datetime.now(UTC).replace(microsecond=0)


def _msg(i: int, text: str, chat_name: str, sender_name: str) -> ChatMessage:
    when = NOW - timedelta(minutes=60 - i)
    return ChatMessage(
        msg_id=str(9000 + i),
        chat_user="@@evil",
        chat_kind="group",
        chat_name=chat_name,
        sender_user=f"@u{i}",
        sender_name=sender_name,
        is_self=False,
        kind="text",
        msg_type=1,
        app_msg_type=0,
        text=text,
        created_at=when,
        received_at=when,
    )


@pytest.fixture
def hostile_archive(wx_home, tmp_path):
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    a = Archive(url, wx_home)
    ing = Ingestor(a, a.account_id(42, "me"), "sid", self_user="@me", self_nickname="me")
    ing.store([_msg(i, t, "客服群" + TITLE, "张伟" + MARKUP) for i, t in enumerate(HOSTILE)], None)
    a.close()
    return url


def test_history_table_is_inert_and_json_exact(hostile_archive, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli(capsys, "history", "--db", hostile_archive, "--limit", "50")
    assert code == 0, err
    assert_inert(out + err)
    assert "[bold]x[/bold]" in out  # markup shown literally, not applied
    code, out, _ = run_cli(capsys, "history", "--db", hostile_archive, "--json", "--limit", "50")
    got = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in got] == HOSTILE
    assert {r["sender"] for r in got} == {"张伟" + MARKUP}


def test_stats_tables_are_inert(hostile_archive, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert run_cli(capsys, "analyze", "--db", hostile_archive)[0] == 0
    for args in (["speakers"], ["activity"], ["sentiment"], ["report"]):
        code, out, err = run_cli(capsys, "stats", *args, "--db", hostile_archive, "--since", "1d")
        assert code == 0, (args, err)
        assert_inert(out + err)


# --- contacts, send (simulator) --------------------------------------------------------------


def test_contacts_and_send_errors_are_inert(sim, capsys):
    sim.control.add_contacts(
        groups=[{"name": "群" + OSC52 + C1_CSI, "members": ["张伟"]}],
        friends=[{"nickname": "友" + OSC8 + MARKUP + BIDI}],
        announce=False,
    )
    assert login(capsys)[0] == 0
    code, out, err = run_cli(capsys, "contacts")
    assert code == 0, err
    assert_inert(out + err)
    assert "[bold]x[/bold]" in out
    code, out, _ = run_cli(capsys, "contacts", "--json")
    names = {json.loads(line)["name"] for line in out.splitlines()}
    assert {"群" + OSC52 + C1_CSI, "友" + OSC8 + MARKUP + BIDI} <= names
    # The error names the chat the user typed: shown, not obeyed.
    code, out, err = run_cli(capsys, "send", "text", "--to", "无此群" + TITLE + CLEAR, "hi")
    assert code != 0 and "无此群" in err
    assert_inert(out + err)


# --- log records -----------------------------------------------------------------------------


def test_log_records_are_one_inert_line():
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("wxcli.test.hostile")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        for value in HOSTILE:
            log.info("request path %s from %r", "/v1/" + value, value)
    finally:
        log.removeHandler(handler)
    assert len(records) == len(HOSTILE)
    for line in records:
        assert_inert(line)
        assert "\n" not in line
