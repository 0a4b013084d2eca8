"""Alert delivery channels and their construction from ``[alert.channels.<name>]`` tables.

Each channel delivers one :class:`~wxcli.alerts.model.Alert` per ``send`` call, bounded by a
timeout, and raises :class:`~wxcli.errors.AlertError` with the exact reason when it cannot.
Retries, cooldowns and digests belong to the dispatcher, not here.

Layout — one module per channel, over a small shared core:

* ``base`` — the :class:`Channel` interface, the ``type`` → class registry with
  :func:`build_channel`, :class:`ChannelTable` (typed, key-naming reads of a config table)
  and the byte helpers several channels share (JSON bodies, HMAC-SHA256, base64);
* ``render`` — the text/HTML renderings and the neutralising helpers for robot cards;
* ``email`` (``type = "email"``), ``wechat`` (``type = "wechat"``), ``webhook``
  (``type = "webhook"``, the generic preset and the HTTP transport);
* ``robot`` — what chat-app robots share; ``dingtalk``, ``wecom``, ``feishu`` — one
  ``preset`` each.

Adding a channel:

1. Write ``wxcli/alerts/channels/<kind>.py`` with a :class:`Channel` subclass. Set ``kind``
   (the config ``type``) and ``config_keys`` (every key the table may hold, ``"type"``
   included); implement ``from_config(table, ctx)`` — call
   ``table.check_keys(set(cls.config_keys))``, read values with ``table.required`` /
   ``string`` / ``number`` / ``choice`` / ``boolean``, and secrets only through
   ``table.secret("<x>_env", ctx.env)`` (refuse a literal secret with
   ``table.no_literal_secret``); implement ``send(alert)`` raising AlertError with a reason
   that names the host but never a token, and ``target`` (shown by ``wxcli alert list``,
   never a secret). Override ``skip_reason`` if the channel cannot carry some alerts.
2. Import the class below and add it to the ``register`` loop (that order is the order
   error messages list the types in).
3. Add ``tests/test_channel_<kind>.py`` against a real receiver (tests/helpers/servers.py), extend
   ``wxcli alert add-channel`` in ``wxcli/cli/alert.py``, ``wxcli.toml.example`` and the
   README's alert section. A key that names the environment variable of a secret ends in
   ``_env`` (the log filter then masks that variable's value everywhere) and is listed in
   ``secret_env_keys`` (``wxcli alert`` then stands in for it when validating and says
   when it is unset).

A new chat robot is a webhook ``preset`` instead: subclass
:class:`~wxcli.alerts.channels.robot.RobotChannel` in its own module, set ``preset``,
``service`` and ``code_word``, implement ``robot_request`` (URL and body, cut to the
service's size limit with ``self.fit``) and ``robot_status`` (the status in its answer), and
add it to the ``register_preset`` loop below; ``wxcli/cli/alert.py`` lists the presets for
``--preset`` (a test checks that list against :data:`PRESETS`).
"""

from __future__ import annotations

from wxcli.alerts.channels.base import (
    DEFAULT_TIMEOUT,
    BuildContext,
    Channel,
    ChannelTable,
    WeChatSender,
    build_channel,
    channel_types,
    register,
    secret_env_keys,
)
from wxcli.alerts.channels.dingtalk import DINGTALK_MAX_TEXT_BYTES, DingTalkChannel, dingtalk_sign
from wxcli.alerts.channels.email import DEFAULT_PORTS, SECURITY_MODES, EmailChannel
from wxcli.alerts.channels.feishu import FEISHU_MAX_BODY_BYTES, FeishuChannel, feishu_sign
from wxcli.alerts.channels.render import (
    LOGIN_HINT,
    ROBOT_MAX_FIELD_CHARS,
    TRUNCATED,
    md_neutral,
    render_html,
    render_text,
)
from wxcli.alerts.channels.robot import RobotChannel
from wxcli.alerts.channels.webhook import (
    MAX_REPLY_BYTES,
    WebhookChannel,
    preset_class,
    presets,
    register_preset,
)
from wxcli.alerts.channels.wechat import WECHAT_MAX_CHARS, WeChatChannel
from wxcli.alerts.channels.wecom import WECOM_MAX_CONTENT_BYTES, WeComChannel

# Every channel type and webhook preset, in the order messages and listings show them.
for _channel in (EmailChannel, WebhookChannel, WeChatChannel):
    register(_channel)
for _webhook in (WebhookChannel, DingTalkChannel, WeComChannel, FeishuChannel):
    register_preset(_webhook)
del _channel, _webhook

#: The channel ``type`` values and webhook ``preset`` values, in the order messages list them.
CHANNEL_TYPES = channel_types()
PRESETS = presets()
#: Each preset's service name as messages spell it.
SERVICE_NAMES = {p: preset_class(p).service for p in PRESETS}
#: The keys that name a secret's environment variable, over every channel type.
SECRET_ENV_KEYS = secret_env_keys()

__all__ = [
    "CHANNEL_TYPES",
    "DEFAULT_PORTS",
    "DEFAULT_TIMEOUT",
    "DINGTALK_MAX_TEXT_BYTES",
    "FEISHU_MAX_BODY_BYTES",
    "LOGIN_HINT",
    "MAX_REPLY_BYTES",
    "PRESETS",
    "ROBOT_MAX_FIELD_CHARS",
    "SECRET_ENV_KEYS",
    "SECURITY_MODES",
    "SERVICE_NAMES",
    "TRUNCATED",
    "WECHAT_MAX_CHARS",
    "WECOM_MAX_CONTENT_BYTES",
    "BuildContext",
    "Channel",
    "ChannelTable",
    "DingTalkChannel",
    "EmailChannel",
    "FeishuChannel",
    "RobotChannel",
    "WeChatChannel",
    "WeChatSender",
    "WeComChannel",
    "WebhookChannel",
    "build_channel",
    "dingtalk_sign",
    "feishu_sign",
    "md_neutral",
    "register",
    "register_preset",
    "render_html",
    "render_text",
]
