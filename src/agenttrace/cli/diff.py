"""`agenttrace diff RUN_A RUN_B`: where two runs part, and what else differs."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOption, StoreOption, handle_errors, layout, print_json, stdout, warn


@handle_errors
def diff(
    run_a: Annotated[
        str, typer.Argument(metavar="RUN_A", help="A run id, a unique prefix of one, or `last`.")
    ],
    run_b: Annotated[
        str, typer.Argument(metavar="RUN_B", help="A run id, a unique prefix of one, or `last`.")
    ],
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Compare two runs: the first step where they part, and what else differs.

    The runs' steps are aligned in order and compared by what each asked for (an LLM call: model,
    request messages without volatile ids, finish reason; a tool call: tool and arguments; a
    command: its command line). Then: the tool calls whose arguments, results or exit codes differ,
    the processes and the files written that differ, token, cost, time and step deltas, and both
    verdicts gate by gate. Any two runs of the store, replayed or not.

    --json prints one object with the keys run_a, run_b (run_id, name, state, command, started,
    ended, exit, replay_of, verdict, reasons), first_divergence (null, or step_a, step_b, kind,
    what, differences), steps (every aligned pair: step_a, step_b, kind, name, same, differences),
    tools, processes (each: a, b, differences), files (path, change: added|removed|changed, a, b),
    deltas (each: a, b, delta = b - a) and gates (name, severity, a, b, same).

    Exit status: 0 when the steps do not diverge, 1 when they do (as diff(1)), 2 for an error.

    Example: agenttrace diff 20261124T153012-3f9a last
    """
    from ..analysis import resolve_run
    from ..analysis.diff import diff_runs
    from ..render.diff import diff_view

    where = layout(store)
    id_a = resolve_run(where, run_a)
    id_b = resolve_run(where, run_b)
    answer, warnings = diff_runs(where, id_a, id_b)
    warn(warnings)
    if json_:
        print_json(answer)
    else:
        stdout().print(diff_view(answer))
    raise typer.Exit(0 if answer["first_divergence"] is None else 1)
