"""`agenttrace report RUN`: one run as one self-contained HTML file; `--runs`: an index of runs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .common import EngineOption, JsonOption, StoreOption, handle_errors, layout, print_json, stderr, warn


@handle_errors
def report(
    run: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN]", help="A run id, a unique prefix of one, or `last`.", show_default=False
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="The file to write (default ./agenttrace-report-RUN.html; with --runs "
            "./agenttrace-runs.html); `-` writes the page to stdout.",
            show_default=False,
        ),
    ] = None,
    runs: Annotated[
        bool,
        typer.Option(
            "--runs", help="Write an index page of the store's runs, and each run's report next to it."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DUR",
            help="With --runs: only runs started in the last DUR (90s, 30m, 12h, 7d).",
            show_default=False,
        ),
    ] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state", help="With --runs: only runs in this audited state (repeatable).", show_default=False
        ),
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
    engine: EngineOption = None,
) -> None:
    """Write a run's report: one self-contained HTML file (no server, no network) to attach to a
    CI job or a pull request.

    It shows the verdict first (each failed gate's reasons linked to the span or file they name),
    a zoomable timeline of steps, processes, verification and GPU use, every step's input, output
    and the LLM step that asked for it, the process tree, claims and their evidence, the
    objective's criteria, tokens and cost per step, and the environment. Runs of any size open
    quickly: past its limits (stated on the page and in --json) the page holds the first 2,000
    steps in full and merges timeline bars.

    --json prints {"run_id", "path", "bytes", "spans", "state", "limits"} (with --runs: {"path",
    "bytes", "runs": [...]}) on stdout; otherwise the path written goes to stderr.

    Exit status: 0 when written, 2 for an error (an unknown run, an unreadable store, a file that
    cannot be written: nothing is left half-written).

    Example: agenttrace report last -o report.html
    """
    from ..analysis.engines import parse_engine
    from ..errors import ConfigError
    from ..report import write_index, write_report
    from ..report.write import render_report

    where = layout(store)
    chosen = parse_engine(engine)
    if runs:
        if not chosen.is_duckdb:
            raise ConfigError(
                "--runs reads the local store: not with --engine clickhouse (report a run at a time)"
            )
        if run is not None:
            raise ConfigError("give either RUN or --runs, not both")
        if output is not None and str(output) == "-":
            raise ConfigError("--runs writes files next to its index: -o - is for one run's report")
        seconds = _since(since) if since is not None else None
        index = write_index(where, output, since=seconds, states=state or None)
        warn(index.warnings)
        if json_:
            print_json(index.as_json())
        else:
            stderr().print(
                f"Wrote {index.path} ({len(index.runs)} run(s), each report next to it)", markup=False
            )
        return
    if since is not None or state:
        raise ConfigError("--since and --state go with --runs")
    if run is None:
        raise ConfigError("name a RUN (an id, a unique prefix, or `last`), or give --runs")
    if output is not None and str(output) == "-":
        text, _document, warnings = render_report(where, run, engine=chosen)
        warn(warnings)
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    info = write_report(where, run, output, engine=chosen)
    warn(info.warnings)
    if json_:
        print_json(info.as_json())
    else:
        stderr().print(f"Wrote {info.path}", markup=False)


def _since(text: str) -> float:
    from ..supervise.durations import parse_duration

    raw = text.strip().lower()
    if raw.endswith("d") and raw[:-1].replace(".", "", 1).isdigit():
        return float(raw[:-1]) * 86400
    return parse_duration(text, "--since")
