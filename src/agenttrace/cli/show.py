"""`agenttrace show RUN`: the run as a tree of spans."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import EngineOption, StoreOption, handle_errors, layout, stdout, warn


@handle_errors
def show(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id, a unique prefix of one, or `last`.")],
    limit: Annotated[int, typer.Option("--limit", min=1, help="Draw at most this many spans.")] = 1000,
    store: StoreOption = None,
    engine: EngineOption = None,
) -> None:
    """Draw a run as a tree of spans with steps, durations, status and errors.

    Every span sits under its parent with its step number, duration and status.

    Errors show their message; spans that never ended are marked UNFINISHED. A process seen on a
    GPU is marked with the device and its peak memory; the GPU lease follows (devices, wait,
    utilization and memory while held, lost or not), then any process outside the run seen on a
    leased GPU (an intruder). The run's claims follow, each piece of evidence marked ok or NO with
    the reason.

    Example: agenttrace show last
    """
    from ..analysis.engines import on_run, parse_engine
    from ..analysis.gpu_use import run_gpu_use
    from ..render.tree import span_tree

    def read(db: Any, run_id: str) -> tuple[Any, ...]:
        spans = db.report("run_spans", run_id=run_id)
        return (
            db.report("run_summary", run_id=run_id),
            spans,
            db.report("claims", run_id=run_id, step=None),
            run_gpu_use(db, run_id, (s["name"] for s in spans)),
            db.warnings,
        )

    _, (summary, spans, claims, gpu, warnings) = on_run(parse_engine(engine), layout(store), run, read)
    warn(warnings)
    if not summary:
        raise typer.Exit(0)
    stdout().print(span_tree(summary[0], spans, limit, claims, gpu))
