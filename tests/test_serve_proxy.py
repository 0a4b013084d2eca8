"""The README's nginx front for `wxcli serve`, run for real: requests pass through it, and a
client that drips its headers is cut off by the proxy. The config is taken from the README
itself (only the listen address, the upstream port and the header timeout are changed for the
test), so the documented example cannot drift from one that works."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.helpers.send import logged_in
from tests.helpers.waiting import wait_until
from wxcli.server.app import start_server
from wxcli.server.auth import AppStore

REPO = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)

pytestmark = pytest.mark.skipif(NGINX is None, reason="needs nginx (apt-get install nginx-light)")


def readme_nginx_block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"```nginx\n(.*?)```", text, re.S)
    assert m, "the README lost its nginx example"
    return m.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_readme_nginx_front_works_and_cuts_slow_headers(sim, wx_home, tmp_path):
    profile = logged_in(sim, wx_home)
    created = AppStore(profile.paths.apps).add("ops")
    handle = start_server(profile.paths, profile.config, "127.0.0.1", 0)
    port = free_port()
    block = readme_nginx_block()
    assert "listen 443 ssl;" in block and "proxy_pass http://127.0.0.1:7788;" in block
    block = (
        block.replace("listen 443 ssl;", f"listen 127.0.0.1:{port};")  # no certificate here
        .replace("127.0.0.1:7788", f"127.0.0.1:{handle.port}")
        .replace("client_header_timeout 10s;", "client_header_timeout 1s;")  # a fast test
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "daemon off;\nmaster_process off;\n"
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        "events {}\nhttp {\n"
        f"access_log off;\nclient_body_temp_path {tmp_path}/body;\n"
        f"proxy_temp_path {tmp_path}/proxy;\nfastcgi_temp_path {tmp_path}/fcgi;\n"
        f"uwsgi_temp_path {tmp_path}/uwsgi;\nscgi_temp_path {tmp_path}/scgi;\n"
        f"{block}\n}}\n",
        encoding="utf-8",
    )
    errlog = (tmp_path / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp_path), "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=errlog,
    )
    try:

        def listening() -> bool:
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            except OSError:
                return False
            return True

        wait_until(listening, timeout=10, message="nginx to listen")
        base = f"http://127.0.0.1:{port}"
        assert requests.get(f"{base}/v1/health", timeout=5).status_code in (200, 503)
        auth = {"Authorization": f"Bearer {created.app.app_id}:{created.app_key}"}
        r = requests.post(
            f"{base}/v1/msg/text",
            json={"to": "内部员工群", "text": "经代理"},
            headers=auth,
            timeout=10,
        )
        assert r.status_code == 200, r.text
        assert sim.control.sent()[-1]["text"] == "经代理"

        slow = socket.create_connection(("127.0.0.1", port), timeout=5)
        slow.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < 4:
            try:
                slow.sendall(b"X")
                slow.settimeout(0.3)
                if slow.recv(4096) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        slow.close()
        assert closed and time.monotonic() - started < 3.5  # cut at ~1 s, not held
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        errlog.close()
        handle.stop()
