"""Long texts, 4-byte emoji and odd Unicode are stored whole on SQLite and MariaDB."""

from __future__ import annotations

import pytest

from tests.watch_helpers import RunningWatch, close_readers, messages
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
