"""The alert tables (alert history and the rules' state), defined in the store like every
archive table, so that the migration list creates them without importing the alerts layer
above it; :mod:`wxcli.alerts.history` reads and writes them."""

from __future__ import annotations

from typing import Any

import peewee as pw

from wxcli.store.models import DateTime6Field, table_settings


class AlertModels:
    """The alert tables bound to one database (per database, like
    :class:`wxcli.store.models.ArchiveModels`)."""

    db: pw.Database
    all: list[type[pw.Model]]
    AlertHistory: Any
    AlertState: Any

    def __init__(self, db: pw.Database, classes: list[type[pw.Model]]):
        self.db = db
        self.all = classes
        for cls in classes:
            setattr(self, cls.__name__, cls)


def build_alert_models(db: pw.Database) -> AlertModels:
    """The alert tables bound to ``db`` (like :func:`wxcli.store.models.build_models`)."""

    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False
            table_settings = table_settings(db)

    class AlertHistory(Base):
        """One alert and one channel: what was said, where, and whether it arrived."""

        fired_at = DateTime6Field()
        profile = pw.CharField(max_length=64, default="default")
        rule = pw.CharField(max_length=64, default="")
        kind = pw.CharField(max_length=16)
        severity = pw.CharField(max_length=8, default="warning")
        alert_key = pw.CharField(max_length=191, default="")  # 191: indexable in utf8mb4
        title = pw.CharField(max_length=255, default="")
        text = pw.TextField(default="")
        fields = pw.TextField(default="")  # JSON object
        channel = pw.CharField(max_length=64, default="")  # "" for quiet-hours records
        status = pw.CharField(max_length=12)  # delivered | failed | skipped | quiet
        attempts = pw.SmallIntegerField(default=0)
        error = pw.TextField(default="")
        delivered_at = DateTime6Field(null=True)
        digest = pw.CharField(max_length=32, default="")  # shared by alerts sent as one digest

        class Meta:
            indexes = (
                (("fired_at",), False),
                (("rule", "alert_key", "fired_at"), False),
            )

    class AlertState(Base):
        """Small named values rules keep between runs (high-water marks)."""

        key = pw.CharField(max_length=100, primary_key=True)
        value = pw.TextField(default="")
        updated_at = DateTime6Field()

    return AlertModels(db, [AlertHistory, AlertState])


def migrate_alert_history(m: Any) -> None:
    """Migration step ``0003_alert_history``: add the alert tables to the archive of ``m``
    (an :class:`~wxcli.store.models.ArchiveModels`, or anything with its ``db``)."""
    am = build_alert_models(m.db)
    m.db.create_tables(am.all, safe=True)
