"""What every part of a running watch shares: its options, the counters, the health record,
the event bus, the stop flag and the one lock around the session's contact directory.

Facts only, no behaviour beyond waiting and backing off, so that each part (sync loop,
writer, workers, relogin) can be built and tested with a context of its own.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from wxcli.config import Config
from wxcli.health import Health
from wxcli.paths import ProfilePaths
from wxcli.retry import backoff
from wxcli.watch.events import EventBus


@dataclass
class WatchOptions:
    db_url: str | None = None
    duration: float | None = None
    once: bool = False
    analysis: bool | None = None  # None = from config
    media: bool | None = None
    relogin: bool | None = None
    serve: bool | None = None
    qr_png: Path | None = None
    analysis_command: list[str] | None = None  # override how the analysis worker is started


@dataclass
class Stats:
    stored: int = 0
    duplicates: int = 0
    batches: int = 0
    empty_syncs: int = 0
    spooled: int = 0
    errors: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class WatchContext:
    paths: ProfilePaths
    config: Config
    options: WatchOptions
    events: EventBus
    health: Health = field(default_factory=lambda: Health(started_at=datetime.now(UTC).isoformat()))
    stats: Stats = field(default_factory=Stats)
    #: Guards the session (its contact directory and keys) between the receiving thread,
    #: the writer and whoever saves the session file or the health record.
    lock: threading.RLock = field(default_factory=threading.RLock)
    stop_flag: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=random.Random)
    #: Injectable for tests (record back-off delays instead of waiting them out).
    sleep: Callable[[float], None] | None = None

    @property
    def stopping(self) -> bool:
        return self.stop_flag.is_set()

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once when watch is asked to stop."""
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            self.stop_flag.wait(seconds)

    def backoff(self, failures: int, cap: float = 60.0) -> float:
        base = float(self.config.settings.wechat.backoff)
        return backoff(failures, base=base, cap=cap, rand=self.rng.random)
