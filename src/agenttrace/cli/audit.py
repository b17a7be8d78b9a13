"""`agenttrace audit RUN` and `agenttrace gates`: is the run really done?"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import JsonOption, StoreOption, echo, handle_errors, layout, print_json, stdout, warn

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
    run: Annotated[str, typer.Argument(metavar="RUN", help="A run id, a unique prefix of one, or `last`.")],
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
) -> None:
    """Decide whether a run is really done, with reasons and evidence.

    A run recorded by `agenttrace run` is audited with the gate set it recorded before its agent
    started, and its records are checked against the supervisor's manifest (gate `integrity`);
    other runs with the built-in gates. --gates DIR adds gates, marked as not recorded. The run
    succeeded only if every error-severity gate passed.

    Exit status: 0 when it succeeded, 1 when it did not, 2 for a usage error or a broken gate.

    Example: agenttrace audit last --junit audit.xml
    """
    from ..analysis import resolve_run
    from ..analysis.derived import run_database
    from ..audit.gates import audit_gates, sql_for_query, store_gates_notice
    from ..audit.junit import to_junit
    from ..audit.verdict import audit as decide
    from ..errors import ConfigError
    from ..render.audit import verdict_table

    where = layout(store)
    run_id = resolve_run(where, run)
    warn([n for n in [store_gates_notice(where.root)] if n])

    def judge(db: Any) -> tuple[list[Gate], Verdict | None, list[str]]:
        rows = db.report("recorded_gates", run_id=run_id)
        chosen = audit_gates(rows[0]["recorded_gates"] if rows else None, gates_dir)
        if show_sql is not None:
            return chosen, None, db.warnings
        return chosen, decide(db, run_id, chosen, online=online), db.warnings

    gates, verdict, warnings = run_database(where, run_id, judge, verify=True)
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
