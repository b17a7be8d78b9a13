"""`agenttrace orphans RUN`: what the agent left running when it said it was done."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import EngineOption, JsonOption, StoreOption, handle_errors, layout, print_json, stdout, warn


@handle_errors
def orphans(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id, a unique prefix of one, or `last`.")],
    json_: JsonOption = False,
    store: StoreOption = None,
    engine: EngineOption = None,
) -> None:
    """List what the agent left running when its root process exited.

    Each orphan: pid, command line, age, and the span of the process that started it.

    Example: agenttrace orphans last --json
    """
    from rich.table import Table

    from ..analysis.engines import on_run, parse_engine

    run_id, (rows, warnings) = on_run(
        parse_engine(engine),
        layout(store),
        run,
        lambda db, run_id: (db.report("orphans", run_id=run_id), db.warnings),
    )
    warn(warnings)
    if json_:
        print_json(rows)
        return
    if not rows:
        stdout().print(f"No orphans in run {run_id}.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("PID", "AGE", "COMMAND", "STARTED BY SPAN", "AFTER"):
        table.add_column(column)
    for row in rows:
        age = f"{row['age_s']:.1f} s" if row["age_s"] is not None else "?"
        after = "left running" if row["left_running"] else "stopped"
        table.add_row(str(row["pid"]), age, row["command_line"] or "?", row["started_by_span"] or "-", after)
    stdout().print(table)
