"""A local, protocol-faithful Web WeChat server for tests, demos and benchmarks.

Start it in-process (``with Simulator() as sim: sim.base_url``), from the shell (``wxcli sim``
or ``python -m wxcli.simulator``), and drive it through the ``/_sim/`` control API, e.g. with
:class:`SimControl`. It answers the paths, query strings, cookies and bodies of
``web-wechat-protocol.md``; nothing in wxcli depends on it outside tests and ``wxcli demo``.
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
