"""Plain writers for ``wxcli stats`` rows: a rich table, JSON lines and CSV.

Rows may be model dataclasses (anything with ``to_dict``), mappings, or — for tables — plain
sequences, so every stats subcommand can hand its query result straight to the output it chose.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def row_dict(row: Any) -> dict[str, Any]:
    """One row as a flat dict: ``to_dict()`` if the row has it, else the mapping or dataclass."""
    if hasattr(row, "to_dict"):
        return dict(row.to_dict())
    if isinstance(row, Mapping):
        return dict(row)
    if is_dataclass(row) and not isinstance(row, type):
        return asdict(row)
    raise TypeError(f"cannot turn {type(row).__name__} into a row")


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(rows: Iterable[Any], fp: IO[str]) -> int:
    """Write one JSON object per line (JSON Lines), keeping Chinese readable; returns the count.

    Lines rather than one array so that large outputs can be streamed and piped to ``jq``.
    """
    n = 0
    for row in rows:
        fp.write(json.dumps(row_dict(row), ensure_ascii=False, default=_json_default))
        fp.write("\n")
        n += 1
    return n


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return str(value)


def write_csv(
    rows: Iterable[Any], fp: IO[str], *, bom: bool = False, columns: Sequence[str] | None = None
) -> int:
    """Write rows as CSV with a header line; returns the number of data rows.

    ``fp`` should be opened with ``newline=""``. ``bom`` starts the output with U+FEFF, which
    Excel needs to read UTF-8 Chinese correctly. Nothing is written for no rows and no columns.
    """
    it = iter(rows)
    first = next(it, None)
    if first is None and not columns:
        return 0
    header = list(columns) if columns else list(row_dict(first).keys())
    if bom:
        fp.write("\ufeff")
    writer = csv.writer(fp, lineterminator="\r\n")
    writer.writerow(header)
    n = 0
    for row in (first, *it) if first is not None else ():
        d = row_dict(row)
        writer.writerow([_cell(d.get(c)) for c in header])
        n += 1
    return n


def _table_text(value: Any) -> Text:
    """A cell as rich ``Text`` so square brackets in names are never read as markup."""
    if value is None:
        return Text("")
    if isinstance(value, bool):
        return Text(str(value))
    if isinstance(value, int):
        return Text(f"{value:,}")
    if isinstance(value, float):
        return Text(f"{value:.3f}")
    if isinstance(value, datetime):
        return Text(value.strftime("%Y-%m-%d %H:%M"))
    if isinstance(value, date):
        return Text(value.isoformat())
    return Text(str(value))


def write_table(
    console: Console, title: str | None, columns: Sequence[str], rows: Iterable[Any]
) -> int:
    """Print rows as a table; number columns are right-aligned. Returns the row count.

    A row is a sequence in column order, or a mapping/model row looked up by column name.
    """
    cells: list[list[Any]] = []
    for row in rows:
        if isinstance(row, (list, tuple)):
            cells.append(list(row))
        else:
            d = row_dict(row)
            cells.append([d.get(c) for c in columns])
    table = Table(title=title, header_style="bold", title_justify="left")
    for i, name in enumerate(columns):
        numeric = bool(cells) and all(
            isinstance(r[i], (int, float)) and not isinstance(r[i], bool)
            for r in cells
            if i < len(r) and r[i] is not None
        )
        numeric = numeric and any(i < len(r) and r[i] is not None for r in cells)
        table.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for r in cells:
        table.add_row(*(_table_text(r[i] if i < len(r) else None) for i in range(len(columns))))
    console.print(table)
    return len(cells)
