"""Which trace belongs to which run, for runs started in this process with `agenttrace.run()`."""

from __future__ import annotations

_TRACE_RUNS: dict[int, str] = {}


def register(trace_id: int, run_id: str) -> None:
    _TRACE_RUNS[trace_id] = run_id


def run_for_trace(trace_id: int) -> str | None:
    return _TRACE_RUNS.get(trace_id)
