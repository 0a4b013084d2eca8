"""Real local servers for tests: an SMTP server (plain, STARTTLS, implicit TLS, AUTH), a webhook
receiver that records requests and can play DingTalk/WeCom/Feishu, and a silent TCP listener.

All bind 127.0.0.1 on port 0 and run in background threads; use them as context managers::

    with SMTPServer(tls="starttls", auth=("bot", "pw")) as smtp:
        ...  # point a client at smtp.host, smtp.port (trust smtp.tls_files.ca_cert)
        [message] = smtp.wait_for(1)

    with WebhookReceiver(responder=dingtalk_responder(secret="SEC...")) as hook:
        ...  # POST to hook.url
        [request] = hook.wait_for(1)
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from requests.structures import CaseInsensitiveDict

HOST = "127.0.0.1"


def free_port() -> int:
    """A loopback port with nothing listening on it (for 'connection refused' tests)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class _Recorder:
    """A thread-safe list that tests can wait on."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def snapshot(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(self, n: int, timeout: float, what: str) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._items) >= n, timeout):
                raise AssertionError(
                    f"expected {n} {what} within {timeout} s, got {len(self._items)}"
                )
            return list(self._items)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()


# --- TLS material ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    """A private CA and a server certificate it signed, valid for 127.0.0.1 and localhost."""

    ca_cert: Path
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_cert))


def make_tls_files(
    directory: Path, *, tool: str = "auto", dns_names: tuple[str, ...] = ("localhost",)
) -> TLSFiles:
    """Write a CA and a server certificate (EC P-256, valid a day) into ``directory``.

    ``tool``: "cryptography" (the package, which oss2 already depends on), "openssl" (the CLI),
    or "auto" for the package when importable, else the CLI. The certificate is valid for
    127.0.0.1 and ``dns_names`` (e.g. WeChat's host names for a proxy that plays them).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    if tool == "auto":
        try:
            import cryptography  # noqa: F401
        except ImportError:
            tool = "openssl"
        else:
            tool = "cryptography"
    if tool == "cryptography":
        _make_tls_files_cryptography(files, dns_names)
    elif tool == "openssl":
        _make_tls_files_openssl(files, dns_names)
    else:
        raise ValueError("tool must be 'auto', 'cryptography' or 'openssl'")
    return files


def _make_tls_files_cryptography(files: TLSFiles, dns_names: tuple[str, ...]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wxcli test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(x509.DNSName(name) for name in dns_names),
                    x509.IPAddress(ipaddress.ip_address(HOST)),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _make_tls_files_openssl(files: TLSFiles, dns_names: tuple[str, ...]) -> None:
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("neither the cryptography package nor the openssl CLI is available")
    d = files.cert.parent
    ca_key = d / "ca.key"

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True)

    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ca_key))
    run(
        "req",
        "-x509",
        "-new",
        "-key",
        str(ca_key),
        "-subj",
        "/CN=wxcli test CA",
        "-days",
        "1",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-out",
        str(files.ca_cert),
    )
    run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(files.key))
    csr = d / "server.csr"
    run("req", "-new", "-key", str(files.key), "-subj", "/CN=localhost", "-out", str(csr))
    ext = d / "server.ext"
    names = ",".join(f"DNS:{name}" for name in dns_names)
    ext.write_text(f"subjectAltName={names},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(files.ca_cert),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        str(ext),
        "-out",
        str(files.cert),
    )


# --- SMTP ------------------------------------------------------------------------------------


@dataclass
class Envelope:
    """What the SMTP transaction said, beside the message itself."""

    mail_from: str
    rcpt_tos: list[str]
    login: str | None  # the AUTH user name, None when the client did not log in
    tls: bool  # the session was encrypted (STARTTLS or implicit TLS)


class _PortZeroController(Controller):
    """aiosmtpd's Controller, taught to learn the port the OS picked when asked for port 0."""

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _SMTPHandler:
    def __init__(self, server: SMTPServer) -> None:
        self.server = server

    async def handle_RCPT(
        self, smtp: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: Any, session: Any, envelope: Any) -> str:
        message = BytesParser(policy=policy.default).parsebytes(envelope.content)
        # auth_data is what our authenticator returned on success: the login name.
        login = session.auth_data.decode() if isinstance(session.auth_data, bytes) else None
        tls = session.ssl is not None or self.server.tls == "ssl"
        self.server.envelopes.append(
            Envelope(envelope.mail_from, list(envelope.rcpt_tos), login, tls)
        )
        self.server._recorder.add(message)
        return "250 2.0.0 OK queued"


class SMTPServer:
    """An aiosmtpd server on 127.0.0.1:<random port>.

    ``tls``: None (plain), "starttls" (offers STARTTLS) or "ssl" (implicit TLS from the first
    byte). ``auth``: (user, password) to offer AUTH and accept only those credentials;
    ``auth_mechanisms`` limits what is advertised (e.g. ("LOGIN",)); ``refuse`` lists
    recipient addresses answered with 550. Received messages are
    parsed with the modern email policy (``EmailMessage``); ``envelopes`` has the SMTP side.
    """

    def __init__(
        self,
        *,
        tls: str | None = None,
        auth: tuple[str, str] | None = None,
        auth_mechanisms: tuple[str, ...] | None = None,
        tls_files: TLSFiles | None = None,
        require_starttls: bool = False,
        refuse: tuple[str, ...] = (),
    ) -> None:
        if tls not in (None, "starttls", "ssl"):
            raise ValueError("tls must be None, 'starttls' or 'ssl'")
        self.tls = tls
        self.auth = auth
        self.auth_mechanisms = auth_mechanisms
        self.require_starttls = require_starttls
        self.refuse = refuse
        self._own_tmp: tempfile.TemporaryDirectory[str] | None = None
        if tls and tls_files is None:
            self._own_tmp = tempfile.TemporaryDirectory(prefix="wxcli-tls-")
            tls_files = make_tls_files(Path(self._own_tmp.name))
        self.tls_files = tls_files
        self.envelopes: list[Envelope] = []
        self.auth_attempts: list[tuple[str, str, bool]] = []  # (mechanism, user, accepted)
        self._recorder = _Recorder()
        self._controller: _PortZeroController | None = None
        self.host = HOST
        self.port = 0

    @property
    def messages(self) -> list[EmailMessage]:
        return self._recorder.snapshot()

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
        """Block until ``n`` messages have arrived; returns all received so far."""
        return self._recorder.wait_for(n, timeout, "messages")

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword) or self.auth is None:
            return AuthResult(success=False, handled=False)
        user, password = auth_data.login.decode(), auth_data.password.decode()
        ok = (user, password) == self.auth
        self.auth_attempts.append((mechanism, user, ok))
        if not ok:
            # handled=False: let aiosmtpd answer 535 (True would mean we had replied already).
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data.login)

    def start(self) -> SMTPServer:
        kwargs: dict[str, Any] = {
            "hostname": HOST,
            "port": 0,
            "server_hostname": "localhost",  # else aiosmtpd resolves this host's FQDN
            "ready_timeout": 5.0,
        }
        if self.tls_files and self.tls == "starttls":
            kwargs["tls_context"] = self.tls_files.server_context()
            kwargs["require_starttls"] = self.require_starttls
        elif self.tls_files and self.tls == "ssl":
            kwargs["ssl_context"] = self.tls_files.server_context()
        if self.auth is not None:
            kwargs["authenticator"] = self._authenticate
            # With STARTTLS, offer AUTH only after it, like real servers. aiosmtpd cannot tell
            # an implicit-TLS session from plain text, so those must not require it; plain-text
            # AUTH is what a lax real server does, and tests want to see it work too.
            kwargs["auth_require_tls"] = self.tls == "starttls"
            if self.auth_mechanisms is not None:
                offered = {"LOGIN", "PLAIN"}
                kwargs["auth_exclude_mechanism"] = sorted(offered - set(self.auth_mechanisms))
        self._controller = _PortZeroController(_SMTPHandler(self), **kwargs)
        self._controller.start()
        self.port = self._controller.port
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._own_tmp is not None:
            self._own_tmp.cleanup()
            self._own_tmp = None

    def __enter__(self) -> SMTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- HTTP webhooks ---------------------------------------------------------------------------


@dataclass
class Request:
    """One request the receiver got."""

    method: str
    path: str
    query: dict[str, str]  # last value of each parameter, already URL-decoded
    headers: CaseInsensitiveDict[str]
    body: bytes
    raw_query: str = ""

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, (dict, list)):
            return json.dumps(self.body, ensure_ascii=False).encode(), "application/json"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return self.body, "application/octet-stream"


Responder = Callable[[Request], Reply]


class WebhookReceiver:
    """A threaded HTTP server on 127.0.0.1:<random port> that records every request.

    Answers ``status``/``body`` (a dict is sent as JSON) after ``delay`` seconds, or whatever
    ``responder(request)`` returns, so a test can play a real robot API (see the
    ``*_responder`` helpers below). Delays end early when the receiver stops. With
    ``tls_files`` it serves HTTPS (clients trust ``tls_files.ca_cert``).
    """

    def __init__(
        self,
        status: int = 200,
        body: bytes | str | dict[str, Any] | list[Any] = b"",
        *,
        delay: float = 0.0,
        responder: Responder | None = None,
        path: str = "/hook",
        tls_files: TLSFiles | None = None,
    ) -> None:
        self.reply = Reply(status, body)
        self.tls_files = tls_files
        self.delay = delay
        self.responder = responder
        self.path = path
        self._recorder = _Recorder()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.host = HOST
        self.port = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.tls_files else "http"
        return f"{scheme}://{self.host}:{self.port}{self.path}"

    @property
    def requests(self) -> list[Request]:
        return self._recorder.snapshot()

    def wait_for(self, n: int = 1, timeout: float = 5.0) -> list[Request]:
        """Block until ``n`` requests have arrived; returns all received so far."""
        return self._recorder.wait_for(n, timeout, "requests")

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        request = Request(
            method=handler.command,
            path=parts.path,
            query=query,
            headers=CaseInsensitiveDict(dict(handler.headers.items())),
            body=body,
            raw_query=parts.query,
        )
        self._recorder.add(request)
        reply = self.responder(request) if self.responder else self.reply
        if self.delay and self._stopping.wait(self.delay):
            return  # stopping: drop the connection without an answer
        data, content_type = reply.encoded()
        handler.send_response(reply.status)
        handler.send_header("Content-Type", reply.headers.get("Content-Type", content_type))
        for name, value in reply.headers.items():
            if name.lower() != "content-type":
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                receiver._handle(self)

            do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that timed out and hung up is expected in tests

        self._stopping.clear()
        self._httpd = Server((HOST, 0), Handler)
        if self.tls_files:
            # The handshake runs in the accept loop: fine for tests, not for hostile clients.
            ctx = self.tls_files.server_context()
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- fake robot APIs (server side of each service's documented checks) -----------------------


def dingtalk_expected_sign(secret: str, timestamp: str) -> str:
    """What DingTalk computes for ``timestamp`` (ms): base64(HMAC-SHA256(secret, ts\\nsecret))."""
    mac = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def feishu_expected_sign(secret: str, timestamp: str) -> str:
    """What Feishu computes for ``timestamp`` (s): base64(HMAC-SHA256(ts\\nsecret, b""))."""
    mac = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256)
    return base64.b64encode(mac.digest()).decode()


def _fresh(timestamp: str, scale: int, window: float = 3600.0) -> bool:
    try:
        return abs(int(timestamp) / scale - time.time()) <= window
    except ValueError:
        return False


def dingtalk_responder(secret: str | None = None) -> Responder:
    """Answer like a DingTalk custom robot: errcode 0, or 310000 when the sign is wrong."""

    def respond(req: Request) -> Reply:
        data = req.json
        if not isinstance(data, dict) or data.get("msgtype") not in ("text", "markdown"):
            return Reply(200, {"errcode": 40035, "errmsg": "缺少参数 json"})
        if secret is not None:
            ts, sign = req.query.get("timestamp", ""), req.query.get("sign", "")
            if not (
                _fresh(ts, 1000) and hmac.compare_digest(sign, dingtalk_expected_sign(secret, ts))
            ):
                return Reply(200, {"errcode": 310000, "errmsg": "sign not match"})
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    return respond


def wecom_responder(max_bytes: int = 4096) -> Responder:
    """Answer like a WeCom group robot, including its markdown length limit (errcode 40058)."""

    def respond(req: Request) -> Reply:
        data = req.json
        if not isinstance(data, dict) or data.get("msgtype") != "markdown":
            return Reply(200, {"errcode": 40008, "errmsg": "invalid message type"})
        content = data.get("markdown", {}).get("content", "")
        if len(content.encode()) > max_bytes:
            return Reply(200, {"errcode": 40058, "errmsg": "markdown.content exceed max length"})
        return Reply(200, {"errcode": 0, "errmsg": "ok"})

    return respond


def feishu_responder(secret: str | None = None, max_body: int = 20_000) -> Responder:
    """Answer like a Feishu custom bot: code 0, 19021 on a bad sign, 9499 on a bad body."""

    def respond(req: Request) -> Reply:
        data = req.json
        if not isinstance(data, dict) or len(req.body) > max_body or "msg_type" not in data:
            return Reply(400, {"code": 9499, "msg": "Bad Request", "data": {}})
        if secret is not None:
            ts, sign = str(data.get("timestamp", "")), str(data.get("sign", ""))
            if not (_fresh(ts, 1) and hmac.compare_digest(sign, feishu_expected_sign(secret, ts))):
                return Reply(
                    200,
                    {
                        "code": 19021,
                        "msg": "sign match fail or timestamp is not within one hour "
                        "from current time",
                        "data": {},
                    },
                )
        return Reply(200, {"code": 0, "msg": "success", "data": {}})

    return respond


def verify_generic_signature(req: Request, secret: str) -> bool:
    """Check wxcli's generic webhook signature the way a receiver would."""
    header = req.headers.get("X-Wxcli-Signature", "")
    expected = "sha256=" + hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header, expected)


# --- a listener that never answers -----------------------------------------------------------


class SilentServer:
    """Accepts TCP connections and never says a word: for client timeout tests."""

    def __init__(self) -> None:
        self._sock: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.host = HOST
        self.port = 0

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)

    def start(self) -> SilentServer:
        self._sock = socket.socket()
        self._sock.bind((HOST, 0))
        self._sock.listen(8)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.close()
        self._conns.clear()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> SilentServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
