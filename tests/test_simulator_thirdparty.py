"""A web-protocol client nobody here wrote, unchanged from PyPI, against the simulator.

ItChat (``itchat-uos`` 1.4.1, the desktop-mode fork, and the original ``itchat`` 1.3.10) logs in,
lists friends and groups, receives group messages with emoji and ``<&>``, and replies. The
clients are installed once into a cached virtualenv (``$WXCLI_THIRDPARTY_VENV`` or
``~/.cache/wxcli-thirdparty/``); without PyPI the test is skipped.

wechat4u (npm, an independent Node lineage with hard-coded ``https://*.wx.qq.com`` hosts) runs
unchanged through an HTTPS proxy (``HTTPS_PROXY`` + ``NODE_EXTRA_CA_CERTS``, what a user would
set) to the simulator in host-mapping (vhost) mode, every fidelity setting at its default.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.tlsproxy import TlsProxy
from wxcli.simulator import Simulator

pytestmark = pytest.mark.slow

CLIENTS = {
    "itchat-uos": "itchat-uos==1.4.1",
    "itchat": "itchat==1.3.10",
}

# The bot a user would write with ItChat: unchanged library, ordinary public API. The only
# addition is the stdlib shim ItChat 1.3.10 needs on Python >= 3.9 (HTMLParser.unescape was
# removed from the standard library); itchat-uos ships its own.
BOT = r"""
import html, html.parser, json, sys, threading, time
if not hasattr(html.parser.HTMLParser, "unescape"):
    html.parser.HTMLParser.unescape = lambda self, s: html.unescape(s)
import itchat
from itchat import config

config.BASE_URL = sys.argv[1]
want = int(sys.argv[2])
got = []

def say(event, **data):
    print(json.dumps({"event": event, **data}, ensure_ascii=False), flush=True)

@itchat.msg_register(itchat.content.TEXT, isGroupChat=True)
def on_group(msg):
    if msg["ActualUserName"] == itchat.search_friends()["UserName"]:
        return  # the server echoes our own replies; do not answer ourselves
    got.append({"group": msg["User"]["NickName"], "sender": msg["ActualNickName"],
                "text": msg["Text"]})
    itchat.send("收到：" + msg["Text"], toUserName=msg["FromUserName"])

itchat.auto_login(qrCallback=lambda **kw: None, loginCallback=lambda: None)
me = itchat.search_friends()
friends = [f["RemarkName"] or f["NickName"] for f in itchat.get_friends()[1:]]
groups = [g["NickName"] for g in itchat.get_chatrooms()]
say("ready", nick=me["NickName"], friends=friends, groups=groups)
threading.Thread(target=itchat.run, kwargs={"blockThread": True}, daemon=True).start()
deadline = time.time() + 30
while len(got) < want and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.3)
say("received", messages=got)
"""


def venv_root() -> Path:
    configured = os.environ.get("WXCLI_THIRDPARTY_VENV")
    if configured:
        return Path(configured)
    return Path.home() / ".cache" / "wxcli-thirdparty"


def client_python(name: str) -> Path:
    """The interpreter of a venv holding ``name`` from PyPI; built once, then reused."""
    pin = CLIENTS[name]
    tag = f"py{sys.version_info.major}{sys.version_info.minor}"
    venv = venv_root() / f"{pin.replace('==', '-')}-{tag}"
    python = venv / "bin" / "python"
    done = venv / ".installed"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers build it once
        if done.exists() and python.exists():
            return python
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        try:
            proc = subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--timeout",
                    "20",
                    "--retries",
                    "1",
                    pin,
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"PyPI did not answer in time installing {pin}")
        if proc.returncode != 0:
            pytest.skip(f"cannot install {pin} from PyPI: {proc.stderr.strip()[-300:]}")
        done.write_text(pin)
        return python


def read_events(proc: subprocess.Popen) -> queue.Queue:
    events: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.put(json.loads(line))

    threading.Thread(target=pump, daemon=True).start()
    return events


def wait_event(events: queue.Queue, name: str, proc: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                raise AssertionError(f"client exited early: {proc.stderr.read()[-2000:]}") from None
            continue
        if event["event"] == name:
            return event
    raise AssertionError(f"no {name!r} event from the client within {timeout}s")


@pytest.mark.parametrize("client", list(CLIENTS))
def test_an_unchanged_itchat_logs_in_reads_group_messages_and_replies(client, tmp_path):
    python = client_python(client)
    script = tmp_path / "bot.py"
    script.write_text(BOT, encoding="utf-8")
    messages = [
        {"group": "VIP客户群💎", "sender": "马丽", "content": "这批货价格 <&> 😀 怎么算？"},
        {"group": "云帆Pro客服1群", "sender": "客服-小王", "content": "好的 🙏\n马上处理"},
    ]
    with Simulator(auto_confirm=True, synccheck_hold=1.0, login_hold=1.0) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        proc = subprocess.Popen(
            [str(python), str(script), sim.base_url, str(len(messages))],
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        try:
            events = read_events(proc)
            ready = wait_event(events, "ready", proc, timeout=60)
            assert ready["nick"] == "云帆客服中心"
            assert {"王总-云帆", "客服-小王", "VIP-赵总", "张伟"} <= set(ready["friends"])
            assert {"云帆Pro客服1群", "VIP客户群💎", "内部员工群"} <= set(ready["groups"])
            desktop = sim.control.state()["session"]["desktop"]
            assert desktop is (client == "itchat-uos")
            for spec in messages:
                sim.control.message(**spec)
            received = wait_event(events, "received", proc, timeout=40)["messages"]
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        assert received == [
            {
                "group": "VIP客户群💎",
                "sender": "马丽-星辰贸易",
                "text": "这批货价格 <&> 😀 怎么算？",
            },
            {"group": "云帆Pro客服1群", "sender": "小王🌸", "text": "好的 🙏\n马上处理"},
        ]
        replies = [s for s in sim.control.sent() if s["ret"] == 0]
        assert [(s["to_name"], s["text"]) for s in replies] == [
            ("VIP客户群💎", "收到：这批货价格 <&> 😀 怎么算？"),
            ("云帆Pro客服1群", "收到：好的 🙏\n马上处理"),
        ]
        assert all(s["endpoint"] == "webwxsendmsg" for s in replies)


# --------------------------------------------------------------------------- wechat4u (npm)

WECHAT4U = "wechat4u@0.7.14"

# The bot a user would write with wechat4u: ordinary public API (events, contacts, sendMsg,
# stop). It reports once every saved group has its members (wechat4u fetches them with
# webwxbatchgetcontact only for groups listed with MemberCount 0), answers each group text with
# a text and an image, and logs out after ``want`` of them.
NODE_BOT = r"""
const Wechat = require('wechat4u');
const fs = require('fs');
const [image, want] = [process.argv[2], +process.argv[3]];
const bot = new Wechat();
const say = (event, data = {}) => console.log(JSON.stringify({ event, ...data }));
let ready = false;
let done = 0;
let out = false;
bot.on('error', (e) => { if (!out) say('error', { message: String((e && e.message) || e) }); });
bot.on('contacts-updated', () => {
  const all = Object.values(bot.contacts);
  const groups = all.filter((c) => c.UserName.startsWith('@@') && (c.ContactFlag & 1));
  if (ready || !groups.length || groups.some((g) => !g.MemberList.length)) return;
  ready = true;
  say('ready', {
    nick: bot.user.NickName,
    friends: all.filter((c) => !c.UserName.startsWith('@@')).map((c) => c.RemarkName || c.NickName),
    groups: Object.fromEntries(groups.map((g) => [g.NickName, g.MemberList.length])),
  });
});
bot.on('message', (msg) => {
  if (msg.MsgType !== bot.CONF.MSGTYPE_TEXT || msg.isSendBySelf) return;
  if (!msg.FromUserName.startsWith('@@')) return;
  const [sender, ...rest] = msg.Content.split(':\n');
  const text = rest.join(':\n');
  const group = bot.contacts[msg.FromUserName].NickName;
  say('message', { group, sender, text });
  bot.sendMsg('收到：' + text, msg.FromUserName)
    .then(() => bot.sendMsg({ file: fs.readFileSync(image), filename: 'reply.jpg' },
                            msg.FromUserName))
    .then(() => { done += 1; if (done >= want) { out = true; bot.stop(); } })
    .catch((e) => say('error', { message: String(e) }));
});
bot.on('logout', () => { say('logout'); setTimeout(() => process.exit(0), 200); });
bot.start();
"""


def node_modules() -> Path:
    """A cached node_modules holding wechat4u from npm; built once, then reused."""
    root = venv_root() / "node"
    done = root / ".installed"
    root.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        pytest.skip("node/npm not installed")
    with open(root.parent / ".node.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists() and done.read_text() == WECHAT4U and (root / "node_modules").exists():
            return root / "node_modules"
        if not (root / "package.json").exists():
            (root / "package.json").write_text('{"name": "wxcli-thirdparty", "private": true}')
        try:
            proc = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", WECHAT4U],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=300,
            )
        except subprocess.TimeoutExpired:
            pytest.skip(f"npm did not answer in time installing {WECHAT4U}")
        if proc.returncode != 0:
            pytest.skip(f"cannot install {WECHAT4U} from npm: {proc.stderr.strip()[-300:]}")
        done.write_text(WECHAT4U)
        return root / "node_modules"


def test_an_unchanged_wechat4u_runs_every_step_on_default_settings(tmp_path):
    modules = node_modules()
    script = tmp_path / "bot.js"
    script.write_text(NODE_BOT, encoding="utf-8")
    image = Path(__file__).resolve().parent.parent / "wxcli/simulator/assets/photo1.jpg"
    # Only the host mapping and the phone differ from a bare Simulator(): web_host plays
    # wx.qq.com (the client's hard-coded hosts), auto_confirm scans the QR.
    with Simulator(
        auto_confirm=True, synccheck_hold=1.0, login_hold=1.0, web_host="wx.qq.com"
    ) as sim:
        host, port = sim.base_url.rsplit("//", 1)[1].rsplit(":", 1)
        with TlsProxy((host, int(port)), tmp_path / "tls") as proxy:
            env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
            env.update(
                HTTPS_PROXY=proxy.url,
                NODE_EXTRA_CA_CERTS=str(proxy.ca),
                NODE_PATH=str(modules),
            )
            proc = subprocess.Popen(
                ["node", str(script), str(image), "1"],
                cwd=tmp_path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                encoding="utf-8",
            )
            try:
                events = read_events(proc)
                ready = wait_event(events, "ready", proc, timeout=60)
                sim.control.message(
                    group="VIP客户群💎", sender="马丽", content="价格 <&> 😀 怎么算？"
                )
                got = wait_event(events, "message", proc, timeout=30)
                wait_event(events, "logout", proc, timeout=30)
                proc.wait(timeout=10)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                proc.stderr.close()
            assert {h.split(":")[0] for h in proxy.connects} == {
                "login.wx.qq.com",
                "wx.qq.com",
                "webpush.wx.qq.com",
                "file.wx.qq.com",
            }
        # login: the desktop-mode 301 is the only form wechat4u reads
        [page] = sim.control.requests("webwxnewloginpage")
        assert page["status"] == 301
        assert ready["nick"] == "云帆客服中心"
        assert {"王总-云帆", "客服-小王", "VIP-赵总", "张伟"} <= set(ready["friends"])
        # members: every saved group loaded in full through webwxbatchgetcontact
        world = {g["name"]: g["members"] for g in sim.control.state()["groups"]}
        assert ready["groups"] == {name: world[name] for name in ready["groups"]}
        assert {"云帆Pro客服1群", "VIP客户群💎", "内部员工群"} <= set(ready["groups"])
        assert sim.control.requests("webwxbatchgetcontact")
        # receive: the sender shown by the group display name (wechat4u unescapes only &lt;/&gt;)
        assert got == {"event": "message", "group": "VIP客户群💎", "sender": "马丽-星辰贸易",
                       "text": "价格 <&amp;> 😀 怎么算？"}  # fmt: skip
        # send text, send image
        replies = [s for s in sim.control.sent() if s["ret"] == 0 and s["to_name"] == "VIP客户群💎"]
        assert [(s["endpoint"], s["text"]) for s in replies] == [
            ("webwxsendmsg", "收到：价格 <&amp;> 😀 怎么算？"),
            ("webwxsendmsgimg", ""),
        ]
        assert replies[1]["media"]["size"] == image.stat().st_size
        assert replies[1]["media"]["mime"] == "image/jpeg"
        # logout
        assert sim.control.requests("webwxlogout")
        assert sim.control.state()["session"]["alive"] is False
