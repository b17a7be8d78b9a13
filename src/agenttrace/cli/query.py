"""`agenttrace query SQL`: read-only SQL over the store's views."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ConfigError
from .common import (
    EngineOption,
    JsonOption,
    StoreOption,
    echo,
    handle_errors,
    layout,
    print_json,
    stdout,
    warn,
)


@handle_errors
def query(
    sql: Annotated[
        str, typer.Argument(metavar="SQL", help="One SELECT statement; `-` reads it from standard input.")
    ],
    json_: JsonOption = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV with a header row.")] = False,
    store: StoreOption = None,
    engine: EngineOption = None,
) -> None:
    """Run one read-only SQL SELECT over the store's views.

    Views: runs, spans, steps, processes, artifacts, claims, gpu_samples.

    Statements that write (INSERT, DELETE, COPY, ATTACH, CREATE, ...) are refused.

    Example: agenttrace query "SELECT step, kind, name, finish_reason FROM steps WHERE run_id = 'X'"
    """
    from ..analysis.engines import parse_engine, query_on
    from ..analysis.readonly import ensure_read_only
    from ..render.values import plain, to_csv

    if json_ and csv_:
        raise ConfigError("choose one of --json and --csv")
    text = sys.stdin.read() if sql == "-" else sql
    ensure_read_only(text)
    columns, rows, warnings = query_on(parse_engine(engine), layout(store), text)
    warn(warnings)
    if json_:
        print_json([dict(zip(columns, row, strict=True)) for row in rows])
    elif csv_:
        echo(to_csv(columns, rows))
    else:
        from rich.table import Table

        table = Table(box=None, pad_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*("" if v is None else str(plain(v)) for v in row))
        stdout().print(table)
        stdout().print(f"({len(rows)} row{'s' if len(rows) != 1 else ''})", style="dim")
