"""The alert tables (history and rule state), defined in the store like every archive table so
that the migration list can create them without importing the alerts layer; the alerts read
and write them through :mod:`wxcli.alerts.history`."""

from __future__ import annotations

from types import SimpleNamespace

import peewee as pw

from wxcli.store.models import DateTime6Field, model_base


def build_alert_models(db: pw.Database) -> SimpleNamespace:
    """The alert tables bound to ``db`` (like :func:`wxcli.store.models.build_models`)."""
    Base = model_base(db)

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

    return SimpleNamespace(
        db=db,
        AlertHistory=AlertHistory,
        AlertState=AlertState,
        all=[AlertHistory, AlertState],
    )


def migrate_alert_history(m: SimpleNamespace) -> None:
    """Migration step ``0003_alert_history``: add the alert tables."""
    am = build_alert_models(m.db)
    m.db.create_tables(am.all, safe=True)
