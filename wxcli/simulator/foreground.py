"""Running the simulator in the foreground until Ctrl-C or SIGTERM: what ``wxcli sim`` and
``python -m wxcli.simulator`` both do after parsing their options."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

from wxcli.simulator import Simulator

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def run_foreground(
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    scenario: str | None = None,
    auto_confirm: bool = False,
    rate: float | None = None,
    seed: int = 0,
    hold: float | None = None,
    say: Callable[[str], None] = _stderr,
) -> int:
    """Serve until interrupted; the URL goes to stdout (for scripts), the rest to ``say``."""
    if host not in LOOPBACK:
        say(f"Warning: binding the simulator to {host} exposes it beyond loopback.")
    extra = {} if hold is None else {"synccheck_hold": hold, "login_hold": hold}
    simulator = Simulator(
        scenario, host=host, port=port, seed=seed, auto_confirm=auto_confirm, rate=rate, **extra
    )

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # before the URL is printed: whoever read it may stop us at once
    signal.signal(signal.SIGTERM, terminate)  # stop cleanly under a service manager too
    try:
        url = simulator.start()
        sys.stdout.write(url + "\n")
        sys.stdout.flush()
        confirm = " (auto-confirm)" if auto_confirm else ""
        nickname = simulator.engine.world.account.nickname
        say(f"Simulator serving {nickname!r} at {url}{confirm}. Ctrl-C to stop.")
        say(f"  WXCLI_LOGIN_URL={url} wxcli login")
        simulator.serve_forever()
    except KeyboardInterrupt:
        simulator.stop()
    return 0
