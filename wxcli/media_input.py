"""Images to send: read from a file or fetched from an http(s) URL, typed by content, size-capped.

URL fetching is a server-side request made on behalf of API callers, so it is guarded against
SSRF: the host is resolved once, every address is vetted (no loopback, private, link-local,
multicast, reserved or cloud-metadata targets unless allowed), the connection goes to the vetted
address itself (no second lookup an attacker could race), redirects are followed by hand and
re-vetted at each hop, and size and total time are bounded.
"""

from __future__ import annotations

import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wxcli.errors import MediaError
from wxcli.webpost import socket_deadline

log = logging.getLogger(__name__)

#: Cloud metadata services: never fetched, whatever the config says.
METADATA_ADDRESSES = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, …
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IPv6 IMDS
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
MAX_REDIRECTS = 3
SUFFIX = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}


class MediaTooLargeError(MediaError):
    """The image is over the configured size limit (REST: 413)."""


class MediaTypeError(MediaError):
    """The bytes are not a JPEG, PNG, GIF or WebP image (REST: 415)."""


class UnsafeURLError(MediaError):
    """The image URL is not http(s) or points at an address we refuse to reach (REST: 400)."""


class MediaFetchError(MediaError):
    """The image URL could not be fetched (REST: 422)."""


@dataclass(frozen=True)
class ImageData:
    """An image ready to upload: bytes, the sniffed MIME type and a file name."""

    data: bytes
    mime: str
    name: str

    @property
    def size(self) -> int:
        return len(self.data)


def sniff_image(data: bytes) -> str | None:
    """The MIME type by magic bytes (JPEG, PNG, GIF, WebP), or None: never trust names."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _name_for(stem: str, mime: str) -> str:
    stem = Path(stem).stem or "image"
    stem = "".join(ch for ch in stem if ch.isalnum() or ch in "-_.")[:60] or "image"
    return stem + SUFFIX[mime]


def image_from_bytes(data: bytes, name: str = "image", *, max_bytes: int) -> ImageData:
    """Check size and type of bytes already in memory (e.g. a multipart upload)."""
    if len(data) > max_bytes:
        raise MediaTooLargeError(f"image is {len(data)} bytes; the limit is {max_bytes}")
    if not data:
        raise MediaTypeError("the image is empty")
    mime = sniff_image(data)
    if mime is None:
        raise MediaTypeError(f"{name or 'the file'} is not a JPEG, PNG, GIF or WebP image")
    return ImageData(data, mime, _name_for(name, mime))


def load_image_file(path: str | Path, *, max_bytes: int) -> ImageData:
    """Read a local image file, refusing non-images and files over ``max_bytes``."""
    p = Path(path).expanduser()
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise MediaError(f"{p} is not a file")
        if size > max_bytes:
            raise MediaTooLargeError(f"{p} is {size} bytes; the limit is {max_bytes}")
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise MediaError(f"{p}: no such file")
    except PermissionError:
        raise MediaError(f"{p}: permission denied")
    except IsADirectoryError:
        raise MediaError(f"{p} is a directory")
    return image_from_bytes(data, p.name, max_bytes=max_bytes)


# --- URL fetching ----------------------------------------------------------------------------

Resolver = Callable[[str, int], list[str]]
Connector = Callable[[str, int, float], socket.socket]


def system_resolver(host: str, port: int) -> list[str]:
    """All addresses of ``host`` (IPv4 and IPv6) from the system resolver."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise MediaFetchError(f"cannot resolve {host!r}: {exc}")
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def direct_connect(ip: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((ip, port), timeout=timeout)


def address_problem(ip: str, *, allow_private: bool) -> str | None:
    """Why ``ip`` must not be fetched from, or None when it is a public unicast address."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return f"{ip!r} is not an IP address"
    mapped = getattr(addr, "ipv4_mapped", None)
    if mapped is not None:
        addr = mapped
    if addr in METADATA_ADDRESSES:
        return f"{addr} is a cloud metadata address"
    if addr.is_multicast:
        return f"{addr} is a multicast address"
    if addr.is_unspecified:
        return f"{addr} is the unspecified address"
    if allow_private:
        return None
    if addr.is_loopback:
        return f"{addr} is a loopback address"
    if addr.is_link_local:
        return f"{addr} is a link-local address"
    if addr.is_private:
        return f"{addr} is a private address"
    if addr.is_reserved or not addr.is_global:
        return f"{addr} is a reserved or non-public address"
    return None


@dataclass
class _Target:
    scheme: str
    host: str
    port: int
    target: str  # path + query, as sent on the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def _parse_url(url: str) -> _Target:
    if len(url) > 4096:
        raise UnsafeURLError("image URL is longer than 4096 characters")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"invalid image URL: {exc}")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURLError("image URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURLError("image URL must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURLError("image URL has no host")
    if any(ch.isspace() or ord(ch) < 33 for ch in url.strip()):
        raise UnsafeURLError("image URL contains spaces or control characters")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), target)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to an already vetted address (the Host header keeps the name)."""

    def __init__(self, ip: str, port: int, timeout: float, connector: Connector):
        super().__init__(ip, port, timeout=timeout)
        self._ip, self._connector, self._timeout = ip, connector, timeout

    def connect(self) -> None:
        self.sock = self._connector(self._ip, self.port, self._timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to a vetted address, with SNI and certificate checks against the URL's host name."""

    def __init__(
        self,
        ip: str,
        port: int,
        timeout: float,
        connector: Connector,
        server_name: str,
        context: ssl.SSLContext | None,
    ):
        self._tls = context or ssl.create_default_context()
        super().__init__(ip, port, timeout=timeout, context=self._tls)
        self._ip, self._connector, self._server_name = ip, connector, server_name
        self._timeout = timeout

    def connect(self) -> None:
        raw = self._connector(self._ip, self.port, self._timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._server_name)


@dataclass
class UrlFetcher:
    """Fetch an image over http(s) with SSRF vetting; resolver and connector are injectable
    (tests map a public-looking name onto a local server without real DNS)."""

    max_bytes: int
    timeout: float = 10.0
    allow_private: bool = False
    max_redirects: int = MAX_REDIRECTS
    resolver: Resolver = system_resolver
    connector: Connector = direct_connect
    user_agent: str = "wxcli-image-fetch/1"
    ssl_context: ssl.SSLContext | None = None  # None: the system's trusted CAs

    def vet(self, host: str, port: int) -> str:
        """Resolve ``host`` once and return an address to connect to, or refuse."""
        try:
            ipaddress.ip_address(host)
            addresses = [host]
        except ValueError:
            addresses = self.resolver(host, port)
        if not addresses:
            raise MediaFetchError(f"{host!r} has no address")
        for ip in addresses:
            problem = address_problem(ip, allow_private=self.allow_private)
            if problem:
                raise UnsafeURLError(f"refusing to fetch from {host!r}: {problem}")
        return addresses[0]

    def fetch(self, url: str) -> ImageData:
        deadline = time.monotonic() + self.timeout
        for _hop in range(self.max_redirects + 1):
            target = _parse_url(url)
            ip = self.vet(target.host, target.port)
            status, location, data = self._get(target, ip, deadline)
            if status in (301, 302, 303, 307, 308):
                if not location:
                    raise MediaFetchError(f"image URL redirected ({status}) without a Location")
                url = urllib.parse.urljoin(url, location)
                continue
            if status != 200:
                raise MediaFetchError(f"image URL answered HTTP {status}")
            name = Path(urllib.parse.urlsplit(url).path).name or "image"
            return image_from_bytes(data, name, max_bytes=self.max_bytes)
        raise MediaFetchError(f"image URL redirected more than {self.max_redirects} times")

    def _get(self, target: _Target, ip: str, deadline: float) -> tuple[int, str, bytes]:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MediaFetchError(f"fetching the image took longer than {self.timeout:g} s")
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = _PinnedHTTPSConnection(
                ip, target.port, remaining, self.connector, target.host, self.ssl_context
            )
        else:
            conn = _PinnedHTTPConnection(ip, target.port, remaining, self.connector)
        # Socket timeouts bound each read, not the whole fetch: an origin dripping a byte every
        # few seconds (in the headers or the body) would never trip them. A watchdog shuts the
        # socket down at the deadline, which ends any blocked read at once.
        with socket_deadline(conn, remaining) as expired:
            return self._exchange(conn, target, deadline, expired)

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        target: _Target,
        deadline: float,
        expired: threading.Event,
    ) -> tuple[int, str, bytes]:
        too_slow = MediaFetchError(f"fetching the image took longer than {self.timeout:g} s")
        try:
            conn.putrequest("GET", target.target, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", target.host_header)
            conn.putheader("User-Agent", self.user_agent)
            conn.putheader("Accept", "image/*")
            conn.putheader("Connection", "close")
            conn.endheaders()
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308):
                return resp.status, resp.getheader("Location") or "", b""
            if resp.status != 200:
                return resp.status, "", b""
            declared = resp.getheader("Content-Length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise MediaTooLargeError(
                    f"image is {declared} bytes; the limit is {self.max_bytes}"
                )
            chunks: list[bytes] = []
            size = 0
            while True:
                if expired.is_set() or time.monotonic() > deadline:
                    raise too_slow
                chunk = resp.read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > self.max_bytes:
                    raise MediaTooLargeError(f"image is over the limit of {self.max_bytes} bytes")
                chunks.append(chunk)
            if expired.is_set():  # the watchdog's shutdown reads as an early end of the body
                raise too_slow
            return 200, "", b"".join(chunks)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, TimeoutError) or expired.is_set():
                raise too_slow from None
            raise MediaFetchError(f"cannot fetch the image: {type(exc).__name__}: {exc}")
        finally:
            conn.close()


def is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def load_image(
    source: str,
    *,
    max_bytes: int,
    timeout: float = 10.0,
    allow_private: bool = False,
    fetcher: UrlFetcher | None = None,
) -> ImageData:
    """A local path or an http(s) URL → ImageData (the CLI trusts its own user's URLs more:
    it passes ``allow_private=True``; the REST server does not)."""
    if is_url(source):
        f = fetcher or UrlFetcher(max_bytes=max_bytes, timeout=timeout, allow_private=allow_private)
        return f.fetch(source)
    return load_image_file(source, max_bytes=max_bytes)
