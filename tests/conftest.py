"""Shared fixtures: an isolated wxcli home per test, and a guard against non-loopback traffic."""

from __future__ import annotations

import ipaddress
import socket

import pytest


def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise AssertionError(f"test tried to open a non-loopback connection to {address!r}")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise AssertionError(f"test tried to open a non-loopback connection to {address!r}")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only():
    """Fail any test that opens a connection to anything but this machine's loopback."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def wx_home(tmp_path_factory, monkeypatch):
    """Point $WXCLI_HOME at a fresh directory so no test touches a real home or config."""
    home = tmp_path_factory.mktemp("wxhome")
    monkeypatch.setenv("WXCLI_HOME", str(home))
    for var in ("WXCLI_CONFIG", "WXCLI_PROFILE", "WXCLI_LOGIN_URL", "WXCLI_DB", "WXCLI_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def sim():
    """A fresh simulator on a free loopback port, with short long-poll holds for speed."""
    from wxcli.simulator import Simulator

    simulator = Simulator(synccheck_hold=0.5, login_hold=0.5)
    simulator.start()
    yield simulator
    simulator.stop()
