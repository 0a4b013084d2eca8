"""An HTTPS forward proxy for tests that plays WeChat's real host names.

A client with hard-coded ``https://wx.qq.com`` URLs is pointed at it the way a user points any
client at a proxy (``HTTPS_PROXY``) and told to trust a private CA (``NODE_EXTRA_CA_CERTS``).
The proxy answers ``CONNECT``, ends TLS with a certificate for the WeChat host names and passes
the plain HTTP on to the simulator, which (in vhost mode) sees the real ``Host`` header.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
from pathlib import Path

from tests.helpers.servers import make_tls_files

WECHAT_HOSTS = ("wx.qq.com", "login.wx.qq.com", "webpush.wx.qq.com", "file.wx.qq.com")


class TlsProxy:
    """CONNECT proxy on 127.0.0.1:<port> that terminates TLS and forwards to ``target``."""

    def __init__(self, target: tuple[str, int], directory: Path):
        self.target = target
        files = make_tls_files(directory, dns_names=WECHAT_HOSTS)
        self.ca = files.ca_cert
        self.ctx = files.server_context()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connects: list[str] = []  # the host:port of every CONNECT, in order
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TlsProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk:
                    conn.close()
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            if len(line) < 2 or line[0].upper() != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                conn.close()
                return
            self.connects.append(line[1])
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            tls = self.ctx.wrap_socket(conn, server_side=True)
            upstream = socket.create_connection(self.target)
            _relay(tls, upstream)


def _relay(tls: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Both directions in one thread: an SSLSocket must not be used from two threads at once."""
    try:
        while True:
            ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 60)[0]
            if not ready:
                return
            for src in ready:
                data = src.recv(65536)
                if not data:
                    return
                (upstream if src is tls else tls).sendall(data)
    except (OSError, ssl.SSLError):
        pass
    finally:
        for s in (tls, upstream):
            with contextlib.suppress(OSError):
                s.close()
