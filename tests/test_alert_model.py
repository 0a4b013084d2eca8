"""The Alert model every channel renders: checked on construction, aware times, hashed files."""

from __future__ import annotations

import hashlib
from datetime import datetime

import pytest

from tests.helpers.channels import PNG
from wxcli.alerts.model import Alert, Attachment


def test_alert_model_checks_and_defaults():
    alert = Alert(kind="test", title="t", text="")
    assert alert.created_at.tzinfo is not None
    assert alert.severity == "warning"
    assert alert.fields == {}
    assert alert.attachments == []
    with pytest.raises(ValueError, match=r"timezone-aware"):
        Alert(kind="test", title="t", text="", created_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match=r"unknown alert kind"):
        Alert(kind="nope", title="t", text="")
    with pytest.raises(ValueError, match=r"unknown severity"):
        Alert(kind="test", title="t", text="", severity="fatal")
    att = Attachment("qr.png", PNG, "image/png")
    assert att.size == len(PNG)
    assert att.sha256 == hashlib.sha256(PNG).hexdigest()
