"""Per-app credentials of the REST shim: the apps store, bearer keys, HMAC request signing.

Each app gets a random id and a random 256-bit key, printed once. The store (``apps.json`` in
the home, 0600, written atomically under a lock) keeps only a *verifier*:
``HMAC-SHA256(key=appKey, msg="wxcli-sign-v1")``. It serves both auth modes:

* Bearer ``<appId>:<appKey>``: the server derives the verifier from the presented key and
  compares it in constant time. The key itself is never stored.
* Signing: the client derives the same value from its key and uses it as the HMAC-SHA256 key
  over ``METHOD\\nPATH[?QUERY]\\nTIMESTAMP\\nNONCE\\nSHA256_HEX(BODY)``; the key never
  travels. Timestamps must be within ±5 minutes and each nonce is accepted once.

A slow password hash (scrypt, PBKDF2) protects guessable passwords; these keys are 256-bit
random, so one keyed hash is as strong and keeps bearer checks in microseconds. Whoever can read
``apps.json`` can sign requests (inherent to symmetric signing) but cannot recover the keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from wxcli.errors import UsageError, WxError
from wxcli.fileutil import atomic_write_json, locked, private_dir

STORE_VERSION = 1
SIGNING_LABEL = b"wxcli-sign-v1"
SIGNATURE_WINDOW = 300  # seconds either side of the server clock
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
#: What an app may do: ``send`` messages, ``read`` the archive. An app gets only what it was
#: given; apps stored before scopes existed could only send, so that is what they keep.
SCOPES = ("read", "send")
DEFAULT_SCOPES = ("send",)


class AuthError(WxError):
    """Missing or bad credentials (REST: 401)."""

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


def derive_verifier(app_key: str) -> bytes:
    """The stored value and signing secret of a key: HMAC-SHA256(appKey, "wxcli-sign-v1")."""
    return hmac.new(app_key.encode("utf-8"), SIGNING_LABEL, hashlib.sha256).digest()


def canonical_request(method: str, path: str, timestamp: str, nonce: str, body: bytes) -> bytes:
    """What gets signed; ``path`` includes ``?query`` exactly as sent, when there is one."""
    digest = hashlib.sha256(body).hexdigest()
    return "\n".join([method.upper(), path, timestamp, nonce, digest]).encode("utf-8")


def sign_request(
    app_key: str, method: str, path: str, timestamp: str, nonce: str, body: bytes
) -> str:
    """The X-Signature a client sends (lowercase hex); the reference for client authors."""
    message = canonical_request(method, path, timestamp, nonce, body)
    return hmac.new(derive_verifier(app_key), message, hashlib.sha256).hexdigest()


def signed_headers(
    app_id: str,
    app_key: str,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """All four signing headers for one request (used by tests, benchmarks and scripts)."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_urlsafe(18)
    return {
        "X-App-Id": app_id,
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": sign_request(app_key, method, path, ts, nonce, body),
    }


@dataclass
class App:
    """One API client: its id, the verifier of its key, its scopes and the chats it may
    send to and read (``allow_to``: globs over a chat's names; empty means every chat)."""

    name: str
    app_id: str
    verifier: bytes
    allow_to: list[str] = field(default_factory=list)
    created_at: str = ""
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SCOPES))

    def allows(self, names: Iterable[str]) -> bool:
        """True when the app has no allow-list or a pattern matches one of the chat's names."""
        if not self.allow_to:
            return True
        return any(fnmatchcase(n, p) for n in names if n for p in self.allow_to)

    def may(self, scope: str) -> bool:
        return scope in self.scopes

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "app_id": self.app_id,
            "verifier": base64.b64encode(self.verifier).decode(),
            "allow_to": list(self.allow_to),
            "created_at": self.created_at,
            "scopes": list(self.scopes),
        }

    def public(self) -> dict[str, Any]:
        """What `apps list` shows (no secret material)."""
        return {
            "name": self.name,
            "app_id": self.app_id,
            "scopes": list(self.scopes),
            "allow_to": list(self.allow_to),
            "created_at": self.created_at,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> App:
        return cls(
            name=str(d["name"]),
            app_id=str(d["app_id"]),
            verifier=base64.b64decode(str(d["verifier"])),
            allow_to=[str(p) for p in d.get("allow_to", [])],
            created_at=str(d.get("created_at", "")),
            scopes=[str(x) for x in d.get("scopes", DEFAULT_SCOPES) if str(x) in SCOPES],
        )


@dataclass(frozen=True)
class NewApp:
    """What `apps add` returns: the only moment the key exists outside the caller's hands."""

    app: App
    app_key: str


class AppStore:
    """``apps.json``: load, add, revoke; re-read by the server when the file changes."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._cache_lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._apps: dict[str, App] = {}

    def _read(self) -> list[App]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise WxError(f"cannot read {self.path}: {exc.strerror}")
        try:
            data = json.loads(text)
            if data.get("version", 0) > STORE_VERSION:
                raise WxError(f"{self.path} was written by a newer wxcli; upgrade wxcli")
            return [App.from_json(d) for d in data.get("apps", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise WxError(f"{self.path} is corrupt ({type(exc).__name__}); fix or delete it")

    def _write(self, apps: list[App]) -> None:
        atomic_write_json(
            self.path, {"version": STORE_VERSION, "apps": [a.to_json() for a in apps]}, 0o600
        )

    def list(self) -> list[App]:
        return self._read()

    def add(
        self, name: str, allow_to: Iterable[str] = (), scopes: Iterable[str] = DEFAULT_SCOPES
    ) -> NewApp:
        if not NAME_RE.match(name):
            raise UsageError(
                f"invalid app name {name!r}: use letters, digits, '_', '-' or '.' (max 64)"
            )
        patterns = [p for p in allow_to if p]
        granted = [s for s in SCOPES if s in set(scopes)]
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not granted:
            raise UsageError(f"scopes must be some of {', '.join(SCOPES)} (got {unknown or '[]'})")
        with locked(self.lock_path):
            apps = self._read()
            if any(a.name == name for a in apps):
                raise UsageError(f"an app named {name!r} exists; revoke it first or pick a name")
            key = secrets.token_urlsafe(32)  # 256 bits
            app = App(
                name=name,
                app_id="app_" + secrets.token_hex(8),
                verifier=derive_verifier(key),
                allow_to=patterns,
                created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                scopes=granted,
            )
            apps.append(app)
            self._write(apps)
        return NewApp(app, key)

    def revoke(self, name: str) -> App:
        with locked(self.lock_path):
            apps = self._read()
            found = next((a for a in apps if a.name == name or a.app_id == name), None)
            if found is None:
                raise UsageError(f"no app named {name!r} (see `wxcli apps list`)")
            self._write([a for a in apps if a is not found])
        return found

    def current(self) -> dict[str, App]:
        """app_id → App, re-read only when the file changed (cheap per request)."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._cache_lock:
            if stamp != self._stamp:
                self._apps = {a.app_id: a for a in self._read()} if stamp else {}
                self._stamp = stamp
            return self._apps


class NonceCache:
    """Nonces seen within the signature window: a replay inside it is refused.

    Bounded: when full, expired entries go first; if it is still full the request is refused
    (a flood of fresh signed requests can only come from a key holder).
    """

    def __init__(self, window: float = SIGNATURE_WINDOW, max_entries: int = 200_000):
        self.window = window
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires > now:
                break
            del self._seen[key]

    def use(self, app_id: str, nonce: str, now: float) -> bool:
        """Record the nonce; False when it was already used (a replay)."""
        key = (app_id, nonce)
        with self._lock:
            self._expire(now)
            if key in self._seen:
                return False
            if len(self._seen) >= self.max_entries:
                raise AuthError("nonce_cache_full", "too many signed requests; retry shortly")
            # Expiry order equals insertion order because the window is constant.
            self._seen[key] = now + 2 * self.window
            return True


class SharedNonceStore:
    """Nonces in a small SQLite file, so every ``serve`` process of the home (and the next one
    after a restart) refuses a replay that another already accepted.

    Bounded per app: one key holder flooding fresh nonces fills only its own quota
    (``per_app``) and is refused with ``nonce_cache_full``; other apps are not affected.
    """

    def __init__(self, path: Path, window: float = SIGNATURE_WINDOW, per_app: int = 50_000) -> None:
        import sqlite3

        self.window = window
        self.per_app = per_app
        self._lock = threading.Lock()
        path = Path(path)
        private_dir(path.parent)
        # Create it 0600 before SQLite does (SQLite would use 0644 minus the umask).
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        self._db = sqlite3.connect(
            path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS nonce (app_id TEXT NOT NULL, nonce TEXT NOT NULL,"
            " expires REAL NOT NULL, PRIMARY KEY (app_id, nonce))"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS nonce_expires ON nonce (expires)")
        self._next_sweep = 0.0

    def use(self, app_id: str, nonce: str, now: float) -> bool:
        """Record the nonce; False when any process already used it (a replay)."""
        import sqlite3

        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    if now >= self._next_sweep:
                        self._db.execute("DELETE FROM nonce WHERE expires <= ?", (now,))
                        self._next_sweep = now + 5.0
                    used = self._db.execute(
                        "SELECT 1 FROM nonce WHERE app_id = ? AND nonce = ? AND expires > ?",
                        (app_id, nonce, now),
                    ).fetchone()
                    if used:
                        return False
                    (count,) = self._db.execute(
                        "SELECT COUNT(*) FROM nonce WHERE app_id = ? AND expires > ?",
                        (app_id, now),
                    ).fetchone()
                    if count >= self.per_app:
                        raise AuthError(
                            "nonce_cache_full", "too many signed requests; retry shortly"
                        )
                    self._db.execute(
                        "INSERT OR REPLACE INTO nonce (app_id, nonce, expires) VALUES (?, ?, ?)",
                        (app_id, nonce, now + 2 * self.window),
                    )
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                # Fail closed: without the store a replay cannot be ruled out.
                raise AuthError("nonce_store_unavailable", f"cannot check the nonce: {exc}")
            return True

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class Credentials:
    """What the request presented (headers and, if allowed, the legacy query key)."""

    authorization: str = ""
    app_id: str = ""
    timestamp: str = ""
    nonce: str = ""
    signature: str = ""
    query_key: str = ""


class Authenticator:
    """Checks a request's credentials against the apps store (thread-safe)."""

    def __init__(
        self,
        store: AppStore,
        *,
        allow_query_key: bool = False,
        clock: Callable[[], float] = time.time,
        nonces: NonceCache | SharedNonceStore | None = None,
    ):
        self.store = store
        self.allow_query_key = allow_query_key
        self.clock = clock
        self.nonces = nonces or NonceCache()
        self._dummy = derive_verifier(secrets.token_urlsafe(32))

    def authenticate(self, method: str, path: str, body: bytes, cred: Credentials) -> App:
        """The app behind the request, or AuthError (always a 401 for the caller)."""
        if cred.signature or cred.app_id or cred.nonce or cred.timestamp:
            return self._signed(method, path, body, cred)
        if cred.authorization:
            return self._bearer(cred.authorization)
        if cred.query_key:
            if not self.allow_query_key:
                raise AuthError(
                    "query_key_disabled",
                    "the appkey query parameter is disabled; use Authorization: Bearer "
                    "<appId>:<appKey> or request signing",
                )
            return self._query_key(cred.query_key)
        raise AuthError(
            "missing_credentials",
            "authenticate with Authorization: Bearer <appId>:<appKey> or X-Signature signing",
        )

    def _check(self, app: App | None, key: str) -> App:
        presented = derive_verifier(key)
        expected = app.verifier if app is not None else self._dummy
        if not hmac.compare_digest(presented, expected) or app is None:
            raise AuthError("bad_credentials", "unknown app id or wrong app key")
        return app

    def _bearer(self, header: str) -> App:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or ":" not in token:
            raise AuthError("bad_authorization", "expected Authorization: Bearer <appId>:<appKey>")
        app_id, _, key = token.strip().partition(":")
        return self._check(self.store.current().get(app_id), key)

    def _query_key(self, value: str) -> App:
        apps = self.store.current()
        if ":" in value:
            app_id, _, key = value.partition(":")
            return self._check(apps.get(app_id), key)
        # The seed sent a bare key: compare with every app (constant time per app).
        presented = derive_verifier(value)
        found = None
        for app in apps.values():
            if hmac.compare_digest(presented, app.verifier):
                found = app
        if found is None:
            raise AuthError("bad_credentials", "unknown app key")
        return found

    def _signed(self, method: str, path: str, body: bytes, cred: Credentials) -> App:
        missing = [
            h
            for h, v in (
                ("X-App-Id", cred.app_id),
                ("X-Timestamp", cred.timestamp),
                ("X-Nonce", cred.nonce),
                ("X-Signature", cred.signature),
            )
            if not v
        ]
        if missing:
            raise AuthError("incomplete_signature", f"signed request lacks {', '.join(missing)}")
        # isdigit() alone accepts "²" and other Unicode digits that int() refuses
        if not (cred.timestamp.isascii() and cred.timestamp.isdigit()) or len(cred.timestamp) > 12:
            raise AuthError("bad_timestamp", "X-Timestamp must be Unix seconds")
        now = self.clock()
        if abs(now - int(cred.timestamp)) > SIGNATURE_WINDOW:
            raise AuthError(
                "stale_timestamp",
                f"X-Timestamp is more than {SIGNATURE_WINDOW} s away from the server clock",
            )
        if not NONCE_RE.match(cred.nonce):
            raise AuthError("bad_nonce", "X-Nonce must be 16-128 characters of [A-Za-z0-9_-]")
        app = self.store.current().get(cred.app_id)
        secret = app.verifier if app is not None else self._dummy
        message = canonical_request(method, path, cred.timestamp, cred.nonce, body)
        expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
        given = cred.signature.strip().lower().encode("utf-8", "replace")
        if not hmac.compare_digest(expected.encode(), given) or app is None:
            raise AuthError("bad_signature", "signature does not match (or unknown app id)")
        # Only a valid signature may burn a nonce, so nobody can pre-empt a client's nonces.
        if not self.nonces.use(app.app_id, cred.nonce, now):
            raise AuthError("replayed_nonce", "this X-Nonce was already used")
        return app
