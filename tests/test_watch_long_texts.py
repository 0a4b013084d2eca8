"""Long texts, 4-byte emoji and odd Unicode are stored whole on SQLite and MariaDB."""

from __future__ import annotations

import pytest

from tests.helpers.watch import RunningWatch, close_readers, messages
from wxcli.store.archive import Archive

GROUP = "云帆Pro客服1群"
#: 4-byte emoji, a combining sequence, a zero-width joiner family, right-to-left, a lone
#: astral CJK character: every kind of text a customer may paste.
ODD = "😀🧧 é 👨‍👩‍👧 مرحبا 𠀋 \u200b"


def test_a_100000_character_message_is_stored_whole(logged_in, sim, db_url, wx_home):
    paths, config, state = logged_in
    text = (ODD + "客服" * 50_000)[:100_000]
    assert len(text) == 100_000 and len(text.encode()) > 65_535
    with RunningWatch(paths, config, db_url) as w:
        mid = sim.control.message(group=GROUP, sender="张伟", content=text)
        w.until(lambda: w.watcher.stats.stored >= 1, timeout=20)
    (row,) = [r for r in messages(db_url, wx_home) if r["msg_id"] == mid]
    assert row["text"] == text


@pytest.mark.mysql
def test_the_long_texts_migration_widens_old_mysql_archives(mysql_url, wx_home):
    a = Archive(mysql_url, wx_home)
    try:
        # An archive made before the migration: TEXT columns, migration not recorded.
        a.db.execute_sql("ALTER TABLE `message` MODIFY `text` TEXT NOT NULL")
        a.m.SchemaMigration.delete().where(a.m.SchemaMigration.name == "0005_long_texts").execute()
    finally:
        a.close()
    b = Archive(mysql_url, wx_home)
    try:
        assert "0005_long_texts" in b.migrations
        cur = b.db.execute_sql(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'message' AND COLUMN_NAME = 'text'"
        )
        assert cur.fetchone()[0] == "longtext"
        cur = b.db.execute_sql("SELECT @@SESSION.sql_mode")
        assert "STRICT_TRANS_TABLES" in cur.fetchone()[0]
    finally:
        b.close()
        close_readers()


def test_long_titles_are_whole_and_overlong_names_are_cut_loudly(
    logged_in, sim, db_url, wx_home, caplog
):
    """A link title of 3,000 characters is stored whole; a group renamed to 300 characters
    (beyond any name WeChat allows) keeps its messages, cut to the 255-character column with
    a warning rather than silently or by refusing the batch."""
    paths, config, state = logged_in
    title = ("链接标题😀" * 1000)[:3000]
    # Unique per back-end: each distinct overlong name is warned about once per process.
    long_name = (db_url.split(":", 1)[0] + "超长群名🧧" * 100)[:300]
    with RunningWatch(paths, config, db_url) as w:
        link = sim.control.message(group=GROUP, sender="张伟", type="link", title=title)
        w.until(lambda: w.watcher.stats.stored >= 1, timeout=20)
        sim.control.rename_group(GROUP, long_name, by="张伟")
        text = sim.control.message(group=long_name, sender="张伟", content="改名以后")
        w.until(lambda: w.watcher.stats.stored >= 3, timeout=20)
    rows = {r["msg_id"]: r for r in messages(db_url, wx_home)}
    assert rows[link]["title"] == title
    assert rows[text]["text"] == "改名以后"
    assert rows[text]["chat_name"] == long_name[:255]
    assert any("cut to 255" in r.getMessage() for r in caplog.records)


@pytest.mark.mysql
def test_the_long_titles_migration_widens_old_mysql_archives(mysql_url, wx_home):
    a = Archive(mysql_url, wx_home)
    try:
        a.db.execute_sql("ALTER TABLE `message` MODIFY `title` VARCHAR(512) NOT NULL DEFAULT ''")
        a.m.SchemaMigration.delete().where(a.m.SchemaMigration.name == "0006_long_titles").execute()
    finally:
        a.close()
    b = Archive(mysql_url, wx_home)
    try:
        assert "0006_long_titles" in b.migrations
        cur = b.db.execute_sql(
            "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'message' "
            "AND COLUMN_NAME IN ('title', 'file_name')"
        )
        assert dict(cur.fetchall()) == {"title": "longtext", "file_name": "longtext"}
    finally:
        b.close()
        close_readers()
