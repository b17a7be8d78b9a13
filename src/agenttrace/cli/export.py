"""`agenttrace export RUN --format ...`: a run as a Perfetto or Chrome trace, OTLP JSON, or one
view's rows as Parquet or CSV."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from .common import JsonOption, StoreOption, handle_errors, layout, print_json, stderr, warn


@handle_errors
def export(
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id, a unique prefix of one, or `last`.")],
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            metavar="FORMAT",
            help="perfetto, chrome-trace, otlp-json, parquet or csv.",
            show_default=False,
        ),
    ],
    view: Annotated[
        str | None,
        typer.Option("--view", metavar="VIEW", help="For parquet and csv: the view (spans, steps, ...)."),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Where to write (default: <run_id>.<ext> here); `-` for standard output (text formats).",
        ),
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Export a run: a timeline for Perfetto or chrome://tracing, its OTLP records, or a view's rows.

    perfetto (.pftrace) and chrome-trace (.trace.json) draw the run: each OS process a track with
    its lifetime and exit code, the agent's steps as slices (overlapping ones on lanes of their
    own), the verification on its own track, GPU utilization and memory as counters; unfinished and
    orphaned work is marked. Open the file at https://ui.perfetto.dev.

    otlp-json (.otlp.jsonl) writes the run's spans (then log records and metric points, if any) as
    OTLP JSON, one export request a line: POST a line to an OTLP/HTTP receiver (`agenttrace serve`)
    at /v1/traces, /v1/logs or /v1/metrics.

    parquet and csv write one view's rows for the run (--view spans, steps, processes, gpu_samples, ...).

    The file is written whole or not at all. Its path and counts go to stderr; --json prints
    {"run_id", "format", "path", "bytes", ...counts} instead.

    Example: agenttrace export last --format perfetto -o run.pftrace
    """
    from ..analysis import resolve_run
    from ..export import default_name, export_run, get_format, reading_store, write_atomic

    fmt = get_format(format_, view)
    to_stdout = output == "-"
    if to_stdout and not fmt.text:
        raise ConfigError(f"--format {fmt.name} is binary: name a file with -o, not `-`")
    if to_stdout and json_:
        raise ConfigError("--json describes a written file: use -o FILE with it, not `-`")
    where = layout(store)
    with reading_store():  # `last` reads the store's parts
        run_id = resolve_run(where, run)
    exported = export_run(where, run_id, fmt, view)
    warn(exported.warnings)
    counts = ", ".join(f"{k} {v}" for k, v in exported.counts.items())
    if to_stdout:
        sys.stdout.buffer.write(exported.data)
        sys.stdout.buffer.flush()
        stderr().print(f"exported run {run_id} as {fmt.name}: {counts}", markup=False)
        return
    path = Path(output) if output else Path(default_name(run_id, fmt, view))
    if path.is_dir():
        path = path / default_name(run_id, fmt, view)
    write_atomic(path, exported.data)
    if json_:
        print_json(
            {"run_id": run_id, "format": fmt.name, "path": str(path), "bytes": len(exported.data),
             **exported.counts}
        )  # fmt: skip
    else:
        stderr().print(f"wrote {path} ({len(exported.data)} bytes): {counts}", markup=False)
