"""`agenttrace clickhouse init` and `agenttrace push`: runs on ClickHouse, where a fleet's
collectors already write."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOption, StoreOption, handle_errors, layout, print_json, stderr, stdout

app = typer.Typer(
    name="clickhouse",
    help="Set up a ClickHouse database for agenttrace (see `agenttrace push` and --engine).",
    no_args_is_help=True,
)

TargetOption = Annotated[
    str,
    typer.Option(
        "--to",
        "--engine",
        help="clickhouse://USER@HOST:8123/DB (password in $AGENTTRACE_CLICKHOUSE_PASSWORD) or chdb:///PATH.",
    ),
]


@app.command("init")
@handle_errors
def init(engine: TargetOption, json_: JsonOption = False) -> None:
    """Create the tables agenttrace reads and writes, where they are missing.

    The collector's `clickhouse` exporter tables (otel_traces, otel_logs, otel_metrics_*: created
    only when missing, with the exporter's columns, without a TTL) and agenttrace's own
    (agenttrace_spans, _logs, _samples, _runs, _problems: what `agenttrace push` writes). Safe to
    run again.

    Example: agenttrace clickhouse init --to clickhouse://agenttrace@clickhouse:8123/otel
    """
    from ..clickhouse.engine import connect, parse_engine
    from ..clickhouse.tables import init_tables
    from ..errors import ConfigError

    chosen = parse_engine(engine)
    if chosen.is_duckdb:
        raise ConfigError("--to: name a ClickHouse database (clickhouse://... or chdb:///...)")
    client = connect(chosen, use_database=False)  # the database may not exist yet
    try:
        tables = init_tables(client, chosen.database)
    finally:
        client.close()
    if json_:
        print_json({"engine": str(chosen), "database": chosen.database, "tables": tables})
    else:
        stdout().print(f"{chosen}: {len(tables)} tables ready ({', '.join(tables)})", markup=False)


@handle_errors
def push(
    runs: Annotated[
        list[str] | None,
        typer.Argument(metavar="[RUN]...", help="Run ids, unique prefixes, or `last`.", show_default=False),
    ] = None,
    to: TargetOption = "",
    all_runs: Annotated[
        bool, typer.Option("--all", help="Push every run of the store that has ended.")
    ] = False,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Copy runs recorded locally into ClickHouse, for `--engine clickhouse://...` (audit, step,
    show, runs, query, report) across a fleet.

    A run's records go as the local audit reads them: the parts its supervisor's manifest lists,
    each record marked with who reported it (supervisor or agent), and what the integrity check
    found. Pushing a run again replaces it; a push cut short is never read. Files (deliverables,
    evidence) stay in the local artifact store: their paths, sizes and sha256 go with the records.
    Run `agenttrace clickhouse init` once first.

    Example: agenttrace push last --to clickhouse://agenttrace@clickhouse:8123/otel
    """
    from ..analysis import resolve_run
    from ..clickhouse.engine import connect, parse_engine
    from ..clickhouse.push import push_runs
    from ..errors import ConfigError

    chosen = parse_engine(to or None)
    if not to or chosen.is_duckdb:
        raise ConfigError("--to: name a ClickHouse database (clickhouse://... or chdb:///...)")
    where = layout(store)
    if all_runs == bool(runs):
        raise ConfigError("give RUNs or --all")
    if all_runs:
        where.require_readable()
        ids = [r for r in where.run_ids() if r not in set(_live(where))]
    else:
        ids = list(dict.fromkeys(resolve_run(where, r) for r in runs or []))
    client = connect(chosen)
    done = []
    try:
        console = stderr()

        def progress(pushed: object) -> None:
            done.append(pushed)
            if len(ids) >= 50 and (len(done) % 50 == 0 or len(done) == len(ids)):  # a store's worth
                console.print(f"pushed {len(done)}/{len(ids)} runs", markup=False)

        push_runs(where, ids, client, progress=progress)
    finally:
        client.close()
    if json_:
        print_json({"engine": str(chosen), "runs": [p.as_json() for p in done]})
    else:
        for p in done:
            stdout().print(
                f"{p.run_id}: {p.spans} spans, {p.logs} logs, {p.samples} samples"
                f"{' (supervised)' if p.supervised else ''} -> {chosen}",
                markup=False,
            )


def _live(where: object) -> list[str]:
    from ..store.reader import snapshot

    return list(snapshot(where, None).live_runs)  # type: ignore[arg-type]
