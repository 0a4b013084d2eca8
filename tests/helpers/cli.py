"""Shared helpers for the client/session/account tests (no tests of its own).

Real parts only: simulators on port 0, a test-only transport adapter that stands in for DNS +
TLS so the client can talk to ``https://wx2.qq.com`` etc. (the simulator in vhost mode), and a
small forwarding proxy that loses replies on purpose (a fault the simulator cannot make).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from wxcli.client import ClientConfig, WebWeChatClient
from wxcli.protocol.hosts import is_wechat_host
from wxcli.simulator import Simulator

REPO = Path(__file__).resolve().parents[2]

#: Short holds keep the suite fast; faults and timeouts are scaled to match.
FAST_HOLD = 0.3


@contextlib.contextmanager
def simulator(**settings: Any) -> Iterator[Simulator]:
    """A simulator on a free loopback port with short long-poll holds unless told otherwise."""
    settings.setdefault("synccheck_hold", FAST_HOLD)
    settings.setdefault("login_hold", FAST_HOLD)
    sim = Simulator(**settings)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def fast_config(login_url: str, **overrides: Any) -> ClientConfig:
    """A ClientConfig with test-sized timeouts (no test may wait for a default 30 s timeout)."""
    values: dict[str, Any] = {
        "login_url": login_url,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "synccheck_timeout": 3.0,
        "login_poll_timeout": 3.0,
        "login_timeout": 10.0,
        "retries": 2,
        "backoff": 0.01,
        "backoff_max": 0.05,
    }
    values.update(overrides)
    return ClientConfig(**values)


class Sleeps(list):
    """An injectable ``sleep`` that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(
    login_url: str, *, http: requests.Session | None = None, sleeps: Sleeps | None = None, **kw
) -> WebWeChatClient:
    sleep = sleeps if sleeps is not None else Sleeps()
    return WebWeChatClient(fast_config(login_url, **kw), http=http, sleep=sleep)


@dataclass
class RecordingEvents:
    """A LoginEvents that records what happened, in order, and can act as the phone.

    With ``phone`` (a SimControl) it scans each new QR code when it is shown and confirms when
    the scan is reported, like a person would; ``expire_first`` lets the first QR expire
    instead; ``decline_push`` taps "cancel" on a push-login prompt.
    """

    phone: Any = None
    expire_first: bool = False
    decline_push: bool = False
    log: list[tuple[str, str]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def _add(self, kind: str, detail: str = "") -> None:
        with self.cond:
            self.log.append((kind, detail))
            self.cond.notify_all()

    @property
    def kinds(self) -> list[str]:
        return [k for k, _ in self.log]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(1 for k, _ in self.log if k == kind) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {count}x {kind!r} in {self.log}")
                self.cond.wait(left)
            return [d for k, d in self.log if k == kind]

    def qr_ready(self, uuid: str, url: str) -> None:
        self._add("qr_ready", url)
        if self.expire_first and self.kinds.count("qr_ready") == 1:
            self.phone.expire_qr()
        elif self.phone is not None:
            self.phone.scan(uuid)

    def push_sent(self) -> None:
        self._add("push_sent")

    def push_failed(self, reason: str) -> None:
        self._add("push_failed", reason)

    def scanned(self, avatar: str) -> None:
        self._add("scanned", avatar[:20])
        if self.phone is None:
            return
        pushing = "push_sent" in self.kinds and "qr_ready" not in self.kinds
        if pushing and self.decline_push:
            self.phone.cancel()
        else:
            self.phone.confirm()

    def confirmed(self) -> None:
        self._add("confirmed")

    def qr_expired(self) -> None:
        self._add("qr_expired")

    def loading(self, what: str) -> None:
        self._add("loading", what)


def login_client(sim: Simulator, **kw: Any) -> WebWeChatClient:
    """A client logged in to ``sim`` (the phone scans and confirms via the control API)."""
    client = make_client(sim.base_url, **kw)
    client.login(RecordingEvents(phone=sim.control))
    return client


def requests_for(sim: Simulator, endpoint: str) -> list[dict[str, Any]]:
    return sim.control.requests(endpoint)


# --------------------------------------------------------------------------- the CLI


def run_cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    """``wxcli ARGS`` in this process: (exit status, stdout, stderr).

    The CLI installs a stderr log handler on the root logger; it is removed afterwards so the
    next test (with a new captured stderr) starts clean.
    """
    from wxcli.cli import run

    capsys.readouterr()
    root = logging.getLogger()
    level = root.level
    try:
        code = run(list(args))
    finally:
        for handler in list(root.handlers):
            if getattr(handler, "_wxcli", False):
                root.removeHandler(handler)
        root.setLevel(level)
    out, err = capsys.readouterr()
    return code, out, err


def wxcli_process(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """``wxcli ARGS`` as a real process (real logging setup, real exit status)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("COLUMNS", "120")
    return subprocess.run(
        [sys.executable, "-m", "wxcli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=REPO,
    )


def assert_one_error_line(err: str, *needles: str) -> str:
    """stderr holds exactly one ``Error: ...`` line, no traceback; returns that line."""
    lines = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- vhost routing


class LoopbackRouter(HTTPAdapter):
    """Test-only stand-in for DNS + TLS: sends ``https://*.qq.com`` / ``https://*.wechat.com``
    to the simulator's ``http://127.0.0.1:port`` with the original Host header.

    The request the session sees (cookies matched, Secure cookies sent, Set-Cookie domains
    checked) keeps its https URL; only the copy that goes on the wire is rewritten.
    """

    def __init__(self, target: str):
        super().__init__()
        self.netloc = urllib.parse.urlsplit(target).netloc
        self.hosts: list[str] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urllib.parse.urlsplit(request.url or "")
        if parts.scheme != "https" or not is_wechat_host(request.url or ""):
            raise AssertionError(f"unexpected URL {request.url!r}")
        self.hosts.append(parts.netloc)
        routed = request.copy()
        routed.url = urllib.parse.urlunsplit(("http", self.netloc, parts.path, parts.query, ""))
        routed.headers["Host"] = parts.netloc
        resp = super().send(routed, **kwargs)
        resp.url = request.url or ""
        resp.request = request
        return resp


def routed_session(sim: Simulator) -> tuple[requests.Session, LoopbackRouter]:
    http = requests.Session()
    router = LoopbackRouter(sim.base_url)
    http.mount("https://", router)
    return http, router


# --------------------------------------------------------------------------- reply-losing proxy


class LosingProxy:
    """A forwarding HTTP proxy in front of the simulator that, for requests whose path ends in
    one of ``lose``, forwards the request (so the server acts on it) but then closes the
    client's connection without relaying the reply: the "sent, answer lost" case.

    One request per connection (``Connection: close``), which is all the tests need.
    """

    def __init__(self, target: str, lose: set[str] | None = None):
        self.target = urllib.parse.urlsplit(target)
        self.lose = set(lose or ())
        self.lost: list[str] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy._handle(self.request)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> LosingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handle(self, sock: socket.socket) -> None:
        reader = sock.makefile("rb")
        request_line = reader.readline().decode("latin-1").strip()
        if not request_line:
            return
        method, target, _ = request_line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        length = 0
        while True:
            line = reader.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value.strip())
            if name.lower() not in ("connection", "content-length"):
                headers.append((name, value.strip()))
        body = reader.read(length) if length else b""
        upstream = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=10)
        upstream.connect()
        upstream.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms stalls
        upstream.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            upstream.putheader(name, value)
        upstream.putheader("Content-Length", str(len(body)))
        upstream.endheaders(body)
        resp = upstream.getresponse()
        data = resp.read()
        upstream.close()
        path = urllib.parse.urlsplit(target).path
        if any(path.endswith("/" + name) for name in self.lose):
            self.lost.append(path)
            sock.shutdown(socket.SHUT_RDWR)
            return
        head = [f"HTTP/1.1 {resp.status} {resp.reason}"]
        for name, value in resp.getheaders():
            if name.lower() not in ("connection", "content-length", "transfer-encoding"):
                head.append(f"{name}: {value}")
        head += [f"Content-Length: {len(data)}", "Connection: close", "", ""]
        sock.sendall("\r\n".join(head).encode("latin-1") + data)
