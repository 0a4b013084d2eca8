"""One HTTP POST with a wall-clock deadline, for deliveries to other people's servers.

Socket timeouts bound each read, not the request: a receiver that answers one byte every few
seconds (in the status line, the headers or the body) never trips them and would hold the
delivering thread for as long as it likes. Here a watchdog shuts the socket down when the
deadline passes, which ends any blocked read at once.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit


class DeadlineExceeded(TimeoutError):
    """The whole request took longer than its deadline."""


@contextlib.contextmanager
def socket_deadline(conn: http.client.HTTPConnection, seconds: float) -> Iterator[threading.Event]:
    """While inside, ``conn``'s socket is shut down once ``seconds`` have passed (ending any
    blocked read); the event yielded is set when that happened."""
    expired = threading.Event()

    def expire() -> None:
        expired.set()
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(seconds, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield expired
    finally:
        watchdog.cancel()


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes  # at most ``keep`` bytes, and only for answers that are not 2xx


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    *,
    keep: int = 4096,
    ssl_context: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``body`` to ``url`` and return the status (and the start of a non-2xx body), all
    within ``timeout`` seconds; raises :class:`DeadlineExceeded` or ``OSError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
    deadline = time.monotonic() + timeout
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname,
            parts.port,
            timeout=timeout,
            context=ssl_context or ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with socket_deadline(conn, timeout) as expired:
        try:
            return _exchange(conn, target, body, headers, keep, expired, deadline, timeout)
        finally:
            conn.close()


def _exchange(
    conn: http.client.HTTPConnection,
    target: str,
    body: bytes,
    headers: dict[str, str],
    keep: int,
    expired: threading.Event,
    deadline: float,
    timeout: float,
) -> Answer:
    try:
        conn.request("POST", target, body=body, headers={**headers, "Connection": "close"})
        resp = conn.getresponse()
        data = b""
        if not 200 <= resp.status < 300:
            data = resp.read(keep)
        if expired.is_set() or time.monotonic() > deadline:
            raise DeadlineExceeded(f"no complete answer in {timeout:g} s")
        return Answer(resp.status, data)
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise DeadlineExceeded(f"no complete answer in {timeout:g} s") from None
        if isinstance(exc, http.client.HTTPException):
            raise OSError(f"bad HTTP answer ({type(exc).__name__})") from None
        raise
