"""Quick throughput/RSS probe of the wxcli simulator (not a test).

Starts the simulator in a child process, logs in with bare `requests`, floods N messages and
drains them with a tight synccheck + webwxsync loop (sync_batch=100), then reports msgs/s and
the simulator's RSS. Usage: python sim_throughput.py [N]
"""

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import requests

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
CHILD = (
    "import sys, time\n"
    "from wxcli.simulator import Simulator\n"
    "s = Simulator(synccheck_hold=0.5, login_hold=0.5, sync_batch=100, echo_sends=False,"
    " auto_confirm=True)\n"
    "print(s.start(), flush=True)\n"
    "sys.stdin.read()\n"
    "s.stop()\n"
)


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))


proc = subprocess.Popen(
    [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
)
base = proc.stdout.readline().strip()
api = base + "/cgi-bin/mmwebwx-bin/"
s = requests.Session()
uuid = re.search(r'uuid = "(.+?)"', s.get(base + "/jslogin?appid=wx782c26e4c19acffb").text)[1]
while "window.code=200" not in (text := s.get(api + "login", params={"uuid": uuid}).text):
    pass
root = ET.fromstring(s.get(re.search(r'redirect_uri="(\S+?)"', text)[1]).text)
br = {
    "Uin": int(root.findtext("wxuin")),
    "Sid": root.findtext("wxsid"),
    "Skey": root.findtext("skey"),
    "DeviceID": "e1",
}
key = s.post(api + "webwxinit", data=json.dumps({"BaseRequest": br})).json()["SyncKey"]
print(f"simulator RSS after login: {rss_mb(proc.pid)} MB")
t0, c0 = time.time(), cpu_s(proc.pid)
s.post(base + "/_sim/flood", json={"count": N, "groups": 20}, timeout=600)
c1 = cpu_s(proc.pid)
cpu_us = (c1 - c0) / N * 1e6
print(
    f"flood of {N}: {time.time() - t0:.1f} s ({cpu_us:.0f} µs CPU/msg), RSS {rss_mb(proc.pid)} MB"
)
got, t0 = 0, time.time()
while got < N:
    check = "|".join(f"{i['Key']}_{i['Val']}" for i in key["List"])
    s.get(api + "synccheck", params={"sid": br["Sid"], "uin": br["Uin"], "synckey": check})
    out = json.loads(
        s.post(api + "webwxsync", data=json.dumps({"BaseRequest": br, "SyncKey": key})).content
    )
    key = out["SyncKey"]
    got += out["AddMsgCount"]
dt = time.time() - t0
cpu = cpu_s(proc.pid) - c1
print(
    f"delivered {got} in {dt:.1f} s = {got / dt:,.0f} msg/s end to end; simulator CPU "
    f"{cpu / got * 1e6:.1f} µs/msg (= {got / max(cpu, 1e-9):,.0f} msg/s per core); "
    f"RSS after drain {rss_mb(proc.pid)} MB"
)
proc.stdin.close()
proc.wait()
