"""A fake Aliyun OSS for tests: enough of the REST API for ``oss2`` to put, get, head and delete
objects, checking request signatures the way OSS does.

It binds 127.0.0.1 on port 0 and speaks path-style URLs (``http://127.0.0.1:<port>/<bucket>/<key>``),
which is what oss2 uses whenever the endpoint host is an IP address. Requests must carry a V1
signature (``Authorization: OSS <AccessKeyId>:<base64 HMAC-SHA1>``, what ``oss2.Auth`` sends)::

    with OssServer(access_key_id="id", access_key_secret="secret", buckets=["media"]) as oss:
        bucket = oss2.Bucket(oss2.Auth("id", "secret"), oss.endpoint, "media")
        bucket.put_object("a/b.txt", b"hi")
        assert oss.object("media", "a/b.txt").data == b"hi"
        assert [r.method for r in oss.requests] == ["PUT"]

Errors come back as OSS does: an XML ``<Error>`` body (for HEAD, the same XML base64-encoded in
the ``x-oss-err`` header, which oss2 decodes), so oss2 raises its real exception classes.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import hashlib
import hmac
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

HOST = "127.0.0.1"

#: Query parameters that OSS counts as sub-resources, i.e. part of the signed resource. Only the
#: ones a client of this server could plausibly send; the rest are plain parameters.
SUBRESOURCES = frozenset(
    {
        "acl",
        "append",
        "position",
        "objectMeta",
        "partNumber",
        "uploadId",
        "uploads",
        "delete",
        "tagging",
        "symlink",
        "restore",
        "security-token",
        "x-oss-process",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
    }
)

#: OSS rejects requests whose Date is further than this from its clock.
MAX_SKEW_SECONDS = 15 * 60


def sign_v1(
    secret: str,
    *,
    method: str,
    content_md5: str,
    content_type: str,
    date: str,
    oss_headers: Iterable[tuple[str, bytes]],
    resource: bytes,
) -> tuple[str, bytes]:
    """``(signature, string_to_sign)`` of OSS header signing V1.

    String to sign: VERB, Content-MD5, Content-Type, Date, one line per line feed, then the
    ``x-oss-*`` headers (lower-cased names, sorted, ``name:value`` each ending in a line feed)
    directly followed by the canonical resource ``/<bucket>/<key>[?subresources]``.
    """
    canon = sorted((name.lower(), value) for name, value in oss_headers)
    headers = b"".join(name.encode("ascii") + b":" + value + b"\n" for name, value in canon)
    to_sign = b"\n".join(
        [
            method.encode("ascii"),
            content_md5.encode("latin-1"),
            content_type.encode("latin-1"),
            date.encode("latin-1"),
            headers + resource,
        ]
    )
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii"), to_sign


def canonical_resource(bucket: str, key: str, query: list[tuple[str, str]]) -> bytes:
    """``/<bucket>/<key>`` plus sorted sub-resources (``?acl&partNumber=1``), as OSS signs it."""
    base = f"/{bucket}/{key}" if bucket else "/"
    subs = sorted((k, v) for k, v in query if k in SUBRESOURCES)
    if subs:
        base += "?" + "&".join(f"{k}={v}" if v else k for k, v in subs)
    return base.encode("utf-8")


@functools.cache
def _crc64_table() -> tuple[int, ...]:
    poly = 0xC96C5795D7870F42  # ECMA-182, reflected
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


def crc64_ecma(data: bytes) -> int:
    """CRC-64/XZ, which OSS returns as ``x-oss-hash-crc64ecma`` and oss2 checks by default."""
    table = _crc64_table()
    crc = 0xFFFFFFFFFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFFFFFFFFFF


@dataclass
class OssObject:
    data: bytes
    content_type: str
    meta: dict[str, str]  # x-oss-meta-* headers, names lower-cased without the prefix
    last_modified: float

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.data, usedforsecurity=False).hexdigest().upper() + '"'


@dataclass
class OssRequest:
    """One request as the server saw it, and what it answered."""

    method: str
    bucket: str
    key: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int = 0
    code: str = ""  # OSS error code, '' on success


@dataclass
class _Fault:
    status: int
    code: str
    message: str
    methods: frozenset[str] | None
    remaining: int


class _Reply(Exception):
    """Raised inside a handler to answer with an OSS error."""

    def __init__(self, status: int, code: str, message: str, **extra: str):
        super().__init__(code)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra


@dataclass
class OssServer:
    """The fake OSS. ``clock`` (seconds since the epoch) is what request Dates are checked
    against, so clock-skew errors can be produced without waiting."""

    access_key_id: str = "LTAItestkeyid"
    access_key_secret: str = "test-secret-0123456789abcdef"
    buckets: Iterable[str] = ("wx-media",)
    clock: Callable[[], float] = time.time
    max_skew: float = MAX_SKEW_SECONDS
    host: str = HOST
    port: int = 0
    _objects: dict[str, dict[str, OssObject]] = field(default_factory=dict, init=False)
    _requests: list[OssRequest] = field(default_factory=list, init=False)
    _faults: list[_Fault] = field(default_factory=list, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _httpd: ThreadingHTTPServer | None = field(default=None, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self._objects = {name: {} for name in self.buckets}

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> OssServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, like oss2's pooled connections expect
            timeout = 10  # drop idle pooled connections eventually

            def do_GET(self) -> None:
                server._handle(self)

            do_PUT = do_HEAD = do_DELETE = do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        # A short poll interval keeps stop() (shutdown) from costing half a second per test.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OssServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- state for tests ----------------------------------------------------------------

    @property
    def requests(self) -> list[OssRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def add_bucket(self, name: str) -> None:
        with self._lock:
            self._objects.setdefault(name, {})

    def object(self, bucket: str, key: str) -> OssObject | None:
        with self._lock:
            return self._objects.get(bucket, {}).get(key)

    def keys(self, bucket: str) -> list[str]:
        with self._lock:
            return sorted(self._objects.get(bucket, {}))

    def seed(
        self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        """Put an object directly, bypassing HTTP (and the request log)."""
        with self._lock:
            self._objects[bucket][key] = OssObject(data, content_type, {}, self.clock())

    def fail_next(
        self,
        status: int,
        code: str,
        message: str = "injected fault",
        *,
        count: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Answer the next ``count`` authenticated requests (of ``methods``) with this error."""
        with self._lock:
            only = frozenset(m.upper() for m in methods) if methods else None
            self._faults.append(_Fault(status, code, message, only, count))

    # --- request handling -----------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        bucket, _, raw_key = parts.path.lstrip("/").partition("/")
        bucket, key = unquote(bucket), unquote(raw_key)
        query = parse_qsl(parts.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in h.headers.items()}
        body = self._read_body(h, headers)
        record = OssRequest(h.command, bucket, key, dict(query), headers, body)
        request_id = uuid.uuid4().hex[:24].upper()
        try:
            self._authenticate(h, bucket, key, query, headers)
            self._check_faults(h.command)
            status, reply_headers, reply_body = self._dispatch(
                h.command, bucket, key, query, headers, body
            )
        except _Reply as reply:
            record.status, record.code = reply.status, reply.code
            with self._lock:
                self._requests.append(record)
            self._send_error(h, reply, request_id)
            return
        record.status = status
        with self._lock:
            self._requests.append(record)
        self._send(h, status, reply_headers, reply_body, request_id)

    @staticmethod
    def _read_body(h: BaseHTTPRequestHandler, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    h.rfile.readline()
                    return b"".join(chunks)
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
        length = int(headers.get("content-length", "0") or 0)
        return h.rfile.read(length) if length else b""

    def _authenticate(
        self,
        h: BaseHTTPRequestHandler,
        bucket: str,
        key: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
    ) -> None:
        auth = headers.get("authorization", "")
        if not auth.startswith("OSS ") or ":" not in auth:
            raise _Reply(403, "AccessDenied", "AccessDenied: anonymous access is forbidden.")
        key_id, _, provided = auth[4:].strip().rpartition(":")
        if key_id != self.access_key_id:
            raise _Reply(
                403,
                "InvalidAccessKeyId",
                "The OSS Access Key Id you provided does not exist in our records.",
                OSSAccessKeyId=key_id,
            )
        date = headers.get("x-oss-date") or headers.get("date", "")
        try:
            when = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise _Reply(403, "AccessDenied", "Invalid date string.")
        if abs(when - self.clock()) > self.max_skew:
            raise _Reply(
                403,
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                RequestTime=date,
            )
        # http.server decodes header bytes as latin-1; encoding back gives the bytes sent.
        oss_headers = [
            (name.lower(), ",".join(h.headers.get_all(name, [])).encode("latin-1"))
            for name in {n.lower() for n in h.headers if n.lower().startswith("x-oss-")}
        ]
        expected, to_sign = sign_v1(
            self.access_key_secret,
            method=h.command,
            content_md5=headers.get("content-md5", ""),
            content_type=headers.get("content-type", ""),
            date=date,
            oss_headers=oss_headers,
            resource=canonical_resource(bucket, key, query),
        )
        if not hmac.compare_digest(expected, provided):
            raise _Reply(
                403,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. "
                "Check your key and signing method.",
                OSSAccessKeyId=key_id,
                SignatureProvided=provided,
                StringToSign=to_sign.decode("latin-1"),
            )

    def _check_faults(self, method: str) -> None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining > 0 and (fault.methods is None or method in fault.methods):
                    fault.remaining -= 1
                    raise _Reply(fault.status, fault.code, fault.message)

    def _dispatch(
        self,
        method: str,
        bucket: str,
        key: str,
        query: list[tuple[str, str]],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            objects = self._objects.get(bucket)
        if objects is None:
            raise _Reply(
                404, "NoSuchBucket", "The specified bucket does not exist.", BucketName=bucket
            )
        unsupported = sorted({k for k, _ in query if k in SUBRESOURCES} - {"objectMeta"})
        if not key or unsupported or method not in ("PUT", "GET", "HEAD", "DELETE"):
            raise _Reply(501, "NotImplemented", "The fake OSS server does not implement this.")
        if method == "PUT":
            return self._put(objects, key, headers, body)
        if method == "DELETE":
            with self._lock:
                objects.pop(key, None)
            return 204, {}, b""
        with self._lock:
            obj = objects.get(key)
        if obj is None:
            raise _Reply(404, "NoSuchKey", "The specified key does not exist.", Key=key)
        reply = {
            "ETag": obj.etag,
            "Last-Modified": email.utils.formatdate(obj.last_modified, usegmt=True),
            "Content-Length": str(len(obj.data)),
        }
        if ("objectMeta", "") not in query:
            reply["Content-Type"] = obj.content_type
            reply["x-oss-hash-crc64ecma"] = str(crc64_ecma(obj.data))
            reply["x-oss-object-type"] = "Normal"
            reply.update({f"x-oss-meta-{k}": v for k, v in obj.meta.items()})
        return 200, reply, (obj.data if method == "GET" else b"")

    def _put(
        self, objects: dict[str, OssObject], key: str, h: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        md5 = h.get("content-md5")
        if md5 is not None:
            try:
                sent = base64.b64decode(md5, validate=True)
            except binascii.Error:
                sent = b""
            if sent != hashlib.md5(body, usedforsecurity=False).digest():
                raise _Reply(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
        with self._lock:
            if h.get("x-oss-forbid-overwrite", "").lower() == "true" and key in objects:
                raise _Reply(409, "FileAlreadyExists", "The object you specified already exists.")
            obj = OssObject(
                data=body,
                content_type=h.get("content-type", "application/octet-stream"),
                meta={
                    name[len("x-oss-meta-") :]: value
                    for name, value in h.items()
                    if name.startswith("x-oss-meta-")
                },
                last_modified=self.clock(),
            )
            objects[key] = obj
        return 200, {"ETag": obj.etag, "x-oss-hash-crc64ecma": str(crc64_ecma(body))}, b""

    # --- replies --------------------------------------------------------------------------

    def _common_headers(self, request_id: str) -> dict[str, str]:
        return {
            "Server": "AliyunOSS",
            "Date": email.utils.formatdate(self.clock(), usegmt=True),
            "x-oss-request-id": request_id,
        }

    def _send(
        self,
        h: BaseHTTPRequestHandler,
        status: int,
        headers: dict[str, str],
        body: bytes,
        request_id: str,
    ) -> None:
        h.send_response_only(status)  # send_response would add its own Server and Date
        merged = {**self._common_headers(request_id), **headers}
        merged.setdefault("Content-Length", str(len(body)))
        for name, value in merged.items():
            h.send_header(name, value)
        h.end_headers()
        if h.command != "HEAD" and body:
            h.wfile.write(body)

    def _send_error(self, h: BaseHTTPRequestHandler, reply: _Reply, request_id: str) -> None:
        fields = {
            "Code": reply.code,
            "Message": reply.message,
            "RequestId": request_id,
            "HostId": f"{self.host}:{self.port}",
            **reply.extra,
        }
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            + "".join(f"  <{k}>{escape(v)}</{k}>\n" for k, v in fields.items())
            + "</Error>\n"
        ).encode("utf-8")
        if h.command == "HEAD":
            # HEAD answers have no body, so OSS puts the error XML in a header instead.
            headers = {"x-oss-err": base64.b64encode(xml).decode("ascii"), "Content-Length": "0"}
            self._send(h, reply.status, headers, b"", request_id)
        else:
            headers = {"Content-Type": "application/xml"}
            self._send(h, reply.status, headers, xml, request_id)


def http_date(when: datetime | None = None) -> str:
    """An RFC 7231 date, for hand-made requests in tests."""
    when = when or datetime.now(UTC)
    return email.utils.format_datetime(when.astimezone(UTC), usegmt=True)
