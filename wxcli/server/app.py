"""The REST shim as a WSGI application, and a waitress server to run it in a thread.

Routes, auth, allow-lists and the status code of every failure live here; sending itself is
:class:`wxcli.sending.Sender` (the same path as ``wxcli send``), so pacing and 1205 back-off
are shared with every other sender of the profile.
"""

from __future__ import annotations

import email.parser
import email.policy
import ipaddress
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from wxcli import __version__
from wxcli.contacts import describe
from wxcli.errors import (
    AmbiguousRecipientError,
    MediaError,
    NetworkError,
    NotLoggedInError,
    ProtocolError,
    RateLimitedError,
    RecipientNotFoundError,
    SessionExpiredError,
    SessionFileError,
    UsageError,
    WxError,
)
from wxcli.media_input import (
    ImageData,
    MediaFetchError,
    MediaTooLargeError,
    MediaTypeError,
    UnsafeURLError,
    UrlFetcher,
    image_from_bytes,
)
from wxcli.pacer import PacerQueueFullError
from wxcli.sending import MAX_TEXT_CHARS, AuditSink, Sender, chat_names, default_audit
from wxcli.server.auth import (
    App,
    AppStore,
    Authenticator,
    AuthError,
    Credentials,
    SharedNonceStore,
)
from wxcli.server.openapi import openapi_document
from wxcli.server.read import ArchiveReader, Query, ReadError

if TYPE_CHECKING:
    from wxcli.config import Config, ServeSettings
    from wxcli.paths import ProfilePaths
    from wxcli.protocol.models import Contact

log = logging.getLogger(__name__)

JSON_CTYPE = "application/json; charset=utf-8"
HEADER_LIMIT = 64 * 1024
CHANNEL_TIMEOUT = 60  # seconds a connection may idle (slowloris guard)
#: Extra room for waitress's own hard cap, so our JSON 413 answers first.
BODY_SLACK = 64 * 1024
MAX_FORM_FIELDS = 32

#: (method, path) → handler name; the OpenAPI document must describe exactly these.
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v1/health"): "health",
    ("GET", "/openapi.json"): "openapi",
    ("GET", "/v1/contacts"): "contacts",
    ("POST", "/v1/msg/text"): "text",
    ("GET", "/v1/msg/text"): "text",
    ("POST", "/v1/msg/image"): "image",
    ("GET", "/v1/messages"): "messages",
    ("GET", "/v1/chats"): "chats",
    ("GET", "/v1/stats/words"): "stats_words",
    ("GET", "/v1/stats/activity"): "stats_activity",
    ("GET", "/v1/stats/speakers"): "stats_speakers",
    ("GET", "/v1/stats/sentiment"): "stats_sentiment",
}

#: Routes that change nothing: the only ones a HEAD request may run.
SAFE_GETS = frozenset(
    {
        "health",
        "openapi",
        "contacts",
        "messages",
        "chats",
        "stats_words",
        "stats_activity",
        "stats_speakers",
        "stats_sentiment",
    }
)


class ApiError(Exception):
    """An HTTP error answer: status, a stable code and a message (plus optional fields)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: list[tuple[str, str]] | None = None,
        **extra: Any,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or []
        self.extra = extra


@dataclass
class Request:
    method: str
    path: str
    query_string: str
    environ: dict[str, Any]
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)
    pairs: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name.lower() == "content-type":
            key = "CONTENT_TYPE"
        return str(self.environ.get(key, "") or "")

    @property
    def content_type(self) -> str:
        return self.header("Content-Type").split(";", 1)[0].strip().lower()

    @property
    def signed_path(self) -> str:
        return self.path + (f"?{self.query_string}" if self.query_string else "")

    @property
    def remote(self) -> str:
        return str(self.environ.get("REMOTE_ADDR", ""))


def _json_body(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _query_pairs(qs: str) -> list[tuple[str, str]]:
    try:
        pairs = urllib.parse.parse_qsl(
            qs, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS, errors="strict"
        )
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_query", "the query string is malformed or too long")
    for k, v in pairs:
        try:
            (k + v).encode("utf-8")
        except UnicodeEncodeError:  # %ED%A0%80: a lone surrogate
            raise ApiError(400, "bad_query", "the query string is not valid UTF-8") from None
    return pairs


def _parse_query(qs: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in _query_pairs(qs):
        out.setdefault(k, v)
    return out


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, Any]]:
    """Split ``multipart/form-data`` into text fields and files (name → (filename, bytes))."""
    header = email.parser.BytesHeaderParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n"
    )
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not boundary or len(boundary) > 200:
        raise ApiError(400, "bad_multipart", "multipart body without a usable boundary")
    delim = b"--" + boundary.encode("latin-1", "replace")
    chunks = body.split(delim)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise ApiError(400, "bad_multipart", "multipart body is truncated or malformed")
    if len(chunks) > MAX_FORM_FIELDS + 2:
        raise ApiError(400, "bad_multipart", "too many multipart parts")
    fields: dict[str, str] = {}
    files: dict[str, Any] = {}
    parser = email.parser.BytesHeaderParser(policy=email.policy.HTTP)
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise ApiError(400, "bad_multipart", "multipart part framing is malformed")
        head, sep, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not sep:
            if chunk[2:4] == b"\r\n":  # a part with no headers at all
                continue
            raise ApiError(400, "bad_multipart", "multipart part without headers")
        part = parser.parsebytes(head + b"\r\n\r\n")
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        filename = part.get_filename()
        if filename is not None or name == "file":
            files.setdefault(name, (filename or "", data))
        else:
            try:
                fields.setdefault(name, data.decode("utf-8"))
            except UnicodeDecodeError:
                raise ApiError(400, "bad_multipart", f"field {name!r} is not UTF-8")
    return fields, files


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def audit_sink(paths: ProfilePaths, config: Config) -> AuditSink:
    """The archive's ``send_audit`` table when a database is configured (or the default SQLite
    archive exists), else ``<home>/audit.jsonl``; the file stays the fallback for records the
    database cannot take."""
    from wxcli.store.archive import Archive
    from wxcli.store.audit import DbAudit

    fallback = default_audit(paths)
    if not config.settings.database.url and not paths.default_db.exists():
        return fallback
    try:
        archive = Archive.from_config(config, paths.home)
    except WxError as exc:
        log.warning("audit trail goes to %s: %s", fallback.path, exc)
        return fallback
    return DbAudit(archive, fallback)


class RestApp:
    """The WSGI callable. Thread-safe; one instance per server."""

    def __init__(
        self,
        paths: ProfilePaths,
        config: Config,
        *,
        sender: Sender | None = None,
        audit: AuditSink | None = None,
        store: AppStore | None = None,
        authenticator: Authenticator | None = None,
        fetcher: UrlFetcher | None = None,
        clock: Callable[[], float] = time.time,
        reader: ArchiveReader | None = None,
    ):
        self.paths = paths
        self.config = config
        self.reader = reader or ArchiveReader(paths, config)
        settings = config.settings
        serve = settings.serve
        self.max_body = serve.max_body_bytes
        self.max_image = settings.send.max_image_bytes
        self.allow_query_key = serve.allow_query_key
        self.stale_seconds = settings.keepalive.stale_minutes * 60
        if audit is None:
            audit = audit_sink(paths, config)
        self.audit = audit
        self.sender = sender or Sender(paths, config, audit=self.audit)
        if self.sender.audit is None:
            self.sender.audit = self.audit
        self.store = store or AppStore(paths.apps)
        self.auth = authenticator or Authenticator(
            self.store,
            allow_query_key=self.allow_query_key,
            clock=clock,
            nonces=SharedNonceStore(paths.nonces),
        )
        self.fetcher = fetcher or UrlFetcher(
            max_bytes=self.max_image,
            timeout=serve.image_url_timeout,
            allow_private=serve.allow_private_urls,
        )
        # image_url fetches wait on other people's servers: at most half the worker threads
        # may do so at once, so slow origins can never take the threads health and sends need.
        self._fetch_slots = threading.BoundedSemaphore(max(serve.threads // 2, 1))
        self._openapi = _json_body(
            openapi_document(
                allow_query_key=self.allow_query_key,
                max_body_bytes=self.max_body,
                max_image_bytes=self.max_image,
            )
        )

    def close(self) -> None:
        """Release what the app holds open (the archive, the shared nonce store); long polls
        still waiting return at once."""
        self.reader.close()
        close = getattr(self.auth.nonces, "close", None)
        if close is not None:
            close()

    # ------------------------------------------------------------------ WSGI

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        started = time.monotonic()
        status, headers, body = self._handle(environ)
        headers = [
            ("Content-Type", JSON_CTYPE),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            *headers,
        ]
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        log.info(
            "%s %s -> %d (%.0f ms)",
            environ.get("REQUEST_METHOD"),
            environ.get("PATH_INFO"),
            status,
            (time.monotonic() - started) * 1000,
        )
        return [body]

    def _handle(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            return self._dispatch(environ)
        except ApiError as err:
            payload: dict[str, Any] = {"code": err.code, "message": err.message, **err.extra}
            return err.status, err.headers, _json_body({"error": payload})
        except Exception:
            log.exception("unexpected error answering %s", environ.get("PATH_INFO"))
            body = _json_body(
                {"error": {"code": "internal_error", "message": "unexpected server error"}}
            )
            return 500, [], body

    def _dispatch(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        raw_path = str(environ.get("PATH_INFO", "") or "/")
        # WSGI hands PATH_INFO over as latin-1-decoded bytes.
        path = raw_path.encode("latin-1", "replace").decode("utf-8", "replace")
        allowed = sorted(m for (m, p) in ROUTES if p == path)
        if not allowed:
            raise ApiError(404, "not_found", f"no route {path}")
        name = ROUTES.get((method, path))
        if name is None:
            # HEAD is a GET without the body, so only read-only GETs answer it; the legacy
            # GET /v1/msg/text sends a message and must never run for a HEAD.
            if method == "HEAD" and ROUTES.get(("GET", path)) in SAFE_GETS:
                name = ROUTES[("GET", path)]
            else:
                raise ApiError(
                    405,
                    "method_not_allowed",
                    f"{method} is not allowed on {path}",
                    headers=[("Allow", ", ".join(allowed))],
                )
        req = Request(method, path, str(environ.get("QUERY_STRING", "") or ""), environ)
        req.pairs = _query_pairs(req.query_string)
        req.query = {}
        for k, v in req.pairs:
            req.query.setdefault(k, v)
        req.body = self._read_body(environ)
        return getattr(self, f"route_{name}")(req)

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        length_text = str(environ.get("CONTENT_LENGTH", "") or "").strip()
        stream = environ.get("wsgi.input")
        if length_text:
            if not (length_text.isascii() and length_text.isdigit()):
                raise ApiError(400, "bad_length", "Content-Length is not a number")
            length = int(length_text)
            if length > self.max_body:
                raise ApiError(413, "body_too_large", f"request body is over {self.max_body} bytes")
            return stream.read(length) if (stream is not None and length) else b""
        if stream is None:
            return b""
        data = stream.read(self.max_body + 1)
        if len(data) > self.max_body:
            raise ApiError(413, "body_too_large", f"request body is over {self.max_body} bytes")
        return data

    # ------------------------------------------------------------------ helpers

    def _authenticate(self, req: Request) -> App:
        cred = Credentials(
            authorization=req.header("Authorization"),
            app_id=req.header("X-App-Id"),
            timestamp=req.header("X-Timestamp"),
            nonce=req.header("X-Nonce"),
            signature=req.header("X-Signature"),
            query_key=req.query.get("appkey", ""),
        )
        try:
            return self.auth.authenticate(req.method, req.signed_path, req.body, cred)
        except AuthError as exc:
            raise ApiError(
                401,
                exc.code,
                str(exc),
                headers=[("WWW-Authenticate", 'Bearer realm="wxcli"')],
            )

    def _require(self, app: App, scope: str) -> None:
        if not app.may(scope):
            verb = {"read": "read the archive", "send": "send messages"}[scope]
            raise ApiError(
                403,
                "scope_denied",
                f"app {app.name!r} may not {verb}: its scopes are {', '.join(app.scopes)} "
                f"(`wxcli apps add NAME --{scope}` creates an app that may)",
            )

    def _read(
        self, req: Request, answer: Callable[[App, Query], dict[str, Any]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Authenticate, check the read scope, answer from the archive."""
        app = self._authenticate(req)
        self._require(app, "read")
        every: dict[str, list[str]] = {}
        for k, v in req.pairs:
            if k != "appkey":
                every.setdefault(k, []).append(v)
        first = {k: v[0] for k, v in every.items()}
        try:
            body = answer(app, Query(first, every))
        except ReadError as exc:
            headers = [("Retry-After", str(exc.retry_after))] if exc.retry_after else []
            raise ApiError(exc.status, exc.code, str(exc), headers=headers) from None
        return 200, [], _json_body(body)

    def _fields(
        self, req: Request, *, multipart: bool = False
    ) -> tuple[dict[str, str], dict[str, Any]]:
        fields = {k: v for k, v in req.query.items() if k != "appkey"}
        files: dict[str, Any] = {}
        if req.method == "GET" or not req.body:
            return fields, files
        ctype = req.content_type
        body: dict[str, str] = {}
        if ctype == "application/json":
            try:
                data = json.loads(req.body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                # RecursionError: nesting deeper than the JSON decoder's stack
                raise ApiError(400, "bad_json", "the body is not valid UTF-8 JSON")
            if not isinstance(data, dict):
                raise ApiError(400, "bad_json", "the JSON body must be an object")
            for k, v in data.items():
                if v is None:
                    continue
                if not isinstance(v, str):
                    raise ApiError(400, "bad_field", f"field {k!r} must be a string")
                try:
                    (k + v).encode("utf-8")
                except UnicodeEncodeError:  # JSON may spell a lone surrogate ("\\ud800")
                    raise ApiError(
                        400, "bad_field", f"field {k!r} is not valid Unicode (a lone surrogate)"
                    ) from None
                body[k] = v
        elif ctype == "application/x-www-form-urlencoded":
            try:
                text = req.body.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError(400, "bad_form", "the form body is not UTF-8")
            body = _parse_query(text)
        elif ctype == "multipart/form-data" and multipart:
            body, files = parse_multipart(req.header("Content-Type"), req.body)
        else:
            kinds = "application/json, application/x-www-form-urlencoded"
            if multipart:
                kinds += ", multipart/form-data"
            raise ApiError(
                415,
                "unsupported_media_type",
                f"Content-Type {ctype or '(none)'} is not supported here; use {kinds}",
            )
        fields.update(body)
        return fields, files

    def _recipient(self, app: App, fields: dict[str, str]) -> Contact:
        to = fields.get("to", "").strip()
        to_id = fields.get("to_id", "").strip()
        if bool(to) == bool(to_id):
            raise ApiError(400, "bad_recipient", "give exactly one of `to` or `to_id`")

        # For an app with an allow-list, chats outside it do not exist: "not allowed" is
        # answered exactly as "not found", and no count or near match reveals them.
        def not_found(name: str, near: list[str]) -> ApiError:
            hint = f"; did you mean: {', '.join(near)}" if near else ""
            return ApiError(
                404, "recipient_not_found", f"no chat is named {name!r}{hint}", near=near
            )

        try:
            contact = self.sender.resolve(to or None, to_id or None)
        except RecipientNotFoundError as exc:
            raise not_found(exc.name, [n for n in exc.near if app.allows([n])]) from None
        except AmbiguousRecipientError as exc:
            found = self.sender.session().contacts.find(exc.name)
            visible = [c for c in found if app.allows(chat_names(c))]
            if not visible:
                raise not_found(exc.name, []) from None
            if len(visible) > 1:
                raise ApiError(
                    409,
                    "ambiguous_recipient",
                    f"{exc.name!r} matches {len(visible)} chats; send with `to_id` "
                    "(ids from GET /v1/contacts)",
                    matches=[describe(c) for c in visible],
                ) from None
            contact = visible[0]
        if not app.allows(chat_names(contact)):
            raise not_found(to or to_id, [])
        return contact

    def _check_queue(self) -> None:
        status = self.sender.pacer.status()
        if self.sender.pacer.settings.enabled and status.waiting >= status.queue_limit:
            retry = max(int(status.waiting / self.sender.pacer.settings.rate), 1)
            raise ApiError(
                429,
                "queue_full",
                f"{status.waiting} sends are waiting for the pacer; retry later",
                headers=[("Retry-After", str(retry))],
            )

    def _wx_error(self, exc: WxError) -> ApiError:
        """The one mapping from send failures to HTTP answers."""
        if isinstance(exc, NotLoggedInError):
            return ApiError(503, "not_logged_in", str(exc))
        if isinstance(exc, SessionFileError):
            return ApiError(503, "session_unreadable", str(exc))
        if isinstance(exc, SessionExpiredError):
            return ApiError(503, "session_expired", str(exc), wechat_code=str(exc.code))
        if isinstance(exc, PacerQueueFullError):
            return ApiError(
                429,
                "queue_full",
                str(exc),
                headers=[("Retry-After", str(max(int(exc.retry_after), 1)))],
            )
        if isinstance(exc, RateLimitedError):
            return ApiError(
                429,
                "rate_limited",
                str(exc),
                headers=[("Retry-After", "60")],
                wechat_code="1205",
            )
        if isinstance(exc, MediaTooLargeError):
            return ApiError(413, "image_too_large", str(exc))
        if isinstance(exc, MediaTypeError):
            return ApiError(415, "not_an_image", str(exc))
        if isinstance(exc, UnsafeURLError):
            return ApiError(400, "image_url_forbidden", str(exc))
        if isinstance(exc, MediaFetchError):
            return ApiError(422, "image_url_unavailable", str(exc))
        if isinstance(exc, MediaError | UsageError):
            return ApiError(400, "bad_request", str(exc))
        if isinstance(exc, NetworkError):
            return ApiError(504, "wechat_unreachable", str(exc))
        if isinstance(exc, ProtocolError):
            code = "" if exc.code is None else str(exc.code)
            return ApiError(502, "wechat_rejected", str(exc), wechat_code=code)
        return ApiError(500, "internal_error", str(exc))

    def _refused(self, app: App, kind: str, fields: dict[str, str], err: ApiError) -> None:
        """Audit a send that was refused before reaching WeChat (bad recipient, allow-list…)."""
        try:
            self.audit(
                {
                    "at": datetime.now(UTC).isoformat(),
                    "profile": self.paths.profile,
                    "app": app.name,
                    "app_id": app.app_id,
                    "kind": kind,
                    "to": fields.get("to_id", ""),
                    "to_name": fields.get("to", ""),
                    "result": "refused",
                    "msg_id": "",
                    "error": {"type": "http", "code": err.status, "message": err.message},
                    "via": "rest",
                }
            )
        except Exception:
            log.exception("could not write the audit record")

    def _send(
        self,
        req: Request,
        app: App,
        kind: str,
        fields: dict[str, str],
        deliver: Callable[[Contact, dict[str, Any]], Any],
        prepare: Callable[[], None] | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Checks shared by the send routes, then ``deliver`` through the Sender.

        Refusals before the Sender is reached are audited here; the Sender audits the rest.
        """
        reached = False
        try:
            try:
                self.sender.require_alive()
                recipient = self._recipient(app, fields)
                self._check_queue()
                if prepare is not None:
                    prepare()
                reached = True
                outcome = deliver(recipient, {"app_id": app.app_id, "remote": req.remote})
            except WxError as exc:
                raise self._wx_error(exc) from None
        except ApiError as err:
            if not reached:
                self._refused(app, kind, fields, err)
            raise
        return 200, [], _json_body(outcome.to_json())

    # ------------------------------------------------------------------ routes

    def route_health(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        from wxcli.account import watch_running
        from wxcli.health import age_seconds, read_health
        from wxcli.session import SessionStore

        stale = self.stale_seconds
        session: dict[str, Any] = {"profile": self.paths.profile, "logged_in": False}
        status = "not_logged_in"
        try:
            state = SessionStore(self.paths).load_optional()
        except WxError as exc:
            state = None
            session["problem"] = str(exc)
        running, pid = watch_running(self.paths)
        health = read_health(self.paths.health) if running else None
        age = age_seconds(health.updated_at) if health is not None else None
        fresh = age is not None and age < stale
        watch: dict[str, Any] = {
            "running": running,
            "pid": pid,
            "state": health.state if health else None,
            "last_sync_at": (health.last_sync_at or None) if health else None,
            "updated_at": (health.updated_at or None) if health else None,
            "stale": bool(running and not fresh),
        }
        if state is not None:
            session.update(
                logged_in=True,
                login_time=state.login_time.isoformat(),
                alive=state.alive,
                source="session file",
            )
            status = "ok" if state.alive else "session_expired"
            if state.alive and fresh and health is not None:
                session["source"] = "watch"
                if health.state == "session_lost":
                    session["alive"] = False
                    status = "session_expired"
        pacer = self.sender.pacer.status().to_json()
        body = {
            "status": status,
            "version": __version__,
            "session": session,
            "watch": watch,
            "pacer": pacer,
        }
        return (200 if status == "ok" else 503), [], _json_body(body)

    def route_openapi(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return 200, [], self._openapi

    def route_contacts(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        app = self._authenticate(req)
        query = req.query.get("q", "").lower()
        kind = req.query.get("kind", "")
        if kind and kind not in ("group", "friend", "official", "special"):
            raise ApiError(400, "bad_kind", "kind must be group, friend, official or special")
        try:
            state = self.sender.session()
        except WxError as exc:
            raise self._wx_error(exc)
        out = []
        for c in state.contacts:
            if c.user_name == state.user_name:
                continue
            if kind and c.kind != kind:
                continue
            if query and not any(query in (n or "").lower() for n in (c.nickname, c.remark)):
                continue
            if not app.allows(chat_names(c)):
                continue
            out.append(
                {
                    "id": c.user_name,
                    "name": c.shown_name,
                    "nickname": c.nickname,
                    "remark": c.remark,
                    "kind": c.kind,
                    "members": c.member_count if c.is_group else None,
                }
            )
        out.sort(key=lambda d: (d["kind"] != "group", d["name"]))
        return 200, [], _json_body({"contacts": out})

    def route_messages(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._read(req, self.reader.messages)

    def route_chats(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._read(req, self.reader.chats)

    def route_stats_words(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._read(req, lambda app, q: self.reader.stats(app, "words", q))

    def route_stats_activity(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._read(req, lambda app, q: self.reader.stats(app, "activity", q))

    def route_stats_speakers(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._read(req, lambda app, q: self.reader.stats(app, "speakers", q))

    def route_stats_sentiment(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        return self._read(req, lambda app, q: self.reader.stats(app, "sentiment", q))

    def route_text(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        app = self._authenticate(req)
        self._require(app, "send")
        fields, _ = self._fields(req)
        text = fields.get("text") or fields.get("word") or ""
        if not text.strip():
            raise ApiError(400, "missing_text", "give the message as `text` (or `word`)")

        if len(text) > MAX_TEXT_CHARS:
            raise ApiError(413, "text_too_long", f"the text is over {MAX_TEXT_CHARS} characters")

        def deliver(recipient: Contact, extra: dict[str, Any]) -> Any:
            extra["via"] = "rest"
            return self.sender.send_text(text, recipient=recipient, app=app.name, extra=extra)

        return self._send(req, app, "text", fields, deliver)

    def route_image(self, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        app = self._authenticate(req)
        self._require(app, "send")
        fields, files = self._fields(req, multipart=True)
        upload = files.get("file")
        url = fields.get("image_url") or fields.get("imgUrl") or ""
        if upload is None and not url:
            raise ApiError(400, "missing_image", "send a multipart `file` or an `image_url`")

        loaded: list[ImageData] = []

        def prepare() -> None:
            if upload is not None:
                filename, data = upload
                loaded.append(image_from_bytes(data, filename or "image", max_bytes=self.max_image))
            elif not self._fetch_slots.acquire(blocking=False):
                raise ApiError(
                    429,
                    "too_many_fetches",
                    "too many image_url fetches are under way; retry shortly or upload the file",
                    headers=[("Retry-After", "1")],
                )
            else:
                try:
                    loaded.append(self.fetcher.fetch(url))
                finally:
                    self._fetch_slots.release()

        def deliver(recipient: Contact, extra: dict[str, Any]) -> Any:
            extra["via"] = "rest"
            return self.sender.send_image(loaded[0], recipient=recipient, app=app.name, extra=extra)

        return self._send(req, app, "image", fields, deliver, prepare)


# ---------------------------------------------------------------------- running the server


@dataclass
class ServerHandle:
    """A running server: ``url``, and ``stop()`` to shut it down (joins the thread)."""

    host: str
    port: int
    app: RestApp
    _server: Any
    _thread: threading.Thread
    _stopping: threading.Event

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        try:
            self._server.pull_trigger()
        except OSError:
            pass
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.app.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the server stops; True when it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def startup_warnings(config: Config, host: str) -> list[str]:
    """What an operator must hear before the server starts (also logged by start_server)."""
    out = []
    if not _is_loopback(host):
        out.append(
            f"serving on {host}, not loopback: anyone who can reach this port can try keys; "
            "put a TLS-terminating reverse proxy in front and firewall the port"
        )
    serve = config.settings.serve
    if serve.allow_query_key:
        out.append(
            "[serve] allow_query_key is on: app keys in URLs end up in proxy and access logs; "
            "move clients to Authorization: Bearer or request signing"
        )
    if serve.allow_private_urls:
        out.append("[serve] allow_private_urls is on: image_url may reach internal addresses")
    return out


def start_server(
    paths: ProfilePaths,
    config: Config,
    host: str | None = None,
    port: int | None = None,
    *,
    audit: AuditSink | None = None,
    sender: Sender | None = None,
    app: RestApp | None = None,
) -> ServerHandle:
    """Run the REST shim on waitress in a background thread (``wxcli serve``, ``watch --serve``).

    ``port=0`` picks a free port (see ``handle.port``). ``audit`` receives one record per API
    send; without it records go to ``<home>/audit.jsonl``.
    """
    from waitress import wasyncore
    from waitress.server import create_server

    serve = config.settings.serve
    host = host if host is not None else serve.host
    port = port if port is not None else serve.port
    wsgi = app or RestApp(paths, config, audit=audit, sender=sender)
    sock = _bind(host, port)
    try:
        server = _create(create_server, wsgi, sock, serve)
    except BaseException:
        sock.close()
        raise
    for warning in startup_warnings(config, host):
        log.warning("%s", warning)
    stopping = threading.Event()

    def run() -> None:
        try:
            while not stopping.is_set() and server._map:
                wasyncore.loop(timeout=1.0, map=server._map, use_poll=True, count=1)
        finally:
            server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)
            wasyncore.close_all(server._map, ignore_all=True)

    thread = threading.Thread(target=run, name="wxcli-serve", daemon=True)
    thread.start()
    bound_host = str(server.effective_host)
    return ServerHandle(bound_host, int(server.effective_port), wsgi, server, thread, stopping)


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port is a clear error (and nothing
    half-built is left behind)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise WxError(f"cannot listen on {host}:{port}: {exc}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise WxError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _guarded_channel(header_timeout: float, per_client: int) -> type:
    """A waitress channel that refuses the slowloris tricks waitress itself lets through.

    waitress closes a connection only after ``channel_timeout`` of *silence*, so a client that
    sends a header byte every few seconds holds its connection forever, and a hundred such
    clients hold every connection. This channel gives each request's headers a wall-clock
    deadline and caps the connections one address may keep open.
    """
    from waitress.channel import HTTPChannel

    class GuardedChannel(HTTPChannel):
        def __init__(self, server: Any, sock: Any, addr: Any, adj: Any, map: Any = None):
            super().__init__(server, sock, addr, adj, map=map)
            self._headers_started: float | None = None
            host = addr[0] if isinstance(addr, tuple) and addr else addr
            same = sum(
                1
                for ch in list(server.active_channels.values())
                if ch is not self and isinstance(ch.addr, tuple) and ch.addr[0] == host
            )
            if same >= per_client:
                log.warning("refusing a connection from %s: %d already open", host, same)
                self.will_close = True
                self.close()

        def received(self, data: bytes) -> bool:
            now = time.monotonic()
            if self.request is None or not self.request.headers_finished:
                if self._headers_started is None:
                    self._headers_started = now
                elif now - self._headers_started > header_timeout:
                    log.info(
                        "closing %s: request headers took over %g s", self.addr, header_timeout
                    )
                    self.will_close = True
                    return False
            result = super().received(data)
            if self.request is None or self.request.headers_finished:
                self._headers_started = None  # the next request gets its own deadline
            return bool(result)

    return GuardedChannel


def _create(
    create_server: Callable[..., Any], wsgi: RestApp, sock: socket.socket, serve: ServeSettings
) -> Any:
    """waitress with our limits: body and header size, idle timeout, connection caps."""
    server = _create_waitress(create_server, wsgi, sock, serve)
    server.channel_class = _guarded_channel(
        serve.header_timeout, max(serve.connections_per_client, 1)
    )
    return server


def _create_waitress(
    create_server: Callable[..., Any], wsgi: RestApp, sock: socket.socket, serve: ServeSettings
) -> Any:
    return create_server(
        wsgi,
        sockets=[sock],
        threads=max(serve.threads, 1),
        max_request_body_size=serve.max_body_bytes + BODY_SLACK,
        max_request_header_size=HEADER_LIMIT,
        channel_timeout=CHANNEL_TIMEOUT,
        connection_limit=100,
        cleanup_interval=10,
        ident="wxcli",
        expose_tracebacks=False,
        asyncore_use_poll=True,
    )
