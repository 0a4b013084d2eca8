"""wxcli.toml: unknown keys warn, wrong types and broken files are clear errors (exit 2 through
the CLI), --config must exist, env overrides apply, and [wechat] reaches the client."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from tests.helpers.cli import REPO, assert_one_error_line, run_cli
from wxcli.client import ClientConfig, WebWeChatClient
from wxcli.config import SCHEMA, defaults, load_config
from wxcli.errors import EXIT_USAGE, ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg.get("wechat", "login_url") == "https://login.weixin.qq.com"
    assert cfg.get("wechat", "desktop_mode") is True
    assert cfg.warnings == []


def test_a_missing_optional_file_gives_the_defaults(tmp_path):
    cfg = load_config(tmp_path / "nope.toml")
    assert cfg.data == defaults().data


def test_values_are_read(tmp_path):
    path = write(
        tmp_path / "wxcli.toml",
        '[wechat]\nlogin_url = "http://127.0.0.1:8765"\nread_timeout = 12\nretries = 5\n'
        "desktop_mode = false\n",
    )
    cfg = load_config(path)
    assert cfg.wechat["read_timeout"] == 12
    assert cfg.get("wechat", "retries") == 5
    cc = ClientConfig.from_config(cfg)
    assert cc.login_url == "http://127.0.0.1:8765"
    assert cc.desktop_mode is False
    assert cc.read_timeout == 12.0


def test_every_wechat_key_reaches_the_client_config():
    fields = {f.name for f in dataclasses.fields(ClientConfig)}
    assert fields == set(SCHEMA["wechat"])
    cc = ClientConfig.from_config(defaults())
    for key, spec in SCHEMA["wechat"].items():
        assert getattr(cc, key) == spec.default, key


def test_unknown_keys_and_sections_warn_naming_file_and_key(tmp_path, caplog):
    path = write(
        tmp_path / "wxcli.toml",
        '[wechat]\nlogin_ur = "typo"\nretries = 1\n\n[nonsense]\nx = 1\n',
    )
    with caplog.at_level(logging.WARNING, logger="wxcli.config"):
        cfg = load_config(path)
    assert cfg.get("wechat", "retries") == 1  # the rest still applies
    assert f"{path}: unknown key wechat.login_ur ignored" in cfg.warnings
    assert f"{path}: unknown section [nonsense] ignored" in cfg.warnings
    logged = [r.getMessage() for r in caplog.records]
    assert f"{path}: unknown key wechat.login_ur ignored" in logged


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        ('[wechat]\nretries = "3"', "wechat.retries", "expected integer, got str '3'"),
        ("[wechat]\nread_timeout = true", "wechat.read_timeout", "expected number, got bool"),
        ("[wechat]\ndesktop_mode = 1", "wechat.desktop_mode", "expected boolean, got int"),
        ("[wechat]\nlogin_url = 8765", "wechat.login_url", "expected string, got int"),
        ('[alert]\nstaff = "ops"', "alert.staff", "expected array, got str"),
        ("wechat = 3", "wechat", "must be a table"),
    ],
)
def test_wrong_types_name_file_key_and_expected_type(tmp_path, body, key, expected):
    path = write(tmp_path / "wxcli.toml", body + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert str(err).startswith(f"{path}: {key}: ")
    assert expected in str(err)
    assert err.path == str(path)
    assert err.key == key
    assert err.exit_code == EXIT_USAGE


def test_invalid_toml_is_a_clear_error(tmp_path):
    path = write(tmp_path / "wxcli.toml", "[wechat\nlogin_url = \n")
    with pytest.raises(ConfigError, match=r"not valid TOML") as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ")


def test_an_explicit_config_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "missing.toml", required=True)


def test_env_overrides_the_login_url(tmp_path, monkeypatch):
    path = write(tmp_path / "wxcli.toml", '[wechat]\nlogin_url = "http://from-file:1"\n')
    monkeypatch.setenv("WXCLI_LOGIN_URL", "http://127.0.0.1:9")
    assert load_config(path).get("wechat", "login_url") == "http://127.0.0.1:9"
    assert load_config(None).get("wechat", "login_url") == "http://127.0.0.1:9"
    assert ClientConfig.from_config(load_config(path)).login_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("url", ["127.0.0.1:8765", "ftp://x", "http://", "login.weixin.qq.com"])
def test_an_unusable_login_url_is_a_config_error(url):
    with pytest.raises(ConfigError, match=r"wechat\.login_url: must be an http") as info:
        WebWeChatClient(ClientConfig(login_url=url))
    assert info.value.exit_code == EXIT_USAGE


# --------------------------------------------------------------------------- through the CLI


def test_cli_wrong_type_exits_2_with_one_error_line(tmp_path, capsys):
    path = write(tmp_path / "bad.toml", "[wechat]\nretries = 2.5\n")
    code, out, err = run_cli(capsys, "--config", str(path), "status")
    assert code == EXIT_USAGE
    assert_one_error_line(err, str(path), "wechat.retries", "expected integer, got float")
    assert out == ""


def test_cli_invalid_toml_exits_2(tmp_path, capsys):
    path = write(tmp_path / "bad.toml", "this is not toml\n")
    code, _, err = run_cli(capsys, "--config", str(path), "contacts")
    assert code == EXIT_USAGE
    assert_one_error_line(err, str(path), "not valid TOML")


@pytest.mark.parametrize("via_env", [False, True])
def test_cli_missing_config_file_is_an_error(tmp_path, capsys, monkeypatch, via_env):
    missing = tmp_path / "nope.toml"
    if via_env:
        monkeypatch.setenv("WXCLI_CONFIG", str(missing))
        code, _, err = run_cli(capsys, "status")
    else:
        code, _, err = run_cli(capsys, "--config", str(missing), "status")
    assert code == EXIT_USAGE
    assert_one_error_line(err, str(missing), "file not found")


def test_cli_unknown_key_warns_and_goes_on(tmp_path, capsys):
    path = write(tmp_path / "wxcli.toml", "[wechat]\nfrobnicate = 1\n")
    code, out, err = run_cli(capsys, "--config", str(path), "status", "--no-check")
    assert code == 3  # not logged in: the command itself ran
    assert "Not logged in" in out
    assert f"{path}: unknown key wechat.frobnicate ignored" in err
    assert "Error:" not in err


def test_cli_home_config_is_read_by_default(wx_home, capsys):
    write(wx_home / "wxcli.toml", "[wechat]\nlogin_url = 5\n")
    code, _, err = run_cli(capsys, "status")
    assert code == EXIT_USAGE
    assert_one_error_line(err, str(wx_home / "wxcli.toml"), "wechat.login_url")


def test_cli_unusable_login_url_exits_2(tmp_path, capsys):
    path = write(tmp_path / "wxcli.toml", '[wechat]\nlogin_url = "127.0.0.1:8765"\n')
    code, _, err = run_cli(capsys, "--config", str(path), "login", "--no-qr", "--timeout", "1")
    assert code == EXIT_USAGE
    assert_one_error_line(err, "wechat.login_url", "must be an http(s) URL")


def test_the_example_file_documents_only_known_keys():
    example = REPO / "wxcli.toml.example"
    if not example.exists():
        pytest.skip("wxcli.toml.example is not written yet (owned by the config issue)")
    cfg = load_config(example)
    assert cfg.warnings == []
    text = example.read_text(encoding="utf-8")
    for section, keys in SCHEMA.items():
        assert f"[{section}]" in text, section
        for key in keys:
            assert f"{key} =" in text or f"# {key} =" in text, f"{section}.{key}"


def test_typed_settings_mirror_the_file(tmp_path):
    """``config.settings`` is the typed view of the same values ``data`` holds."""
    from dataclasses import fields

    from wxcli.config import SECTIONS, Settings

    path = tmp_path / "wxcli.toml"
    path.write_text('[serve]\nport = 9000\n[alert]\nstaff = ["小王"]\n', encoding="utf-8")
    cfg = load_config(path)
    s = cfg.settings
    assert isinstance(s, Settings)
    assert s.serve.port == 9000 and s.alert.staff == ["小王"]
    assert s.serve.host == "127.0.0.1"  # defaults fill the rest
    assert {f.name for f in fields(Settings)} == set(SCHEMA) == set(SECTIONS)
    for section, kind in SECTIONS.items():
        assert {f.name for f in fields(kind)} == set(SCHEMA[section])
        for key in SCHEMA[section]:
            assert getattr(getattr(s, section), key) == cfg.data[section][key]
    with pytest.raises(AttributeError):
        s.serve.port = 1  # type: ignore[misc]  # frozen: nobody changes settings behind our back
