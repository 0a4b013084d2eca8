"""A local, protocol-faithful Web WeChat server for tests, demos and benchmarks.

Start it in-process (``with Simulator() as sim: sim.base_url``), from the shell (``wxcli sim``
or ``python -m wxcli.simulator``), and drive it through the ``/_sim/`` control API, e.g. with
:class:`SimControl`. It answers the paths, query strings, cookies and bodies of
``web-wechat-protocol.md``; nothing in wxcli depends on it outside tests and ``wxcli demo``.

Who owns what (each module imports only those above it, and nothing of wxcli outside the
simulator but ``wxcli.protocol``; ``tests/test_simulator_parts.py`` checks it):

=================  ==========================================================================
``wire``           the wire format: JSON layouts, escaping, contact/member/message shapes
``world``          who exists: the account, people, groups, members; scenario files
``media``          asset bytes, tagged photo JPEGs, the QR code JPEG, image type sniffing
``session``        one web session: credentials, its ``@`` UserNames, event log, sync keys
``core``           what all parts share: lock + condition, ``Settings``, seeded rng, the world,
                   MsgIds, the current-session slot; ``SimError``
``faults``         ``Fault`` kinds and the board that arms and fires them
``login``          QR codes, the phone's scan/confirm/cancel, login polls, tickets, opening
                   and ending web sessions, push login, BaseRequest checks
``directory``      contact objects as a session sees them (webwxinit, getcontact, batch)
``mediastore``     downloadable media by MsgId, uploads (chunked) by MediaId
``messages``       builders for every MsgType, over a small ``Composer`` (not the engine)
``mailbox``        the message queues: deliver, contact changes, inject, recall, history,
                   status notify, synccheck and webwxsync
``roster``         friends, officials and groups come, change and go (with their notices)
``outbox``         sends: 1204/1205 rules, the token bucket, echoes, revokes, the sent record
``traffic``        chatter, timelines and floods, through a ``Driver`` protocol
``engine``         ``Engine``: the thin facade composing the parts (reset/stop, faults that
                   act at once, webwxinit starting timeline and traffic, ``state()``)
``control``        the ``/_sim/`` control API → engine calls
``server``         HTTP: Web WeChat endpoints, fault effects on the socket, cookies, hosts
``control_client`` ``SimControl``, a Python client of the control API
=================  ==========================================================================
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from wxcli.simulator.control_client import SimControl
from wxcli.simulator.core import Settings, SimError
from wxcli.simulator.engine import Engine
from wxcli.simulator.world import builtin_scenario, default_spec, load_scenario

__all__ = ["Engine", "Settings", "SimControl", "SimError", "Simulator"]


class Simulator:
    """The simulator server on a background thread; loopback and an ephemeral port by default."""

    def __init__(
        self,
        scenario: str | Path | dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        auto_confirm: bool = False,
        rate: float | None = None,
        **settings: Any,
    ):
        if scenario is None:
            spec = default_spec()
        elif isinstance(scenario, dict):
            spec = scenario
        else:
            path = Path(scenario)
            if not path.exists() and builtin_scenario(str(scenario)).exists():
                path = builtin_scenario(str(scenario))
            spec = load_scenario(path)
        if rate:
            spec = {**spec, "traffic": {**spec.get("traffic", {}), "rate": rate}}
        self.engine = Engine(spec, seed=seed, settings=Settings())
        self.engine.settings.update({"auto_confirm": auto_confirm, **settings})
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    @property
    def control(self) -> SimControl:
        return SimControl(self.base_url)

    def start(self) -> str:
        """Bind and serve on a background thread; returns the base URL."""
        from wxcli.simulator.server import SimServer

        if self._server is not None:
            return self.base_url
        self.engine.resume()
        self._server = SimServer((self.host, self.port), self.engine)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="wxsim-server",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving, promptly: held long polls answer at once, hung requests are dropped,
        idle keep-alive connections are closed and their threads joined."""
        self.engine.stop()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.close_all(wait=0.5)
            server.server_close()
        if self._thread is not None:
            self._thread.join(0.5)
            self._thread = None

    def serve_forever(self) -> None:
        """Block until interrupted (for ``wxcli sim``)."""
        if self._server is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
