"""The three real CLI coding agents run offline against their fake model servers, telemetry on.

Not part of the default test run (the name does not match `test_*.py`); run it with

    .venv/bin/python -m pytest tests/agents/check_cli_agents_offline.py -v -s

It installs the CLIs first with `make agents` (fast when they are installed). Nothing here is
skipped: a CLI that cannot be installed or run fails its test with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_agents import CLIS, REPO, AgentRun, installed_version, run_cli_agent
from otlp_capture import OtlpCaptureServer, attributes

TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def installed() -> Iterator[None]:
    """`make agents`, once; fails every test with npm's output when it cannot install."""
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["make", "--no-print-directory", "agents"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.fail(f"`make agents` could not run: {exc}", pytrace=False)
    TIMINGS["install"] = time.monotonic() - started
    if result.returncode != 0:
        pytest.fail(
            f"`make agents` failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}",
            pytrace=False,
        )
    yield
    print("\ntimings (s):", json.dumps({k: round(v, 2) for k, v in TIMINGS.items()}))


@pytest.fixture
def otlp() -> Iterator[OtlpCaptureServer]:
    with OtlpCaptureServer() as server:
        yield server


def _happy_session(name: str, tmp_path: Path, otlp: OtlpCaptureServer) -> AgentRun:
    workdir = tmp_path / "work"
    run = run_cli_agent(name, "happy", workdir, otlp.url, timeout=240)
    TIMINGS[name] = run.duration_s
    time.sleep(0.3)  # an export still in flight when the CLI exited
    assert run.returncode == 0, run.describe()
    assert (workdir / "out.txt").read_text() == "hello\n", run.describe()
    assert [e.kind for e in run.server.model_turns()] == ["tool_call", "final"], run.describe()
    assert run.server.model_turns()[0].tool_command == "echo hello > out.txt"
    assert not [e.summary() for e in run.server.requests if e.kind in ("error", "not_found")], run.describe()
    assert otlp.signals() == {"traces", "logs", "metrics"}, (otlp.counts(), run.describe())
    assert not [c.to_json() for c in otlp.captures if c.error]
    return run


def _events(otlp: OtlpCaptureServer, name: str) -> list[dict[str, object]]:
    """Attributes of the log records whose `event.name` is `name`."""
    return [a for r in otlp.log_records() if (a := attributes(r.get("attributes"))).get("event.name") == name]


def _spans(otlp: OtlpCaptureServer, name: str) -> list[dict[str, object]]:
    return [attributes(s.get("attributes")) for s in otlp.spans() if s["name"] == name]


def test_versions_are_the_pinned_ones() -> None:
    pins = json.loads((Path(__file__).parent / "package.json").read_text())["dependencies"]
    from cli_agents import PACKAGES

    assert {name: installed_version(name) for name in CLIS} == {name: pins[PACKAGES[name]] for name in CLIS}


def test_claude_code(tmp_path: Path, otlp: OtlpCaptureServer) -> None:
    run = _happy_session("claude", tmp_path, otlp)
    assert run.output["subtype"] == "success" and run.output["is_error"] is False, run.describe()
    llm = _spans(otlp, "claude_code.llm_request")
    assert [s["stop_reason"] for s in llm] == ["tool_use", "end_turn"]
    billed = run.server.billed()
    assert sum(int(s["input_tokens"]) for s in llm) == billed["input_tokens"]
    assert sum(int(s["output_tokens"]) for s in llm) == billed["output_tokens"]
    (tool,) = _spans(otlp, "claude_code.tool")
    assert (tool["tool_name"], tool["full_command"]) == ("Bash", "echo hello > out.txt")
    (result,) = _events(otlp, "tool_result")
    assert result["success"] == "true" and result["tool_name"] == "Bash"
    assert sum(int(e["input_tokens"]) for e in _events(otlp, "api_request")) == billed["input_tokens"]
    assert {m["name"] for m in otlp.metrics()} >= {"claude_code.token.usage", "claude_code.cost.usage"}


def test_codex(tmp_path: Path, otlp: OtlpCaptureServer) -> None:
    run = _happy_session("codex", tmp_path, otlp)
    kinds = [event.get("type") for event in run.output]
    assert "turn.completed" in kinds and "turn.failed" not in kinds, run.describe()
    billed = run.server.billed()
    completed = [e for e in _events(otlp, "codex.sse_event") if "input_token_count" in e]
    assert sum(int(e["input_token_count"]) for e in completed) == billed["input_tokens"]
    assert sum(int(e["output_token_count"]) for e in completed) == billed["output_tokens"]
    (result,) = _events(otlp, "codex.tool_result")
    assert result["tool_name"] == "exec_command" and result["success"] == "true"
    assert json.loads(str(result["arguments"])) == {"cmd": "echo hello > out.txt"}
    assert len(_spans(otlp, "codex.sampling")) == 2
    assert len(_spans(otlp, "exec_command")) == 1
    assert {m["name"] for m in otlp.metrics()} >= {"codex.tool.call", "codex.turn.token_usage"}


def test_gemini_cli(tmp_path: Path, otlp: OtlpCaptureServer) -> None:
    run = _happy_session("gemini", tmp_path, otlp)
    assert run.output["response"] == "I wrote hello to out.txt. Done.", run.describe()
    assert [e.kind for e in run.server.requests if e.kind == "router"] == ["router"], run.describe()
    billed = run.server.billed()  # the model router's call too: Gemini CLI counts it as an LLM call
    llm = _spans(otlp, "llm_call")
    assert len(llm) == 3
    assert sum(int(s["gen_ai.usage.input_tokens"]) for s in llm) == billed["input_tokens"]
    responses = _events(otlp, "gemini_cli.api_response")
    assert sum(int(e["input_token_count"]) for e in responses) == billed["input_tokens"]
    assert sorted(str(e["role"]) for e in responses) == ["main", "main", "utility_router"]
    (tool,) = _spans(otlp, "tool_call")
    assert tool["gen_ai.tool.name"] == "run_shell_command"
    (call,) = _events(otlp, "gemini_cli.tool_call")
    assert (
        call["success"] is True
        and json.loads(str(call["function_args"]))["command"] == "echo hello > out.txt"
    )
    assert {m["name"] for m in otlp.metrics()} >= {"gemini_cli.token.usage", "gemini_cli.tool.call.count"}


def _variant(name: str, scenario: str, tmp_path: Path, otlp: OtlpCaptureServer) -> AgentRun:
    workdir = tmp_path / "work"
    run = run_cli_agent(name, scenario, workdir, otlp.url, timeout=240)
    TIMINGS[f"{name}/{scenario}"] = run.duration_s
    time.sleep(0.3)
    assert (workdir / "out.txt").read_text() == "hello\n", run.describe()
    kinds = [e.kind for e in run.server.model_turns()]
    assert kinds[0] == "tool_call" and len(kinds) >= 2, run.describe()
    return run


@pytest.mark.parametrize("name", CLIS)
def test_cut_off_answer(name: str, tmp_path: Path, otlp: OtlpCaptureServer) -> None:
    """The scripted model's final answer stops at max tokens. What each CLI does about it."""
    run = _variant(name, "truncated", tmp_path, otlp)
    kinds = [e.kind for e in run.server.model_turns()]
    if name == "claude":
        # Claude Code asks the model to resume three times, then gives up: exit 1, is_error.
        assert kinds == ["tool_call"] + ["truncated"] * 4, run.describe()
        assert run.returncode == 1 and run.output["is_error"] is True, run.describe()
        assert run.output["api_error"] == "max_output_tokens", run.describe()
        stops = [s["stop_reason"] for s in _spans(otlp, "claude_code.llm_request")]
        assert stops == ["tool_use"] + ["max_tokens"] * 4
    elif name == "codex":
        # Codex fails the turn and exits 1, often before its exporters flush (telemetry lost).
        assert kinds == ["tool_call", "truncated"], run.describe()
        assert run.returncode == 1, run.describe()
        assert {
            "type": "turn.failed",
            "error": {"message": "Incomplete response returned, reason: max_output_tokens"},
        } in run.output
    else:
        # Gemini CLI prints the cut-off answer and exits 0; its logs say finish reason "length".
        assert kinds == ["tool_call", "truncated"], run.describe()
        assert run.returncode == 0 and run.output["response"] == run.server.scenario.final_answer, (
            run.describe()
        )
        reasons = [e["finish_reasons"] for e in _events(otlp, "gemini_cli.api_response")]
        assert reasons[-1] == ["length"], reasons


@pytest.mark.parametrize("name", CLIS)
def test_failed_command_then_success_claimed(name: str, tmp_path: Path, otlp: OtlpCaptureServer) -> None:
    """The shell command exits 2; the model then says it succeeded. All three CLIs exit 0; what
    their telemetry says about the failed command differs."""
    run = _variant(name, "exit2", tmp_path, otlp)
    assert [e.kind for e in run.server.model_turns()] == ["tool_call", "final"], run.describe()
    assert run.returncode == 0, run.describe()
    if name == "claude":
        (result,) = _events(otlp, "tool_result")
        assert (result["success"], result["error"]) == ("false", "Shell command failed")  # no exit code
    elif name == "codex":
        (result,) = _events(otlp, "codex.tool_result")
        assert result["success"] == "true"  # sic: the exit code is only in the output text
        assert "Process exited with code 2" in str(result["output"])
        (item,) = [
            e["item"]
            for e in run.output
            if e.get("type") == "item.completed" and e["item"]["type"] == "command_execution"
        ]
        assert item["exit_code"] == 2
    else:
        (call,) = _events(otlp, "gemini_cli.tool_call")
        assert call["success"] is True  # sic: the exit code is in `metadata`
        assert json.loads(str(call["metadata"])) == {"exitCode": 2, "isError": True}


def test_capture_server_decodes_gzip_protobuf(otlp: OtlpCaptureServer) -> None:
    """The capture server itself: the Python SDK's OTLP/HTTP exporter, protobuf and gzip."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    exporter = OTLPSpanExporter(endpoint=f"{otlp.url}/v1/traces", compression=Compression.Gzip)
    provider = TracerProvider(resource=Resource.create({"service.name": "capture-check"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("check").start_as_current_span("hello") as span:
        span.set_attribute("answer", 42)
        trace_id = format(span.get_span_context().trace_id, "032x")
    provider.shutdown()
    (capture,) = otlp.of("traces")
    assert capture.headers["content-encoding"] == "gzip"
    (span_json,) = otlp.spans()
    assert (span_json["name"], span_json["traceId"]) == ("hello", trace_id)
    assert attributes(span_json["attributes"]) == {"answer": 42}
    assert span_json["resource"]["service.name"] == "capture-check"
