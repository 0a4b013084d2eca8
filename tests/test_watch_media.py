"""Images downloaded while the session lives: local folder and an OSS-compatible endpoint."""

from __future__ import annotations

import hashlib

from tests.helpers.oss_server import OssServer
from tests.helpers.watch import RunningWatch, messages

GROUP = "云帆Pro客服1群"


def media_rows(db_url, home):
    return [r for r in messages(db_url, home) if r["kind"] in ("image", "emoji")]


def test_images_are_stored_locally_once_per_content(logged_in, sim, db_url, wx_home):
    paths, config, state = logged_in
    c = sim.control
    with RunningWatch(paths, config, db_url, media=True) as w:
        a = c.message(group=GROUP, sender="张伟", type="image", image="same-picture")
        b = c.message(group=GROUP, sender="张伟", type="image", image="same-picture")
        other = c.message(group=GROUP, sender="张伟", type="image", image="another")
        c.message(group=GROUP, sender="张伟", type="emoji")
        w.until(
            lambda: (
                all(r["media_status"] == "done" for r in media_rows(db_url, wx_home))
                and len(media_rows(db_url, wx_home)) == 4
            ),
            timeout=20,
            message="all media stored",
        )
    rows = {r["msg_id"]: r for r in media_rows(db_url, wx_home)}
    assert rows[a]["media_sha256"] == rows[b]["media_sha256"] != rows[other]["media_sha256"]
    stored = paths.media_dir / rows[a]["media_key"]
    data = stored.read_bytes()
    assert hashlib.sha256(data).hexdigest() == rows[a]["media_sha256"]
    assert data.startswith(b"\xff\xd8") and rows[a]["media_type"] == "image/jpeg"
    assert rows[a]["media_url"] == f"file://{stored}"
    files = [p for p in paths.media_dir.rglob("*") if p.is_file()]
    assert len(files) == 3  # identical images stored once


def test_images_go_to_oss_when_configured(logged_in, sim, tmp_path, wx_home, monkeypatch):
    paths, config, state = logged_in
    db_url = f"sqlite:///{tmp_path / 'a.db'}"
    with OssServer("AKID", "SECRET", buckets=["wx-media"]) as oss:
        monkeypatch.setenv("WXCLI_OSS_SECRET", "SECRET")
        config.data["oss"].update(
            {
                "endpoint": oss.endpoint,
                "bucket": "wx-media",
                "access_key_id": "AKID",
                "prefix": "cs",
            }
        )
        with RunningWatch(paths, config, db_url, media=True) as w:
            mid = sim.control.message(group=GROUP, sender="张伟", type="image")
            w.until(
                lambda: [r for r in media_rows(db_url, wx_home) if r["media_status"] == "done"],
                timeout=20,
            )
        row = next(r for r in media_rows(db_url, wx_home) if r["msg_id"] == mid)
        assert row["media_key"].startswith("cs/") and row["media_key"].endswith(".jpg")
        body = oss.object("wx-media", row["media_key"]).data
    assert hashlib.sha256(body).hexdigest() == row["media_sha256"]
    assert row["media_url"] == f"oss://wx-media/{row['media_key']}"


def test_failed_downloads_are_retried_then_recorded(logged_in, sim, tmp_path, wx_home):
    paths, config, state = logged_in
    db_url = f"sqlite:///{tmp_path / 'a.db'}"
    config.data["media"].update({"retries": 3, "retry_seconds": 0.05})
    sim.control.fault("http", endpoint="webwxgetmsgimg", status=500, times=None)
    with RunningWatch(paths, config, db_url, media=True) as w:
        sim.control.message(group=GROUP, sender="张伟", type="image")
        w.until(
            lambda: [r for r in media_rows(db_url, wx_home) if r["media_status"] == "failed"],
            timeout=30,
            message="the download to give up",
        )
    row = media_rows(db_url, wx_home)[0]
    assert "500" in row["media_error"]
    tries = [r for r in sim.control.requests("webwxgetmsgimg")]
    assert len(tries) >= 3  # each attempt retried by the client too
    assert any(e["where"] == "media" for e in w.watcher.health.errors)
