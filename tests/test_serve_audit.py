"""Every REST API send is recorded in the database when one is configured."""

from __future__ import annotations

import json

import requests

from tests.helpers.send import logged_in
from wxcli.server.app import start_server
from wxcli.server.auth import AppStore
from wxcli.store.archive import Archive


def test_api_sends_are_audited_in_the_database(sim, wx_home, db_url):
    profile = logged_in(sim, wx_home, database={"url": db_url})
    created = AppStore(profile.paths.apps).add("ops", allow_to=["云帆*"])
    auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
    handle = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    try:
        ok = requests.post(
            f"{handle.url}/v1/msg/text",
            json={"to": "云帆Pro客服1群", "text": "工单已处理"},
            headers=auth,
            timeout=10,
        )
        refused = requests.post(
            f"{handle.url}/v1/msg/text",
            json={"to": "内部员工群", "text": "not allowed"},
            headers=auth,
            timeout=10,
        )
    finally:
        handle.stop()
    assert ok.status_code == 200 and refused.status_code == 404
    archive = Archive(db_url, wx_home)
    try:
        A = archive.m.SendAudit
        rows = {r["result"]: r for r in A.select().order_by(A.id).dicts()}
    finally:
        archive.close()
    sent = rows["sent"]
    assert (sent["app"], sent["kind"], sent["to_name"]) == ("ops", "text", "云帆Pro客服1群")
    assert sent["msg_id"] == ok.json()["msg_id"]
    assert sent["app_id"] == created.app.app_id and sent["at"] is not None
    assert rows["refused"]["to_name"] == "内部员工群"
    assert json.loads(rows["refused"]["error"])
    assert not (wx_home / "audit.jsonl").exists()  # nothing fell back to the file


def test_without_a_database_the_audit_goes_to_a_private_file(sim, wx_home):
    profile = logged_in(sim, wx_home)
    created = AppStore(profile.paths.apps).add("ops")
    handle = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    try:
        r = requests.post(
            f"{handle.url}/v1/msg/text",
            json={"to": "filehelper", "text": "hi"},
            headers={"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"},
            timeout=10,
        )
    finally:
        handle.stop()
    assert r.status_code == 200
    audit = wx_home / "audit.jsonl"
    assert audit.stat().st_mode & 0o777 == 0o600
    assert json.loads(audit.read_text().splitlines()[-1])["result"] == "sent"
