"""The channel interface and registry: ``type`` picks the class, errors name the key (and the
file), and a new channel needs nothing but a Channel subclass and its registration."""

from __future__ import annotations

from typing import ClassVar

import pytest

from tests.helpers.channels import assert_refused, make_alert
from wxcli.alerts.channels import (
    CHANNEL_TYPES,
    PRESETS,
    SECRET_ENV_KEYS,
    SERVICE_NAMES,
    BuildContext,
    Channel,
    ChannelTable,
    EmailChannel,
    WebhookChannel,
    WeChatChannel,
    build_channel,
    register,
)
from wxcli.alerts.channels import base as channels_base
from wxcli.alerts.dispatcher import Dispatcher
from wxcli.alerts.model import Alert
from wxcli.errors import AlertError, ConfigError


@pytest.mark.parametrize(
    ("spec", "key", "words"),
    [
        ({"host": "x"}, "type", 'missing; one of "email", "webhook", "wechat"'),
        ({"type": "sms"}, "type", "'sms' is not a channel type"),
        ({"type": ["email"]}, "type", "['email'] is not a channel type"),
    ],
)
def test_unknown_or_missing_type_is_refused(spec, key, words):
    assert_refused(spec, key, words)


def test_a_channel_that_is_not_a_table_is_refused():
    with pytest.raises(ConfigError, match=r"^alert.channels.ops.type: the channel must be a table"):
        build_channel("ops", "email", {})  # type: ignore[arg-type]


def test_build_channel_error_names_the_config_file():
    spec = {"type": "email", "host": "h", "sender": "a@b.c", "to": ["d@e.f"], "password": "x"}
    with pytest.raises(ConfigError) as info:
        build_channel("ops", spec, {}, config_path="/etc/wxcli.toml")
    assert str(info.value).startswith("/etc/wxcli.toml: alert.channels.ops.password: ")


def test_registry_lists_types_and_presets_in_their_documented_order():
    assert CHANNEL_TYPES == ("email", "webhook", "wechat")
    assert PRESETS == ("generic", "dingtalk", "wecom", "feishu")
    assert SERVICE_NAMES == {
        "generic": "webhook",
        "dingtalk": "DingTalk",
        "wecom": "WeCom",
        "feishu": "Feishu",
    }
    assert SECRET_ENV_KEYS == ("password_env", "secret_env")
    assert [c.kind for c in (EmailChannel, WebhookChannel, WeChatChannel)] == list(CHANNEL_TYPES)


def test_the_cli_offers_every_preset():
    from wxcli.cli.alert import PRESETS as CLI_PRESETS

    assert CLI_PRESETS == PRESETS


def test_a_channel_must_implement_send_and_from_config():
    class Half(Channel):
        kind = "half"

        def send(self, alert: Alert) -> None:
            pass

    with pytest.raises(TypeError, match="abstract"):
        Half("h")  # type: ignore[abstract]


def test_a_type_cannot_be_registered_twice(monkeypatch):
    monkeypatch.setattr(channels_base, "_REGISTRY", dict(channels_base._REGISTRY))

    class OtherMail(EmailChannel):
        pass

    with pytest.raises(TypeError, match="registered twice"):
        register(OtherMail)


class Recorder(Channel):
    """The smallest complete channel: what a new one needs (see channels/__init__.py)."""

    kind = "record"
    config_keys: ClassVar[frozenset[str]] = frozenset({"type", "label", "token_env"})
    secret_env_keys: ClassVar[tuple[str, ...]] = ("token_env",)

    def __init__(self, name: str, *, label: str, token: str | None) -> None:
        super().__init__(name)
        self.label = label
        self.token = token
        self.sent: list[Alert] = []

    @classmethod
    def from_config(cls, table: ChannelTable, ctx: BuildContext) -> Recorder:
        table.check_keys(set(cls.config_keys))
        return cls(
            table.name,
            label=table.required("label", 'label = "x"'),
            token=table.secret("token_env", ctx.env),
        )

    @property
    def target(self) -> str:
        return f"recorder {self.label}"

    def send(self, alert: Alert) -> None:
        if alert.severity == "critical":
            raise AlertError("the recorder is full")
        self.sent.append(alert)


def test_a_registered_channel_is_built_and_dispatched_like_the_others(monkeypatch):
    monkeypatch.setattr(channels_base, "_REGISTRY", dict(channels_base._REGISTRY))
    register(Recorder)
    assert channels_base.channel_types()[-1] == "record"
    assert channels_base.secret_env_keys() == ("password_env", "secret_env", "token_env")

    channel = build_channel("rec", {"type": "record", "label": "L", "token_env": "T"}, {"T": "t"})
    assert isinstance(channel, Recorder)
    assert channel.token == "t"
    assert repr(channel) == "<Recorder 'rec': recorder L>"
    assert_refused({"type": "record", "label": "L", "lable": "x"}, "lable", "did you mean 'label'")

    dispatcher = Dispatcher({"rec": channel}, retries=1)
    ok = dispatcher.deliver(make_alert(), "rec", rule="test", retries=1)
    failed = dispatcher.deliver(make_alert(severity="critical"), "rec", rule="test", retries=1)
    assert (ok.status, failed.status, failed.error) == (
        "delivered",
        "failed",
        "the recorder is full",
    )
    assert len(channel.sent) == 1
