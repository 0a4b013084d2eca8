"""The one send path of a profile: resolve the recipient, take a pacer slot, send, audit.

``wxcli send``, the REST server and the WeChat alert channel all send through :class:`Sender`,
so name resolution ("never the first of several"), pacing across processes, 1205 back-off,
session-loss bookkeeping and the audit trail behave the same everywhere. It reads the session
file (names come from its contact directory; no sync, no database) and stays light to import.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wxcli.contacts import FILEHELPER_NAMES
from wxcli.errors import (
    NotLoggedInError,
    RecipientNotFoundError,
    SessionExpiredError,
    UsageError,
    WxError,
)
from wxcli.fileutil import locked
from wxcli.pacer import Pacer
from wxcli.protocol.models import Contact
from wxcli.session import SessionState, SessionStore

if TYPE_CHECKING:
    from wxcli.client import WebWeChatClient
    from wxcli.config import Config
    from wxcli.media_input import ImageData
    from wxcli.paths import ProfilePaths

log = logging.getLogger(__name__)

#: Longest text accepted for one message (characters); WeChat splits or refuses far longer.
MAX_TEXT_CHARS = 16384

#: An audit sink receives one dict per send attempt (see :meth:`Sender._audit_record`).
AuditSink = Callable[[dict[str, Any]], None]


def profile_file(paths: ProfilePaths, stem: str, ext: str) -> Path:
    """``<home>/<stem>[.<profile>].<ext>``, the naming ProfilePaths uses for per-profile files."""
    suffix = "" if paths.profile == "default" else f".{paths.profile}"
    return paths.home / f"{stem}{suffix}.{ext}"


class JsonlAudit:
    """Append-only JSON-lines audit file (0600), safe across threads and processes.

    The default sink when no database is configured; the database layer plugs in its own
    callable with the same signature.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()

    def __call__(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock, locked(self.path.with_name(self.path.name + ".lock")):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


@dataclass
class SendOutcome:
    """A message WeChat accepted."""

    msg_id: str
    local_id: str
    to: str  # session UserName
    to_name: str
    kind: str  # "text" | "image"
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {
            "msg_id": self.msg_id,
            "local_id": self.local_id,
            "to": self.to,
            "to_name": self.to_name,
            "kind": self.kind,
            "sent_at": self.sent_at.isoformat(),
        }


def chat_names(contact: Contact) -> list[str]:
    """The names a person may use for a chat (for allow-list patterns)."""
    names = [n for n in (contact.remark, contact.nickname) if n]
    if contact.user_name == "filehelper":
        names += sorted(FILEHELPER_NAMES | {"filehelper"})
    return names


def label(contact: Contact) -> str:
    return contact.remark or contact.nickname or contact.user_name


class Sender:
    """Resolve + pace + send for one profile; thread-safe, reusable for the life of a server.

    The session file is re-read when it changes (a new login while ``serve`` runs is picked
    up); a send that finds the session ended marks the session file so that ``status``,
    ``keepalive`` and ``/v1/health`` agree.
    """

    def __init__(
        self,
        paths: ProfilePaths,
        config: Config,
        *,
        pacer: Pacer | None = None,
        audit: AuditSink | None = None,
        client_factory: Callable[[SessionState], WebWeChatClient] | None = None,
    ):
        self.paths = paths
        self.config = config
        self.store = SessionStore(paths)
        self.pacer = pacer or Pacer.for_profile(paths, config)
        self.audit = audit
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._state: SessionState | None = None
        self._client: WebWeChatClient | None = None

    # ------------------------------------------------------------------ session

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.store.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def session(self) -> SessionState:
        """The current session (re-read when the file changed); NotLoggedInError if none."""
        with self._lock:
            stamp = self._file_stamp()
            if stamp is None:
                self._stamp, self._state, self._client = None, None, None
                raise NotLoggedInError(self.paths.profile)
            if stamp != self._stamp or self._state is None:
                state = self.store.load()
                current = self._client.state if self._client is not None else None
                if self._client is not None and current is not None and state.sid == current.sid:
                    # Same login, newer file (watch saved a rotated skey or cookies): keep the
                    # HTTP connection, adopt the new credentials.
                    self._client.state = state
                    self._client.import_cookies(state.cookies)
                else:
                    self._client = None
                self._state, self._stamp = state, stamp
            return self._state

    def client(self) -> WebWeChatClient:
        state = self.session()
        with self._lock:
            if self._client is None:
                if self._client_factory is not None:
                    self._client = self._client_factory(state)
                else:
                    from wxcli.account import make_client

                    self._client = make_client(self.config, state)
            return self._client

    def require_alive(self) -> SessionState:
        """The session, or SessionExpiredError when the file already says it ended."""
        state = self.session()
        if not state.alive:
            raise SessionExpiredError(state.ended_code or 1101, "session file")
        return state

    def _session_lost(self, state: SessionState, exc: SessionExpiredError) -> None:
        try:
            current = self.store.load_optional()
            if current is not None and current.sid == state.sid and current.alive:
                self.store.mark_ended(exc.code)
        except WxError as err:
            log.warning("could not mark the session ended: %s", err)

    # ------------------------------------------------------------------ recipients

    def resolve(self, to: str | None = None, to_id: str | None = None) -> Contact:
        """Exactly one chat: by exact name (``to``) or by session UserName (``to_id``)."""
        if bool(to) == bool(to_id):
            raise UsageError("give exactly one recipient: a name (--to) or an id (--to-id)")
        directory = self.session().contacts
        if to:
            return directory.resolve(to)
        assert to_id is not None
        known = directory.get(to_id)
        if known is not None:
            return known
        if to_id == "filehelper":
            return directory.resolve("filehelper")
        if to_id.startswith("@"):
            # Not in the saved directory (a chat that appeared since the last contact refresh);
            # WeChat itself decides whether it exists.
            return Contact(user_name=to_id, nickname="")
        raise RecipientNotFoundError(to_id, [])

    # ------------------------------------------------------------------ sending

    def send_text(
        self,
        text: str,
        *,
        to: str | None = None,
        to_id: str | None = None,
        recipient: Contact | None = None,
        app: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SendOutcome:
        """Send one text message (paced, retried on 1205); raises WxError subclasses."""
        if not text or not text.strip():
            raise UsageError("the message is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise UsageError(
                f"the message is {len(text)} characters; the limit is {MAX_TEXT_CHARS}"
            )
        contact = recipient or self.resolve(to, to_id)

        def attempt(client: WebWeChatClient) -> Any:
            return client.send_text(contact.user_name, text)

        return self._send("text", contact, attempt, app, {"chars": len(text), **(extra or {})})

    def send_image(
        self,
        image: ImageData,
        *,
        to: str | None = None,
        to_id: str | None = None,
        recipient: Contact | None = None,
        app: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SendOutcome:
        """Upload and send one image (a GIF goes as an emoticon); paced and retried on 1205."""
        contact = recipient or self.resolve(to, to_id)

        def attempt(client: WebWeChatClient) -> Any:
            return client.send_image(contact.user_name, image.data, image.name, image.mime)

        info = {"bytes": image.size, "mime": image.mime, **(extra or {})}
        return self._send("image", contact, attempt, app, info)

    def _send(
        self,
        kind: str,
        contact: Contact,
        attempt: Callable[[WebWeChatClient], Any],
        app: str | None,
        info: dict[str, Any],
    ) -> SendOutcome:
        error: WxError | None = None
        outcome: SendOutcome | None = None
        try:
            state = self.require_alive()
            client = self.client()
            try:
                result = self.pacer.call(lambda: attempt(client))
            except SessionExpiredError as exc:
                self._session_lost(state, exc)
                raise
            outcome = SendOutcome(
                msg_id=result.msg_id,
                local_id=result.local_id,
                to=contact.user_name,
                to_name=label(contact),
                kind=kind,
            )
            return outcome
        except WxError as exc:
            error = exc
            raise
        finally:
            if self.audit is not None:
                self._emit_audit(kind, contact, app, info, outcome, error)

    def _emit_audit(
        self,
        kind: str,
        contact: Contact,
        app: str | None,
        info: dict[str, Any],
        outcome: SendOutcome | None,
        error: BaseException | None,
    ) -> None:
        record: dict[str, Any] = {
            "at": datetime.now(UTC).isoformat(),
            "profile": self.paths.profile,
            "app": app,
            "kind": kind,
            "to": contact.user_name,
            "to_name": label(contact),
            "result": "sent" if outcome is not None else "failed",
            "msg_id": outcome.msg_id if outcome is not None else "",
            "error": None,
            **info,
        }
        if error is not None:
            record["error"] = {
                "type": type(error).__name__,
                "code": getattr(error, "code", None),
                "message": str(error),
            }
        try:
            assert self.audit is not None
            self.audit(record)
        except Exception:  # the audit trail must never turn a delivered message into an error
            log.exception("could not write the send audit record")


def default_audit(paths: ProfilePaths) -> JsonlAudit:
    """The audit sink used when no database sink is given: ``<home>/audit.jsonl`` (0600)."""
    return JsonlAudit(paths.home / "audit.jsonl")


def send_text(
    paths: ProfilePaths,
    config: Config,
    text: str,
    *,
    to: str | None = None,
    to_id: str | None = None,
    app: str | None = None,
    audit: AuditSink | None = None,
) -> SendOutcome:
    """One-shot text send through the profile's pacer (for alerts and scripts)."""
    return Sender(paths, config, audit=audit).send_text(text, to=to, to_id=to_id, app=app)


def send_image(
    paths: ProfilePaths,
    config: Config,
    source: str,
    *,
    to: str | None = None,
    to_id: str | None = None,
    app: str | None = None,
    audit: AuditSink | None = None,
    allow_private_urls: bool = True,
) -> SendOutcome:
    """One-shot image send from a file path or http(s) URL through the profile's pacer."""
    from wxcli.media_input import load_image

    sender = Sender(paths, config, audit=audit)
    recipient = sender.resolve(to, to_id)  # fail on the name before fetching anything
    settings = config.settings
    image = load_image(
        source,
        max_bytes=settings.send.max_image_bytes,
        timeout=settings.serve.image_url_timeout,
        allow_private=allow_private_urls,
    )
    return sender.send_image(image, recipient=recipient, app=app)
