"""Injected faults: what can go wrong, and the board that arms and fires them.

A fault is armed for an endpoint (or ``*``) and fires ``times`` times (``None``: until
cleared). The HTTP layer and the mailbox ask the board for the first armed fault of the kinds
they can act on. ``logout`` and ``expire`` are not armed: they act at once, which is the
engine's job (the board does not know sessions or QR codes).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any

from wxcli.simulator.core import SimError


@dataclass
class Fault:
    kind: str
    endpoint: str = "*"
    times: int | None = 1  # None = until cleared
    code: int = 0
    status: int = 500
    seconds: float = 0.0
    body: str = "truncated"
    selector: str = "2"
    fid: int = 0

    def public(self) -> dict[str, Any]:
        return asdict(self)


FAULT_KINDS = {
    "retcode",  # synccheck answers retcode=<code>
    "ret",  # JSON endpoint answers BaseResponse.Ret=<code> (or 1203 XML on newloginpage)
    "http",  # HTTP <status> with an HTML error page
    "delay",  # answer after <seconds>
    "hang",  # hold the request past any client timeout
    "drop",  # close the connection without answering
    "malformed",  # body: truncated | garbage | empty | js | xml
    "spin",  # synccheck keeps answering <selector>, webwxsync returns nothing
    "duplicate",  # the next webwxsync batch is delivered twice
    "logout",  # the session ends now; synccheck answers retcode <code>
    "expire",  # the current QR expires (login poll answers 400)
}


class FaultBoard:
    """The armed faults. Shares the engine's lock, so a fault fired inside a long poll and one
    armed by the control API never race."""

    def __init__(self, lock: threading.RLock):
        self.lock = lock
        self.faults: list[Fault] = []
        self.fault_seq = 0

    def make(self, spec: dict[str, Any]) -> Fault:
        """A numbered fault from a control-API spec (not armed yet)."""
        kind = spec.get("kind", "")
        if kind not in FAULT_KINDS:
            raise SimError(f"unknown fault kind {kind!r}; one of {sorted(FAULT_KINDS)}")
        times = spec.get("times", 1)
        with self.lock:
            self.fault_seq += 1
            return Fault(
                kind=kind,
                endpoint=spec.get("endpoint", "*"),
                times=None if times in (None, 0, "always") else int(times),
                code=int(spec.get("code", 0)),
                status=int(spec.get("status", 500)),
                seconds=float(spec.get("seconds", 0.0)),
                body=str(spec.get("body", "truncated")),
                selector=str(spec.get("selector", "2")),
                fid=self.fault_seq,
            )

    def arm(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def take(self, endpoint: str, kinds: set[str] | None = None) -> Fault | None:
        """Consume one firing of the first matching fault, if any."""
        if not self.faults:  # the common case, checked without the lock
            return None
        with self.lock:
            for fault in self.faults:
                if fault.endpoint not in ("*", endpoint):
                    continue
                if kinds is not None and fault.kind not in kinds:
                    continue
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                return fault
            return None

    def peek(self, endpoint: str, kind: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.kind == kind and fault.endpoint in ("*", endpoint):
                    return fault
            return None

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()
