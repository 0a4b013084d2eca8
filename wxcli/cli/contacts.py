"""``wxcli contacts``."""

from __future__ import annotations

import click

from wxcli.cli._context import AppContext


@click.command()
@click.argument("query", required=False)
@click.option("--groups", "kind", flag_value="group", help="Only groups.")
@click.option("--friends", "kind", flag_value="friend", help="Only friends.")
@click.option("--officials", "kind", flag_value="official", help="Only official accounts.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def contacts(app: AppContext, query: str | None, kind: str | None, as_json: bool) -> None:
    """List groups and contacts of the logged-in account (from the session file).

    QUERY filters by a part of the name or remark. The id column is the
    session UserName to use with `wxcli send --to-id`; it changes at every login.
    """
    from wxcli import account
    from wxcli.cli._output import emit_json, out_console

    app.config  # noqa: B018 - a broken config file is reported by every command
    found = account.list_contacts(app.paths, query, kind)
    if as_json:
        for c in found:
            emit_json(
                {
                    "id": c.user_name,
                    "name": c.shown_name,
                    "nickname": c.nickname,
                    "remark": c.remark,
                    "kind": c.kind,
                    "members": c.member_count if c.is_group else None,
                }
            )
        return
    from rich.table import Table

    label = {"group": "groups", "friend": "friends", "official": "official accounts"}
    table = Table(title=f"{len(found)} {label.get(kind or '', 'contacts')}", show_lines=False)
    for col in ("name", "remark", "kind", "members", "id"):
        table.add_column(col, overflow="fold" if col == "name" else "ellipsis")
    from rich.text import Text

    from wxcli.textutil import safe_text

    for c in found:
        # Names are chosen by anyone: Text keeps "[bold]" literal, safe_text shows escapes.
        table.add_row(
            Text(safe_text(c.nickname)),
            Text(safe_text(c.remark)),
            c.kind,
            str(c.member_count) if c.is_group else "",
            c.user_name[:16] + "…",
        )
    out_console().print(table)
