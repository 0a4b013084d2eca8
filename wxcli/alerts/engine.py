"""The alert engine: builds channels, rules and the dispatcher from wxcli.toml, takes watch
events through a non-blocking sink, runs the periodic rules on its own thread, and applies
cooldowns and quiet hours. :func:`attach` wires it into a ``Watcher``; :func:`keepalive_alerts`
gives ``wxcli keepalive`` its hooks.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from wxcli.alerts.channels import Channel, WeChatSender, build_channel
from wxcli.alerts.dispatcher import Dispatcher
from wxcli.alerts.model import Alert
from wxcli.alerts.rules import Gate, Rule, RuleContext, Sources, build_rules
from wxcli.alerts.settings import AlertSettings, load_alert_settings
from wxcli.errors import AlertError, WxError
from wxcli.timeutil import utc_now
from wxcli.watch.events import WatchEvent

if TYPE_CHECKING:
    from wxcli.alerts.history import AlertHistoryStore
    from wxcli.config import Config
    from wxcli.keepalive import KeepaliveResult
    from wxcli.paths import ProfilePaths
    from wxcli.watch.loop import Watcher

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def build_channels(
    settings: AlertSettings,
    *,
    env: Mapping[str, str] = os.environ,
    wechat_sender: WeChatSender | None = None,
    config_path: str | None = None,
) -> dict[str, Channel]:
    """Every configured channel, built with secrets from ``env`` (ConfigError on problems)."""
    return {
        name: build_channel(name, spec, env, wechat_sender=wechat_sender, config_path=config_path)
        for name, spec in settings.channels.items()
    }


class AlertEngine:
    """Rules + gate + dispatcher. Use :meth:`sink` as a watch event sink (it only queues);
    :meth:`handle` and :meth:`check` evaluate synchronously (keepalive, tests)."""

    def __init__(
        self,
        settings: AlertSettings,
        rules: list[Rule],
        dispatcher: Dispatcher,
        *,
        profile: str = "default",
        sources: Sources | None = None,
        history: AlertHistoryStore | None = None,
        clock: Clock = utc_now,
        periodic: bool = True,
    ):
        self.settings = settings
        self.rules = rules
        self.dispatcher = dispatcher
        self.profile = profile
        self.sources = sources or Sources()
        self.history = history
        self.clock = clock
        self.periodic = periodic
        self.gate = Gate(tz=settings.tz)
        #: Extra facts added to session_lost events at once (the sid is gone after a relogin).
        self.session_info: Callable[[], dict[str, Any]] = dict
        #: Every alert the gate let through, newest last (for tests and `demo`).
        self.fired: deque[tuple[str, Alert]] = deque(maxlen=1000)
        self._wanted = frozenset(k for r in rules for k in r.events)
        self._events: queue.SimpleQueue[WatchEvent | None] = queue.SimpleQueue()
        self._unprocessed = 0
        self._cond = threading.Condition()
        self._eval = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seeded_for: int | None = None

    # -- building ----------------------------------------------------------------------------

    @classmethod
    def from_settings(
        cls,
        settings: AlertSettings,
        *,
        profile: str = "default",
        sources: Sources | None = None,
        history: AlertHistoryStore | None = None,
        env: Mapping[str, str] = os.environ,
        wechat_sender: WeChatSender | None = None,
        config_path: str | None = None,
        clock: Clock = utc_now,
        relogin: bool = False,
        hostname: str | None = None,
        periodic: bool = True,
    ) -> AlertEngine:
        channels = build_channels(
            settings, env=env, wechat_sender=wechat_sender, config_path=config_path
        )
        ctx = RuleContext(
            profile=profile,
            settings=settings,
            hostname=socket.gethostname() if hostname is None else hostname,
            relogin=relogin,
        )
        dispatcher = Dispatcher(
            channels,
            history=history,
            retries=settings.retries,
            retry_seconds=settings.retry_seconds,
            digest_seconds=settings.digest_seconds,
            profile=profile,
            tz=settings.tz,
        )
        return cls(
            settings,
            build_rules(settings.rules, ctx),
            dispatcher,
            profile=profile,
            sources=sources,
            history=history,
            clock=clock,
            periodic=periodic,
        )

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the delivery workers and the engine thread (events + periodic checks)."""
        if self._thread is not None:
            return
        self.dispatcher.start()
        self._thread = threading.Thread(target=self._run, name="wx-alert-rules", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> bool:
        """Handle the events still queued, deliver what is pending (retrying until
        ``timeout``), then end. True when everything finished in time."""
        deadline = time.monotonic() + timeout
        self._stop.set()
        self._events.put(None)
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.1))
        return self.dispatcher.stop(max(deadline - time.monotonic(), 1.0))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until queued events are handled and every resulting alert has an outcome."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if not self._cond.wait_for(lambda: self._unprocessed == 0, timeout):
                return False
        return self.dispatcher.flush(max(deadline - time.monotonic(), 0.0))

    def _run(self) -> None:
        interval = self.settings.check_seconds
        next_check = time.monotonic() if self.periodic else float("inf")
        try:
            while True:
                wait = max(next_check - time.monotonic(), 0.0)
                try:
                    event = self._events.get(timeout=min(wait, 3600.0))
                except queue.Empty:
                    event = None
                if event is not None:
                    self._handle_safely(event)
                elif self._stop.is_set():
                    self._drain()
                    return
                if self.periodic and time.monotonic() >= next_check and not self._stop.is_set():
                    try:
                        self.check()
                    except Exception:  # the thread must outlive any bad check
                        log.exception("periodic alert checks failed")
                    next_check = time.monotonic() + interval
        finally:
            if self.history is not None:
                self.history.close_thread()

    def _drain(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            if event is not None:
                self._handle_safely(event)

    def _handle_safely(self, event: WatchEvent) -> None:
        try:
            self.handle(event)
        except Exception:  # e.g. restoring cooldowns failed: the next event tries again
            log.exception("alert handling failed for %s", event.kind)
        finally:
            self._processed()

    def _processed(self) -> None:
        with self._cond:
            self._unprocessed -= 1
            self._cond.notify_all()

    # -- the watch sink ----------------------------------------------------------------------

    def sink(self, event: WatchEvent) -> None:
        """A watch event sink: picks what rules need and queues it; never blocks, never raises."""
        try:
            if event.kind not in self._wanted:
                return
            data = event.data
            if event.kind == "session_lost":
                data = {**self.session_info(), **data}
            with self._cond:
                self._unprocessed += 1
            self._events.put(WatchEvent(event.kind, data, event.at))
        except Exception:  # the archive matters more than any alert
            log.exception("the alert sink failed for %s", event.kind)

    # -- evaluation --------------------------------------------------------------------------

    def handle(self, event: WatchEvent, now: datetime | None = None) -> list[Alert]:
        """Run the rules that read ``event``; returns the alerts that went out."""
        now = now or self.clock()
        with self._eval:
            self._seed()
            out: list[Alert] = []
            for rule in self.rules:
                if event.kind not in rule.events:
                    continue
                try:
                    alerts = rule.on_event(event.kind, event.data, now)
                except Exception:
                    log.exception("alert rule %s failed on %s", rule.name, event.kind)
                    continue
                out += self._fire(rule, alerts, now)
            return out

    def check(self, now: datetime | None = None, kinds: Iterable[str] | None = None) -> list[Alert]:
        """Run the periodic rules (all, or those of ``kinds``); returns the alerts sent."""
        now = now or self.clock()
        wanted = set(kinds) if kinds is not None else None
        with self._eval:
            self._seed()
            out: list[Alert] = []
            for rule in self.rules:
                if not rule.periodic or (wanted is not None and rule.kind not in wanted):
                    continue
                try:
                    alerts = rule.check(now, self.sources)
                except WxError as exc:
                    log.warning("alert rule %s could not check: %s", rule.name, exc)
                    continue
                except Exception as exc:
                    if _is_database_error(exc):
                        log.warning("alert rule %s: database unavailable (%s)", rule.name, exc)
                    else:
                        log.exception("alert rule %s failed", rule.name)
                    continue
                out += self._fire(rule, alerts, now)
            return out

    def fire(self, rule_name: str, alert: Alert, now: datetime | None = None) -> bool:
        """Send ``alert`` as if rule ``rule_name`` had raised it (gate applies)."""
        rule = next((r for r in self.rules if r.name == rule_name), None)
        if rule is None:
            raise AlertError(f"no alert rule named {rule_name!r}")
        return bool(self._fire(rule, [alert], now or self.clock()))

    def _fire(self, rule: Rule, alerts: list[Alert], now: datetime) -> list[Alert]:
        sent = []
        for alert in alerts:
            decision = self.gate.admit(rule.spec, alert, now)
            if decision == "cooldown":
                log.debug("alert %s in cooldown: %s", alert.key, alert.title)
                continue
            if decision == "quiet":
                log.info("alert in quiet hours of rule %s, not sent: %s", rule.name, alert.title)
                self.dispatcher.record(alert, rule=rule.name, status="quiet", note="quiet hours")
                continue
            log.warning("alert (%s): %s", rule.name, alert.title)
            self.fired.append((rule.name, alert))
            self.dispatcher.submit(alert, rule=rule.name, channels=rule.spec.channels)
            sent.append(alert)
        return sent

    def _seed(self) -> None:
        """Restore cooldowns from the history once an archive is there (after restarts, and
        across processes: keepalive and watch share them)."""
        if self.history is None:
            return
        archive = self.sources.archive()
        if archive is None or id(archive) == self._seeded_for:
            return
        self._seeded_for = id(archive)
        longest = max((r.spec.cooldown_seconds for r in self.rules), default=0.0)
        if longest <= 0:
            return
        try:
            self.gate.seed(self.history.last_fired(self.clock() - timedelta(seconds=longest)))
        except Exception as exc:
            if not _is_database_error(exc):
                raise
            log.warning("cooldowns not restored (database unavailable: %s)", exc)
            self._seeded_for = None


def _is_database_error(exc: BaseException) -> bool:
    try:
        import peewee
    except ImportError:  # pragma: no cover - peewee is a dependency
        return False
    return isinstance(exc, (peewee.OperationalError, peewee.InterfaceError))


# --- wiring into watch ---------------------------------------------------------------------


def make_wechat_sender(
    paths: ProfilePaths, config: Config, alive: Callable[[], str | None]
) -> WeChatSender:
    """Sends through the profile's Sender (and so its cross-process pacer), only while the
    session is alive; ``alive()`` returns None when it is, else why not."""
    lock = threading.Lock()
    sender: list[Any] = []

    def send(to: str, text: str) -> object:
        problem = alive()
        if problem:
            raise AlertError(f"WeChat channel: {problem}")
        with lock:
            if not sender:
                from wxcli.sending import Sender

                sender.append(Sender(paths, config))
        return sender[0].send_text(text, to=to, app="alert")

    return send


def attach(
    watcher: Watcher,
    *,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utc_now,
    start: bool = True,
    periodic: bool = True,
) -> AlertEngine | None:
    """Build the engine from the watcher's config and add it as an event sink; None when no
    alert channel is configured. Raises ConfigError for a bad ``[alert]`` section."""
    from wxcli.alerts.history import AlertHistoryStore

    settings = load_alert_settings(watcher.config)
    if not settings.enabled:
        return None
    paths, config = watcher.paths, watcher.config
    history = AlertHistoryStore(lambda: watcher.archive, paths.profile)

    def alive() -> str | None:
        state = watcher.health.state
        return None if state == "running" else f"the WeChat session is not usable (watch: {state})"

    from wxcli.pacer import Pacer

    pacer = Pacer.for_profile(paths, config)

    def pacer_status() -> Any:
        try:
            return pacer.status()
        except (OSError, ValueError) as exc:
            log.debug("pacer status unavailable: %s", exc)
            return None

    sources = Sources(
        archive=lambda: watcher.archive,
        health=lambda: watcher.health,
        watch_running=lambda: True,
        pacer_status=pacer_status,
        account_id=lambda: watcher.account_id,
        state=history,
    )
    engine = AlertEngine.from_settings(
        settings,
        profile=paths.profile,
        sources=sources,
        history=history,
        env=env,
        wechat_sender=make_wechat_sender(paths, config, alive),
        config_path=str(config.path) if config.path else None,
        clock=clock,
        relogin=watcher.relogin,
        periodic=periodic,
    )

    def session_info() -> dict[str, Any]:
        st = watcher.state
        return {"sid": st.sid, "account": st.nickname} if st is not None else {}

    engine.session_info = session_info
    watcher.add_sink(engine.sink)
    if start:
        engine.start()
    log.info(
        "alerts on: %d channel(s), %d rule(s)", len(engine.dispatcher.channels), len(engine.rules)
    )
    return engine


# --- wiring into keepalive -----------------------------------------------------------------


def open_history(config: Config, paths: ProfilePaths) -> AlertHistoryStore | None:
    """The history of the configured archive, if one exists (never creates a database)."""
    from wxcli.alerts.history import AlertHistoryStore
    from wxcli.store.archive import Archive

    url = config.settings.database.url
    if not url and not paths.default_db.exists():
        return None
    try:
        archive = Archive.from_config(config, paths.home)
    except WxError as exc:
        log.warning("alert history unavailable: %s", exc)
        return None
    return AlertHistoryStore(archive, paths.profile)


class KeepaliveAlerts:
    """The alert hooks of ``wxcli keepalive``: a lost session, and a watch that is down
    (crashed, stuck, or without a successful sync for the rule's minutes)."""

    def __init__(self, engine: AlertEngine, paths: ProfilePaths):
        self.engine = engine
        self.paths = paths
        self.watch_stale_age: float | None = None

    def session_lost(self, code: int, meaning: str) -> None:
        from wxcli.keepalive import log_session_lost
        from wxcli.session import SessionStore

        log_session_lost(code, meaning)
        info: dict[str, Any] = {"code": code, "meaning": meaning, "source": "keepalive"}
        try:
            state = SessionStore(self.paths).load_optional()
        except WxError:
            state = None
        if state is not None:
            info.update(sid=state.sid, account=state.nickname)
        self.engine.handle(WatchEvent("session_lost", info))

    def watch_down(self, age: float | None) -> None:
        self.watch_stale_age = age

    def after(self, result: KeepaliveResult) -> list[Alert]:
        """Check the watch's health record once the keepalive result is known."""
        from wxcli.health import read_health

        health = read_health(self.paths.health)
        self.engine.sources = Sources(
            archive=self.engine.sources.archive,
            health=lambda: health,
            watch_running=lambda: bool(result.watch_running),
            state=self.engine.sources.state,
        )
        return self.engine.check(kinds={"watch_down"})

    def close(self, timeout: float = 30.0) -> bool:
        """Deliver what the hooks raised (keepalive is about to exit)."""
        done = self.engine.stop(timeout)
        history = self.engine.history
        if history is not None:
            history.close_thread()
            archive = history.archive()
            if archive is not None:
                archive.close()
        return done


def keepalive_alerts(
    paths: ProfilePaths,
    config: Config,
    *,
    env: Mapping[str, str] = os.environ,
    clock: Clock = utc_now,
) -> KeepaliveAlerts | None:
    """Hooks for keepalive, or None when no alert channel is configured."""
    settings = load_alert_settings(config)
    if not settings.enabled:
        return None
    history = open_history(config, paths)
    archive = history.archive if history is not None else (lambda: None)
    engine = AlertEngine.from_settings(
        settings,
        profile=paths.profile,
        sources=Sources(archive=archive, state=history),
        history=history,
        env=env,
        # Sender refuses by itself when the session file says the session ended.
        wechat_sender=make_wechat_sender(paths, config, lambda: None),
        config_path=str(config.path) if config.path else None,
        clock=clock,
        periodic=False,
    )
    engine.dispatcher.start()
    return KeepaliveAlerts(engine, paths)
