"""A run's GPU use as `agenttrace show` and `agenttrace step` tell it: the lease, which of the run's
processes used a GPU (how much, when), who else was on a leased GPU, and the devices under a step.

Everything comes from what `agenttrace run` recorded itself (its lease span and its NVML samples,
origin not `agent`), by the `queries/reports/gpu_*.sql` reports. A run without GPU samples costs one
small query (`gpu_seen`: about 1.6 ms over a 20k-span run's derived tables) and gives None; the
lease span is looked for only where a span has its name (reading an attribute of every span costs
more than the rest of the check).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .database import Database
    from .derived import DerivedDatabase


LEASE_SPAN_NAME = "gpu lease"
"""The name `agenttrace run` gives its lease span (`supervise.gpu_work`). Only a hint that there may
be a lease: what is shown is read from spans of type `gpu_lease` that the agent did not send."""


def sampled(db: Database | DerivedDatabase, run_id: str) -> bool:
    """Does the run have NVML samples of `agenttrace run`'s own?"""
    return bool(db.report("gpu_seen", run_id=run_id)[0]["sampled"])


def run_gpu_use(
    db: Database | DerivedDatabase, run_id: str, span_names: Iterable[str] = ()
) -> dict[str, Any] | None:
    """The run's GPU use, or None when it has no GPU samples and none of `span_names` (the names of
    its spans, where the caller has them) is the lease span's:

    - `lease`: one row per leased device (`gpu_lease.sql`: lease span, waited, lost, the device's
      samples, utilization and memory while it was held, Xids and uncorrected ECC errors);
    - `processes`: the run's processes seen on a GPU, one row per process and device, with the
      span of the process in the run's tree where one matches (`gpu_processes.sql`);
    - `intruders`: processes outside the run seen on a leased GPU while it was held
      (`gpu_intruders.sql`, what `gpu_guard` names)."""
    if LEASE_SPAN_NAME not in set(span_names) and not sampled(db, run_id):
        return None
    return {
        "lease": db.report("gpu_lease", run_id=run_id),
        "processes": db.report("gpu_processes", run_id=run_id),
        "intruders": db.report("gpu_intruders", run_id=run_id),
    }


def step_gpu_use(
    db: Database | DerivedDatabase, run_id: str, step: int, children: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The GPU use under step `step`, or None when the run has no GPU samples:

    - `processes`: the GPU use of the step's process `children` (as `step_children` gives them),
      one row per process and device (peak memory, first and last seen);
    - `devices`: the GPUs the run leased or used during the step, with their utilization (min, avg,
      max) and memory over the samples taken during it (`gpu_step.sql`)."""
    if not sampled(db, run_id):
        return None
    under = {c["span_id"] for c in children if c["kind"] == "process"}
    processes = [p for p in db.report("gpu_processes", run_id=run_id) if p["span_id"] in under]
    return {"processes": processes, "devices": db.report("gpu_step", run_id=run_id, step=step)}


__all__ = ["LEASE_SPAN_NAME", "run_gpu_use", "sampled", "step_gpu_use"]
