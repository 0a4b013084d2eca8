"""The schema the store owns for tables that upper layers write.

The alert history's tables are defined in ``wxcli.store.alert_models``: migration 0003 creates
them without importing the alerts code, and ``wxcli.alerts.history`` uses the same models.
"""

from __future__ import annotations

import peewee as pw

from wxcli.alerts import history
from wxcli.store.alert_models import build_alert_models
from wxcli.store.archive import Archive
from wxcli.store.migrations import MIGRATIONS


def test_the_alerts_write_the_store_s_alert_tables():
    assert history.build_alert_models is build_alert_models
    for db in (pw.SqliteDatabase(":memory:"), pw.MySQLDatabase("unused")):
        am = build_alert_models(db)
        assert [t._meta.table_name for t in am.all] == ["alert_history", "alert_state"]
        assert all(t._meta.database is db for t in am.all)
        mysql = isinstance(db, pw.MySQLDatabase)
        assert ("ENGINE=InnoDB" in am.AlertHistory._meta.table_settings) is mysql


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
