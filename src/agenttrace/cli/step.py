"""`agenttrace step RUN N`: what happened at step N, and why."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import EngineOption, JsonOption, StoreOption, handle_errors, layout, print_json, stdout, warn


@handle_errors
def step(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id, a unique prefix of one, or `last`.")],
    n: Annotated[
        int, typer.Argument(metavar="N", help="The step number, as `agenttrace show` numbers them.")
    ],
    json_: JsonOption = False,
    store: StoreOption = None,
    engine: EngineOption = None,
) -> None:
    """What happened at step N of a run, and why.

    The step, the LLM step that asked for it, its input and output, the processes and HTTP calls
    under it (each process with the GPU it used: device, peak memory, when), the GPUs the run
    leased or used during it (utilization min, avg and max), its errors, and what came next.

    Example: agenttrace step last 14 --json
    """
    from ..analysis.engines import on_run, parse_engine
    from ..analysis.step import explain_step
    from ..render.step import step_answer

    _, (answer, warnings) = on_run(
        parse_engine(engine),
        layout(store),
        run,
        lambda db, run_id: (explain_step(db, run_id, n), db.warnings),
    )
    warn(warnings)
    if json_:
        print_json(answer)
    else:
        stdout().print(step_answer(answer))
