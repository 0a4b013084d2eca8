"""Shared fixtures: an isolated wxcli home per test, and a guard against non-loopback traffic."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from tests.helpers.db import MYSQL_HOST, MYSQL_PORT, mysql_available


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


# --- databases --------------------------------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption(
        "--no-mysql", action="store_true", help="skip tests that need MariaDB/MySQL on :3306"
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--no-mysql"):
        skip = pytest.mark.skip(reason="--no-mysql given")
        for item in items:
            if "mysql" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def mysql_url():
    """A throw-away MariaDB database (root, no password, as on the CI machine)."""
    import uuid

    import pymysql

    if not mysql_available():
        pytest.fail(
            "MariaDB is not reachable on 127.0.0.1:3306 (start it, or run pytest --no-mysql)"
        )
    name = f"wxcli_test_{uuid.uuid4().hex[:10]}"
    yield f"mysql://root@{MYSQL_HOST}:{MYSQL_PORT}/{name}"
    conn = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="")
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request, tmp_path):
    """Each archive test runs on SQLite and on the real MariaDB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'archive.db'}"
    return request.getfixturevalue("mysql_url")


@pytest.fixture
def logged_in(sim, wx_home):
    """A profile logged in to the simulator (auto-confirm): returns (paths, config, state)."""
    from wxcli import account
    from wxcli.config import defaults
    from wxcli.paths import ProfilePaths

    sim.control.auto_confirm(True)
    config = defaults()
    config.data["wechat"].update(
        {"login_url": sim.base_url, "login_poll_timeout": 5.0, "synccheck_timeout": 5.0}
    )
    config.data["wechat"]["backoff"] = 0.05
    config.data["watch"].update({"health_seconds": 0.2, "session_save_seconds": 0.2})
    paths = ProfilePaths("default", wx_home)
    state = account.login(paths, config)
    return paths, config, state


@pytest.fixture(autouse=True)
def _close_archive_readers():
    yield
    from tests.helpers.watch import close_readers

    close_readers()


@pytest.fixture(scope="session")
def analysis_cache(request, tmp_path_factory):
    """Where jieba and the sentiment tables keep their caches across tests (pytest's cache when
    available: building the sentiment tables takes ~10 s once)."""
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        return cache.mkdir("wxcli-analysis-cache")
    return tmp_path_factory.mktemp("analysis-cache")


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A CA and a server certificate for 127.0.0.1/localhost (the alert channel tests' SMTP and
    webhook servers); made once per session, it takes a moment."""
    from tests.helpers.servers import make_tls_files

    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def engines(request, tmp_path_factory):
    """jieba and the sentiment tables, loaded once per session (see helpers.known_archive)."""
    from tests.helpers.known_archive import shared_engines

    return shared_engines(request, tmp_path_factory)
