"""`agenttrace audit RUN` and `agenttrace gates`: is the run really done?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

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

if TYPE_CHECKING:
    from ..audit.gates import Gate
    from ..audit.verdict import Verdict

GatesOption = Annotated[
    Path | None,
    typer.Option(
        "--gates",
        help="Also use the gates (*.sql) in this directory (a directory the agent cannot write; "
        "the store's gates/ folder is not read).",
        show_default=False,
    ),
]


@handle_errors
def audit(
    run: Annotated[
        str | None,
        typer.Argument(
            metavar="[RUN]",
            help="A run id, a unique prefix of one, or `last` (not with --all).",
            show_default=False,
        ),
    ] = None,
    all_runs: Annotated[
        bool,
        typer.Option("--all", help="Audit every run (with --since: every recent one); one verdict per run."),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="With --all: runs with a record this recent (30m, 12h, 1d, 2w).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
    junit: Annotated[
        Path | None,
        typer.Option("--junit", help="Also write the gates as JUnit XML to this file.", show_default=False),
    ] = None,
    gates_dir: GatesOption = None,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Check URLs cited as evidence live (HEAD, else GET) when the run itself never "
            "fetched them with a 2xx; without it, such a claim fails the evidence gate.",
        ),
    ] = False,
    show_sql: Annotated[
        str | None,
        typer.Option(
            "--show-sql",
            help="Print this gate's SQL with the run filled in (to re-run with `agenttrace query`).",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
    engine: EngineOption = None,
) -> None:
    """Decide whether a run is really done, with reasons and evidence.

    A run recorded by `agenttrace run` is audited with the gate set it recorded before its agent
    started, and its records are checked against the supervisor's manifest (gate `integrity`);
    other runs with the built-in gates. --gates DIR adds gates, marked as not recorded. The run
    succeeded only if every error-severity gate passed.

    Exit status: 0 when it succeeded, 1 when it did not, 2 for a usage error or a broken gate.

    --all audits every run (--since 1d: those with a record in the last day), one verdict per run,
    over one database: exit 0 when every run succeeded, 1 when any did not.

    Example: agenttrace audit last --junit audit.xml
    """
    from ..analysis.engines import on_run, parse_engine
    from ..audit.gates import audit_gates, sql_for_query, store_gates_notice
    from ..audit.junit import to_junit
    from ..audit.verdict import audit as decide
    from ..errors import ConfigError
    from ..render.audit import verdict_table

    where = layout(store)
    chosen_engine = parse_engine(engine)
    if all_runs or since is not None:
        if not all_runs:
            raise ConfigError("--since goes with --all")
        if run is not None:
            raise ConfigError("give a RUN or --all, not both")
        if show_sql is not None or junit is not None or online:
            raise ConfigError("--show-sql, --junit and --online audit one run: not with --all")
        _audit_all(chosen_engine, where, since, gates_dir, json_)
        return
    if run is None:
        raise ConfigError("which run? give a RUN (an id, a prefix or `last`), or --all")
    if chosen_engine.is_duckdb:
        warn([n for n in [store_gates_notice(where.root)] if n])

    def judge(db: Any, run_id: str) -> tuple[list[Gate], Verdict | None, list[str]]:
        rows = db.report("recorded_gates", run_id=run_id)
        chosen = audit_gates(rows[0]["recorded_gates"] if rows else None, gates_dir)
        if show_sql is not None:
            return chosen, None, db.warnings
        return chosen, decide(db, run_id, chosen, online=online), db.warnings

    run_id, (gates, verdict, warnings) = on_run(chosen_engine, where, run, judge, verify=True)
    warn(warnings)
    if show_sql is not None:
        chosen = [g for g in gates if g.name == show_sql]
        if not chosen:
            raise ConfigError(f"no gate named {show_sql!r} (see `agenttrace gates`)")
        echo(sql_for_query(chosen[0], run_id))
        return
    assert verdict is not None
    if junit is not None:
        try:
            junit.write_text(to_junit(verdict), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot write --junit {junit}: {exc.strerror or exc}") from None
    if json_:
        print_json(verdict.as_json())
    else:
        stdout().print(verdict_table(verdict))
    raise typer.Exit(0 if verdict.succeeded else 1)


def _audit_all(engine: Any, where: Any, since: str | None, gates_dir: Path | None, json_: bool) -> None:
    """`audit --all`: every (recent) run's verdict, over one database holding them all."""
    from ..analysis.engines import open_runs, run_ids_since
    from ..audit.fleet import audit_many
    from ..render.audit import verdicts_table
    from ..supervise.durations import parse_age

    cutoff = parse_age(since, "--since") if since is not None else None
    run_ids = run_ids_since(engine, where, cutoff)
    with open_runs(engine, where, run_ids, verify=True) as db:
        verdicts, errors = audit_many(db, run_ids, gates_dir, progress=_progress(len(run_ids)))
        warn(db.warnings)
    if json_:
        print_json(
            {
                "runs": [v.as_json() for v in verdicts]
                + [{"run_id": r, "state": "error", "error": e} for r, e in errors],
                "succeeded": sum(v.succeeded for v in verdicts),
                "failed": sum(not v.succeeded for v in verdicts),
                "errors": len(errors),
            }
        )
    else:
        stdout().print(verdicts_table(verdicts, errors))
    raise typer.Exit(
        0
        if verdicts and all(v.succeeded for v in verdicts) and not errors
        else (1 if verdicts or errors else 0)
    )


def _progress(total: int) -> Any:
    """With 500 runs or more, a line on stderr per gate done (an all-runs audit of a fleet takes a
    while)."""
    from .common import stderr

    def report(done: int, gates: int) -> None:
        if total >= 500:
            stderr().print(f"audit --all: gate {done}/{gates} done over {total} runs", markup=False)

    return report


@handle_errors
def gates(
    json_: JsonOption = False,
    gates_dir: GatesOption = None,
    store: StoreOption = None,
) -> None:
    """List the gates `agenttrace run` fixes for a run (the built-in ones and --gates DIR), with
    what each checks, its severity and where it comes from.

    Example: agenttrace gates --json
    """
    from rich.table import Table

    from ..audit.gates import as_json, load_gates, store_gates_notice

    warn([n for n in [store_gates_notice(layout(store).root)] if n])
    found = load_gates(gates_dir)
    if json_:
        print_json([as_json(g) for g in found])
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("GATE", "SEVERITY", "FROM", "CHECKS"):
        table.add_column(column)
    for gate in found:
        table.add_row(gate.name, gate.severity, gate.source, gate.description)
    stdout().print(table)
