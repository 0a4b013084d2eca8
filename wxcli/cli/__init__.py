"""The ``wxcli`` command: global options, lazy subcommands and the one error boundary.

Only this package imports click. Subcommand modules are imported when used, so ``wxcli send``
and ``wxcli --help`` never pay for jieba, snownlp, oss2 or peewee.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import traceback
from typing import Any

import click

from wxcli import __version__
from wxcli.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, WxError
from wxcli.textutil import safe_text

#: subcommand -> (module under wxcli.cli, attribute)
COMMANDS: dict[str, tuple[str, str]] = {
    "login": ("login", "login"),
    "logout": ("login", "logout"),
    "status": ("status", "status"),
    "contacts": ("contacts", "contacts"),
    "watch": ("watch", "watch"),
    "history": ("history", "history"),
    "analyze": ("analyze", "analyze"),
    "send": ("send", "send"),
    "serve": ("serve", "serve"),
    "apps": ("apps", "apps"),
    "keepalive": ("keepalive", "keepalive"),
    "stats": ("stats", "stats"),
    "alert": ("alert", "alert"),
    "feed": ("feed", "feed"),
    "sim": ("sim", "sim"),
    "demo": ("demo", "demo"),
}


class LazyGroup(click.Group):
    """A group whose subcommands live in their own modules and load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(name for name in COMMANDS if self._available(name))

    @staticmethod
    def _available(name: str) -> bool:
        module, _ = COMMANDS[name]
        return importlib.util.find_spec(f"wxcli.cli.{module}") is not None

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS or not self._available(cmd_name):
            return None
        module, attr = COMMANDS[cmd_name]
        return getattr(importlib.import_module(f"wxcli.cli.{module}"), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="wxcli")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="WXCLI_CONFIG",
    help="Config file [default: $WXCLI_HOME/wxcli.toml].",
)
@click.option(
    "--profile",
    default="default",
    envvar="WXCLI_PROFILE",
    show_default=True,
    help="Account profile: one session per profile.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--debug", is_flag=True, envvar="WXCLI_DEBUG", help="Show tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, profile: str, verbose: int, debug: bool):
    """wxcli watches WeChat customer-service groups so that no complaint goes unseen.

    \b
    Start here:  wxcli login      (scan the QR code with WeChat)
                 wxcli watch      (archive every message, raise alerts)
    Try it offline:  wxcli demo   (runs against the built-in simulator)

    Exit status: 0 ok, 1 error, 2 usage/config, 3 not logged in or session
    expired, 4 protocol error, 5 network error, 130 interrupted.
    """
    from wxcli.cli._context import AppContext

    ctx.obj = AppContext(config_path=config_path, profile=profile, verbose=verbose, debug=debug)
    ctx.obj.setup_logging()


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("WXCLI_DEBUG", "") not in ("", "0", "false")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every outcome into an exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    code = run(args, debug=debug)
    sys.exit(code)


def run(args: list[str], debug: bool = False) -> int:
    """The error boundary: expected errors become ``Error: ...`` and an exit status."""
    try:
        rv: Any = cli.main(args=args, prog_name="wxcli", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return EXIT_INTERRUPTED
    except WxError as exc:
        if debug:
            raise
        # Messages can quote chat names and server text: shown, never obeyed by the terminal.
        click.echo(f"Error: {safe_text(str(exc), multiline=True)}", err=True)
        return exc.exit_code
    except BrokenPipeError:
        # `wxcli history | head`: the reader went away; that is not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return 0
    except Exception as exc:
        if debug:
            raise
        logging.getLogger("wxcli").debug("unexpected error", exc_info=True)
        click.echo(f"Error: unexpected {type(exc).__name__}: {safe_text(str(exc))}", err=True)
        click.echo("This is a bug in wxcli; rerun with --debug for the traceback.", err=True)
        if os.environ.get("WXCLI_TRACEBACK"):
            traceback.print_exc()
        return EXIT_ERROR
