"""Record a verdict in the store: an `audit` span under the run's root, whose state the `runs`
view takes as the run's state. Nothing stored is rewritten: the verdict is a new record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from .. import constants
from .gates import Gate
from .verdict import Verdict

if TYPE_CHECKING:
    from ..store.manifest import Manifest

AUDIT_STATE = "agenttrace.audit.state"
AUDIT_REASONS = "agenttrace.audit.reasons"
AUDIT_GATES = "agenttrace.audit.gates"


def record_verdict(verdict: Verdict, trace_id: int, root_span_id: int) -> None:
    """Add the verdict to the run as a span (type `audit`) under its root span, through the
    process's configured provider (`agenttrace.configure()` or the `agenttrace run` supervisor)."""
    parent = NonRecordingSpan(SpanContext(trace_id, root_span_id, is_remote=False, trace_flags=TraceFlags(1)))
    span = trace.get_tracer("agenttrace.audit").start_span(
        "agenttrace audit",
        context=trace.set_span_in_context(parent),
        attributes={
            constants.RUN_ID: verdict.run_id,
            constants.SPAN_TYPE: "audit",
            AUDIT_STATE: verdict.state,
            AUDIT_REASONS: json.dumps(verdict.reasons),
            AUDIT_GATES: json.dumps({g.gate.name: g.status for g in verdict.gates}),
        },
    )
    if not verdict.succeeded:
        span.set_status(Status(StatusCode.ERROR, f"run {verdict.state}"))
    span.end()


def audit_and_record(
    store: Path,
    run_id: str,
    root: SpanContext,
    gates: list[Gate],
    manifest: Manifest | None = None,
    *,
    record: bool = True,
) -> Verdict:
    """Audit a finished run with `gates`, record the verdict in it, and make that durable. With
    `manifest` (the supervisor's own), the run's parts are checked against it rather than against
    the manifest stored for the run."""
    from ..analysis import Database
    from ..capture.api import _finish
    from ..store.layout import StoreLayout
    from .verdict import audit

    manifests = {run_id: manifest} if manifest is not None else None
    with Database(StoreLayout(store), runs=[run_id], verify=True, manifests=manifests) as db:
        verdict = audit(db, run_id, gates)
    if record:
        record_verdict(verdict, root.trace_id, root.span_id)
        _finish(run_id, str(store))
        if manifest is None:  # the run's last record is in: its derived tables (a cache)
            from ..analysis.derive import derive_run

            derive_run(store, run_id)
    return verdict
