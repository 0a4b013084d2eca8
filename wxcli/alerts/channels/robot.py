"""What the chat-app group robots (DingTalk, WeCom, Feishu) have in common: a size limit the
card must fit (the alert text is cut, never the whole alert dropped), and a JSON status in
every answer, without which a delivery does not count.

A robot flavour subclasses :class:`RobotChannel`, sets ``preset``/``service``/``code_word``,
and implements :meth:`RobotChannel.robot_request` and :meth:`RobotChannel.robot_status`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from wxcli.alerts.channels.base import json_body
from wxcli.alerts.channels.render import TRUNCATED, body_text, cut_utf8
from wxcli.alerts.channels.webhook import WebhookChannel
from wxcli.alerts.model import Alert
from wxcli.errors import AlertError

#: Renders the robot payload for an alert with (a cut of) its text.
Render = Callable[[Alert, str], dict[str, Any]]


class RobotChannel(WebhookChannel):
    """A chat-app group robot reached by webhook; subclasses define the card and the answer."""

    takes_headers: ClassVar[bool] = False
    #: How the service calls its status number in error messages ("errcode", "code").
    code_word: ClassVar[str] = "code"

    def build_request(self, alert: Alert) -> tuple[str, bytes, dict[str, str]]:
        url, body = self.robot_request(alert, self._clock())
        return url, body, self.standard_headers()

    @abstractmethod
    def robot_request(self, alert: Alert, now: float) -> tuple[str, bytes]:
        """The URL (signed if the service signs in the query) and body for ``alert``."""

    @abstractmethod
    def robot_status(self, data: Any) -> tuple[str, str] | None:
        """``(code, message)`` from the parsed answer when it carries the service's status
        (``"0"`` is success), None when it carries none."""

    def check_answer(self, status: int, data: Any, snippet: str) -> None:
        found = self.robot_status(data)
        if found is not None:
            code, message = found
            if code != "0":
                raise AlertError(f"{self.service} {self.code_word} {code}: {message}")
        elif 200 <= status < 300:
            # Every robot answers a JSON status; anything else (a proxy page?) is no delivery.
            raise AlertError(f"{self.service} answered {status} without a status code: {snippet}")

    def fit(
        self,
        alert: Alert,
        render: Render,
        measured: Callable[[dict[str, Any]], str] | None,
        limit: int,
    ) -> bytes:
        """Render, cutting the alert text to the longest prefix that fits the service's limit.

        ``measured`` picks the part of the payload the limit applies to (None: the whole body).
        """

        def attempt(text: str) -> tuple[bytes, int]:
            payload = render(alert, text)
            body = json_body(payload)
            return body, len(measured(payload).encode()) if measured else len(body)

        text = body_text(alert)
        body, size = attempt(text)
        if size <= limit:
            return body
        best, size = attempt(TRUNCATED.strip())
        if size > limit:
            raise AlertError(
                f"alert too large for {self.service} even without its text "
                f"({size} bytes > {limit}); shorten the title or fields"
            )
        # Markup added per line makes the size of a prefix hard to predict: binary-search it.
        # No prefix longer than the limit itself can fit, which bounds the search.
        lo, hi = 0, min(len(text.encode()), limit)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            body, size = attempt(cut_utf8(text, mid) + TRUNCATED)
            if size <= limit:
                lo, best = mid, body
            else:
                hi = mid - 1
        return best
