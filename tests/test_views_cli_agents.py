"""Steps from what the CLI coding agents really send: Claude Code, Codex and Gemini CLI.

Each CLI's captured happy-path session (tests/agents/captures/<cli>/: traces, logs and metrics as
the CLI exported them, OTLP/JSON) goes through the real receiver into a real store, under one run
id as `agenttrace run`'s receiver takes it, and the real views, `agenttrace step` and
`agenttrace audit` read it. The failing variants edit a copy of a capture the way the CLI reports
the failure (tests/agents/README.md, "The variant scenarios"): a shell command that exits 2 while
the model then declares success, a final answer cut off at its token limit.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, query, run_cli

from agenttrace.otlp.receiver import Receiver

CAPTURES = REPO / "tests" / "agents" / "captures"
CLIS = ("claude", "codex", "gemini")
SIGNALS = ("traces", "logs", "metrics")
COMMAND = "echo hello > out.txt"
SHELL_TOOL = {"claude": "Bash", "codex": "exec_command", "gemini": "run_shell_command"}
# The finish reason of each LLM call, normalised (Codex reports none: its response.completed
# event says the response completed).
FINISH = {"claude": ["tool_call", "stop"], "codex": ["stop", "stop"], "gemini": ["stop", "stop", "stop"]}
# Step kinds in start order: the LLM call that asks for the shell command, the command, the final
# answer; Gemini's model-router call comes first and is an LLM call (a step) like the others.
KINDS = {
    "claude": ["llm", "tool", "llm"],
    "codex": ["llm", "tool", "llm"],
    "gemini": ["llm", "llm", "tool", "llm"],
}

Bodies = dict[str, list[dict[str, Any]]]


def capture(cli: str) -> Bodies:
    return {signal: json.loads((CAPTURES / cli / f"{signal}.json").read_text()) for signal in SIGNALS}


def billed(cli: str) -> list[dict[str, Any]]:
    """The model calls the fake server answered and billed, in order."""
    session = json.loads((CAPTURES / cli / "session.json").read_text())
    return [e for e in session["model_server"]["exchanges"] if e.get("usage") and e.get("model")]


def load(store: Path, run_id: str, bodies: Bodies, signals: tuple[str, ...] = SIGNALS) -> None:
    """POST every export request of `bodies` to a real receiver of one supervised run."""
    receiver = Receiver(store, run_id=run_id, flush_interval=0.2)
    try:
        for signal in signals:
            for body in bodies[signal]:
                answer = receiver.handle_http(
                    "POST", f"/v1/{signal}", {"content-type": "application/json"}, json.dumps(body).encode()
                )
                assert answer.status == 200, (signal, answer.status, answer.body)
    finally:
        receiver.close()


def log_records(bodies: Bodies) -> list[dict[str, Any]]:
    return [
        record
        for body in bodies["logs"]
        for resource in body.get("resourceLogs", [])
        for scope in resource.get("scopeLogs", [])
        for record in scope.get("logRecords", [])
    ]


def spans(bodies: Bodies) -> list[dict[str, Any]]:
    return [
        span
        for body in bodies["traces"]
        for resource in body.get("resourceSpans", [])
        for scope in resource.get("scopeSpans", [])
        for span in scope.get("spans", [])
    ]


def attribute(item: dict[str, Any], key: str) -> Any:
    for kv in item.get("attributes", []):
        if kv["key"] == key:
            return next(iter(kv["value"].values()))
    return None


def set_attribute(item: dict[str, Any], key: str, value: dict[str, Any]) -> None:
    """Set attribute `key` to an OTLP AnyValue (`{"stringValue": ...}` and so on)."""
    for kv in item.setdefault("attributes", []):
        if kv["key"] == key:
            kv["value"] = value
            return
    item["attributes"].append({"key": key, "value": value})


def events(bodies: Bodies, name: str, **where: str) -> list[dict[str, Any]]:
    """Log records whose event.name is `name` (and whose attributes have the values given)."""
    return [
        r
        for r in log_records(bodies)
        if attribute(r, "event.name") == name and all(attribute(r, k) == v for k, v in where.items())
    ]


def steps(store: Path, run_id: str) -> list[dict[str, Any]]:
    return query(store, "SELECT * FROM steps WHERE run_id = $r ORDER BY step", {"r": run_id}, runs=[run_id])


def audit(store: Path, run_id: str) -> dict[str, str]:
    result = run_cli("audit", run_id, "--store", str(store), "--json")
    assert result.stdout, result.stderr
    return {gate["name"]: gate["status"] for gate in json.loads(result.stdout)["gates"]}


def root_span(bodies: Bodies) -> Bodies:
    """One plain span over the whole session, standing for the supervisor's root span of an
    `agenttrace run` (`audit` wants a span); not a step."""
    times = [int(r.get("timeUnixNano") or 0) or int(r["observedTimeUnixNano"]) for r in log_records(bodies)]
    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "session",
        "kind": 1,
        "startTimeUnixNano": str(min(times) - 1_000_000),
        "endTimeUnixNano": str(max(times) + 1_000_000),
        "status": {},
    }
    scope = {"scope": {"name": "test"}, "spans": [span]}
    return {"traces": [{"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [scope]}]}]}


def loaded(
    store: Path, cli: str, edit: Callable[[Bodies], None] | None = None, *, logs_only: bool = False
) -> str:
    """Load a (copy of a) capture, edited by `edit`; with `logs_only`, its log records and a root
    span only (no span of the CLI's)."""
    bodies = copy.deepcopy(capture(cli))
    if edit is not None:
        edit(bodies)
    if logs_only:
        bodies["traces"] = root_span(bodies)["traces"]
    run_id = f"{cli}-session"
    load(store, run_id, bodies)
    return run_id


# -- the happy path ----------------------------------------------------------------------------


@pytest.mark.parametrize("cli", CLIS)
def test_llm_calls_and_the_shell_command_are_steps_in_order(store: Path, cli: str) -> None:
    run_id = loaded(store, cli)
    rows = steps(store, run_id)

    assert [r["step"] for r in rows] == list(range(1, len(rows) + 1))
    assert [r["kind"] for r in rows] == KINDS[cli], [(r["step"], r["kind"], r["name"]) for r in rows]
    starts = [r["start_time"] for r in rows]
    assert starts == sorted(starts)

    llm = [r for r in rows if r["kind"] == "llm"]
    assert [(r["model"], r["input_tokens"], r["output_tokens"]) for r in llm] == [
        (e["model"], e["usage"]["input_tokens"], e["usage"]["output_tokens"]) for e in billed(cli)
    ]
    assert [r["finish_reason"] for r in llm] == FINISH[cli]
    assert all(r["ended"] and r["status_code"] != "Error" for r in llm)

    (tool,) = [r for r in rows if r["kind"] == "tool"]
    assert tool["tool_name"] == SHELL_TOOL[cli]
    assert tool["command"] == COMMAND
    assert tool["success"] is True
    assert tool["ended"] and tool["status_code"] != "Error"
    assert tool["tool_call_id"]
    assert COMMAND in tool["input"]
    # one tool call, known from its span and its log events: one step, from both
    assert tool["source"] == "span+log"
    assert all(r["source"] == "span+log" for r in llm)


def test_claude_cost_comes_from_its_api_request_events(store: Path) -> None:
    run_id = loaded(store, "claude")
    costs = [r["cost_usd"] for r in steps(store, run_id) if r["kind"] == "llm"]
    session = json.loads((CAPTURES / "claude" / "session.json").read_text())
    assert all(c and c > 0 for c in costs)
    assert sum(costs) == pytest.approx(session["output"]["total_cost_usd"], rel=1e-6)


def test_codex_exit_code_comes_from_its_tool_output(store: Path) -> None:
    run_id = loaded(store, "codex")
    (tool,) = [r for r in steps(store, run_id) if r["kind"] == "tool"]
    assert tool["exit_code"] == 0
    assert "Process exited with code 0" in tool["output"]


@pytest.mark.parametrize("cli", CLIS)
def test_step_shows_the_command_its_result_and_the_llm_step_that_asked(store: Path, cli: str) -> None:
    run_id = loaded(store, cli)
    n = KINDS[cli].index("tool") + 1
    result = run_cli("step", run_id, str(n), "--store", str(store), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["kind"] == "tool" and answer["tool_name"] == SHELL_TOOL[cli]
    assert COMMAND in json.dumps(answer["input"])
    assert answer["output"] is not None
    assert answer["status"] == "ok"
    assert answer["decided_by"]["step"] == n - 1
    if cli == "gemini":  # its model's output names the tool call id
        assert "asked for this tool call" in answer["decided_by"]["reason"]

    text = run_cli("step", run_id, str(n), "--store", str(store))
    assert text.returncode == 0, text.stderr
    assert COMMAND in text.stdout and f"step {n - 1} asked for it" in text.stdout


@pytest.mark.parametrize("cli", CLIS)
def test_happy_session_passes_completion_tool_and_error_gates(store: Path, cli: str) -> None:
    gates = audit(store, loaded(store, cli))
    assert gates["completion_signal"] == "pass"
    assert gates["tool_calls_returned"] == "pass"
    assert gates["unrecovered_errors"] == "pass"


@pytest.mark.parametrize("cli", CLIS)
def test_log_events_alone_make_the_same_steps(store: Path, cli: str) -> None:
    """Without traces (Gemini sends none by default, Claude only with its beta flag), the log
    events still make every LLM call and the tool call a step."""
    run_id = loaded(store, cli, logs_only=True)
    rows = steps(store, run_id)
    assert [r["kind"] for r in rows] == KINDS[cli]
    assert all(r["source"] == "log" for r in rows)
    llm = [r for r in rows if r["kind"] == "llm"]
    assert [(r["model"], r["input_tokens"], r["output_tokens"]) for r in llm] == [
        (e["model"], e["usage"]["input_tokens"], e["usage"]["output_tokens"]) for e in billed(cli)
    ]
    (tool,) = [r for r in rows if r["kind"] == "tool"]
    assert (tool["tool_name"], tool["command"], tool["success"], tool["ended"]) == (
        SHELL_TOOL[cli],
        COMMAND,
        True,
        True,
    )
    assert audit(store, run_id)["tool_calls_returned"] == "pass"


def test_a_tool_decision_without_a_result_is_a_call_that_never_returned(store: Path) -> None:
    def drop_result(bodies: Bodies) -> None:
        for record in events(bodies, "tool_result"):
            record["attributes"] = [{"key": "event.name", "value": {"stringValue": "dropped"}}]

    run_id = loaded(store, "claude", drop_result, logs_only=True)
    (tool,) = [r for r in steps(store, run_id) if r["kind"] == "tool"]
    assert tool["tool_name"] == "Bash" and not tool["ended"]
    assert audit(store, run_id)["tool_calls_returned"] == "fail"


# -- a shell command that exits 2, then the model declares success ---------------------------


def claude_exit2(bodies: Bodies) -> None:
    (result,) = events(bodies, "tool_result")
    set_attribute(result, "success", {"stringValue": "false"})
    set_attribute(result, "error", {"stringValue": "Shell command failed"})


def codex_exit2(bodies: Bodies) -> None:
    (result,) = events(bodies, "codex.tool_result")
    output = attribute(result, "output")
    assert "Process exited with code 0" in output
    set_attribute(result, "output", {"stringValue": output.replace("code 0", "code 2")})


def gemini_exit2(bodies: Bodies) -> None:
    (result,) = events(bodies, "gemini_cli.tool_call")  # success stays true, as Gemini sends it
    metadata = [
        {"key": "exitCode", "value": {"intValue": 2}},
        {"key": "isError", "value": {"boolValue": True}},
    ]
    set_attribute(result, "metadata", {"kvlistValue": {"values": metadata}})


EXIT2 = {"claude": claude_exit2, "codex": codex_exit2, "gemini": gemini_exit2}


@pytest.mark.parametrize("cli", CLIS)
def test_a_command_that_exits_2_fails_unrecovered_errors(store: Path, cli: str) -> None:
    run_id = loaded(store, cli, EXIT2[cli])
    (tool,) = [r for r in steps(store, run_id) if r["kind"] == "tool"]
    assert tool["status_code"] == "Error"
    assert tool["status_message"]
    if cli != "claude":  # Claude reports success false, but no exit code
        assert tool["exit_code"] == 2
    gates = audit(store, run_id)
    assert gates["unrecovered_errors"] == "fail"
    assert gates["completion_signal"] == "pass"  # the model did declare success


@pytest.mark.parametrize("cli", CLIS)
def test_a_failed_command_known_only_from_log_events_is_an_error_step(store: Path, cli: str) -> None:
    run_id = loaded(store, cli, EXIT2[cli], logs_only=True)
    (tool,) = [r for r in steps(store, run_id) if r["kind"] == "tool"]
    assert tool["status_code"] == "Error" and tool["source"] == "log"
    # a step with no span behind it still counts as a failure no later call recovered
    assert audit(store, run_id)["unrecovered_errors"] == "fail"


# -- a final answer cut off at the token limit -------------------------------------------------


def claude_truncated(bodies: Bodies) -> None:
    last = max(
        (s for s in spans(bodies) if s["name"] == "claude_code.llm_request"),
        key=lambda s: int(s["startTimeUnixNano"]),
    )
    set_attribute(last, "stop_reason", {"stringValue": "max_tokens"})
    set_attribute(
        last, "gen_ai.response.finish_reasons", {"arrayValue": {"values": [{"stringValue": "max_tokens"}]}}
    )


def codex_truncated(bodies: Bodies) -> None:
    last = events(bodies, "codex.sse_event", **{"event.kind": "response.completed"})[-1]
    assert attribute(last, "input_token_count") is not None
    set_attribute(last, "event.kind", {"stringValue": "response.incomplete"})


def gemini_truncated(bodies: Bodies) -> None:
    last = events(bodies, "gemini_cli.api_response")[-1]
    set_attribute(last, "finish_reasons", {"arrayValue": {"values": [{"stringValue": "length"}]}})


TRUNCATED = {"claude": claude_truncated, "codex": codex_truncated, "gemini": gemini_truncated}


@pytest.mark.parametrize("cli", CLIS)
def test_a_final_answer_cut_off_fails_completion_signal(store: Path, cli: str) -> None:
    run_id = loaded(store, cli, TRUNCATED[cli])
    last = [r for r in steps(store, run_id) if r["kind"] == "llm"][-1]
    assert last["finish_reason"] == "length"
    gates = audit(store, run_id)
    assert gates["completion_signal"] == "fail"
    assert gates["tool_calls_returned"] == "pass"


def test_gemini_tool_events_without_call_ids_go_to_their_own_spans(store: Path) -> None:
    """Gemini's tool_call event has no call id and names the batch's schedule_tool_calls span,
    the parent of every tool_call span of the batch: each event goes to the call that ended
    closest to it. A second shell call, 30 ms later in the same batch, exits 2."""
    shift = 30_000_000

    def second_call(bodies: Bodies) -> None:
        (span,) = [s for s in spans(bodies) if s["name"] == "tool_call"]
        twin = copy.deepcopy(span)
        twin["spanId"] = "7cd6afa64abd6630"
        twin["startTimeUnixNano"] = str(int(span["startTimeUnixNano"]) + shift)
        twin["endTimeUnixNano"] = str(int(span["endTimeUnixNano"]) + shift)
        set_attribute(twin, "gen_ai.tool.call_id", {"stringValue": "run_shell_command_second"})
        bodies["traces"][0]["resourceSpans"][0]["scopeSpans"][0]["spans"].append(twin)
        (event,) = events(bodies, "gemini_cli.tool_call")
        later = copy.deepcopy(event)
        later["timeUnixNano"] = str(int(event["timeUnixNano"]) + shift)
        later["observedTimeUnixNano"] = later["timeUnixNano"]
        metadata = [{"key": "exitCode", "value": {"intValue": 2}}]
        set_attribute(later, "metadata", {"kvlistValue": {"values": metadata}})
        bodies["logs"][-1]["resourceLogs"][0]["scopeLogs"][0]["logRecords"].append(later)

    run_id = loaded(store, "gemini", second_call)
    tools = [r for r in steps(store, run_id) if r["kind"] == "tool"]
    assert [(t["tool_call_id"], t["status_code"], t["exit_code"], t["source"]) for t in tools] == [
        ("run_shell_command__run_shell_command_1796137100066_0", "Ok", None, "span+log"),
        ("run_shell_command_second", "Error", 2, "span+log"),
    ]
    assert len([r for r in steps(store, run_id) if r["source"] == "log"]) == 0


def supervisor_spans(bodies: Bodies) -> dict[str, Any]:
    """What `agenttrace run` records around a CLI agent: the run's span (the supervisor's pid),
    the agent's root process under it (the npm shim's `claude.exe`, its parent the supervisor),
    and the shell the Bash tool started under that."""
    times = [int(r.get("timeUnixNano") or 0) or int(r["observedTimeUnixNano"]) for r in log_records(bodies)]
    start, end = min(times) - 5_000_000, max(times) + 5_000_000

    def span(span_id: str, parent: str | None, name: str, attrs: dict[str, str]) -> dict[str, Any]:
        return {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": span_id,
            **({"parentSpanId": parent} if parent else {}),
            "name": name,
            "kind": 1,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()],
            "status": {},
        }

    process = {"agenttrace.span.type": "process", "process.exit.code": "0"}
    scope = {
        "scope": {"name": "agenttrace"},
        "spans": [
            span(
                "a000000000000001",
                None,
                "claude",
                {"agenttrace.span.type": "run", "agenttrace.supervisor.pid": "100"},
            ),
            span(
                "a000000000000002",
                "a000000000000001",
                "process claude.exe",
                {
                    **process,
                    "process.pid": "101",
                    "process.parent_pid": "100",
                    "process.command_line": "claude -p",
                },
            ),
            span(
                "a000000000000003",
                "a000000000000002",
                "process bash",
                {
                    **process,
                    "process.pid": "102",
                    "process.parent_pid": "101",
                    "process.command_line": "bash -c",
                },
            ),
        ],
    }
    return {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [scope]}]}


def test_the_agents_own_process_is_not_a_step(store: Path) -> None:
    def supervised(bodies: Bodies) -> None:
        bodies["traces"].append(supervisor_spans(bodies))

    run_id = loaded(store, "claude", supervised)
    assert [r["kind"] for r in steps(store, run_id)] == KINDS["claude"]


def test_an_agent_that_reports_nothing_has_the_commands_it_ran_as_steps(store: Path) -> None:
    """DESIGN.md: the agent's own root process is a container; the commands a shell agent (one
    that reports no steps of its own) runs directly are its steps."""
    bodies = capture("claude")
    run_id = "silent-session"
    load(store, run_id, {"traces": [supervisor_spans(bodies)], "logs": [], "metrics": []})
    assert [(r["kind"], r["name"]) for r in steps(store, run_id)] == [("process", "process bash")]
