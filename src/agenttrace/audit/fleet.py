"""Many runs audited over one database (`agenttrace audit --all`): each run with its own gate set
(the one it recorded, as `agenttrace audit RUN` uses), the views computed once for all of them,
and each gate asked for many runs at once (`per_run`: on ClickHouse, one query per batch of runs)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, QueryError
from .gates import Gate, audit_gates
from .verdict import GateResult, Verdict, applies, decide, ending, judge

Rows = tuple[list[str], list[tuple[Any, ...]]]


def per_run(db: Any, sql: str, run_ids: Sequence[str], *, gate: str | None = None) -> dict[str, Rows]:
    """`sql` (which reads `$run_id`) for each run: the database's all-runs form of a built-in gate
    when it has one (`gate`: the gate's SQL, whose `applies` `sql` is, or `sql` itself), else its
    batched form, else one query per run. SQL that does not read `$run_id` runs once."""
    if not run_ids:
        return {}
    all_runs = getattr(db, "execute_all_runs", None)
    if all_runs is not None:
        found = all_runs(gate if gate is not None else sql, list(run_ids), applies=gate is not None)
        if found is not None:
            return found
    if "$run_id" not in sql:
        found = db.execute(sql)
        return dict.fromkeys(run_ids, found)
    batched = getattr(db, "execute_per_run", None)
    if batched is not None:
        return batched(sql, list(run_ids))
    return {run_id: db.execute(sql, {"run_id": run_id}) for run_id in run_ids}


def audit_many(
    db: Any,
    run_ids: Sequence[str],
    gates_dir: Path | None,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[Verdict], list[tuple[str, str]]]:
    """(verdicts, (run, why) for each run that could not be audited), in `run_ids` order. Raises
    ConfigError for a broken gate (as `agenttrace audit RUN` does)."""
    verdicts: list[Verdict] = []
    errors: list[tuple[str, str]] = []
    if not run_ids:
        return verdicts, errors
    db.materialize()
    endings = {row["run_id"]: row for row in db.report("run_endings")}
    gate_sets = {r: audit_gates((endings.get(r) or {}).get("recorded_gates"), gates_dir) for r in run_ids}
    results = _evaluate(db, gate_sets, progress)
    for run_id in run_ids:
        try:
            run = ending(run_id, endings.get(run_id), db.is_supervised(run_id))
        except QueryError as exc:
            errors.append((run_id, str(exc)))
            continue
        gates = gate_sets[run_id]
        # a gate shared by many runs' sets was asked once: each run's result names its own gate (a
        # run's recorded gate and the same built-in one differ in `recorded`)
        outcome = [_for(g, results[(run_id, _key(g))]) for g in gates]
        verdicts.append(decide(run_id, run, gates, outcome, db.is_supervised(run_id)))
    return verdicts, errors


def _for(gate: Gate, result: GateResult) -> GateResult:
    return result if result.gate is gate else GateResult(gate, result.status, result.violations)


def _key(gate: Gate) -> tuple[str, str, str | None, str]:
    return (gate.name, gate.sql, gate.applies, gate.severity)


def _evaluate(
    db: Any, gate_sets: dict[str, list[Gate]], progress: Callable[[int, int], None] | None
) -> dict[tuple[str, tuple[str, str, str | None, str]], GateResult]:
    """Every distinct gate, for every run whose set holds it."""
    runs_of: dict[tuple[str, str, str | None, str], tuple[Gate, list[str]]] = {}
    for run_id, gates in gate_sets.items():
        for gate in gates:
            runs_of.setdefault(_key(gate), (gate, []))[1].append(run_id)
    results: dict[tuple[str, tuple[str, str, str | None, str]], GateResult] = {}
    for done, (key, (gate, runs)) in enumerate(runs_of.items(), 1):
        try:
            chosen = runs
            if gate.applies is not None:
                asked = per_run(db, gate.applies, runs, gate=gate.sql)
                chosen = [r for r in runs if applies(asked[r][1])]
                for run_id in runs:
                    if run_id not in chosen:
                        results[(run_id, key)] = GateResult(gate, "n/a")
            for run_id, (columns, rows) in per_run(db, gate.sql, chosen).items():
                results[(run_id, key)] = judge(gate, columns, rows)
        except QueryError as exc:
            raise ConfigError(f"gate {gate.path}: {exc}") from None
        if progress is not None:
            progress(done, len(runs_of))
    return results
