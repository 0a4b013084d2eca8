"""The two sink kinds: a signed webhook and a Redis stream. A sink takes one batch at a time and
either returns (acknowledged) or raises :class:`FeedError`; it never decides what to resend."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from wxcli import __version__
from wxcli.errors import FeedError
from wxcli.feed.payload import PAYLOAD_VERSION
from wxcli.feed.settings import SinkSpec
from wxcli.textutil import safe_text
from wxcli.webpost import DeadlineExceeded, post

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

#: 4xx answers that mean "later", not "never".
RETRYABLE_4XX = frozenset({408, 409, 423, 425, 429})


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def batch_key(name: str, items: list[dict[str, Any]]) -> str:
    """The same batch always gets the same key, however often it is retried."""
    h = hashlib.sha256(name.encode())
    for it in items:
        h.update(f"\0{it['type']}:{it.get('msg_id') or it.get('event_id')}".encode())
    return h.hexdigest()[:32]


class Sink(Protocol):
    spec: SinkSpec

    def deliver(self, messages: list[dict[str, Any]], roster: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class WebhookSink:
    """POSTs ``{"version", "sink", "batch", "sent_at", "messages", "roster"}`` as JSON, signed
    as alert webhooks are: ``X-Wxcli-Signature: sha256=<hex HMAC-SHA256(secret, body)>``
    (``sent_at`` is inside the signed body, so a captured request cannot be passed off as new),
    with ``Idempotency-Key`` naming the batch. Any 2xx acknowledges."""

    def __init__(
        self, spec: SinkSpec, secret: str = "", clock: Callable[[], datetime] | None = None
    ):
        self.spec = spec
        self._secret = secret
        self._clock = clock or (lambda: datetime.now(UTC))

    def request(
        self, messages: list[dict[str, Any]], roster: list[dict[str, Any]]
    ) -> tuple[bytes, dict[str, str]]:
        key = batch_key(self.spec.name, messages + roster)
        body = _dumps(
            {
                "version": PAYLOAD_VERSION,
                "sink": self.spec.name,
                "batch": key,
                "sent_at": self._clock().isoformat(),
                "messages": messages,
                "roster": roster,
            }
        )
        headers = {
            **dict(self.spec.headers),
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": f"wxcli/{__version__}",
            "Idempotency-Key": key,
            "X-Wxcli-Event": "feed",
        }
        if self._secret:
            digest = hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Wxcli-Signature"] = f"sha256={digest}"
            headers["X-Wxcli-Timestamp"] = str(int(self._clock().timestamp()))
        return body, headers

    def deliver(self, messages: list[dict[str, Any]], roster: list[dict[str, Any]]) -> None:
        body, headers = self.request(messages, roster)
        try:
            # `timeout` bounds the whole delivery, so a receiver that drips its answer a
            # byte at a time is cut off like one that never answers.
            answer = post(self.spec.url, body, headers, self.spec.timeout, keep=200)
        except DeadlineExceeded:
            raise FeedError(
                f"{self.spec.where()}: no answer in {self.spec.timeout:g} s", retryable=True
            ) from None
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise FeedError(f"{self.spec.where()}: {safe_text(reason)}", retryable=True) from None
        if 200 <= answer.status < 300:
            return
        excerpt = safe_text(answer.body.decode("utf-8", "replace"))
        retry = answer.status >= 500 or answer.status in RETRYABLE_4XX
        raise FeedError(
            f"{self.spec.where()} answered HTTP {answer.status}"
            + (f": {excerpt}" if excerpt else ""),
            retryable=retry,
            status=answer.status,
        )

    def close(self) -> None:
        """Nothing to release: each delivery opens and closes its own connection."""


class RedisSink:
    """XADDs each message or roster event as one stream entry (``type``, ``msg_id``, ``chat``,
    ``kind``, ``seq`` and the whole payload as ``json``), in one MULTI/EXEC per batch, trimmed
    to about ``maxlen`` entries. Consumers read with XREADGROUP and drop repeats by ``msg_id``."""

    def __init__(self, spec: SinkSpec, password: str = ""):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.spec = spec
        self._redis = redis.Redis.from_url(
            spec.url,
            password=password or None,
            socket_timeout=spec.timeout,
            socket_connect_timeout=spec.timeout,
            health_check_interval=30,
            # One quick reconnect for a pooled connection that went stale (Redis restarted while
            # idle); every further retry is the runner's, with back-off and a visible state.
            # redis-py's default (3 retries with back-off) would quadruple `timeout` against a
            # hung server and resend the batch to it each time.
            retry=Retry(NoBackoff(), 1),
        )

    def deliver(self, messages: list[dict[str, Any]], roster: list[dict[str, Any]]) -> None:
        import redis

        items = messages + roster
        try:
            pipe = self._redis.pipeline(transaction=True)
            for it in items:
                fields: dict[FieldT, EncodableT] = {
                    "type": str(it["type"]),
                    "msg_id": str(it.get("msg_id") or it.get("event_id") or ""),
                    "chat": str(it.get("chat") or ""),
                    "kind": str(it.get("kind") or ""),
                    "seq": str(it["seq"]),
                    "json": _dumps(it),
                }
                pipe.xadd(self.spec.stream, fields, maxlen=self.spec.maxlen, approximate=True)
            pipe.execute()
        except redis.AuthenticationError as exc:  # a ConnectionError subclass: caught first
            raise FeedError(f"{self.spec.where()}: {exc}", retryable=False) from None
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise FeedError(
                f"{self.spec.where()}: {type(exc).__name__}: {exc}", retryable=True
            ) from None
        except redis.ResponseError as exc:
            # BUSY/LOADING/TRYAGAIN are passing states of a starting or busy server.
            text = str(exc)
            retry = text.split(" ", 1)[0] in {"LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN"}
            raise FeedError(
                f"{self.spec.where()}: {safe_text(text[:200])}", retryable=retry
            ) from None
        except redis.RedisError as exc:
            raise FeedError(
                f"{self.spec.where()}: {type(exc).__name__}: {exc}", retryable=True
            ) from None

    def close(self) -> None:
        self._redis.close()


def open_sink(spec: SinkSpec, env: Any = None) -> Sink:
    import os

    env = os.environ if env is None else env
    if spec.kind == "webhook":
        return WebhookSink(spec, spec.secret(env))
    return RedisSink(spec, spec.password(env))
