"""`agenttrace audit RUN` and `agenttrace gates`: is the run really done?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import JsonOption, StoreOption, echo, handle_errors, layout, print_json, stdout, warn

GatesOption = Annotated[
    Path | None,
    typer.Option("--gates", help="Also use the gates (*.sql) in this directory.", show_default=False),
]


@handle_errors
def audit(
    run: Annotated[str, typer.Argument(help="A run id, a unique prefix of one, or `last`.")],
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

    Every gate (SQL in queries/gates/, <store>/gates/, --gates DIR) is evaluated; the run
    succeeded only if every error-severity gate passed.

    Exit status: 0 when it succeeded, 1 when it did not, 2 for a usage error or a broken gate.

    Example: agenttrace audit last --junit audit.xml
    """
    from ..analysis import Database, resolve_run
    from ..audit.gates import load_gates, sql_for_query
    from ..audit.junit import to_junit
    from ..audit.verdict import audit as decide
    from ..errors import ConfigError
    from ..render.audit import verdict_table

    where = layout(store)
    run_id = resolve_run(where, run)
    gates = load_gates(where.root, gates_dir)
    if show_sql is not None:
        chosen = [g for g in gates if g.name == show_sql]
        if not chosen:
            raise ConfigError(f"no gate named {show_sql!r} (see `agenttrace gates`)")
        echo(sql_for_query(chosen[0], run_id))
        return
    with Database(where, runs=[run_id]) as db:
        verdict = decide(db, run_id, gates, online=online)
        warn(db.warnings)
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
    """List the gates an audit runs, with what each checks, its severity and where it comes from.

    Example: agenttrace gates --json
    """
    from rich.table import Table

    from ..audit.gates import load_gates

    found = load_gates(layout(store).root, gates_dir)
    if json_:
        print_json(
            [
                {"name": g.name, "description": g.description, "severity": g.severity, "source": g.source}
                | {"path": str(g.path)}
                for g in found
            ]
        )
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("GATE", "SEVERITY", "FROM", "CHECKS"):
        table.add_column(column)
    for gate in found:
        table.add_row(gate.name, gate.severity, gate.source, gate.description)
    stdout().print(table)
