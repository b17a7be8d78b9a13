"""The verification phase (state `verifying`): after the agent stops and before the audit, check
the objective against the working directory and record every check as a `verify` span.

    deliverable   exists? size? hashed and copied into the artifact store (role deliverable)
    criterion     `covers`: every item looked for in the named deliverable; the missing ones kept
                  `command`: run in the working directory with its timeout; exit 0 passes; its
                  output kept as an evidence artifact
    evidence      every file cited by a claim is hashed again: a changed file fails its claim

The gates (`deliverables`, `criteria`, `evidence`) read these spans through the `verifications`
view; nothing here decides the verdict.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from .. import config, constants
from ..errors import AgentTraceError
from ..store.artifact_store import ArtifactStore, NotAFileError, open_regular, sha256_file
from ..store.layout import StoreLayout
from ..supervise.artifacts import event_attributes
from .spec import Criterion, Objective

VERIFY = "agenttrace.verify"
KILL_GRACE_S = 3.0
MAX_COVERS_BYTES = 64 * 1024 * 1024
"""A `covers` criterion reads at most this much of its deliverable."""
OUTPUT_TAIL_CHARS = 4000
POLL_S = 0.1


@dataclass
class Verifier:
    cwd: Path
    artifacts: ArtifactStore
    tracer: trace.Tracer
    parent: otel_context.Context
    run_id: str
    say: Callable[[str], None] = lambda text: None
    stopped: str | None = None
    """Set (to a reason) from a signal handler: the running command is stopped, the rest skipped."""
    protect: list[Path] = field(default_factory=list)
    """Paths `command` criteria see read-only (`agenttrace run --protect-store`: they run code
    the agent wrote)."""

    @classmethod
    def for_run(
        cls,
        root: trace.Span,
        run_id: str,
        cwd: Path,
        settings: config.Settings,
        tracer: trace.Tracer,
        say: Callable[[str], None] | None = None,
    ) -> Verifier:
        """The run (its root span) enters state `verifying`; its checks go under the root."""
        root.add_event("agenttrace.state", {constants.RUN_STATE: "verifying"})
        return cls(
            cwd=cwd,
            artifacts=ArtifactStore(StoreLayout(settings.store), settings.max_artifact_bytes),
            tracer=tracer,
            parent=trace.set_span_in_context(root),
            run_id=run_id,
            say=say or (lambda text: None),
        )

    def verify(
        self, objective: Objective | None, evidence_files: Iterable[str], skip_commands: str | None = None
    ) -> None:
        """Check everything; `skip_commands` (a reason) leaves the `command` criteria unrun.

        Files are read before any command runs, so a check that rewrites files (a formatter, a
        build) cannot change what the agent left: claimed files first, then deliverables, then
        `covers` criteria, then `command` criteria."""
        for path in sorted(set(evidence_files)):
            self._evidence(path)
        if objective is None:
            return
        for deliverable in objective.deliverables:
            self._deliverable(deliverable.path)
        for criterion in objective.criteria:
            if criterion.kind == "covers":
                self._covers(criterion)
        for criterion in objective.criteria:
            if criterion.kind != "command":
                continue
            reason = skip_commands or self.stopped
            if reason:
                self._skipped(criterion, reason)
            else:
                self._command(criterion)

    # -- checks ---------------------------------------------------------------------------------
    def _span(self, name: str, kind: str, attributes: dict[str, Any]) -> trace.Span:
        return self.tracer.start_span(
            name,
            context=self.parent,
            attributes={
                constants.RUN_ID: self.run_id,
                constants.SPAN_TYPE: "verify",
                f"{VERIFY}.type": kind,
                **attributes,
            },
        )

    @staticmethod
    def _end(span: trace.Span, passed: bool, problem: str | None = None) -> None:
        span.set_attribute(f"{VERIFY}.passed", passed)
        if not passed:
            span.set_status(Status(StatusCode.ERROR, problem or "failed"))
        span.end()

    def _deliverable(self, rel: str) -> None:
        span = self._span(f"verify deliverable {rel}", "deliverable", {"file.path": rel})
        path = self.cwd / rel
        problem = self._outside(path)
        try:
            if problem:
                raise NotAFileError(problem)
            stored = self.artifacts.put(path)
        except (FileNotFoundError, NotADirectoryError):
            span.set_attribute(f"{VERIFY}.found", False)
            self._end(span, False, f"{rel} does not exist")
            self.say(f"deliverable {rel}: MISSING")
            return
        except (IsADirectoryError, NotAFileError, PermissionError) as exc:
            why = {
                IsADirectoryError: "is a directory, not a file",
                PermissionError: "cannot be read (permission denied)",
            }.get(type(exc), problem or "is not a regular file (a pipe, socket or device)")
            span.set_attribute(f"{VERIFY}.found", False)
            span.set_attribute(f"{VERIFY}.error", why)
            self._end(span, False, f"{rel} {why}")
            self.say(f"deliverable {rel}: {why}")
            return
        except (OSError, AgentTraceError) as exc:
            span.set_attribute(f"{VERIFY}.found", path.exists())
            span.set_attribute(f"{VERIFY}.error", f"could not be checked: {exc}")
            self._end(span, False, str(exc))
            self.say(f"deliverable {rel}: could not be checked: {exc}")
            return
        span.set_attributes({
            f"{VERIFY}.found": True,
            "file.size": stored.size,
            f"{VERIFY}.sha256": stored.sha256,
        })  # fmt: skip
        span.add_event(
            "agenttrace.artifact", event_attributes(rel, stored.sha256, stored.size, "deliverable")
        )
        self._end(span, stored.size > 0, f"{rel} is empty" if stored.size == 0 else None)
        self.say(f"deliverable {rel}: {stored.size:,} bytes, sha256 {stored.sha256[:12]}")

    def _covers(self, criterion: Criterion) -> None:
        assert criterion.in_ is not None
        span = self._span(
            f"verify criterion {criterion.id}",
            "criterion",
            {
                f"{VERIFY}.id": criterion.id,
                f"{VERIFY}.kind": "covers",
                f"{VERIFY}.items": len(criterion.covers),
                "file.path": criterion.in_,
            },
        )
        try:
            problem = self._outside(self.cwd / criterion.in_)
            if problem:
                raise NotAFileError(problem)
            with open_regular(self.cwd / criterion.in_) as f:
                text = f.read(MAX_COVERS_BYTES).decode("utf-8", "replace")
        except OSError as exc:
            missing = list(criterion.covers)
            why = problem or exc.strerror or str(exc)
            span.set_attribute(f"{VERIFY}.error", f"{criterion.in_}: {why}")
        else:
            missing = [item for item in criterion.covers if not _covered(item, text, criterion.match)]
        span.set_attribute(f"{VERIFY}.missing", json.dumps(missing, ensure_ascii=False))
        found = len(criterion.covers) - len(missing)
        self._end(span, not missing, f"{len(missing)} of {len(criterion.covers)} items not covered")
        self.say(f"criterion {criterion.id}: {found} of {len(criterion.covers)} items in {criterion.in_}")

    def _outside(self, path: Path) -> str | None:
        """Why a deliverable path does not lead to a file inside the working directory (a link
        out of it), or None. Its content is then neither read nor copied."""
        try:
            real = path.resolve()
        except (OSError, RuntimeError):
            return None
        if real != self.cwd.resolve() and not real.is_relative_to(self.cwd.resolve()):
            return "is a link to a file outside the working directory"
        return None

    def _skipped(self, criterion: Criterion, reason: str) -> None:
        span = self._span(
            f"verify criterion {criterion.id}",
            "criterion",
            {
                f"{VERIFY}.id": criterion.id,
                f"{VERIFY}.kind": "command",
                f"{VERIFY}.command": criterion.command or "",
                f"{VERIFY}.skipped": reason,
            },
        )
        self._end(span, False, f"not run: {reason}")
        self.say(f"criterion {criterion.id}: not run ({reason})")

    def _command(self, criterion: Criterion) -> None:
        command = criterion.command or ""
        span = self._span(
            f"verify criterion {criterion.id}",
            "criterion",
            {
                f"{VERIFY}.id": criterion.id,
                f"{VERIFY}.kind": "command",
                f"{VERIFY}.command": command,
                f"{VERIFY}.timeout_s": criterion.timeout_s,
            },
        )
        self.say(f"criterion {criterion.id}: running `{command}` (timeout {criterion.timeout_s:g} s)")
        started = time.monotonic()
        fd, output = tempfile.mkstemp(prefix="verify-", suffix=".log")
        exit_code: int | None = None
        timed_out = False
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    exit_code, timed_out = _run(command, self.cwd, out, criterion.timeout_s, self)
                except OSError as exc:
                    out.write(f"agenttrace: cannot run the command: {exc}\n".encode())
                    exit_code = 127
            try:
                stored = self.artifacts.put(Path(output))
            except (OSError, AgentTraceError) as exc:
                span.set_attribute(f"{VERIFY}.error", f"its output could not be stored: {exc}")
            else:
                span.set_attributes({
                    f"{VERIFY}.output_sha256": stored.sha256,
                    f"{VERIFY}.output_tail": _tail(Path(output)),
                })  # fmt: skip
                span.add_event(
                    "agenttrace.artifact",
                    event_attributes(
                        f"criterion {criterion.id} output", stored.sha256, stored.size, "evidence"
                    ),
                )
        finally:
            with contextlib.suppress(OSError):
                os.unlink(output)
        if self.stopped:
            span.set_attribute(f"{VERIFY}.skipped", f"{self.stopped} while it ran")
        if exit_code is not None:
            span.set_attribute(f"{VERIFY}.exit_code", exit_code)
        span.set_attribute(f"{VERIFY}.timed_out", timed_out)
        passed = exit_code == 0 and not timed_out
        problem = f"exited with code {exit_code}"
        if timed_out:
            problem = f"did not finish within {criterion.timeout_s:g} s"
        self._end(span, passed, None if passed else problem)
        took = time.monotonic() - started
        self.say(f"criterion {criterion.id}: {'passed' if passed else problem} ({took:.1f} s)")

    def _evidence(self, path: str) -> None:
        span = self._span(f"verify evidence {os.path.basename(path)}", "evidence", {"file.path": path})
        try:
            digest = sha256_file(Path(path))
        except NotAFileError:
            span.set_attribute(f"{VERIFY}.found", True)
            span.set_attribute(f"{VERIFY}.error", "is no longer a regular file")
            span.set_attribute(f"{VERIFY}.passed", False)
            span.end()
            return
        except OSError:
            span.set_attribute(f"{VERIFY}.found", False)
            span.set_attribute(f"{VERIFY}.passed", True)  # the claim's copy decides (see the view)
            span.end()
            return
        span.set_attributes({f"{VERIFY}.found": True, f"{VERIFY}.sha256": digest})
        span.set_attribute(f"{VERIFY}.passed", True)
        span.end()


def keep_objective_file(root: trace.Span, objective: Objective, settings: config.Settings) -> None:
    """A copy of the objective file as given, in the artifact store (role objective). The
    objective itself is on the root span; a copy that cannot be made is not an error."""
    if not objective.source:
        return
    try:
        store = ArtifactStore(StoreLayout(settings.store), settings.max_artifact_bytes)
        stored = store.put(Path(objective.source))
    except (OSError, AgentTraceError):
        return
    root.add_event(
        "agenttrace.artifact", event_attributes(objective.source, stored.sha256, stored.size, "objective")
    )


def _covered(item: str, text: str, match: str) -> bool:
    if match == "regex":
        return re.search(item, text, re.MULTILINE) is not None
    return item in text


def _run(command: str, cwd: Path, out: Any, timeout: float, verifier: Verifier) -> tuple[int, bool]:
    """Run `command` with /bin/sh in its own session; (exit code, timed out). On timeout, or
    when the verifier is stopped, its whole process group gets SIGTERM, then SIGKILL; when it
    ends, whatever it left running is killed (its group, and processes that left the group but came
    back to this process, a subreaper under `agenttrace run`): a check must not leave a daemon
    behind that could change the run's record during the audit. With `verifier.protect`, the
    command sees those paths read-only."""
    options: dict[str, Any] = {
        "cwd": cwd, "stdin": subprocess.DEVNULL, "stdout": out, "stderr": subprocess.STDOUT,
        "start_new_session": True,
    }  # fmt: skip
    before = _descendants()
    if verifier.protect:
        from ..supervise.protect import protected_popen

        proc, _ = protected_popen(["/bin/sh", "-c", command], verifier.protect, **options)
    else:
        proc = subprocess.Popen(["/bin/sh", "-c", command], **options)
    try:
        return _wait(proc, timeout, verifier)
    finally:
        _kill_new_descendants(before)


def _descendants() -> set[int]:
    with contextlib.suppress(psutil.Error):
        return {p.pid for p in psutil.Process().children(recursive=True)}
    return set()


def _kill_new_descendants(before: set[int]) -> None:
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children(recursive=True):
            if child.pid not in before:
                with contextlib.suppress(psutil.Error):
                    child.kill()


def _wait(proc: subprocess.Popen[bytes], timeout: float, verifier: Verifier) -> tuple[int, bool]:
    timed_out = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                proc.wait(min(POLL_S, max(0.0, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if verifier.stopped or time.monotonic() >= deadline:
                    raise
    except subprocess.TimeoutExpired:
        timed_out = not verifier.stopped
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    except BaseException:
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    _signal_group(proc.pid, signal.SIGKILL)  # whatever it left behind in its group
    code = proc.returncode
    return (128 - code if code < 0 else code), timed_out


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _tail(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - OUTPUT_TAIL_CHARS))
        return f.read().decode("utf-8", "replace")


__all__ = ["Verifier", "keep_objective_file"]
