"""`wxcli stats …` as a user runs it, on the known archive of tests/test_stats_queries.py (real
ingest, real worker), on SQLite and MariaDB: table, JSON-lines and CSV output, the messages for an
empty archive or an unknown chat (one `Error:` line, exit status 2, no traceback), warnings,
`wxcli analyze --rebuild` after a stopwords change, and the HTML report rendered by headless
Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.db import MYSQL_HOST, MYSQL_PORT, mysql_available
from tests.helpers.known_archive import (
    G1,
    SELF,
    WORDS,
    Engines,
    build_archive,
    message,
)
from wxcli.stats.model import Report
from wxcli.store.archive import Ingestor

PERIOD = ("--since", "2026-11-01", "--until", "2026-11-05")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def shared_url(request, tmp_path_factory, engines):
    """One known archive per back-end for the read-only tests of this module."""
    if request.param == "sqlite":
        home = tmp_path_factory.mktemp("stats-cli")
        url = f"sqlite:///{home / 'archive.db'}"
    else:
        if not mysql_available():
            pytest.fail("MariaDB is not reachable on 127.0.0.1:3306 (or run pytest --no-mysql)")
        home = tmp_path_factory.mktemp("stats-cli")
        name = f"wxcli_test_{uuid.uuid4().hex[:10]}"
        url = f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    build_archive(url, home, engines).close()
    yield url
    if request.param == "mysql":
        import pymysql

        conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="")
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture
def cli(capsys, shared_url, monkeypatch):
    """``cli(*args)`` runs ``wxcli stats ARGS --db <the shared archive>`` in this process."""
    monkeypatch.setenv("COLUMNS", "160")

    def run(*args: str, db: str | None = None) -> tuple[int, str, str]:
        return run_cli(capsys, "stats", *args, "--db", db or shared_url)

    return run


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def csv_rows(out: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(out)))


def assert_one_error(code: int, err: str, text: str) -> None:
    assert code == 2, err
    assert err.count("Error:") == 1 and text in err, err
    assert "Traceback" not in err


# --- help --------------------------------------------------------------------------------------


def test_help_names_every_command_and_the_snownlp_caveat(capsys):
    code, out, _ = run_cli(capsys, "stats", "--help")
    assert code == 0
    for name in ("words", "activity", "speakers", "sentiment", "report"):
        assert name in out
    assert "shopping reviews" in out
    for name in ("words", "activity", "speakers", "sentiment", "report"):
        code, out, _ = run_cli(capsys, "stats", name, "--help")
        assert code == 0
        assert "--chat" in out and "--since" in out and "--db" in out
    for name in ("sentiment", "report"):
        out = run_cli(capsys, "stats", name, "--help")[1]
        assert "trained on shopping reviews" in " ".join(out.split())
        assert "trends" in out


# --- words ---------------------------------------------------------------------------------------


def test_words_as_json_csv_and_a_chart(cli):
    code, out, err = cli("words", *PERIOD, "--format", "json")
    assert code == 0, err
    rows = json_lines(out)
    assert {r["word"]: r["count"] for r in rows} == WORDS
    assert set(rows[0]) == {"word", "count", "share"}
    assert "Warning" not in err
    code, out, _ = cli("words", *PERIOD, "--format", "csv", "--top", "3")
    assert out.splitlines()[0] == "word,count,share"
    assert [(r["word"], r["count"]) for r in csv_rows(out)] == [
        ("快递", "5"),
        ("发货", "4"),
        ("退款", "4"),
    ]
    code, out, _ = cli("words", *PERIOD)
    assert code == 0
    assert "Top words" in out and "2026-11-01 – 2026-11-05" in out
    assert "快递" in out and "█" in out and "22.7%" in out  # 5 of 22 counted words
    code, out, _ = cli("words", *PERIOD, "--chat", "售后群", "--format", "json")  # a former name
    assert {r["word"]: r["count"] for r in json_lines(out)} == {
        "退款": 2, "快递": 1, "破损": 1, "看看": 1, "订单号": 1,
    }  # fmt: skip


def test_words_split_and_keywords(cli):
    code, out, _ = cli("words", *PERIOD, "--by", "week", "--top", "1", "--format", "csv")
    assert code == 0
    assert out.splitlines()[0] == "week,word,count,share"
    assert [(r["week"], r["word"]) for r in csv_rows(out)] == [
        ("2026-10-26", "客服"),
        ("2026-11-02", "发货"),
    ]
    code, out, _ = cli("words", *PERIOD, "--by", "sender", "--top", "1", "--groups", "2")
    assert code == 0
    assert "张三" in out and "快递 3" in out and "赵六" not in out
    code, out, _ = cli("words", *PERIOD, "--keywords", "--top", "3", "--format", "json")
    rows = json_lines(out)
    assert len(rows) == 3 and set(rows[0]) == {"word", "weight", "count"}
    code, _, err = cli("words", "--keywords", "--by", "day")
    assert code == 2 and "cannot be used with --by" in err


# --- activity, speakers, sentiment ---------------------------------------------------------------


def test_activity_views(cli):
    code, out, _ = cli("activity", *PERIOD, "--format", "json")
    rows = json_lines(out)
    totals = {r["day"]: r["messages"] for r in rows if r["chat"] is None}
    assert totals == {
        "2026-11-01": 1, "2026-11-02": 5, "2026-11-03": 3, "2026-11-04": 0, "2026-11-05": 1,
    }  # fmt: skip
    code, out, _ = cli("activity", *PERIOD, "--view", "hours", "--format", "csv")
    rows = csv_rows(out)
    assert {"chat": "售后服务群", "weekday": "1", "hour": "7", "messages": "1"} in rows
    code, out, _ = cli("activity", *PERIOD, "--view", "chats", "--format", "json")
    assert [(r["chat"], r["messages"]) for r in json_lines(out)] == [
        ("客服一群", 7), ("售后服务群", 2), ("VIP-孙总", 1),
    ]  # fmt: skip
    code, out, _ = cli("activity", *PERIOD, "--lang", "en")
    assert code == 0
    for part in ("Messages per day", "weekday × hour", "Busiest chats", "客服一群", "70.0%"):
        assert part in out


def test_speakers_and_lurkers_output(cli):
    code, out, _ = cli("speakers", *PERIOD, "--format", "csv")
    rows = csv_rows(out)
    assert out.splitlines()[0] == "chat,name,messages,share,role"
    assert {(r["chat"], r["name"], r["role"]) for r in rows} == {
        ("客服一群", "张三", "speaker"), ("客服一群", "李四", "speaker"),
        ("售后服务群", "赵六", "speaker"), ("VIP-孙总", "VIP-孙总", "speaker"),
        ("客服一群", "王五", "lurker"), ("售后服务群", "钱七", "lurker"),
    }  # fmt: skip
    code, out, _ = cli("speakers", *PERIOD, "--lang", "en")
    assert "Lurkers" in out and "王五" in out and "42.9%" in out
    code, out, _ = cli("speakers", *PERIOD, "--overall", "--top", "1", "--no-lurkers")
    assert "张三" in out and "王五" not in out


def test_sentiment_views(cli):
    code, out, _ = cli("sentiment", *PERIOD, "--format", "json")
    rows = json_lines(out)
    assert [r["day"] for r in rows] == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-05"]
    assert sum(r["messages"] for r in rows) == 8
    assert all(0 <= r["mean"] <= 1 and 0 <= r["median"] <= 1 for r in rows)
    code, out, _ = cli("sentiment", *PERIOD, "--view", "negatives", "--format", "json")
    negatives = json_lines(out)
    assert negatives and all(r["score"] < 0.3 for r in negatives)
    assert negatives[0]["history_hint"].startswith("wxcli history --chat ")
    code, out, _ = cli("sentiment", *PERIOD, "--view", "chats", "--format", "csv")
    assert out.splitlines()[0] == "chat,mean,median,negative_share,messages"
    code, out, _ = cli("sentiment", *PERIOD, "--lang", "en")
    assert code == 0
    assert "Sentiment trend" in out and "Most negative messages" in out
    assert "$ wxcli history --chat" in out
    assert "trained on shopping reviews" in " ".join(out.split())


def test_report_as_json_terminal_and_html(cli, tmp_path):
    code, out, _ = cli("report", *PERIOD, "--format", "json", "--title", "周报")
    report = Report.from_dict(json.loads(out))
    assert report.meta.title == "周报" and report.meta.total_messages == 10
    assert {w.word: w.count for w in report.words} == WORDS
    code, out, _ = cli("report", *PERIOD)
    assert code == 0 and "热门词汇" in out and "潜水成员" in out
    page = tmp_path / "r.html"
    code, _, err = cli("report", *PERIOD, "--html", str(page))
    assert code == 0 and f"Wrote {page}" in err
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "快递" in html and "http://" not in html
    code, _, err = cli("report", *PERIOD, "--html", str(tmp_path / "no" / "such" / "r.html"))
    assert_one_error(code, err, "cannot write")


def test_html_report_is_private_even_under_umask_000(cli, tmp_path):
    # The report quotes customer messages: 0600 whatever the umask, also over an existing file.
    page = tmp_path / "r.html"
    page.write_text("old")
    page.chmod(0o644)
    old = os.umask(0)
    try:
        code, _, _ = cli("report", *PERIOD, "--html", str(page))
    finally:
        os.umask(old)
    assert code == 0 and page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --- what the user is told -----------------------------------------------------------------------


def test_unknown_chat_and_bad_times_are_usage_errors(cli):
    code, _, err = cli("words", "--chat", "财务*")
    assert_one_error(code, err, "no chat matches '财务*'")
    assert "客服一群" in err  # the known chats are listed
    code, _, err = cli("activity", "--since", "2026-11-05", "--until", "2026-11-01")
    assert_one_error(code, err, "the period is empty")
    code, _, err = cli("speakers", "--since", "yesterday-ish")
    assert_one_error(code, err, "cannot read the time")
    for far in ("99999999999999d", "9999-12-31"):  # OverflowError inside datetime, not a bug
        code, _, err = cli("words", "--since", "2026-11-01", "--until", far)
        assert_one_error(code, err, "is out of range")
    code, out, err = cli("words", "--since", "2026-11-04", "--until", "2026-11-04")
    assert code == 0 and out == "" and "No counted words in this period" in err
    code, out, _ = cli("words", "--since", "2026-11-04", "--until", "2026-11-04", "--format", "csv")
    assert out.strip() == "word,count,share"  # scripts still get the header


def test_empty_archive_says_what_to_do(capsys, db_url, wx_home):
    from wxcli.store.archive import Archive

    Archive(db_url, wx_home).close()
    for command in ("words", "activity", "speakers", "sentiment", "report"):
        code, _, err = run_cli(capsys, "stats", command, "--db", db_url)
        assert_one_error(code, err, "the archive has no messages yet: run `wxcli watch`")


def test_no_archive_at_all(capsys, wx_home):
    code, _, err = run_cli(capsys, "stats", "words")
    assert_one_error(code, err, "the archive is empty")


def test_warnings_for_pending_messages_and_another_time_zone(capsys, db_url, wx_home, engines):
    archive = build_archive(db_url, wx_home, engines)
    ingest = Ingestor(archive, archive.account_id(4242), "sid-1", self_user=SELF)
    ingest.store([message(30, G1, "@u1", "张三", "退款", "11-04 03:00")], None)
    archive.close()
    code, out, err = run_cli(capsys, "stats", "words", "--db", db_url, *PERIOD, "--format", "json")
    assert code == 0
    assert "1 messages are not analysed yet" in err
    (wx_home / "wxcli.toml").write_text('[analysis]\ntimezone = "UTC"\n', encoding="utf-8")
    code, out, err = run_cli(capsys, "stats", "words", "--db", db_url, *PERIOD, "--format", "json")
    assert code == 0
    assert "made in time zone Asia/Shanghai, not UTC" in err and "--rebuild" in err


def test_analyze_rebuild_after_a_stopwords_change(
    capsys, db_url, wx_home, engines: Engines, tmp_path
):
    build_archive(db_url, wx_home, engines).close()
    engines.seed_home(wx_home)  # no jieba/sentiment table build in the CLI's own cache
    args = ("stats", "words", "--db", db_url, *PERIOD, "--format", "json")
    before = {r["word"]: r["count"] for r in json_lines(run_cli(capsys, *args)[1])}
    assert before == WORDS
    stop = tmp_path / "stop.txt"
    stop.write_text("快递\n退款\n", encoding="utf-8")
    (wx_home / "wxcli.toml").write_text(
        f'[analysis]\nstopwords_file = "{stop}"\n', encoding="utf-8"
    )
    code, _, err = run_cli(capsys, "analyze", "--db", db_url)
    assert code == 0 and "run `wxcli analyze --rebuild`" in err  # told, not done
    assert json_lines(run_cli(capsys, *args)[1])[0]["word"] == "快递"
    code, _, err = run_cli(capsys, "analyze", "--rebuild", "--quiet", "--db", db_url)
    assert code == 0, err
    after = {r["word"]: r["count"] for r in json_lines(run_cli(capsys, *args)[1])}
    assert after == {w: n for w, n in WORDS.items() if w not in ("快递", "退款")}


# --- the HTML report in a real browser ------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.chromium
def test_html_report_from_the_archive_renders_every_chart(capsys, wx_home, engines, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    url = f"sqlite:///{tmp_path / 'archive.db'}"
    build_archive(url, wx_home, engines).close()
    page = tmp_path / "report.html"
    code, _, err = run_cli(capsys, "stats", "report", "--db", url, *PERIOD, "--html", str(page))
    assert code == 0, err
    png = tmp_path / "report.png"
    shot = _chromium(
        ["--enable-logging=stderr", "--v=0", "--hide-scrollbars", f"--screenshot={png}",
         "--window-size=1366,2400", page.as_uri()],
        tmp_path,
    )  # fmt: skip
    assert png.exists(), shot.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > 100_000  # a blank page is a few kB
    errors = [line for line in shot.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not errors, errors
    dom = _chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    # words bars, word cloud, messages per day, heat map, busiest chats, sentiment trend
    assert dom.stdout.count("<svg") == 6
    for section in ("words", "wordcloud", "daily", "heatmap", "busiest", "sentiment",
                    "speakers", "lurkers", "negatives"):  # fmt: skip
        assert f'id="{section}"' in dom.stdout
    for text in ("快递", "客服一群", "王五", "wxcli history --chat"):
        assert text in dom.stdout
