"""``python -m wxcli.simulator``: run the simulator in the foreground, like ``wxcli sim``.

Same options as ``wxcli sim``, parsed with argparse: the simulator stands beside wxcli and
imports nothing of its command line (or of any layer above the protocol).
"""

from __future__ import annotations

import argparse
import sys

from wxcli.simulator.foreground import run_foreground


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m wxcli.simulator",
        description="Run a local Web WeChat simulator for trying wxcli without an account.",
        epilog="Point wxcli at it with: WXCLI_LOGIN_URL=http://127.0.0.1:8765 wxcli login",
    )
    p.add_argument("--host", default="127.0.0.1", help="Bind address (loopback).")
    p.add_argument("--port", default=8765, type=int, help="Port; 0 = any free.")
    p.add_argument("--scenario", help="TOML/JSON world + timeline file, or a built-in name.")
    p.add_argument("--auto-confirm", action="store_true", help="The phone confirms every QR.")
    p.add_argument("--rate", type=float, help="Generate customer chatter at this many msgs/s.")
    p.add_argument("--seed", default=0, type=int, help="Seed of names and chatter.")
    p.add_argument("--hold", type=float, help="Seconds synccheck/login polls hold when idle.")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    return run_foreground(
        host=args.host,
        port=args.port,
        scenario=args.scenario,
        auto_confirm=args.auto_confirm,
        rate=args.rate,
        seed=args.seed,
        hold=args.hold,
    )


if __name__ == "__main__":
    sys.exit(main())
