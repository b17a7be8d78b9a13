"""Run a command as a production job: a run with a root span, an embedded OTLP receiver, the
process tree watched, signals forwarded, a timeout enforced, orphans found, and files recorded.

    supervisor = Supervisor(["python", "agent.py"], store=Path(".agenttrace"), timeout=600)
    result = supervisor.run()
    result.state   # succeeded | failed | timed_out | cancelled
    verdict = supervisor.audit(result)
    supervisor.derive_in_background()   # after the verdict is shown

The audited party has no pen (DESIGN.md): the gate set is fixed before the agent starts and
recorded on the run's root span; the agent is not told where the store is (claims go to the
supervisor's endpoint, which records them); every part written for the run by this process is
listed, with its sha256 and who reported it, in the run's manifest, which the audit checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .. import config, constants
from ..capture import environment
from ..capture.redact import redact_argv
from ..errors import AgentTraceError, ConfigError
from ..ids import is_safe_run_id, new_run_id
from ..store.layout import StoreLayout
from . import agent_telemetry, artifacts
from .aftermath import derive_later, import_the_audit
from .agent_env import agent_env
from .claim_desk import CLAIMS_PATH, ClaimDesk
from .gpu_work import GpuWork, belongs_to
from .ledger import Ledger, overruled, what_failed
from .llm_traffic import LlmTraffic
from .process_spans import Orphan, ProcessSpans
from .protect import ProtectionError
from .run_result import RunResult, command_line, signal_name
from .watcher import ProcessWatcher, become_subreaper, listen

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

    from ..audit.evaluations import Sending
    from ..audit.gates import Gate
    from ..audit.verdict import Verdict
    from ..objective.spec import Objective
    from ..otlp.server import OtlpServer

KILL_GRACE_S = 3.0
"""Between SIGTERM and SIGKILL when the tree is stopped (timeout, orphans, second interrupt)."""
PROC_EVENTS_ENV = "AGENTTRACE_PROC_EVENTS"
"""`0` turns off the kernel's process events: the watcher polls /proc alone."""

OrphanPolicy = Literal["fail", "kill"]


class Supervisor:
    def __init__(
        self,
        command: list[str],
        *,
        store: Path | None = None,
        run_id: str | None = None,
        timeout: float | None = None,
        on_orphans: OrphanPolicy = "fail",
        cwd: Path | None = None,
        objective: Objective | None = None,
        say: Callable[[str], None] | None = None,
        gates: list[Gate] | None = None,
        protect_store: bool = False,
        agent_telemetry: bool = True,
        settings: config.Settings | None = None,
        gpu: str | None = None,
        gpu_wait: float | None = None,
        gpu_interval: float = 1.0,
        tell: Callable[[str], None] | None = None,
        record: bool = False,
        replay_of: str | None = None,
        then_live: bool = False,
        from_step: int | None = None,
    ) -> None:
        """`settings`: resolved once by the caller (the CLI) and passed down to every layer of the
        run (its exporter, its receiver, its claims, its verification); else read from `store`
        and the environment here. `gpu`: the `--gpu` lease to take before the agent starts (its
        wait: `gpu_wait` seconds, None for as long as it takes); every GPU is sampled by NVML each
        `gpu_interval` seconds while the agent runs. `tell`: progress lines (waiting for a GPU).
        `record`: the model traffic goes through a recording proxy; `replay_of`: answered from that
        run's recording instead (`then_live`: go on upstream after a divergence, else the run fails
        on `replay`; `from_step`: the recording answers the first N-1 requests only)."""
        if not command:
            raise ConfigError("no command to run: agenttrace run [OPTIONS] -- CMD [ARGS...]")
        if run_id is not None and not is_safe_run_id(run_id):
            raise ConfigError(f"run id {run_id!r} must be 1-128 letters, digits, '.', '_', ':' or '-'")
        self.command = command
        self.settings = settings if settings is not None else config.load(store)
        self.layout = StoreLayout(self.settings.store)
        self.run_id = run_id or new_run_id()
        self.timeout = timeout
        self.on_orphans = on_orphans
        self.cwd = (cwd or Path.cwd()).absolute()
        self.objective = objective
        if gates is None:
            from ..audit.gates import load_gates

            gates = load_gates()
        self.gates = [dataclasses.replace(g, recorded=True) for g in gates]
        """Fixed before the agent starts, recorded on the root span; the run is audited with these."""
        self.protect_store = protect_store
        self.agent_telemetry = agent_telemetry
        """Turn on a known CLI agent's own telemetry (supervise/agent_telemetry.py)."""
        self.ledger = Ledger(self.layout, self.run_id, os.getpid())
        self._desk: ClaimDesk | None = None
        self.gpu = GpuWork(
            self.run_id,
            self.settings.store,
            request=gpu,
            wait_s=gpu_wait,
            interval=gpu_interval,
            tell=tell or (lambda text: None),
        )
        self._server: OtlpServer | None = None
        self.llm = LlmTraffic(
            self.run_id,
            self.settings,
            self.cwd,
            record=record,
            replay_of=replay_of,
            then_live=then_live,
            from_step=from_step,
        )

        self._say = say or (lambda text: None)
        self._started_ns = 0
        self._audit_started_ns = 0
        self._agent_ended_ns: int | None = None
        self._interrupts = 0
        self._tracer = trace.get_tracer("agenttrace.supervisor")
        self._root: Span | None = None
        self._watcher: ProcessWatcher | None = None
        self._last_signal: int = signal.SIGTERM
        self._child_pgid: int | None = None
        """The agent's own process group, when it has one (stdin is not a terminal)."""

    @property
    def root_context(self) -> trace.SpanContext:
        """The run's root span (after `run()`), to hang later records such as the audit under."""
        if self._root is None:
            raise RuntimeError("the run has not started")
        return self._root.get_span_context()

    # -- the run --------------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Set up, run the command, and end the run's record.

        Before the command starts, everything that is about it but that it could change: the gate
        set (fixed by the caller), the environment (git commit and dirty state, packages: its
        `git` commands run while the rest is set up), the files of the working directory, and the
        code that will audit it (imported now: a module imported later could have been rewritten
        by the agent, which runs as the same user).

        With `gpu`, the lease is taken first (GpuError: no NVML, no such device, or still held
        when the wait ran out)."""
        self.llm.load(self.command)  # --replay: the recording, checked before anything starts
        self.gpu.acquire()  # --gpu: may wait for a device; nothing of the run is recorded before
        try:
            taking = environment.Snapshot(argv=self.command, cwd=str(self.cwd))
            try:
                return self._run(taking)
            finally:
                taking.cancel()
        finally:
            self.llm.stop(self._root)
            self.gpu.stop(self._root)  # let the lease go, even where the run failed to start

    def _run(self, taking: environment.Snapshot) -> RunResult:
        from ..audit.gates import RECORD_ATTRIBUTE, record_gates
        from ..capture.api import _finish
        from ..capture.sink import sink_for
        from ..capture.tracing import configure
        from ..otlp.server import OtlpServer

        import_the_audit()
        self.layout.require_writable()
        if self.protect_store:  # before any thread starts: the check forks
            from .protect import protection_available

            why_not = protection_available()
            if why_not is not None:
                raise ConfigError(f"--protect-store is not possible here: {why_not}")

        configure(settings=self.settings)
        sink = sink_for(self.settings.store, self.settings.flush_interval)
        sink.part_listeners.append(self.ledger.listener("supervisor"))
        subreaper = become_subreaper()
        before = artifacts.snapshot(self.cwd, [self.settings.store])
        argv = redact_argv(self.command)
        self._root = self._tracer.start_span(
            os.path.basename(self.command[0]),
            context=otel_context.Context(),
            kind=SpanKind.INTERNAL,
            attributes={
                **taking.result(),
                constants.RUN_ID: self.run_id,
                constants.SPAN_TYPE: "run",
                constants.RUN_NAME: shlex.join(argv)[:200],
                "process.command_line": shlex.join(argv),
                "agenttrace.supervisor.pid": os.getpid(),
                "agenttrace.supervisor.subreaper": subreaper,
                **({"agenttrace.run.timeout_s": self.timeout} if self.timeout else {}),
                RECORD_ATTRIBUTE: record_gates(self.gates),
                **({constants.OBJECTIVE: self.objective.as_json()} if self.objective is not None else {}),
            },
        )
        self._started_ns = time.time_ns()
        if self.objective is not None:
            from ..objective.verification import keep_objective_file

            keep_objective_file(self._root, self.objective, self.settings)
        self._state("running")
        self._desk = ClaimDesk(self.run_id, self._root, self.cwd, self.settings, self._tracer)
        server = OtlpServer(
            self.settings.store,
            host="127.0.0.1",
            port=0,
            run_id=self.run_id,
            on_part=self.ledger.listener("agent"),
            routes={CLAIMS_PATH: self._desk.handle},
            settings=self.settings,
        )
        self._server = server
        if server.receiver.forwarder is not None:  # the verdict goes there too: its code imported now
            from ..audit.evaluations import names_reserved_key

            server.receiver.forwarder.screen = names_reserved_key
        server.start()
        self.gpu.start(self._tracer, self._root, sink.add_samples, self._forward_samples(), self._in_run)
        self.llm.start(self._tracer, self._root)
        result: RunResult | None = None
        try:
            result = self._supervise(server.endpoint)
        finally:
            self.llm.stop(self._root)  # every exchange stored, as a span under the root
            self.gpu.stop(self._root)  # before verification: its checks are not the agent's GPU work
            self._finish_root(result, before)
            _finish(self.run_id, str(self.settings.store), self.settings)
            server.stop()
        return result

    def _supervise(self, endpoint: str) -> RunResult:
        assert self._root is not None
        own_group = not sys.stdin.isatty()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            listening = listen(use_events=os.environ.get(PROC_EVENTS_ENV, "1") != "0")
            try:
                child = self._start(endpoint, own_group)
            except ProtectionError as exc:  # --protect-store could not be set up: nothing ran
                listening.close()
                self._root.set_attribute("process.exit.code", 126)
                return RunResult(self.run_id, "failed", 126, None, error=str(exc))
            except (FileNotFoundError, PermissionError, NotADirectoryError) as exc:
                listening.close()
                code = 127 if isinstance(exc, FileNotFoundError) else 126
                self._root.set_attribute("process.exit.code", code)
                what = "command not found" if code == 127 else "command cannot be run"
                return RunResult(self.run_id, "failed", code, None, error=f"{what}: {self.command[0]}")
            self._child_pgid = child.pid if own_group else None
            self._spans = ProcessSpans(
                self._tracer,
                self.run_id,
                self._root,
                lambda pid: self._watcher.procs.get(pid) if self._watcher is not None else None,
                signal_name,
            )
            watcher = ProcessWatcher(
                child.pid,
                self._spans.started,
                self._spans.ended,
                on_exec=self._spans.exec,
                listening=listening,
            )
            self._watcher = watcher  # before start(): the callbacks look processes up in it
            self._root.set_attribute("agenttrace.watcher.mode", watcher.mode)
            watcher.start()
            state = self._wait(watcher)
            self._agent_ended_ns = time.time_ns()
            child.returncode = 0  # reaped by the watcher; keep Popen from waiting on it again
            root_proc = watcher.root
            self._settle(watcher)
            orphans = self._spans.orphans(watcher)
            if orphans and self.on_orphans == "kill":
                self._stop_tree(watcher, [o.pid for o in orphans])
                for orphan in orphans:
                    orphan.killed = not any(p.pid == orphan.pid for p in watcher.alive())
            watcher.stop()
            for proc in watcher.alive():  # left running (--on-orphans fail): the record says so
                self._spans.still_running(proc)
            if state == "exited":
                failed = root_proc.exit_code != 0 or root_proc.signal is not None or bool(orphans)
                state = "failed" if failed else "succeeded"
            error = None
            if self._interrupts > 1:
                error = "interrupted again while cancelling: the agent's process tree was killed"
            return RunResult(
                self.run_id,
                state,
                root_proc.exit_code,
                root_proc.signal,
                orphans,
                processes=len(watcher.procs),
                error=error,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _wait(self, watcher: ProcessWatcher) -> str:
        """Wait for the command's process; 'exited', 'timed_out' or 'cancelled'."""
        deadline = time.monotonic() + self.timeout if self.timeout else None
        handled = 0
        outcome = "exited"
        while not watcher.root_exited.wait(0.02):
            self.gpu.check()
            if self._interrupts > handled:
                handled = self._interrupts
                outcome = "cancelled"
                if handled == 1:
                    self._state("cancelling")
                    self._forward(watcher, self._last_signal)
                else:
                    self._stop_tree(watcher, grace=None)
            if deadline is not None and time.monotonic() >= deadline and outcome == "exited":
                outcome = "timed_out"
                self._state("timing_out")
                self._stop_tree(watcher)
        return outcome

    # -- signals and stopping ---------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: object) -> None:
        self._last_signal = signum
        self._interrupts += 1

    def _forward(self, watcher: ProcessWatcher, sig: int) -> None:
        """Pass an interrupt on to the agent: to its process group when it has its own (as a
        terminal would), else to its process, except a SIGINT, which the terminal already sent it."""
        if self._child_pgid is not None:
            with _GONE:
                os.killpg(self._child_pgid, sig)
        elif sig != signal.SIGINT:
            with _GONE:
                os.kill(watcher.root_pid, sig)

    def _stop_tree(
        self, watcher: ProcessWatcher, pids: list[int] | None = None, grace: float | None = KILL_GRACE_S
    ) -> None:
        """SIGTERM every live process of the tree (or `pids`), then SIGKILL what is left after
        `grace` seconds; with `grace=None`, SIGKILL at once."""

        def targets() -> list[int]:
            alive = {p.pid for p in watcher.alive()}
            return [p for p in (pids if pids is not None else alive) if p in alive]

        for sig in (signal.SIGTERM, signal.SIGKILL) if grace is not None else (signal.SIGKILL,):
            if sig == signal.SIGKILL and grace:
                deadline = time.monotonic() + grace
                while targets() and time.monotonic() < deadline:
                    time.sleep(0.02)
            if pids is None and self._child_pgid is not None:
                with _GONE:
                    os.killpg(self._child_pgid, sig)
            for pid in targets():
                with _GONE:
                    os.kill(pid, sig)
        deadline = time.monotonic() + 2.0
        while targets() and time.monotonic() < deadline:  # the watcher reaps and records them
            time.sleep(0.01)

    # -- records --------------------------------------------------------------------------------
    def _start(self, endpoint: str, own_group: bool) -> subprocess.Popen[bytes]:
        """Start the agent; with --protect-store, in a mount namespace where the store is read-only
        (recorded on the root span as `agenttrace.run.store_protection`)."""
        assert self._root is not None
        env, argv = self._child_env(endpoint), self.command
        if agent_telemetry.detect(self.command) is not None:
            recipe = agent_telemetry.apply(self.command, env, endpoint) if self.agent_telemetry else None
            if recipe is not None:
                env, argv = recipe.env, recipe.argv
            self._root.set_attribute(agent_telemetry.ATTRIBUTE, recipe.name if recipe is not None else "off")
        env, argv = self.llm.point(env, argv)
        options = {"env": env, "cwd": self.cwd, "process_group": 0 if own_group else None}
        if not self.protect_store:
            return subprocess.Popen(argv, **options)  # type: ignore[call-overload, no-any-return]
        from .protect import protected_popen

        child, mode = protected_popen(argv, [self.settings.store], **options)
        self._root.set_attribute("agenttrace.run.store_protection", mode)
        return child

    def _child_env(self, endpoint: str) -> dict[str, str]:
        assert self._root is not None
        return agent_env(self._root, self.run_id, endpoint, self.settings.flush_interval) | self.gpu.env()

    def _in_run(self, pid: int) -> bool:
        """Is a process seen on a GPU part of the run (asked by the GPU sampler's thread)?"""
        watcher = self._watcher
        if watcher is None:
            return False

        def known(candidate: int) -> bool:
            proc = watcher.procs.get(candidate)
            return proc is not None and proc.alive

        return belongs_to(pid, known, watcher.root_pid, os.getpid())

    def _forward_samples(self) -> Callable[[pa.Table], None] | None:
        """GPU samples go to the OTLP backend the agent's records are forwarded to, as metrics."""
        forwarder = self._server.receiver.forwarder if self._server is not None else None
        if forwarder is None:
            return None
        from ..gpu.samples import to_otlp

        def forward(table: pa.Table) -> None:
            with contextlib.suppress(Exception):
                forwarder.submit(to_otlp(table), "application/x-protobuf", signal="metrics")

        return forward

    # -- the manifest and the verdict -------------------------------------------------------------
    def seal_manifest(self) -> None:
        """Write the run's manifest: every part this process wrote for the run. Raises StoreError."""
        self.ledger.seal()

    def audit(self, result: RunResult) -> Verdict:
        """Audit the finished run with the gates fixed at its start, over the parts its manifest
        lists (held here, not read back from the store), record the verdict, and write the
        manifest again with the verdict's part in it.

        What the supervisor saw itself has the last word: a verdict of success for a run whose
        command it saw fail, or leave processes running, means the store was changed under the
        audit (by a process the agent left behind), and the run fails on `integrity`."""
        from ..audit.record import audit_and_record, record_verdict
        from ..capture.api import _finish

        self._audit_started_ns = time.time_ns()
        try:
            self.ledger.seal()
        except AgentTraceError as exc:  # the agent blocked the manifest's path: audit from memory
            self.ledger.note(f"the run's manifest could not be written: {exc}")
        verdict = audit_and_record(
            self.settings.store, self.run_id, self.root_context, self.gates, manifest=self.ledger.copy(),
            record=False,
        )  # fmt: skip
        seen = what_failed(result)
        if verdict.succeeded and seen:
            verdict = overruled(verdict, seen)
        record_verdict(verdict, self.root_context.trace_id, self.root_context.span_id)
        _finish(self.run_id, str(self.settings.store), self.settings)
        with contextlib.suppress(AgentTraceError):  # already a problem of the verdict just given
            self.ledger.seal()
        return verdict

    def send_verdict(self, verdict: Verdict) -> Sending | None:
        """Start sending the verdict, as GenAI evaluation results under the run's root span, to the
        OTLP backend the run is forwarded to (audit/evaluations.py); None when there is none."""
        forwarder = self._server.receiver.forwarder if self._server is not None else None
        if forwarder is None or self._root is None:
            return None
        from ..audit.evaluations import send

        resource = self._root.resource  # type: ignore[attr-defined]
        return send(forwarder.target, verdict, self.root_context, resource, self._audit_started_ns)

    def derive_in_background(self) -> None:
        """Write the run's derived tables from a detached process, once the verdict is printed
        (`derive_later`). Call after `audit()`."""
        final = self.ledger.copy()  # the sealed manifest, verdict included
        final.complete = True
        derive_later(self.settings.store, self.layout, self.run_id, final)

    def _settle(self, watcher: ProcessWatcher) -> None:
        """Let the watcher catch up: a process forked a moment ago may still be in the middle of
        exec (its argv not yet readable), or about to exit."""
        deadline = time.monotonic() + 0.2
        while True:
            watcher.poll_once()
            young = [p for p in watcher.alive() if time.time_ns() - p.start_ns < 100_000_000]
            if not young or time.monotonic() >= deadline:
                return
            time.sleep(0.02)

    def _verify(self, result: RunResult) -> None:
        """The verification phase: the objective's deliverables and criteria, and every file a
        claim cited, checked after the agent stopped (DESIGN.md, "Run states": verifying)."""
        from ..objective.verification import Verifier

        assert self._root is not None
        cited = self._claimed_files()
        if self.objective is None and not cited:
            return
        skip = {"timed_out": "the run timed out", "cancelled": "the run was cancelled"}.get(result.state)
        verifier = Verifier.for_run(self._root, self.run_id, self.cwd, self.settings, self._tracer, self._say)
        if self.protect_store:  # the checks run code the agent wrote: the store stays out of its reach
            verifier.protect = [self.settings.store]

        def interrupted(signum: int, frame: object) -> None:
            verifier.stopped = f"verification was interrupted ({signal.Signals(signum).name})"

        previous = {sig: signal.signal(sig, interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            verifier.verify(self.objective, cited, skip_commands=skip)
        except Exception as exc:  # the run still ends, with the reason
            result.error = f"verification could not finish: {exc}"
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if verifier.stopped:
            self._say(f"{verifier.stopped}: the remaining checks were not run")

    def _claimed_files(self) -> list[str]:
        """Files the run's claims cited: those the supervisor recorded, and any the agent reported
        in claims of its own over OTLP (read back from the store) inside the working directory,
        to be hashed again."""
        from ..objective.claims import files_cited_in_store, outside_workdir

        recorded = self._desk.cited_files if self._desk is not None else []
        reported: list[str] = []
        if self._server is None or self._server.receiver.counters.spans > 0:
            # Only what came through the receiver can hold the agent's claims: a record put in
            # the store any other way is not in the run's manifest, and fails `integrity`.
            with contextlib.suppress(AgentTraceError, OSError):
                reported = files_cited_in_store(self.layout, self.run_id)
        inside = [p for p in reported if not outside_workdir(Path(p), self.cwd)]
        return sorted(set(recorded) | set(inside))

    def _state(self, state: str) -> None:
        if self._root is not None:
            self._root.add_event("agenttrace.state", {constants.RUN_STATE: state})

    def _finish_root(self, result: RunResult | None, before: dict[str, tuple[int, int]]) -> None:
        root = self._root
        if root is None:
            return
        state = result.state if result is not None else "failed"
        if result is not None:
            if result.exit_code is not None:
                root.set_attribute("process.exit.code", result.exit_code)
            if result.signal is not None:
                root.set_attribute("agenttrace.process.signal", str(result.signal))
            root.set_attribute("agenttrace.run.orphans", len(result.orphans))
            if self._agent_ended_ns is not None:
                root.set_attribute(
                    constants.AGENT_DURATION, round((self._agent_ended_ns - self._started_ns) / 1e9, 3)
                )
            try:  # before verification: what the checks write is not the agent's
                result.artifacts = artifacts.changes(self.cwd, before, [self.settings.store])
            except OSError:
                result.artifacts = []
            for artifact in result.artifacts:
                root.add_event("agenttrace.artifact", artifacts.event(artifact))
            if result.error:
                root.set_status(Status(StatusCode.ERROR, result.error))
            else:
                self._verify(result)
        if state != "succeeded":
            root.set_status(Status(StatusCode.ERROR, f"run {state}"))
        root.set_attribute(constants.RUN_STATE, state)
        self._state(state)
        root.end()


_GONE = contextlib.suppress(ProcessLookupError, PermissionError)
"""Signalling a process that is already gone (or no longer ours) is not an error."""


__all__ = ["Orphan", "RunResult", "Supervisor", "command_line", "signal_name"]
