"""Start-up cost of `wxcli send text`: the whole command against a running `wxcli sim`.

Compares it with `python -c "import requests"` (the floor: the send path needs requests) and
`python -c pass`. Uses hyperfine when installed, else timed subprocess runs. The pacer is given
a huge budget so that what is measured is start-up plus one send, not pacing. Also home of
the simulator/home helpers that bench/rest.py reuses.

    python bench/send_startup.py [--runs 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WXCLI = [sys.executable, "-m", "wxcli"]


def toml(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, keys in sections.items():
        lines.append(f"[{name}]")
        for k, v in keys.items():
            if isinstance(v, bool):
                lines.append(f"{k} = {'true' if v else 'false'}")
            elif isinstance(v, int | float):
                lines.append(f"{k} = {v!r}")
            else:
                lines.append(f'{k} = "{v}"')
    return "\n".join(lines) + "\n"


class SimEnv:
    """`wxcli sim --auto-confirm` in a subprocess, a temp WXCLI_HOME logged in to it."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="wxcli-bench-"))
        self.sim: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> SimEnv:
        self.sim = subprocess.Popen(
            [*WXCLI, "sim", "--port", "0", "--auto-confirm", "--hold", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.env(),
        )
        assert self.sim.stdout is not None
        self.url = self.sim.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("wxcli sim did not start")
        self.configure({})
        subprocess.run(
            [*WXCLI, "login", "--no-qr"], env=self.env(), check=True, capture_output=True
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.sim is not None:
            self.sim.terminate()
            self.sim.wait(10)
        shutil.rmtree(self.home, ignore_errors=True)

    def env(self) -> dict[str, str]:
        env = {**os.environ, "WXCLI_HOME": str(self.home)}
        env.pop("WXCLI_CONFIG", None)
        if self.url:
            env["WXCLI_LOGIN_URL"] = self.url
        return env

    def configure(self, sections: dict[str, dict[str, Any]]) -> None:
        """Rewrite wxcli.toml and forget the pacer's state (a fresh bucket per run)."""
        (self.home / "wxcli.toml").write_text(
            toml({"wechat": {"login_url": self.url}, **sections}), encoding="utf-8"
        )
        for name in ("pacer.json",):
            (self.home / name).unlink(missing_ok=True)

    def control(self):
        from wxcli.simulator import SimControl

        return SimControl(self.url)


def wait_line(stream, prefix: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line
    raise RuntimeError(f"no line starting with {prefix!r}")


# --- the benchmark ------------------------------------------------------------


def timed_runs(cmd: list[str], env: dict[str, str], runs: int) -> list[float]:
    out = []
    subprocess.run(cmd, env=env, check=True, capture_output=True)  # warm the page cache
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        out.append(time.perf_counter() - start)
    return out


def hyperfine(cmds: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, list[float]]:
    import shlex

    with tempfile.TemporaryDirectory() as tmp:
        export = Path(tmp) / "out.json"
        args = [
            "hyperfine",
            "-N",
            "--warmup",
            "2",
            "--runs",
            str(runs),
            "--export-json",
            str(export),
        ]
        for name, cmd in cmds.items():
            args += ["-n", name, shlex.join(cmd)]
        subprocess.run(args, env=env, check=True, capture_output=True)
        data = json.loads(export.read_text())
    return {r["command"]: r["times"] for r in data["results"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with SimEnv() as env:
        env.control().settings(send_burst=1_000_000, send_rate=1_000_000.0)
        env.configure({"send": {"burst": 1_000_000, "rate": 1_000_000.0, "jitter": 0.0}})
        cmds = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import requests'": [sys.executable, "-c", "import requests"],
            "wxcli send text": [*WXCLI, "send", "text", "--to", "filehelper", "bench"],
        }
        tool = "hyperfine" if shutil.which("hyperfine") else "subprocess timing"
        if tool == "hyperfine":
            results = hyperfine(cmds, env.env(), args.runs)
        else:
            results = {name: timed_runs(cmd, env.env(), args.runs) for name, cmd in cmds.items()}
        sent = sum(1 for s in env.control().sent() if s["ret"] == 0)
    print(f"wxcli send start-up ({tool}, {args.runs} runs each, Python {sys.version.split()[0]})")
    print(f"{'command':<32}{'min':>9}{'median':>9}{'mean':>9}{'max':>9}")
    for name, times in results.items():
        ms = [t * 1000 for t in times]
        print(
            f"{name:<32}{min(ms):>8.0f}ms{statistics.median(ms):>7.0f}ms"
            f"{statistics.fmean(ms):>7.0f}ms{max(ms):>7.0f}ms"
        )
    send = statistics.median(results["wxcli send text"])
    floor = statistics.median(results["python -c 'import requests'"])
    print(f"send / import requests (median): {send / floor:.2f}x   messages delivered: {sent}")


if __name__ == "__main__":
    main()
