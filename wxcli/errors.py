"""The one error hierarchy of wxcli.

Every expected failure is a :class:`WxError`; each class knows the process exit status that the
CLI boundary (``wxcli.cli``) turns it into, so the library never decides how to exit.

Exit statuses (documented in the README):

====  =========================================================
0     success
1     error (anything not listed below)
2     usage or configuration error
3     not logged in, or the session expired / was logged out
4     protocol error: the server refused or answered nonsense
5     network error: the server could not be reached in time
130   interrupted (Ctrl-C)
====  =========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_SESSION = 3
EXIT_PROTOCOL = 4
EXIT_NETWORK = 5
EXIT_INTERRUPTED = 130


class WxError(Exception):
    """Base of every expected wxcli failure; ``str(err)`` is the one-line message for users."""

    exit_code: int = EXIT_ERROR


class UsageError(WxError):
    """The user asked for something that cannot be done as asked."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """The configuration file is unreadable or has a wrong value."""

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        self.path = path
        self.key = key
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        super().__init__(where + message)


# --- session -------------------------------------------------------------------------------


class NotLoggedInError(WxError):
    """No session file exists for the profile."""

    exit_code = EXIT_SESSION

    def __init__(self, profile: str = "default"):
        self.profile = profile
        hint = "wxcli login" if profile == "default" else f"wxcli --profile {profile} login"
        super().__init__(f"not logged in (profile {profile!r}); run `{hint}` first")


#: What each session-ending code means, as reported by the clients studied in the protocol file.
SESSION_CODE_MEANINGS: dict[int, str] = {
    1100: "logged out from the phone, or the session failed a login check",
    1101: "the session ended: logged in to Web WeChat elsewhere or logged out",
    1102: "the session cookies are invalid or missing",
}


class SessionExpiredError(WxError):
    """The server ended the session (1100/1101/1102): a new login is needed."""

    exit_code = EXIT_SESSION

    def __init__(self, code: int, endpoint: str = "", message: str | None = None):
        self.code = code
        self.endpoint = endpoint
        self.meaning = SESSION_CODE_MEANINGS.get(code, "the session is no longer valid")
        text = message or f"session expired ({code}: {self.meaning}); run `wxcli login` again"
        super().__init__(text)


class SessionFileError(WxError):
    """The session file is corrupt, unreadable or from a newer wxcli."""

    def __init__(self, path: str, problem: str):
        self.path = path
        super().__init__(f"session file {path}: {problem}")


class LockedError(WxError):
    """Another process holds a lock that this one needs (e.g. a second `watch`)."""

    def __init__(self, what: str, pid: int | None, path: str):
        self.pid = pid
        self.path = path
        holder = f" by process {pid}" if pid else ""
        super().__init__(f"{what} is already running{holder} (lock file {path})")


# --- protocol --------------------------------------------------------------------------------


class ProtocolError(WxError):
    """The server answered with a non-zero code that is not a session loss."""

    exit_code = EXIT_PROTOCOL

    def __init__(self, code: int | str | None, endpoint: str, message: str | None = None):
        self.code = code
        self.endpoint = endpoint
        text = message or f"{endpoint} failed with code {code}"
        super().__init__(text)


class RateLimitedError(ProtocolError):
    """1205: the server says we are sending (or operating) too often."""

    def __init__(self, endpoint: str, message: str | None = None):
        super().__init__(
            1205,
            endpoint,
            message or f"{endpoint}: operation too frequent (1205); slow down and retry later",
        )


class LoginForbiddenError(ProtocolError):
    """1203 from webwxnewloginpage: this account may not use Web WeChat (in this mode)."""

    def __init__(self, server_message: str = "", desktop_mode: bool = True):
        self.server_message = server_message
        hint = (
            "the account is barred from web login even in desktop (UOS) mode; "
            "it may need real-name verification, or web login may be blocked for now"
            if desktop_mode
            else "try desktop (UOS) mode: drop --no-desktop-mode / set [wechat] desktop_mode = true"
        )
        detail = f" (server said: {server_message})" if server_message else ""
        super().__init__(
            1203,
            "webwxnewloginpage",
            f"WeChat refused web login for this account (1203){detail}; {hint}",
        )


class DecodeError(ProtocolError):
    """A server reply could not be parsed (truncated JSON, unexpected JS text, bad XML)."""

    def __init__(self, endpoint: str, problem: str, snippet: str | bytes = ""):
        if isinstance(snippet, bytes):
            snippet = snippet.decode("utf-8", "replace")
        self.snippet = snippet[:120]
        shown = f": {self.snippet!r}" if self.snippet else ""
        super().__init__(None, endpoint, f"{endpoint}: malformed reply ({problem}){shown}")


class LoginTimeoutError(WxError):
    """Nobody scanned/confirmed the QR code before the login timeout."""


class LoginCancelledError(WxError):
    """The user cancelled the login on the phone, or declined push login."""


# --- network ---------------------------------------------------------------------------------


class NetworkError(WxError):
    """The server could not be reached, or did not answer in time."""

    exit_code = EXIT_NETWORK

    def __init__(self, endpoint: str, problem: str):
        self.endpoint = endpoint
        self.problem = problem
        super().__init__(f"{endpoint}: network error: {problem}")


# --- sending / contacts ----------------------------------------------------------------------


class RecipientError(UsageError):
    """A --to name did not resolve to exactly one chat."""

    exit_code = EXIT_ERROR


class RecipientNotFoundError(RecipientError):
    def __init__(self, name: str, near: list[str] | None = None):
        self.name = name
        self.near = near or []
        hint = f"; did you mean: {', '.join(self.near)}" if self.near else ""
        super().__init__(f"no group or contact is named {name!r}{hint}")


class AmbiguousRecipientError(RecipientError):
    def __init__(self, name: str, matches: list[str]):
        self.name = name
        self.matches = matches
        super().__init__(
            f"{name!r} matches {len(matches)} chats: {'; '.join(matches)} "
            "— use --to-id with one of the ids shown by `wxcli contacts --json`"
        )


class UnknownChatError(UsageError):
    """A chat pattern matched no chat in the archive (or none the caller may see)."""


class ArchiveNotReadyError(UsageError):
    """The archive cannot answer yet: no messages, or nothing analysed."""


class MediaError(UsageError):
    """A file to send is missing, of the wrong type or too large."""

    exit_code = EXIT_ERROR


# --- storage / other -------------------------------------------------------------------------


class StorageError(WxError):
    """The database or media store failed."""


class DatabaseUnavailableError(StorageError):
    """The database cannot be reached right now (the watch loop spools meanwhile)."""


class AlertError(WxError):
    """An alert channel could not deliver."""


class SpoolError(StorageError):
    """The spool file cannot be written (disk full, I/O error): ``watch`` stops receiving so
    that WeChat keeps the messages after the last stored position."""


class FeedError(WxError):
    """A feed sink could not take a batch. ``retryable``: a 5xx, a timeout or a connection
    failure (retried with back-off); otherwise the sink refused it (a 4xx: parked)."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None):
        self.retryable = retryable
        self.status = status
        super().__init__(message)


# --- looking inside wrapped exceptions -------------------------------------------------------


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything it wraps, each once: ``__cause__``, ``__context__``,
    urllib3's ``.reason`` and exceptions passed as arguments (requests nests reasons that way).

    The one walker for deciding what a network failure really was (refused, timed out, TLS),
    so every caller looks through the same layers.
    """
    out: list[BaseException] = []
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        cur = todo.pop()
        if id(cur) in seen:
            continue
        seen.add(id(cur))
        out.append(cur)
        nested = [cur.__cause__, cur.__context__, getattr(cur, "reason", None), *cur.args]
        todo += [x for x in nested if isinstance(x, BaseException)]
    return out
