"""Evaluate gates against one run and decide: the run succeeded only if every error gate passed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, QueryError
from .gates import Gate

if TYPE_CHECKING:
    from ..analysis.database import Database
    from ..analysis.derived import DerivedDatabase

NOT_DONE_STATES = ("running", "unknown", "pending", "verifying")
"""A run in one of these has no ending yet: its audit says so, and fails."""


@dataclass
class GateResult:
    gate: Gate
    status: str
    """pass | fail | n/a"""
    violations: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.gate.name,
            "status": self.status,
            "severity": self.gate.severity,
            "violations": self.violations,
            "recorded": self.gate.recorded,
        }


@dataclass
class Verdict:
    run_id: str
    state: str
    exit_code: int | None
    signal: str | None
    gates: list[GateResult]
    reasons: list[str]
    gates_recorded: bool = False
    """Whether the run recorded its gate set at its start (`agenttrace run` does)."""
    supervised: bool = False
    """Whether a supervisor's manifest covers the run (`agenttrace run` recorded it)."""

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"

    @property
    def unrecorded_gates(self) -> list[str]:
        """Gates evaluated that are not the run's recorded ones (`--gates DIR`, or every gate of a
        run that recorded none)."""
        return [g.gate.name for g in self.gates if not g.gate.recorded and g.gate.source != "builtin"]

    @property
    def updated_gates(self) -> list[str]:
        """Built-in gates whose SQL changed since the run recorded its gate set: audited with this
        version's."""
        if not self.gates_recorded:
            return []
        return [g.gate.name for g in self.gates if not g.gate.recorded and g.gate.source == "builtin"]

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "state": self.state,
            "exit": {"code": self.exit_code, "signal": self.signal},
            "gates": [g.as_json() for g in self.gates],
            "reasons": self.reasons,
            "gates_recorded": self.gates_recorded,
        }


def evaluate(db: Database | DerivedDatabase, gate: Gate, run_id: str) -> GateResult:
    """One gate against one run. Raises ConfigError naming the gate file when its SQL is bad."""
    params = {"run_id": run_id}
    try:
        if gate.applies is not None:
            rows = db.execute(gate.applies, _used(gate.applies, params))[1]
            if not applies(rows):
                return GateResult(gate, "n/a")
        columns, rows = db.execute(gate.sql, _used(gate.sql, params))
    except QueryError as exc:
        raise ConfigError(f"gate {gate.path}: {exc}") from None
    return judge(gate, columns, rows)


def applies(rows: list[tuple[Any, ...]]) -> bool:
    """A gate's `applies` query said yes (its first row's first value is true)."""
    return bool(rows and rows[0][0])


def judge(gate: Gate, columns: list[str], rows: list[tuple[Any, ...]]) -> GateResult:
    """A gate's result from the rows its SQL gave for a run (each row a violation)."""
    missing = [c for c in ("reason", "span_id") if c not in columns]
    if missing:
        raise ConfigError(f"gate {gate.path}: its rows need the column(s) {', '.join(missing)}")
    shown = [i for i, c in enumerate(columns) if not c.startswith("_")]  # `_x`: for ORDER BY only
    violations = [{columns[i]: row[i] for i in shown} for row in rows]
    return GateResult(gate, "fail" if violations else "pass", violations)


def _used(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """DuckDB refuses named parameters a statement does not use."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


def audit(db: Database | DerivedDatabase, run_id: str, gates: list[Gate], online: bool = False) -> Verdict:
    """Evaluate every gate; with `online`, URLs cited as evidence that the run never fetched are
    checked live first (the `evidence` gate accepts a live 2xx)."""
    if online:
        from .online import check_urls

        urls = [row["url"] for row in db.report("evidence_urls", run_id=run_id)]
        db.set_url_checks(check_urls(urls))
    db.materialize()  # a dozen gate queries over the same views: compute them once
    rows = db.report("run_ending", run_id=run_id)
    supervised = db.is_supervised(run_id)
    run = ending(run_id, rows[0] if rows else None, supervised)
    results = [evaluate(db, gate, run_id) for gate in gates]
    return decide(run_id, run, gates, results, supervised)


def ending(run_id: str, row: dict[str, Any] | None, supervised: bool) -> dict[str, Any]:
    """The run's `run_ending` row; for a supervised run whose records are gone (tampered), a failed
    ending. Raises QueryError for a run with no records at all."""
    if row is not None:
        return row
    if supervised:
        return {"state": "failed", "exit_code": None, "signal": None, "recorded_gates": None}
    raise QueryError(f"run {run_id} has no spans to audit")


def decide(
    run_id: str, run: dict[str, Any], gates: list[Gate], results: list[GateResult], supervised: bool
) -> Verdict:
    """The verdict from the run's ending and its gates' results."""
    reasons: list[str] = []
    if run["state"] in NOT_DONE_STATES:
        why = "still in progress" if run["state"] == "running" else "its records stopped without an end"
        reasons.append(f"the run is {run['state']}: it has not ended ({why})")
    for result in results:
        if result.status == "fail" and result.gate.severity == "error":
            reasons += [f"{result.gate.name}: {v['reason']}" for v in result.violations]
    if run["state"] in NOT_DONE_STATES or run["state"] in ("timed_out", "cancelled"):
        state = run["state"]
    else:
        state = "failed" if reasons else "succeeded"
    recorded = any(g.recorded for g in gates) or bool(run.get("recorded_gates"))
    return Verdict(run_id, state, run["exit_code"], run["signal"], results, reasons, recorded, supervised)


__all__ = ["GateResult", "Verdict", "applies", "audit", "decide", "ending", "evaluate", "judge"]
