"""`agenttrace run -- CMD`: run a command as a recorded, supervised job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .common import StoreOption, handle_errors, print_json, stderr

ON_ORPHANS = ("fail", "kill")


@handle_errors
def run(
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="CMD...", help="The command to run, after `--`.", show_default=False),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Use this run id (default: a new one).", show_default=False)
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout",
            help="Stop the whole process tree after this long (90, 30s, 5m, 1h30m): SIGTERM, then "
            "SIGKILL; the run ends timed_out.",
            show_default=False,
        ),
    ] = None,
    on_orphans: Annotated[
        str,
        typer.Option(
            "--on-orphans",
            help="Processes still alive when the command exits fail the run; `kill` also stops them.",
        ),
    ] = "fail",
    json_: Annotated[
        bool, typer.Option("--json", help="Also print the verdict as one JSON object on stdout.")
    ] = False,
    objective: Annotated[
        Path | None,
        typer.Option(
            "--objective",
            help="A TOML file saying what done means (deliverables, criteria, scope, limits): "
            "checked before the command starts, verified after it exits, audited by the gates "
            "deliverables, criteria, scope and budget.",
            show_default=False,
        ),
    ] = None,
    gates_dir: Annotated[
        Path | None,
        typer.Option(
            "--gates",
            help="Also audit with the gates (*.sql) in this directory: read before the command "
            "starts and recorded with the run, so nothing the agent writes changes them.",
            show_default=False,
        ),
    ] = None,
    protect_store: Annotated[
        bool,
        typer.Option(
            "--protect-store",
            help="Mount the store read-only for the command (a private mount namespace; needs root "
            "or unprivileged user namespaces): the agent cannot touch its own record.",
        ),
    ] = False,
    agent_telemetry: Annotated[
        bool,
        typer.Option(
            "--agent-telemetry/--no-agent-telemetry",
            help="When the command is Claude Code, Codex or Gemini CLI (`claude`, `codex`, `gemini`), "
            "turn on its own OpenTelemetry export (traces, logs, metrics) to the run's receiver: "
            "environment variables, or `-c otel.*` overrides for Codex. Its config files are not touched.",
        ),
    ] = True,
    gpu: Annotated[
        str | None,
        typer.Option(
            "--gpu",
            metavar="DEV[,DEV]",
            help="Lease these GPUs for the run before the command starts: indices (0,1), UUIDs "
            "(GPU-...), or any:N for N free ones. The lease is host-wide (no other agenttrace run "
            "gets them meanwhile, whatever its store); the command sees only them "
            "(CUDA_VISIBLE_DEVICES, NVIDIA_VISIBLE_DEVICES). Needs NVML (an NVIDIA driver).",
            show_default=False,
        ),
    ] = None,
    gpu_wait: Annotated[
        str | None,
        typer.Option(
            "--gpu-wait",
            metavar="DUR",
            help="How long to wait for GPUs another run holds (30s, 10m; 0: fail at once, exit 2). "
            "Default: as long as it takes, saying who holds them.",
            show_default=False,
        ),
    ] = None,
    gpu_interval: Annotated[
        str,
        typer.Option(
            "--gpu-interval",
            metavar="DUR",
            help="Sample every GPU (utilization, memory, power, processes) this often while the "
            "command runs, where NVML is present; Xid errors are caught as they happen.",
        ),
    ] = "1s",
    record: Annotated[
        bool,
        typer.Option(
            "--record",
            help="Record the model traffic: the command's OpenAI, Anthropic and Gemini clients "
            "(OPENAI_BASE_URL, ANTHROPIC_BASE_URL, GOOGLE_GEMINI_BASE_URL, Codex's provider; "
            "AGENTTRACE_LLM_PROXY for any other, upstream AGENTTRACE_LLM_UPSTREAM) go through a "
            "loopback proxy that stores every request and answer, byte for byte (no API key or "
            "token is stored), for `agenttrace replay`.",
        ),
    ] = False,
    replay: Annotated[
        str | None,
        typer.Option(
            "--replay",
            metavar="RUN",
            help="Answer the command's model calls from RUN's recording instead of the model "
            "(see `agenttrace replay`).",
            show_default=False,
        ),
    ] = None,
    then: Annotated[
        str,
        typer.Option(
            "--then",
            metavar="fail|live",
            help="With --replay: at the first request the recording cannot answer, fail the run "
            "(gate `replay`), or go on calling the model from there (`live`, recorded).",
        ),
    ] = "fail",
    from_step: Annotated[
        int | None,
        typer.Option(
            "--from-step",
            metavar="N",
            help="With --replay: the recording answers the first N-1 model calls; from call N on, "
            "the model does (recorded).",
            show_default=False,
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Run CMD as a supervised, recorded job, then audit it.

    Records its process tree, exit code or signal, timeout, orphans and the files it wrote, with
    every span it sends over OTLP; Python programs are instrumented with no code change. At the
    end the run is audited (as `agenttrace audit` does) and the verdict is printed and recorded.

    With --objective, the objective is stored with the run and verified after the command exits
    (state `verifying`): deliverables hashed into the artifact store, `covers` items looked for,
    `command` checks run in this directory, and files cited by claims hashed again.

    Exit status: 0 when the run succeeded (every error gate passed), 1 when it did not, 2 for a
    usage error.

    Example: agenttrace run --timeout 30m --objective objective.toml -- python agent.py --task fix-bug
    """
    from .. import config
    from ..audit.gates import load_gates, store_gates_notice
    from ..errors import ConfigError
    from ..objective.spec import load_objective
    from ..supervise.durations import parse_duration
    from ..supervise.supervisor import Supervisor, command_line, signal_name

    if not command:
        raise ConfigError("no command to run: agenttrace run [OPTIONS] -- CMD [ARGS...]")
    if on_orphans not in ON_ORPHANS:
        raise ConfigError(f"--on-orphans must be one of {', '.join(ON_ORPHANS)}, got {on_orphans!r}")
    seconds = parse_duration(timeout, "--timeout") if timeout is not None else None
    wait_s = parse_duration(gpu_wait, "--gpu-wait", allow_zero=True) if gpu_wait is not None else None
    interval_s = parse_duration(gpu_interval, "--gpu-interval")
    if gpu_wait is not None and gpu is None:
        raise ConfigError("--gpu-wait needs --gpu (the devices to wait for)")
    if then not in ("fail", "live"):
        raise ConfigError(f"--then must be fail or live, got {then!r}")
    if replay is None and (then != "fail" or from_step is not None):
        raise ConfigError("--then and --from-step need --replay RUN (or `agenttrace replay RUN`)")
    if replay is not None and record:
        raise ConfigError("--record and --replay together: a replay records what it serves already")
    if from_step is not None and from_step < 1:
        raise ConfigError(f"--from-step must be 1 or more, got {from_step}")
    settings = config.load(store)  # once, for every layer of the run
    goal = load_objective(objective) if objective is not None else None
    original = None
    if replay is not None:  # the same gates as the run it replays: its `--gates` and the built-ins
        original, gates = _replayed(settings.store, replay, gates_dir)
    else:
        gates = load_gates(gates_dir)  # fixed now, before the agent can write anything
    console = stderr()

    def say(text: str) -> None:
        console.print(f"agenttrace: {text}", markup=False, highlight=False)

    supervisor = Supervisor(
        list(command),
        settings=settings,
        run_id=run_id,
        timeout=seconds,
        on_orphans=on_orphans,  # type: ignore[arg-type]
        objective=goal,
        say=lambda text: say(f"verifying: {text}"),
        gates=gates,
        protect_store=protect_store,
        agent_telemetry=agent_telemetry,
        gpu=gpu,
        gpu_wait=wait_s,
        gpu_interval=interval_s,
        tell=say,
        record=record,
        replay_of=original,
        then_live=then == "live",
        from_step=from_step,
    )
    notice = store_gates_notice(supervisor.settings.store)
    if notice:
        say(notice)
    result = supervisor.run()

    ending = (
        f"was killed by signal {signal_name(result.signal)}"
        if result.signal is not None
        else f"exited with code {result.exit_code}"
    )
    extra = {"timed_out": " after the timeout", "cancelled": " when cancelled"}.get(result.state, "")
    say(f"run {result.run_id}: the command {ending}{extra}; auditing")
    written = sum(not a.deleted for a in result.artifacts)
    deleted = len(result.artifacts) - written
    files = f"{written} file(s) written" + (f", {deleted} deleted" if deleted else "")
    say(f"{result.processes} process(es) · {files} · store {supervisor.settings.store}")
    for orphan in result.orphans:
        fate = "killed" if orphan.killed else "LEFT RUNNING (--on-orphans kill stops them)"
        say(
            f"orphan: pid {orphan.pid} `{command_line(orphan.argv) or '?'}`, {orphan.age_s:.1f} s old, "
            f"still running when the command exited: {fate}"
        )
    diverged = supervisor.llm.diverged
    if diverged is not None:
        say(diverged.message() + (" (going on upstream: --then live)" if then == "live" else ""))
    if result.error:
        supervisor.seal_manifest()
        if json_:
            print_json(_as_json(result, None))
        console.print(f"Error: {result.error}", markup=False, highlight=False)
        raise typer.Exit(2)
    verdict = supervisor.audit(result)
    sending = supervisor.send_verdict(verdict)  # to the OTLP backend, if any: bounded, never fails the run
    from ..render.audit import verdict_table  # imported by the supervisor before the agent started

    stderr(wide=True).print(verdict_table(verdict))
    if json_:
        print_json(_as_json(result, verdict))
    trouble = sending.wait() if sending is not None else None
    if trouble:
        say(trouble)
    sys.stdout.flush()
    sys.stderr.flush()
    supervisor.derive_in_background()
    raise typer.Exit(0 if verdict.succeeded else 1)


def _replayed(store: Path, ref: str, gates_dir: Path | None) -> tuple[str, list[Any]]:
    """The run `--replay RUN` names (an id, a prefix or `last`) and its gate set: the built-in
    gates and the `--gates` gates it recorded, plus any `--gates DIR` given now."""
    from ..analysis import resolve_run
    from ..analysis.derived import run_database
    from ..audit.gates import audit_gates
    from ..store.layout import StoreLayout

    where = StoreLayout(store)
    run_id = resolve_run(where, ref)

    def pick(db: Any) -> list[Any]:
        rows = db.report("recorded_gates", run_id=run_id)
        return audit_gates(rows[0]["recorded_gates"] if rows else None, gates_dir)

    return run_id, run_database(where, run_id, pick, verify=True)


@handle_errors
def replay_command(
    run_ref: Annotated[
        str,
        typer.Argument(
            metavar="RUN", help="The recorded run (`agenttrace run --record`): id, prefix or `last`."
        ),
    ],
    command: Annotated[
        list[str] | None,
        typer.Argument(metavar="CMD...", help="The command to run, after `--`.", show_default=False),
    ] = None,
    from_step: Annotated[
        int | None,
        typer.Option(
            "--from-step",
            metavar="N",
            help="The recording answers the first N-1 model calls; from call N on, the model does.",
            show_default=False,
        ),
    ] = None,
    then: Annotated[
        str,
        typer.Option(
            "--then",
            metavar="fail|live",
            help="At the first request the recording cannot answer: fail the run (gate `replay`), "
            "or go on calling the model from there (`live`).",
        ),
    ] = "fail",
    run_id: Annotated[
        str | None, typer.Option("--run-id", help="Use this run id (default: a new one).", show_default=False)
    ] = None,
    timeout: Annotated[
        str | None,
        typer.Option("--timeout", help="Stop the whole process tree after this long.", show_default=False),
    ] = None,
    json_: Annotated[
        bool, typer.Option("--json", help="Also print the verdict as one JSON object on stdout.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Run CMD again with RUN's recorded model answers: the same tools, inputs and decisions.

    The command's model calls are answered from RUN's recording (`agenttrace run --record`), in
    order, matched on the normalised request (model, messages, tools, parameters; ids, dates and
    the working directory left out). At the first request the recording cannot answer, the report
    names it with the differences, and the run fails (gate `replay`), unless `--then live`. The
    replay is a run of its own (`agenttrace.replay_of` = RUN) with RUN's gates and its own verdict;
    `agenttrace diff RUN LAST` compares the two.

    Exit status: 0 when the run succeeded, 1 when it did not, 2 for a usage error.

    Example: agenttrace replay last -- claude -p "Fix the failing test"
    """
    run(
        command=command,
        run_id=run_id,
        timeout=timeout,
        json_=json_,
        replay=run_ref,
        then=then,
        from_step=from_step,
        store=store,
    )


def _as_json(result: Any, verdict: Any) -> dict[str, Any]:
    """The audit's JSON (DESIGN.md), plus what the supervisor saw."""
    head = (
        verdict.as_json()
        if verdict is not None
        else {
            "run_id": result.run_id,
            "state": result.state,
            "exit": {"code": result.exit_code, "signal": result.signal},
        }
    )
    return head | {
        "processes": result.processes,
        "orphans": [
            {"pid": o.pid, "argv": o.argv, "age_s": round(o.age_s, 3), "span_id": o.span_id}
            | {"killed": o.killed}
            for o in result.orphans
        ],
        "artifacts": [
            {"path": a.path, "size": a.size, "sha256": a.sha256}
            if not a.deleted
            else {"path": a.path, "deleted": True}
            for a in result.artifacts
        ],
    }
