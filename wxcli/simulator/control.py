"""The ``/_sim/`` control API: drive the phone, the world, faults and traffic over HTTP.

Every route is documented in the README ("Simulator control API"); tests and scenario scripts
use it through :class:`wxcli.simulator.SimControl` or plain HTTP.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from wxcli.simulator.core import SimError
from wxcli.simulator.engine import Engine


def _list(data: Any, key: str) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return data
    if isinstance(data, dict) and key in data:
        return list(data[key])
    return [data]


def dispatch(
    engine: Engine,
    method: str,
    path: str,
    query: dict[str, list[str]],
    data: Any,
    login_base: str,
) -> tuple[int, Any]:
    route = path[len("/_sim") :].rstrip("/") or "/"
    d = data if isinstance(data, dict) else {}

    if route == "/state" and method == "GET":
        return 200, engine.state()
    if route == "/reset" and method == "POST":
        engine.reset(keep_settings=not d.get("settings", False))
        return 200, {"ok": True}
    if route == "/settings":
        if method == "POST":
            engine.settings.update(d)
        return 200, asdict(engine.settings)

    # -- the phone ----------------------------------------------------------------------
    if route == "/login/scan" and method == "POST":
        qr = engine.scan(d.get("uuid"))
        return 200, {"uuid": qr.uuid, "state": qr.state}
    if route == "/login/confirm" and method == "POST":
        qr = engine.confirm(d.get("uuid"))
        return 200, {"uuid": qr.uuid, "state": qr.state}
    if route == "/login/cancel" and method == "POST":
        qr = engine.cancel(d.get("uuid"))
        return 200, {"uuid": qr.uuid, "state": qr.state}
    if route == "/login/expire" and method == "POST":
        engine.add_fault({"kind": "expire"})
        return 200, {"ok": True}
    if route == "/login/qr" and method == "GET":
        qr = engine.current_qr()
        return 200, {"uuid": qr.uuid, "state": qr.state, "url": f"{login_base}/l/{qr.uuid}"}
    if route == "/auto-confirm" and method == "POST":
        engine.settings.auto_confirm = bool(d.get("enabled", True))
        return 200, {"enabled": engine.settings.auto_confirm}
    if route == "/logout" and method == "POST":
        engine.end_session(int(d.get("code", 1100)))
        return 200, {"ok": True}

    # -- the world ----------------------------------------------------------------------
    if route == "/contacts" and method == "POST":
        return 200, engine.add_contacts(d)
    if route == "/contacts/update" and method == "POST":
        return 200, {"id": engine.update_contact(d)}
    if route == "/contacts/remove" and method == "POST":
        return 200, {"id": engine.remove_contact(str(d["name"]))}
    if route == "/groups/rename" and method == "POST":
        return 200, {"id": engine.rename_group(str(d["group"]), str(d["new_name"]), d.get("by"))}
    if route == "/groups/members/add" and method == "POST":
        ids = engine.add_members(
            str(d["group"]), list(d["members"]), d.get("inviter"), bool(d.get("notify", True))
        )
        return 200, {"ids": ids}
    if route == "/groups/members/remove" and method == "POST":
        ids = engine.remove_members(
            str(d["group"]), list(d["members"]), d.get("by"), bool(d.get("announce", False))
        )
        return 200, {"ids": ids}

    # -- messages -----------------------------------------------------------------------
    if route == "/messages" and method == "POST":
        msg_ids: list[str] = []
        for spec in _list(data, "messages"):
            msg_ids.extend(engine.inject(spec))
        return 200, {"msg_ids": msg_ids, "delivered": bool(engine.session and engine.session.alive)}
    if route == "/recall" and method == "POST":
        return 200, {"msg_id": engine.recall(str(d["msg_id"]))}
    if route == "/injected" and method == "GET":
        since = float((query.get("since") or ["0"])[0])
        return 200, engine.injected_since(since)

    # -- what the client did ---------------------------------------------------------------
    if route == "/sent":
        if method == "DELETE":
            with engine.lock:
                engine.sent.clear()
            return 200, {"ok": True}
        with engine.lock:
            return 200, list(engine.sent)
    if route == "/requests":
        if method == "DELETE":
            with engine.lock:
                engine.requests.clear()
            return 200, {"ok": True}
        endpoint = (query.get("endpoint") or [""])[0]  # "" = every endpoint
        with engine.lock:
            reqs = list(engine.requests)
        if endpoint:
            reqs = [r for r in reqs if r["endpoint"] == endpoint]
        return 200, reqs

    # -- faults -------------------------------------------------------------------------
    if route == "/faults":
        if method == "DELETE":
            engine.clear_faults()
            return 200, {"ok": True}
        if method == "POST":
            faults = [engine.add_fault(spec).public() for spec in _list(data, "faults")]
            return 200, {"faults": faults}
        return 200, [f.public() for f in engine.faults]

    # -- load ---------------------------------------------------------------------------
    if route == "/traffic":
        if method == "DELETE" or (method == "POST" and float(d.get("rate", 1)) <= 0):
            engine.stop_traffic()
            return 200, {"running": False}
        if method == "POST":
            return 200, engine.start_traffic(d)
        return 200, engine.traffic()
    if route == "/flood" and method == "POST":
        return 200, engine.flood(d)

    raise SimError(f"no control route {method} {path}")
