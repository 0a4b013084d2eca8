"""Named, ordered schema migrations, each recorded in ``schema_migration`` once applied.

Append new steps at the end; never edit an applied one. Two processes starting at once are
serialised (a MySQL named lock, SQLite's write lock), and re-running is harmless.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import peewee as pw

from wxcli.store.models import ArchiveModels

log = logging.getLogger(__name__)


def _initial(m: ArchiveModels) -> None:
    m.db.create_tables(m.all, safe=True)


#: Covering indexes for `wxcli stats`: a period over all chats is read from the index alone,
#: without a lookup per row (InnoDB and SQLite alike).
STATS_INDEXES = {
    "activity": ("activity_day_cover", ("day", "hour", "chat_id", "messages")),
    "speaker_count": ("speaker_count_day_cover", ("day", "chat_id", "person_id", "messages")),
}


def _stats_rollups(m: ArchiveModels) -> None:
    """Roll-ups for `wxcli stats` (words per day, week and sender; speakers per week; messages
    per chat and day, and per hour; sentiment bins) and covering indexes. The roll-ups are
    made by the analysis worker, so an archive analysed before them is recounted: its derived
    rows and work ranges are dropped here and the next worker run (watch or `wxcli analyze`)
    redoes them from the messages."""
    db = m.db
    rollups = [m.WordDay, m.SenderWordCount, m.WordWeek, m.SpeakerWeek, m.ChatDay, m.DayHour]
    db.create_tables([*rollups, m.SentimentBin], safe=True)
    quote = "`{}`" if isinstance(db, pw.MySQLDatabase) else '"{}"'
    for table, (name, columns) in STATS_INDEXES.items():
        if any(ix.name == name for ix in db.get_indexes(table)):
            continue
        cols = ", ".join(quote.format(c) for c in columns)
        db.execute_sql(f"CREATE INDEX {quote.format(name)} ON {quote.format(table)} ({cols})")
    W = m.WorkRange
    if W.select().where(W.kind == "analysis").exists():
        log.warning("stats roll-ups added: the analysis worker will recount every message")
        for model in (m.MessageScore, m.WordCount, m.Activity, m.SpeakerCount):
            model.delete().execute()
        W.delete().where(W.kind == "analysis").execute()


def _alert_history(m: ArchiveModels) -> None:
    """The alert history and cooldown state (models in store.alert_models)."""
    from wxcli.store.alert_models import migrate_alert_history

    migrate_alert_history(m)


def _send_audit(m: ArchiveModels) -> None:
    m.db.create_tables([m.SendAudit], safe=True)


#: Columns a message or a big group can overflow in a MySQL TEXT (64 KB); SQLite has no limit.
LONG_TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "message": ("text", "mentions", "url"),
    "chat": ("member_sig",),
}
#: A link's or file's title, which VARCHAR(512) cut (on SQLite too, in the ingest code).
LONG_TITLE_COLUMNS: dict[str, tuple[str, ...]] = {"message": ("title", "file_name")}


def _long_texts(m: ArchiveModels) -> None:
    """Long texts stored whole on MySQL: TEXT → LONGTEXT (archives made before this)."""
    _widen(m, LONG_TEXT_COLUMNS)


def _long_titles(m: ArchiveModels) -> None:
    """Titles and file names stored whole on MySQL: VARCHAR(512) → LONGTEXT."""
    _widen(m, LONG_TITLE_COLUMNS)


def _feed_cursors(m: ArchiveModels) -> None:
    """Where each feed sink stands (``wxcli feed``)."""
    m.db.create_tables([m.FeedCursor], safe=True)


def _widen(m: ArchiveModels, tables: dict[str, tuple[str, ...]]) -> None:
    if not isinstance(m.db, pw.MySQLDatabase):
        return  # SQLite's TEXT has no length limit
    for table, columns in tables.items():
        changes = ", ".join(
            f"MODIFY `{c}` LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL"
            for c in columns
        )
        m.db.execute_sql(f"ALTER TABLE `{table}` {changes}")


MIGRATIONS: list[tuple[str, Callable[[ArchiveModels], None]]] = [
    ("0001_initial", _initial),
    ("0002_stats_rollups", _stats_rollups),
    ("0003_alert_history", _alert_history),
    ("0004_send_audit", _send_audit),
    ("0005_long_texts", _long_texts),
    ("0006_long_titles", _long_titles),
    ("0007_feed_cursors", _feed_cursors),
]


def applied(m: ArchiveModels) -> set[str]:
    if not m.db.table_exists(m.SchemaMigration._meta.table_name):
        return set()
    return {row.name for row in m.SchemaMigration.select(m.SchemaMigration.name)}


def migrate(m: ArchiveModels) -> list[str]:
    """Apply pending migrations; returns the names applied now."""
    db = m.db
    mysql = isinstance(db, pw.MySQLDatabase)
    if mysql:
        db.execute_sql("SELECT GET_LOCK('wxcli_migrate', 60)")
    try:
        done = applied(m)
        if len(done) == len(MIGRATIONS):
            return []  # the common case: read-only, no lock taken
        m.db.create_tables([m.SchemaMigration], safe=True)
        done = applied(m)
        new = []
        for name, step in MIGRATIONS:
            if name in done:
                continue
            log.info("applying schema migration %s", name)
            with db.atomic() if mysql else db.atomic("IMMEDIATE"):
                step(m)
                m.SchemaMigration.insert(
                    name=name, applied_at=datetime.now(UTC)
                ).on_conflict_ignore().execute()
            new.append(name)
        return new
    finally:
        if mysql:
            db.execute_sql("SELECT RELEASE_LOCK('wxcli_migrate')")
