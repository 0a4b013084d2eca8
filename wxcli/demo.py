"""``wxcli demo``: the whole product on the built-in simulator, with no account and no network.

It starts the simulator with the customer-service scenario, logs in (the simulated phone
confirms by itself), runs ``watch`` into the default SQLite database of a separate demo home,
then analyses what arrived. Everything stays under ``<home>/demo``.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wxcli.config import Config, defaults
from wxcli.paths import ProfilePaths

DEMO_PRODUCTS = ["云帆Pro", "云帆Mini", "云帆Max", "智能音箱", "扫地机器人", "会员年卡"]


@dataclass
class DemoResult:
    home: Path
    db_path: Path
    nickname: str = ""
    stored: int = 0
    per_chat: list[tuple[str, int]] = field(default_factory=list)
    per_kind: list[tuple[str, int]] = field(default_factory=list)
    top_words: list[tuple[str, int]] = field(default_factory=list)
    negatives: list[tuple[str, str, str, float]] = field(default_factory=list)
    media_done: int = 0
    seconds: float = 0.0
    alerts: list[dict[str, Any]] = field(default_factory=list)


def demo_config(sim_url: str, base: Config | None = None) -> Config:
    cfg = base or defaults()
    cfg.data["wechat"].update(
        {"login_url": sim_url, "synccheck_timeout": 10.0, "login_poll_timeout": 10.0}
    )
    cfg.data["watch"].update({"health_seconds": 0.5, "session_save_seconds": 1.0})
    cfg.data["database"]["url"] = ""
    for key in ("endpoint", "bucket"):
        cfg.data["oss"][key] = ""  # the demo never uploads anywhere
    cfg.data["media"]["dir"] = ""
    return cfg


def run_demo(
    home: Path,
    *,
    duration: float = 20.0,
    rate: float = 3.0,
    keep: bool = False,
    analysis: bool = True,
    alerts: bool = True,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
) -> DemoResult:
    """Run the demo in ``home / "demo"``; ``progress(stage, info)`` reports what happens.

    With ``alerts``, a webhook receiver on loopback stands in for DingTalk/email, the analysis
    worker scores messages as they arrive, and the simulated phone logs the session out at
    the end — so keyword, negative, unanswered and session-lost alerts all show.
    """
    from wxcli import account
    from wxcli.simulator import Simulator
    from wxcli.watch.loop import Watcher, WatchOptions

    say = progress or (lambda stage, info: None)
    demo_home = home / "demo"
    if demo_home.exists() and not keep:
        shutil.rmtree(demo_home)
    demo_home.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = ProfilePaths("default", demo_home)
    # The scenario's product names, so they count as one word each (see [analysis] user_dict).
    user_dict = demo_home / "products.dict"
    user_dict.write_text("\n".join(f"{w} 20000 nz" for w in DEMO_PRODUCTS) + "\n", encoding="utf-8")
    started = time.monotonic()
    receiver = _AlertReceiver(lambda alert: say("alert", alert)) if alerts else None
    stop_analysis = threading.Event()
    with Simulator("company", auto_confirm=True, synccheck_hold=2, login_hold=2, rate=rate) as sim:
        config = demo_config(sim.base_url)
        config.data["analysis"]["user_dict"] = str(user_dict)
        if receiver is not None:
            demo_alerts(config, receiver.url)
        say("simulator", {"url": sim.base_url})
        state = account.login(paths, config, push=False)
        say("login", {"nickname": state.nickname, "groups": len(state.contacts.groups())})
        watcher = Watcher(
            paths,
            config,
            WatchOptions(duration=duration + 10, analysis=False, media=True),
            on_event=lambda e: None,
            client_factory=lambda st: account.make_client(config, st),
        )
        engine = None
        if receiver is not None:
            from wxcli.alerts.engine import attach

            engine = attach(watcher)
        ticker_stop = threading.Event()

        def tick() -> None:
            end = time.monotonic() + duration
            while not ticker_stop.wait(1.0):
                say("progress", {"stored": watcher.stats.stored})
                if time.monotonic() >= end:
                    if alerts:
                        say("logout", {})
                        sim.control.logout(1101)  # the phone ends the session: session_lost
                    else:
                        watcher.stop()
                    return

        ticker = threading.Thread(target=tick, daemon=True)
        worker = None
        if analysis and alerts:
            worker = threading.Thread(
                target=_follow, args=(paths, config, stop_analysis), daemon=True
            )
        try:
            ticker.start()
            if worker is not None:
                worker.start()
            watcher.run()
        finally:
            ticker_stop.set()
            if engine is not None:
                engine.stop(15)
            stop_analysis.set()
            if worker is not None:
                worker.join(15)
            if receiver is not None:
                receiver.close()
        media = watcher.media_workers
    result = DemoResult(home=demo_home, db_path=paths.default_db, nickname=state.nickname)
    result.stored = watcher.stats.stored
    result.media_done = media.done if media is not None else 0
    result.alerts = receiver.received if receiver is not None else []
    if analysis:
        say("analysis", {})
        _analyse(paths, config)
    _summarise(result, paths)
    result.seconds = time.monotonic() - started
    return result


def demo_alerts(config: Config, url: str) -> None:
    """Alert channels and rules of the demo: everything to the local receiver."""
    a = config.data["alert"]
    a.update(
        {
            "digest_seconds": 0.0,
            "check_seconds": 1.0,
            "working_hours": "",
            "retries": 2,
            "staff": ["客服-小王", "客服-小李"],
        }
    )
    config.raw["alert"] = {
        "channels": {"demo": {"type": "webhook", "url": url}},
        "rules": {
            "complaints": {
                "kind": "keyword",
                "pattern": "退款|投诉|差评",
                "chats": ["*"],
                "cooldown_minutes": 0,
            },
            "mood": {
                "kind": "negative",
                "threshold": 0.05,
                "window_minutes": 1,
                "share": 0.5,
                "min_messages": 4,
            },
            "waiting": {"kind": "unanswered", "minutes": 0.15, "chats": ["云帆*", "VIP*"]},
            "session": {"kind": "session_lost"},
        },
    }


def _follow(paths: ProfilePaths, config: Config, stop: threading.Event) -> None:
    """The analysis worker, in-process for the demo (watch normally starts a process)."""
    from wxcli.analysis.worker import AnalysisWorker
    from wxcli.store.archive import Archive

    while not stop.is_set() and not paths.default_db.exists():
        stop.wait(0.2)
    archive = Archive("", paths.home)
    try:
        AnalysisWorker(archive, config, cache_dir=paths.home.parent / "cache").follow(stop, 0.3)
    finally:
        archive.close()


class _AlertReceiver:
    """A loopback webhook receiver standing in for DingTalk/WeCom/email in the demo."""

    def __init__(self, on_alert: Callable[[dict[str, Any]], None]):
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    alert = json.loads(body)
                except ValueError:
                    alert = {"title": body.decode("utf-8", "replace")}
                received.append(alert)
                on_alert(alert)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _analyse(paths: ProfilePaths, config: Config) -> None:
    from wxcli.analysis.worker import AnalysisWorker
    from wxcli.store.archive import Archive

    archive = Archive("", paths.home)
    try:
        AnalysisWorker(archive, config, cache_dir=paths.home.parent / "cache").drain()
    finally:
        archive.close()


def _summarise(result: DemoResult, paths: ProfilePaths) -> None:
    import peewee as pw

    from wxcli.store.archive import Archive

    archive = Archive("", paths.home)
    try:
        m = archive.m
        M = m.Message
        result.per_chat = list(
            M.select(M.chat_name, pw.fn.COUNT(M.id).alias("n"))
            .group_by(M.chat_name)
            .order_by(pw.fn.COUNT(M.id).desc())
            .tuples()
        )
        result.per_kind = list(
            M.select(M.kind, pw.fn.COUNT(M.id))
            .group_by(M.kind)
            .order_by(pw.fn.COUNT(M.id).desc())
            .tuples()
        )
        W = m.WordCount
        result.top_words = list(
            W.select(W.word, pw.fn.SUM(W.count).alias("n"))
            .group_by(W.word)
            .order_by(pw.fn.SUM(W.count).desc())
            .limit(10)
            .tuples()
        )
        S = m.MessageScore
        result.negatives = [
            (r.chat_name, r.sender_name, r.text, r.sentiment)
            for r in M.select(M.chat_name, M.sender_name, M.text, S.sentiment)
            .join(S, on=(S.message == M.id))
            .order_by(S.sentiment)
            .limit(3)
            .objects()
        ]
    finally:
        archive.close()
