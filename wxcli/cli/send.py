"""``wxcli send text`` and ``wxcli send image``: one message, paced, from the shell.

Kept light on purpose: this path imports click, requests and a few wxcli modules only (a test
checks that jieba, snownlp, oss2, peewee, waitress and rich stay out).
"""

from __future__ import annotations

import sys

import click

from wxcli.cli._context import AppContext


def _recipient_options(func):
    func = click.option(
        "--to-id",
        "to_id",
        metavar="ID",
        help="Session id of the chat (@… or @@…, from `wxcli contacts --json`).",
    )(func)
    func = click.option(
        "--to",
        "to",
        metavar="NAME",
        help="Exact group name, remark or nickname; `filehelper` = File Transfer.",
    )(func)
    return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(func)


def _check_recipient(to: str | None, to_id: str | None) -> None:
    if bool(to) == bool(to_id):
        raise click.UsageError("give exactly one of --to NAME or --to-id ID")


def _report(outcome, as_json: bool) -> None:
    if as_json:
        from wxcli.cli._output import emit_json

        emit_json(outcome.to_json())
    else:
        from wxcli.textutil import safe_text

        click.echo(f"Sent to {safe_text(outcome.to_name)} (MsgID {outcome.msg_id}).", err=True)


@click.group()
def send() -> None:
    """Send a message to a group or contact of the logged-in account.

    Names resolve from the session file (no sync); a name that matches no
    chat or several chats is an error that lists the candidates, never a guess.
    Every send goes through the profile's pacer, shared with `wxcli serve`.

    Exit status: 0 sent, 1 unknown/ambiguous recipient or bad file,
    3 session expired, 4 refused by WeChat (e.g. 1205 after retries), 5 network.
    """


@send.command("text")
@_recipient_options
@click.argument("message")
@click.pass_obj
def text(app: AppContext, to: str | None, to_id: str | None, as_json: bool, message: str) -> None:
    """Send MESSAGE as text; `-` reads it from standard input (lines kept).

    \b
    wxcli send text --to "云帆Pro客服1群" "工单已处理"
    df -h | wxcli send text --to filehelper -
    """
    _check_recipient(to, to_id)
    if message == "-":
        message = sys.stdin.read().rstrip("\n")
    from wxcli.sending import Sender

    outcome = Sender(app.paths, app.config).send_text(message, to=to, to_id=to_id)
    _report(outcome, as_json)


@send.command("image")
@_recipient_options
@click.argument("source", metavar="PATH|URL")
@click.pass_obj
def image(app: AppContext, to: str | None, to_id: str | None, as_json: bool, source: str) -> None:
    """Send an image file or an http(s) URL (JPEG, PNG, GIF or WebP, checked by
    content; a GIF goes as an animated sticker). Size limit: [send] max_image_bytes.
    """
    _check_recipient(to, to_id)
    from wxcli.sending import send_image

    # the user's own shell may fetch from their own network: private URLs allowed
    _report(send_image(app.paths, app.config, source, to=to, to_id=to_id), as_json)
