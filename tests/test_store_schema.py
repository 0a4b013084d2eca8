"""The schema the store owns for tables that upper layers write.

The alert history's tables are defined in ``wxcli.store.alert_models`` (migration 0003 creates
them without importing the alerts code). Until ``wxcli.alerts.history`` takes its models from
there (the alerts split does), it builds its own copy, and the two must describe the same
tables column for column; once it re-exports the store's, this compares them with themselves.
"""

from __future__ import annotations

from typing import Any

import peewee as pw

from wxcli.alerts import history
from wxcli.store.alert_models import build_alert_models
from wxcli.store.archive import Archive
from wxcli.store.migrations import MIGRATIONS


def describe(model: Any) -> tuple[Any, ...]:
    meta = model._meta
    columns = [
        (
            f.name,
            f.column_name,
            type(f).__name__,
            f.field_type,
            f.null,
            f.default,
            getattr(f, "max_length", None),
            f.primary_key,
            f.index,
            f.unique,
        )
        for f in meta.sorted_fields
    ]
    return meta.table_name, columns, meta.indexes, meta.table_settings


def test_alert_tables_match_the_alerts_models():
    for db in (pw.SqliteDatabase(":memory:"), pw.MySQLDatabase("unused")):
        store = build_alert_models(db)
        alerts = history.build_alert_models(db)
        assert describe(store.AlertHistory) == describe(alerts.AlertHistory)
        assert describe(store.AlertState) == describe(alerts.AlertState)


def test_migration_0003_creates_the_alert_tables_itself(tmp_path):
    names = [name for name, _ in MIGRATIONS]
    assert names.index("0003_alert_history") == 2  # named and ordered as before
    archive = Archive(f"sqlite:///{tmp_path / 'a.db'}", tmp_path)
    try:
        for table in ("alert_history", "alert_state"):
            assert archive.db.table_exists(table)
        columns = {c.name for c in archive.db.get_columns("alert_history")}
        assert {"fired_at", "alert_key", "digest", "delivered_at"} <= columns
    finally:
        archive.close()
