"""`agenttrace runs`: list the runs in a store."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ConfigError
from .common import JsonOption, StoreOption, handle_errors, layout, print_json, stdout, warn

STATES = ("pending", "running", "verifying", "succeeded", "failed", "timed_out", "cancelled", "unknown")


@handle_errors
def runs(
    state: Annotated[
        str | None, typer.Option("--state", help=f"Only runs in this state: {', '.join(STATES)}.")
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """List runs, oldest first, with state, start time, duration and span counts.

    Example: agenttrace runs --state failed --json
    """
    from ..analysis.run_list import list_runs
    from ..render.runs import runs_table

    if state is not None and state not in STATES:
        raise ConfigError(f"unknown state {state!r}; choose one of: {', '.join(STATES)}")
    rows, warnings = list_runs(layout(store), state)
    warn(warnings)
    if json_:
        print_json(rows)
    elif rows:
        console = stdout()
        console.print(runs_table(rows, whole_names=not console.is_terminal))
    else:
        stdout().print("No runs" + (f" in state {state}" if state else "") + ".")
