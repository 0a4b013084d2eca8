"""The one back-off formula: every retry loop in wxcli (WeChat requests, the sync loop, media
downloads, alert deliveries, paced sends, database outages) waits by this rule, so a change to
how wxcli backs off is made here once."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["backoff"]


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    jitter: float = 0.5,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = the first retry).

    ``base`` doubles with each attempt up to ``cap``; then the result is spread by ±``jitter``
    (0.5 = 50 %–150 %) so that many waiters do not retry in step. ``rand`` is injectable for
    tests (it returns a float in [0, 1)).
    """
    delay = min(base * (2 ** min(max(attempt, 0), 30)), cap)
    if jitter:
        delay *= 1.0 - jitter + 2.0 * jitter * rand()
    return max(delay, 0.0)
