"""The REST shim (``wxcli serve``): WSGI app, per-app auth and the OpenAPI document.

``start_server(paths, config, host, port)`` runs it on waitress in a background thread and
returns a handle with ``.url`` and ``.stop()``. Submodules load on first use so that
``wxcli apps`` does not pay for the HTTP stack.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RestApp", "ServerHandle", "start_server"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from wxcli.server import app

        return getattr(app, name)
    raise AttributeError(name)
