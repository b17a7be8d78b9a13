"""The supervisor's ledger of a run: every part written for it, with its sha256 and who reported
it (the run's manifest, `store.manifest`), and the verdict checked against what the supervisor
saw itself (DESIGN.md: the audited party has no pen)."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..store.layout import StoreLayout
from ..store.manifest import Manifest, write_manifest

if TYPE_CHECKING:
    from ..audit.verdict import Verdict
    from ..store.writer import PartWritten
    from .run_result import RunResult


class Ledger:
    """The manifest of one run, filled from the writers' `on_part` reports (any thread)."""

    def __init__(self, layout: StoreLayout, run_id: str, supervisor_pid: int) -> None:
        self.layout = layout
        self.manifest = Manifest(run_id, supervisor_pid)
        self._lock = threading.Lock()

    def listener(self, origin: str) -> Callable[[PartWritten], None]:
        """An `on_part` for a writer whose records are `origin`'s (supervisor | agent)."""

        def listen(part: PartWritten) -> None:
            if part.run_id != self.manifest.run_id:
                return
            with self._lock:
                self.manifest.add(self.layout, part.path, part.sha256, part.rows, origin)
                if part.tampered:
                    self.manifest.problems.append(part.tampered)

        return listen

    def note(self, problem: str) -> None:
        with self._lock:
            self.manifest.problems.append(problem)

    def seal(self) -> None:
        """Write the manifest: every part listed so far. Raises StoreError."""
        with self._lock:
            self.manifest.complete = True
            write_manifest(self.layout, self.manifest)

    def copy(self) -> Manifest:
        """The manifest as it is now (parts written later are not in it)."""
        with self._lock:
            return copy.deepcopy(self.manifest)


def what_failed(result: RunResult) -> list[str]:
    """What the supervisor itself saw go wrong with the run (any of it fails the run)."""
    from .run_result import signal_name

    seen = []
    if result.state != "succeeded":
        seen.append(f"the run ended {result.state}")
    if result.signal is not None:
        seen.append(f"the agent was killed by signal {signal_name(result.signal)}")
    elif result.exit_code not in (0, None):
        seen.append(f"the agent exited with code {result.exit_code}")
    if result.orphans:
        seen.append(f"{len(result.orphans)} process(es) were still running when the agent exited")
    return seen


def overruled(verdict: Verdict, seen: list[str]) -> Verdict:
    """A verdict of success that contradicts what the supervisor saw: the run failed, on
    `integrity` (the store was changed under the audit)."""
    from ..audit.verdict import GateResult

    reason = (
        "the stored record says the run succeeded, but the supervisor saw "
        + "; ".join(seen)
        + ": the store was changed under the audit"
    )
    gates = [
        GateResult(g.gate, "fail", [*g.violations, {"reason": reason, "span_id": None}])
        if g.gate.name == "integrity"
        else g
        for g in verdict.gates
    ]
    reasons = [*verdict.reasons, f"integrity: {reason}"]
    return dataclasses.replace(verdict, state="failed", gates=gates, reasons=reasons)


__all__ = ["Ledger", "overruled", "what_failed"]
