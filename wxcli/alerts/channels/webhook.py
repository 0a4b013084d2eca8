"""Webhooks (``type = "webhook"``): an HTTP POST of JSON, and the transport every chat robot
shares.

:class:`WebhookChannel` is the ``generic`` preset: wxcli's own documented payload, signed with
HMAC-SHA256 when ``secret_env`` is set. Chat-robot flavours (``preset = "dingtalk"`` …)
subclass it through :class:`~wxcli.alerts.channels.robot.RobotChannel` and are registered
with :func:`register_preset`; the one ``[alert.channels.<name>]`` table with its keys serves
all of them.

Robot URLs carry their token in the path or query, so no message, log line or ``repr`` ever
shows more of the URL than host:port.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from wxcli import __version__
from wxcli.alerts.channels.base import (
    DEFAULT_TIMEOUT,
    BuildContext,
    Channel,
    ChannelTable,
    hmac_sha256,
    json_body,
)
from wxcli.alerts.model import Alert
from wxcli.errors import AlertError, exception_chain

#: Most of a webhook reply we read: enough for any error message, never a runaway download.
MAX_REPLY_BYTES = 64 * 1024

_PRESETS: dict[str, type[WebhookChannel]] = {}

W = TypeVar("W", bound="type[WebhookChannel]")


def register_preset(cls: W) -> W:
    """Make ``cls`` the webhook for ``preset = "<cls.preset>"`` (the package ``__init__``
    registers every preset, in the order error messages and listings show them in)."""
    if _PRESETS.get(cls.preset, cls) is not cls:
        raise TypeError(f"webhook preset {cls.preset!r} is registered twice")
    _PRESETS[cls.preset] = cls
    return cls


def presets() -> tuple[str, ...]:
    """Every registered webhook preset, ``generic`` first."""
    return tuple(_PRESETS)


def preset_class(preset: str) -> type[WebhookChannel]:
    """The webhook class of ``preset`` (KeyError for an unknown one)."""
    return _PRESETS[preset]


class WebhookChannel(Channel):
    """An HTTP POST of JSON: the generic documented payload (robots subclass it)."""

    kind = "webhook"
    config_keys: ClassVar[frozenset[str]] = frozenset(
        {"type", "url", "preset", "secret_env", "timeout", "headers"}
    )
    secret_env_keys: ClassVar[tuple[str, ...]] = ("secret_env",)
    #: The ``preset`` value of this flavour, and the service's name in messages.
    preset: ClassVar[str] = "generic"
    service: ClassVar[str] = "webhook"
    #: Whether the service signs requests with a shared secret (``secret_env``).
    signed: ClassVar[bool] = True
    #: Whether extra ``headers`` may be configured (robots define their own requests).
    takes_headers: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        *,
        url: str,
        secret: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name)
        self.url = url
        self._secret = secret or None
        self.timeout = float(timeout)
        self.headers = dict(headers or {})
        self._clock = clock
        parts = urlsplit(url)
        # Robot URLs carry their token in the path or query: only host:port ever appears in logs.
        self._where = parts.netloc.rpartition("@")[2]

    @classmethod
    def from_config(cls, table: ChannelTable, ctx: BuildContext) -> WebhookChannel:
        """Validate the table and build the class its ``preset`` names."""
        spec = table.spec
        table.no_literal_secret("secret", "secret_env", "WXCLI_DINGTALK_SECRET", "signing secret")
        table.check_keys(set(cls.config_keys))
        url = table.required("url", 'url = "https://example.com/hook"')
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise table.error("url", f"must be an http:// or https:// URL, not {url!r}")
        preset = table.choice("preset", presets(), "generic")
        flavour = preset_class(preset)
        if not flavour.signed and "secret_env" in spec:
            raise table.error(
                "secret_env", f"{flavour.service} group robots have no signing secret; remove it"
            )
        headers = spec.get("headers")
        if headers is not None:
            if not flavour.takes_headers:
                raise table.error(
                    "headers", f'only the "generic" preset takes headers, not {preset!r}'
                )
            if not isinstance(headers, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
            ):
                raise table.error("headers", "must be a table of header names to string values")
            # HTTP/1.1 header values are Latin-1 at best; keep to what every hop passes unchanged.
            if not all(
                k.isascii() and v.isascii() and (k + v).isprintable() for k, v in headers.items()
            ):
                raise table.error("headers", "names and values must be printable ASCII")
        return flavour(
            table.name,
            url=url,
            secret=table.secret("secret_env", ctx.env),
            timeout=table.number("timeout", DEFAULT_TIMEOUT),
            headers=headers,
        )

    @property
    def target(self) -> str:
        kind = "webhook" if self.preset == "generic" else f"{self.service} robot"
        return f"{kind} at {self._where}"

    # -- request building ---------------------------------------------------------------------

    @staticmethod
    def standard_headers() -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"wxcli/{__version__}",
        }

    def build_request(self, alert: Alert) -> tuple[str, bytes, dict[str, str]]:
        """The URL, body and headers to POST for ``alert``, signed when a secret is set."""
        now = self._clock()
        # Configured headers first, so they can never replace the type or the signature.
        headers = {**self.headers, **self.standard_headers()}
        body = json_body(self.payload(alert, int(now)))
        if self._secret:
            digest = hmac_sha256(self._secret.encode(), body).hex()
            headers["X-Wxcli-Timestamp"] = str(int(now))
            headers["X-Wxcli-Signature"] = f"sha256={digest}"
        return self.url, body, headers

    def payload(self, alert: Alert, sent_at: int) -> dict[str, Any]:
        """The generic payload (version 1, documented in the README)."""
        return {
            "version": 1,
            "source": "wxcli",
            "kind": alert.kind,
            "severity": alert.severity,
            "title": alert.title,
            "text": alert.text,
            "fields": dict(alert.fields),
            "key": alert.key,
            "created_at": alert.created_at.isoformat(),
            "image_url": alert.image_url,
            "attachments": [
                {
                    "filename": a.filename,
                    "mime_type": a.mime_type,
                    "size": a.size,
                    "sha256": a.sha256,
                }
                for a in alert.attachments
            ],
            # Inside the signed body, so receivers can check freshness against a signed value.
            "sent_at": sent_at,
        }

    # -- delivery -----------------------------------------------------------------------------

    def send(self, alert: Alert) -> None:
        url, body, headers = self.build_request(alert)
        status, reply = self._post(url, body, headers)
        self._check_reply(status, reply)

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
        """POST and read at most MAX_REPLY_BYTES of the answer within an overall deadline."""
        deadline = time.monotonic() + self.timeout
        try:
            with requests.Session() as session:
                resp = session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=(self.timeout, self.timeout),
                    allow_redirects=False,  # a redirected POST turns into a GET and is lost
                    stream=True,
                )
                with resp:
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in resp.iter_content(4096):
                        chunks.append(chunk)
                        size += len(chunk)
                        if size >= MAX_REPLY_BYTES:
                            break
                        if time.monotonic() > deadline:
                            raise AlertError(
                                f"timed out after {self.timeout:g} s reading the answer "
                                f"of {self._where}"
                            )
                    raw = b"".join(chunks)
                    # requests assumes Latin-1 for text/* without a charset; the robots' (and
                    # most Chinese) error pages are UTF-8, so only an explicit charset wins.
                    declared = "charset" in resp.headers.get("Content-Type", "").lower()
                    encoding = (resp.encoding if declared else None) or "utf-8"
                    return resp.status_code, raw.decode(encoding, "replace")
        except requests.exceptions.ConnectTimeout as exc:
            raise AlertError(
                f"timed out after {self.timeout:g} s connecting to {self._where}"
            ) from exc
        except (requests.exceptions.ReadTimeout, requests.exceptions.Timeout) as exc:
            raise AlertError(
                f"timed out after {self.timeout:g} s waiting for {self._where} to answer"
            ) from exc
        except requests.exceptions.SSLError as exc:
            raise AlertError(f"TLS error with {self._where}: {_root_reason(exc)}") from exc
        except requests.exceptions.ConnectionError as exc:
            if _has_cause(exc, ConnectionRefusedError):
                raise AlertError(f"connection refused to {self._where}") from exc
            if _has_cause(exc, (TimeoutError, urllib3.exceptions.TimeoutError)):
                raise AlertError(
                    f"timed out after {self.timeout:g} s talking to {self._where}"
                ) from exc
            raise AlertError(f"cannot reach {self._where}: {_root_reason(exc)}") from exc
        except requests.RequestException as exc:
            # str(exc) would show the URL, which holds the robot's token: name the type only.
            raise AlertError(f"request to {self._where} failed ({type(exc).__name__})") from exc

    def _check_reply(self, status: int, reply: str) -> None:
        snippet = " ".join(reply.split())[:200]
        try:
            data = json.loads(reply) if reply.strip() else None
        except ValueError:
            data = None
        self.check_answer(status, data, snippet)
        if not 200 <= status < 300:
            raise AlertError(f"webhook answered {status}: {snippet}")

    def check_answer(self, status: int, data: Any, snippet: str) -> None:
        """Raise AlertError when the parsed reply ``data`` says the delivery failed.

        The generic receiver's body means nothing to wxcli: only the HTTP status counts.
        """


def _has_cause(
    exc: BaseException, kind: type[BaseException] | tuple[type[BaseException], ...]
) -> bool:
    return any(isinstance(x, kind) for x in exception_chain(exc))


def _root_reason(exc: BaseException) -> str:
    """A short reason without the URL: the innermost OS/SSL error's text when there is one."""
    for cause in exception_chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verification failed: {cause.verify_message or cause.reason}"
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or cause)
        if isinstance(cause, socket.gaierror):
            return f"cannot resolve the host name ({cause.strerror})"
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    return type(exc).__name__
