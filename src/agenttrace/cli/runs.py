"""`agenttrace runs`: list the runs in a store."""

from __future__ import annotations

from typing import Annotated

import typer

from ..errors import ConfigError
from .common import EngineOption, JsonOption, StoreOption, handle_errors, layout, print_json, stdout, warn

STATES = ("pending", "running", "verifying", "succeeded", "failed", "timed_out", "cancelled", "unknown")


@handle_errors
def runs(
    state: Annotated[
        str | None, typer.Option("--state", help=f"Only runs in this state: {', '.join(STATES)}.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", help="Only runs with a record this recent: 30m, 12h, 1d, 2w.", show_default=False
        ),
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
    engine: EngineOption = None,
) -> None:
    """List runs, oldest first, with state, start time, duration and span counts.

    Example: agenttrace runs --state failed --since 1d --json
    """
    from ..analysis.engines import list_runs_on, parse_engine
    from ..render.runs import runs_table
    from ..supervise.durations import parse_age

    if state is not None and state not in STATES:
        raise ConfigError(f"unknown state {state!r}; choose one of: {', '.join(STATES)}")
    cutoff = parse_age(since, "--since") if since is not None else None
    rows, warnings = list_runs_on(parse_engine(engine), layout(store), state, cutoff)
    warn(warnings)
    if json_:
        print_json(rows)
    elif rows:
        console = stdout()
        console.print(runs_table(rows, whole_names=not console.is_terminal))
    else:
        stdout().print("No runs" + (f" in state {state}" if state else "") + ".")
