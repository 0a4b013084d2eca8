"""``wxcli serve``: the REST shim on waitress, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext


@click.command()
@click.option("--host", default=None, help="Bind address [default: [serve] host = 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port; 0 picks a free one [default: 7788].")
@click.pass_obj
def serve(app: AppContext, host: str | None, port: int | None) -> None:
    """Serve the REST API for sending messages (per-app keys: `wxcli apps add`).

    \b
    Routes: POST /v1/msg/text, POST /v1/msg/image, GET /v1/contacts,
            GET /v1/health (no auth), GET /openapi.json (no auth)
    Auth:   Authorization: Bearer <appId>:<appKey>, or HMAC request signing.

    Binds 127.0.0.1 by default; put a TLS reverse proxy in front before
    exposing it. Sends share the profile's pacer with every other sender.
    """
    import signal
    import threading

    from wxcli.server.app import start_server

    handle = start_server(app.paths, app.config, host, port)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    if not app.paths.session.exists():
        click.echo("Warning: not logged in yet; sends answer 503 until `wxcli login`.", err=True)
    click.echo(f"Serving on {handle.url} (profile {app.profile}). Ctrl-C to stop.", err=True)
    try:
        while not stop.wait(0.5):
            if not handle.wait(0):
                continue
            break  # the server thread ended by itself
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        handle.stop()
    click.echo("Stopped.", err=True)
