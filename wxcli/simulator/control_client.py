"""A small Python client for the simulator's ``/_sim/`` control API (tests, demos, scripts)."""

from __future__ import annotations

from typing import Any

import requests


class SimControl:
    """Thin wrapper: each method is one control-API call and returns its JSON."""

    def __init__(self, base_url: str, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()

    def _call(self, method: str, route: str, json: Any = None, **params: Any) -> Any:
        resp = self.http.request(
            method,
            f"{self.base_url}/_sim/{route}",
            json=json,
            params=params or None,
            timeout=self.timeout,
        )
        if resp.status_code >= 400:
            raise RuntimeError(f"simulator {method} /_sim/{route}: {resp.text}")
        return resp.json()

    # the phone
    def scan(self, uuid: str | None = None) -> Any:
        return self._call("POST", "login/scan", {"uuid": uuid} if uuid else {})

    def confirm(self, uuid: str | None = None) -> Any:
        return self._call("POST", "login/confirm", {"uuid": uuid} if uuid else {})

    def cancel(self, uuid: str | None = None) -> Any:
        return self._call("POST", "login/cancel", {"uuid": uuid} if uuid else {})

    def expire_qr(self) -> Any:
        return self._call("POST", "login/expire", {})

    def current_qr(self) -> Any:
        return self._call("GET", "login/qr")

    def auto_confirm(self, enabled: bool = True) -> Any:
        return self._call("POST", "auto-confirm", {"enabled": enabled})

    def logout(self, code: int = 1100) -> Any:
        return self._call("POST", "logout", {"code": code})

    # the world
    def add_contacts(self, /, **spec: Any) -> Any:
        return self._call("POST", "contacts", spec)

    def update_contact(self, name: str, **fields: Any) -> Any:
        return self._call("POST", "contacts/update", {"name": name, **fields})

    def remove_contact(self, name: str) -> Any:
        return self._call("POST", "contacts/remove", {"name": name})

    def rename_group(self, group: str, new_name: str, by: str | None = None) -> Any:
        return self._call("POST", "groups/rename", {"group": group, "new_name": new_name, "by": by})

    def add_members(
        self, group: str, members: list[Any], inviter: str | None = None, notify: bool = True
    ) -> Any:
        body = {"group": group, "members": members, "inviter": inviter, "notify": notify}
        return self._call("POST", "groups/members/add", body)

    def remove_members(
        self, group: str, members: list[str], by: str | None = None, announce: bool = False
    ) -> Any:
        body = {"group": group, "members": members, "by": by, "announce": announce}
        return self._call("POST", "groups/members/remove", body)

    # messages
    def message(self, /, **spec: Any) -> str:
        """Inject one message; returns its MsgId. (``self`` is positional-only so that a spec
        may carry ``self=True``, a message the account sent from the phone.)"""
        return self._call("POST", "messages", spec)["msg_ids"][0]

    def messages(self, specs: list[dict[str, Any]]) -> list[str]:
        return self._call("POST", "messages", {"messages": specs})["msg_ids"]

    def recall(self, msg_id: str) -> str:
        return self._call("POST", "recall", {"msg_id": msg_id})["msg_id"]

    def injected(self, since: float = 0.0) -> list[dict[str, Any]]:
        return self._call("GET", "injected", since=since)

    # observations
    def sent(self) -> list[dict[str, Any]]:
        return self._call("GET", "sent")

    def requests(self, endpoint: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "requests", **({"endpoint": endpoint} if endpoint else {}))

    def clear_requests(self) -> Any:
        return self._call("DELETE", "requests")

    def clear_sent(self) -> Any:
        return self._call("DELETE", "sent")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def reset(self) -> Any:
        return self._call("POST", "reset", {})

    def settings(self, /, **values: Any) -> dict[str, Any]:
        return self._call("POST", "settings", values)

    # faults and load
    def fault(self, kind: str, endpoint: str = "*", **fields: Any) -> Any:
        return self._call("POST", "faults", {"kind": kind, "endpoint": endpoint, **fields})

    def clear_faults(self) -> Any:
        return self._call("DELETE", "faults")

    def faults(self) -> list[dict[str, Any]]:
        """The faults still armed (one-shot ones disappear once they fired)."""
        return self._call("GET", "faults")

    def traffic(self, /, **spec: Any) -> Any:
        return self._call("POST", "traffic", spec)

    def stop_traffic(self) -> Any:
        return self._call("DELETE", "traffic")

    def traffic_state(self) -> dict[str, Any]:
        return self._call("GET", "traffic")

    def flood(self, count: int, groups: int = 0, **spec: Any) -> Any:
        return self._call("POST", "flood", {"count": count, "groups": groups, **spec})
