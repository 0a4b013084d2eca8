"""image_url fetching refuses internal targets before connecting, at every redirect hop.

The loopback guard of conftest forbids real non-loopback connections, so "public" hosts are
simulated: an injected resolver maps made-up names to public addresses and an injected
connector routes those addresses to a local server. Everything refused must be refused
before the connector is asked for a connection.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tests.helpers.send import JPEG, logged_in
from tests.helpers.servers import SilentServer
from wxcli.media_input import (
    MediaFetchError,
    MediaTooLargeError,
    MediaTypeError,
    UnsafeURLError,
    UrlFetcher,
    address_problem,
)
from wxcli.server.app import RestApp, start_server
from wxcli.server.auth import AppStore

PUBLIC = "93.184.216.34"  # a public address (never actually reached)


class Origin:
    """A local web server standing in for public hosts; routes by path."""

    def __init__(self):
        self.hosts: list[str] = []
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                origin.hosts.append(self.headers.get("Host", ""))
                path = self.path
                if path.startswith("/redirect?to="):
                    self.send_response(302)
                    self.send_header("Location", path.split("=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path == "/loop":
                    self.send_response(301)
                    self.send_header("Location", "/loop")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path == "/huge-declared":
                    self.send_response(200)
                    self.send_header("Content-Length", str(10**9))
                    self.end_headers()
                    return
                if path == "/huge-streamed":
                    self.send_response(200)
                    self.end_headers()  # no length: read until the connection closes
                    self.wfile.write(JPEG + bytes(200_000))
                    return
                body = {"/photo.jpg": JPEG, "/notes.txt": b"just text"}.get(path, b"")
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def origin():
    o = Origin()
    yield o
    o.close()


class Net:
    """Fake DNS + routing: names → addresses; public addresses → the local origin."""

    def __init__(self, origin: Origin, names: dict[str, list[str]] | None = None):
        self.origin = origin
        self.names = {
            "images.example.com": [PUBLIC],
            "cdn.example.net": ["93.184.216.35"],
            "internal.example.com": ["10.1.2.3"],
            "mixed.example.com": [PUBLIC, "192.168.1.10"],
            "localhost": ["127.0.0.1"],
            **(names or {}),
        }
        self.lookups: list[str] = []
        self.connects: list[tuple[str, int]] = []

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.names:
            raise MediaFetchError(f"cannot resolve {host!r}")
        return self.names[host]

    def connect(self, ip: str, port: int, timeout: float) -> socket.socket:
        self.connects.append((ip, port))
        if not ip.startswith("93.184.216."):
            raise AssertionError(f"connected to a refused address {ip}")
        return socket.create_connection(("127.0.0.1", self.origin.port), timeout=timeout)

    def fetcher(self, **kw) -> UrlFetcher:
        return UrlFetcher(
            max_bytes=kw.pop("max_bytes", 100_000),
            timeout=kw.pop("timeout", 5.0),
            resolver=self.resolve,
            connector=self.connect,
            **kw,
        )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/photo.jpg",
        "http://127.0.0.1:8080/photo.jpg",
        "http://localhost/photo.jpg",
        "http://[::1]/photo.jpg",
        "http://10.0.0.5/photo.jpg",
        "http://172.16.0.1/photo.jpg",
        "http://192.168.1.1/photo.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://100.100.100.200/latest/meta-data/",
        "http://100.64.0.1/photo.jpg",
        "http://0.0.0.0/photo.jpg",
        "http://224.0.0.1/photo.jpg",
        "http://[::ffff:127.0.0.1]/photo.jpg",
        "http://[::ffff:169.254.169.254]/",
        "http://internal.example.com/photo.jpg",
        "http://mixed.example.com/photo.jpg",
        "https://10.0.0.5/photo.jpg",
    ],
)
def test_internal_targets_are_refused_before_connecting(origin, url):
    net = Net(origin)
    with pytest.raises(UnsafeURLError, match="refusing"):
        net.fetcher().fetch(url)
    assert net.connects == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://images.example.com/photo.jpg",
        "gopher://images.example.com/",
        "http://user:pw@images.example.com/photo.jpg",
        "http:///photo.jpg",
        "http://images.example.com:99999/photo.jpg",
        "http://images.example.com/a b.jpg",
        "photo.jpg",
    ],
)
def test_bad_urls_are_refused(origin, url):
    net = Net(origin)
    with pytest.raises(UnsafeURLError):
        net.fetcher().fetch(url)
    assert net.connects == []


def test_decimal_ip_spelling_resolves_to_loopback_and_is_refused():
    # The system resolver turns "2130706433" into 127.0.0.1 without any network.
    with pytest.raises(UnsafeURLError, match="loopback"):
        UrlFetcher(max_bytes=1000).fetch("http://2130706433/photo.jpg")


def test_public_host_is_fetched_from_the_vetted_address(origin):
    net = Net(origin)
    image = net.fetcher().fetch("http://images.example.com/photo.jpg")
    assert image.data == JPEG
    assert image.mime == "image/jpeg"
    assert image.name == "photo.jpg"
    assert net.connects == [(PUBLIC, 80)]  # the one address vetted, no second lookup
    assert net.lookups == ["images.example.com"]
    assert origin.hosts == ["images.example.com"]  # the Host header keeps the name


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{port}/photo.jpg",
        "http://10.1.2.3/photo.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://internal.example.com/photo.jpg",
        "http://[::1]/photo.jpg",
        "file:///etc/passwd",
    ],
)
def test_redirects_to_internal_targets_are_refused(origin, target):
    net = Net(origin)
    target = target.format(port=origin.port)
    with pytest.raises(UnsafeURLError):
        net.fetcher().fetch(f"http://images.example.com/redirect?to={target}")
    assert net.connects == [(PUBLIC, 80)]  # only the first, public hop was connected


def test_redirects_to_public_hosts_are_followed_and_revetted(origin):
    net = Net(origin)
    image = net.fetcher().fetch(
        "http://images.example.com/redirect?to=http://cdn.example.net/photo.jpg"
    )
    assert image.data == JPEG
    assert net.lookups == ["images.example.com", "cdn.example.net"]
    assert net.connects == [(PUBLIC, 80), ("93.184.216.35", 80)]


def test_redirect_limit(origin):
    net = Net(origin)
    with pytest.raises(MediaFetchError, match="more than 3"):
        net.fetcher().fetch("http://images.example.com/loop")
    assert len(net.connects) == 4


def test_size_limits(origin):
    net = Net(origin)
    with pytest.raises(MediaTooLargeError):
        net.fetcher().fetch("http://images.example.com/huge-declared")
    with pytest.raises(MediaTooLargeError):
        net.fetcher(max_bytes=100_000).fetch("http://images.example.com/huge-streamed")


def test_time_limit(origin):
    with SilentServer() as silent:
        net = Net(origin)

        def to_silent(ip, port, timeout):
            net.connects.append((ip, port))
            return socket.create_connection((silent.host, silent.port), timeout=timeout)

        fetcher = UrlFetcher(max_bytes=1000, timeout=0.3, resolver=net.resolve, connector=to_silent)
        with pytest.raises(MediaFetchError, match="longer than"):
            fetcher.fetch("http://images.example.com/photo.jpg")


def test_unresolvable_and_http_errors(origin):
    net = Net(origin)
    with pytest.raises(MediaFetchError, match="resolve"):
        net.fetcher().fetch("http://nowhere.example.org/photo.jpg")
    with pytest.raises(MediaFetchError, match="404"):
        net.fetcher().fetch("http://images.example.com/missing.png")


def test_allow_private_never_allows_metadata():
    assert address_problem("127.0.0.1", allow_private=True) is None
    assert address_problem("10.0.0.1", allow_private=True) is None
    for ip in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "224.0.0.1", "0.0.0.0"):
        assert address_problem(ip, allow_private=True), ip
    assert address_problem(PUBLIC, allow_private=False) is None


# --- through the REST API --------------------------------------------------------------------


@pytest.fixture
def profile(sim, wx_home):
    return logged_in(sim, wx_home, serve={"allow_private_urls": False})


def test_rest_refuses_internal_image_urls(profile, origin):
    created = AppStore(profile.paths.apps).add("ops")
    auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
    net = Net(origin)
    app = RestApp(profile.paths, profile.config, fetcher=net.fetcher())
    with start_server(profile.paths, profile.config, "127.0.0.1", 0, app=app) as handle:
        url = f"{handle.url}/v1/msg/image"
        for image_url in (
            f"http://127.0.0.1:{origin.port}/photo.jpg",
            "http://10.0.0.1/photo.jpg",
            "http://169.254.169.254/latest/meta-data/",
            f"http://images.example.com/redirect?to=http://127.0.0.1:{origin.port}/photo.jpg",
            "http://images.example.com/redirect?to=http://169.254.169.254/",
            "http://images.example.com/redirect?to=http://10.9.9.9/x.png",
        ):
            for kwargs in (
                {"json": {"to": "内部员工群", "image_url": image_url}},
                {"params": {"to": "内部员工群", "imgUrl": image_url}},
            ):
                r = requests.post(url, headers=auth, timeout=10, **kwargs)
                assert r.status_code == 400, (image_url, r.text)
                assert r.json()["error"]["code"] == "image_url_forbidden"
        # The same API fetches from a (simulated) public host.
        r = requests.post(
            url,
            json={"to": "内部员工群", "image_url": "http://images.example.com/photo.jpg"},
            headers=auth,
            timeout=10,
        )
        assert r.status_code == 200, r.text
    assert all(ip.startswith("93.184.216.") for ip, _ in net.connects)
    assert [s["media"]["size"] for s in profile.sim.control.sent()] == [len(JPEG)]


def test_fetched_content_is_sniffed(origin):
    net = Net(origin)
    with pytest.raises(MediaTypeError):
        net.fetcher().fetch("http://images.example.com/redirect?to=/notes.txt")


@pytest.fixture
def tls_origin(tmp_path):
    """An HTTPS server with a certificate for `localhost` from a private test CA."""
    from tests.helpers.servers import make_tls_files

    files = make_tls_files(tmp_path / "tls")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(JPEG)))
            self.end_headers()
            self.wfile.write(JPEG)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = files.server_context().wrap_socket(httpd.socket, server_side=True)
    threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    ).start()
    yield files, httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_https_checks_the_certificate_against_the_url_host(tls_origin):
    files, port = tls_origin

    def to_origin(ip, p, timeout):
        return socket.create_connection(("127.0.0.1", port), timeout=timeout)

    def resolve(host, p):
        return {"localhost": ["127.0.0.1"], "images.example.com": [PUBLIC]}[host]

    trusting = UrlFetcher(
        max_bytes=100_000,
        allow_private=True,
        resolver=resolve,
        connector=to_origin,
        ssl_context=files.client_context(),
    )
    assert trusting.fetch("https://localhost/photo.jpg").data == JPEG
    # Same server, but the URL names another host: the certificate does not match it.
    with pytest.raises(MediaFetchError, match=r"(?i)certificate|hostname"):
        trusting.fetch("https://images.example.com/photo.jpg")
    # The system trust store does not know the test CA.
    default = UrlFetcher(
        max_bytes=100_000, allow_private=True, resolver=resolve, connector=to_origin
    )
    with pytest.raises(MediaFetchError):
        default.fetch("https://localhost/photo.jpg")


class DripServer:
    """An origin that sends its answer one byte every ``interval`` seconds (headers included):
    every single read succeeds, so only a deadline on the whole fetch can end it."""

    def __init__(self, interval: float = 0.1, in_headers: bool = True):
        import socketserver

        self.interval = interval
        self.in_headers = in_headers
        self.stopping = threading.Event()
        body = b"\x89PNG\r\n\x1a\n" + b"0" * 500
        head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n" % len(
            body
        )
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.recv(65536)
                data = head + body
                start = 0 if outer.in_headers else len(head)
                if start:
                    self.request.sendall(head)
                for i in range(start, len(data)):
                    if outer.stopping.wait(outer.interval):
                        return
                    try:
                        self.request.sendall(data[i : i + 1])
                    except OSError:
                        return

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DripServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("in_headers", [True, False], ids=["headers", "body"])
def test_a_dripping_origin_is_cut_at_the_total_deadline(in_headers):
    import time as _time

    with DripServer(interval=0.1, in_headers=in_headers) as drip:
        fetcher = UrlFetcher(
            max_bytes=100_000,
            timeout=0.8,
            resolver=lambda host, port: [PUBLIC],
            connector=lambda ip, port, t: socket.create_connection(("127.0.0.1", drip.port), t),
        )
        started = _time.monotonic()
        with pytest.raises(MediaFetchError, match=r"longer than 0\.8 s"):
            fetcher.fetch("http://images.example.com/drip.png")
        assert _time.monotonic() - started < 1.5  # the drip alone would take ~60 s


def test_slow_image_urls_never_take_the_api_down(sim, wx_home):
    """Eight requests whose image_url drips: at most half the worker threads fetch (the rest get
    429 at once), every fetch ends at its deadline, and /v1/health answers throughout."""
    import time as _time
    from concurrent.futures import ThreadPoolExecutor

    profile = logged_in(sim, wx_home, serve={"allow_private_urls": False, "threads": 4})
    created = AppStore(profile.paths.apps).add("ops")
    auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
    with DripServer(interval=0.2) as drip:
        fetcher = UrlFetcher(
            max_bytes=100_000,
            timeout=1.5,
            resolver=lambda host, port: [PUBLIC],
            connector=lambda ip, port, t: socket.create_connection(("127.0.0.1", drip.port), t),
        )
        app = RestApp(profile.paths, profile.config, fetcher=fetcher)
        with start_server(profile.paths, profile.config, "127.0.0.1", 0, app=app) as handle:
            body = {"to": "内部员工群", "image_url": "http://images.example.com/drip.png"}

            def post(_):
                return requests.post(
                    f"{handle.url}/v1/msg/image", json=body, headers=auth, timeout=20
                )

            with ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(post, i) for i in range(8)]
                _time.sleep(0.3)  # the fetches are under way
                for _ in range(3):
                    started = _time.monotonic()
                    health = requests.get(f"{handle.url}/v1/health", timeout=5)
                    assert health.status_code in (200, 503)
                    assert _time.monotonic() - started < 1.0
                statuses = sorted(f.result().status_code for f in futures)
    assert statuses.count(429) >= 6 - 2  # only the fetch slots (threads // 2) waited
    assert set(statuses) <= {422, 429}
    assert profile.sim.control.sent() == []
