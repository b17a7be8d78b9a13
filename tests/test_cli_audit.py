"""`agenttrace audit` and `agenttrace gates`: each core gate failing and passing on real spans
(through the SDK, or through `agenttrace run` and OTLP), the exact JSON, JUnit, user gates, and
bad input."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from opentelemetry import trace

import agenttrace
from agenttrace.analysis import Database
from agenttrace.analysis.readonly import ensure_read_only
from agenttrace.analysis.resolve import resolve_run
from agenttrace.audit.gates import load_gates, sql_for_query
from agenttrace.store.layout import StoreLayout

CORE = (
    "budget",
    "completion_signal",
    "criteria",
    "deliverables",
    "evidence",
    "exit_status",
    "gpu_guard",
    "integrity",
    "orphan_processes",
    "replay",
    "scope",
    "tool_calls_returned",
    "unfinished_spans",
    "unrecovered_errors",
)
OBJECTIVE_GATES = {
    "budget": "n/a",
    "criteria": "n/a",
    "deliverables": "n/a",
    "evidence": "n/a",
    "scope": "n/a",
}
"""Without an objective or claims, these do not apply."""


def audit(store: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("audit", "last", "--json", "--store", str(store), *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def gate(verdict: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [g for g in verdict["gates"] if g["name"] == name]
    return found


def statuses(verdict: dict[str, Any]) -> dict[str, str]:
    return {g["name"]: g["status"] for g in verdict["gates"]}


def span_id(span: Any) -> str:
    return f"{span.get_span_context().span_id:016x}"


# -- completion_signal: the seed case ----------------------------------------------------------
@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("length", "the last LLM response was cut short (finish reason `length`): the model stopped, "
         "but the answer is incomplete"),
        ("content_filter", "the last LLM response was filtered (finish reason `content_filter`)"),
        ("max_tokens", "the last LLM response was cut short (finish reason `max_tokens`): the model "
         "stopped, but the answer is incomplete"),
        ("refusal", "the model refused in its last response (finish reason `refusal`)"),
        ("model_context_window_exceeded",
         "the last LLM call ran out of context window (`model_context_window_exceeded`)"),
        ("error", "the last LLM call ended in an error (finish reason `error`)"),
    ],
)  # fmt: skip
def test_completion_signal_fails_on_truncation_and_its_kin(
    configured: Path, finish: str, reason: str
) -> None:
    with agenttrace.run("writer"):
        agenttrace.llm("gpt-4o", finish_reason="tool_calls")
        last = agenttrace.llm("claude-sonnet", finish_reason=finish, input_tokens=10, output_tokens=4096)
    code, verdict = audit(configured)
    assert code == 1
    assert gate(verdict, "completion_signal") == {
        "name": "completion_signal",
        "status": "fail",
        "severity": "error",
        "violations": [
            {"reason": reason, "span_id": last, "step": 2, "model": "claude-sonnet", "finish_reason": finish}
        ],
        "recorded": False,
    }
    assert verdict["state"] == "failed"
    assert verdict["reasons"] == [f"completion_signal: {reason}"]


def test_completion_signal_passes_on_a_real_stop(configured: Path) -> None:
    with agenttrace.run("writer"):
        agenttrace.llm("gpt-4o", finish_reason="length")  # an earlier truncation the agent recovered from
        agenttrace.llm("gpt-4o", finish_reason="stop")
    code, verdict = audit(configured)
    assert code == 0
    assert gate(verdict, "completion_signal")["status"] == "pass"
    assert verdict["state"] == "succeeded" and verdict["reasons"] == []


SEED_AGENT = """
import agenttrace
with agenttrace.run("summarizer"):
    agenttrace.llm("gpt-4o", finish_reason="length", input_tokens=900, output_tokens=256)
print("done")
"""


def test_the_seed_case_exit_0_but_the_model_was_cut_off(tmp_path: Path) -> None:
    """The model stopped, the process exited 0, and the run is still not done."""
    store = tmp_path / "store"
    ran = run_cli("run", "--store", str(store), "--", sys.executable, "-c", SEED_AGENT, cwd=tmp_path)
    assert ran.stdout.strip() == "done"
    code, verdict = audit(store)
    assert code == 1
    assert (verdict["state"], verdict["exit"]) == ("failed", {"code": 0, "signal": None})
    assert statuses(verdict)["exit_status"] == "pass"
    assert statuses(verdict)["completion_signal"] == "fail"


# -- exit_status and orphan_processes, through `agenttrace run` --------------------------------
def supervised(tmp_path: Path, *args: str) -> Path:
    store = tmp_path / "store"
    run_cli("run", "--store", str(store), *args, cwd=tmp_path)
    return store


def test_exit_status_fails_on_a_non_zero_exit(tmp_path: Path) -> None:
    code, verdict = audit(supervised(tmp_path, "--", "sh", "-c", "exit 3"))
    assert code == 1
    (violation,) = gate(verdict, "exit_status")["violations"]
    assert violation["reason"] == "the agent exited with code 3"
    assert (violation["exit_code"], violation["signal"], violation["state"]) == (3, None, "failed")
    assert verdict["exit"] == {"code": 3, "signal": None}


def test_exit_status_fails_on_a_timeout(tmp_path: Path) -> None:
    code, verdict = audit(supervised(tmp_path, "--timeout", "1s", "--", "sleep", "30"))
    assert code == 1
    assert verdict["state"] == "timed_out"
    assert [v["reason"] for v in gate(verdict, "exit_status")["violations"]] == [
        "the run timed out: the agent was stopped before it finished"
    ]


def test_exit_status_and_orphans_pass_on_a_clean_exit(tmp_path: Path) -> None:
    code, verdict = audit(supervised(tmp_path, "--", "sh", "-c", "sleep 0.1; exit 0"))
    assert code == 0, verdict
    assert statuses(verdict) == {
        "completion_signal": "n/a",
        "exit_status": "pass",
        "gpu_guard": "n/a",  # no GPU used, none leased
        "integrity": "pass",
        "orphan_processes": "pass",
        "replay": "n/a",  # not a replay
        "tool_calls_returned": "n/a",
        "unfinished_spans": "pass",
        "unrecovered_errors": "pass",
        **OBJECTIVE_GATES,
    }


def test_orphan_processes_fails_on_a_process_left_running(tmp_path: Path) -> None:
    store = supervised(
        tmp_path, "--on-orphans", "kill", "--", "sh", "-c", "sleep 30 >/dev/null 2>&1 & exit 0"
    )
    code, verdict = audit(store)
    assert code == 1
    (violation,) = gate(verdict, "orphan_processes")["violations"]
    assert violation["reason"] == (
        f"process {violation['pid']} (`sleep 30`) was still running when the agent exited"
    )
    assert violation["command_line"] == "sleep 30" and violation["started_by_span"]


# -- tool_calls_returned, unfinished_spans, unrecovered_errors, through the SDK ----------------
def test_a_tool_call_that_never_returned_fails_two_gates(configured: Path) -> None:
    tracer = trace.get_tracer("agent")
    with agenttrace.run("stuck"):
        hung = tracer.start_span(
            "execute_tool deploy",
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "deploy"},
        )
    code, verdict = audit(configured)
    assert code == 1
    assert gate(verdict, "tool_calls_returned")["violations"] == [
        {
            "reason": "tool call `deploy` (step 1) started and never returned",
            "span_id": span_id(hung),
            "step": 1,
            "tool_name": "deploy",
            "tool_call_id": None,
        }
    ]
    assert gate(verdict, "unfinished_spans")["violations"] == [
        {
            "reason": "span `execute_tool deploy` started and never ended",
            "span_id": span_id(hung),
            "name": "execute_tool deploy",
            "parent_span_id": verdict_root(configured),
        }
    ]
    hung.end()


def verdict_root(store: Path) -> str:
    result = run_cli("query", "SELECT root_span_id FROM runs", "--json", "--store", str(store))
    return json.loads(result.stdout)[0]["root_span_id"]


def test_tools_that_return_pass(configured: Path) -> None:
    @agenttrace.tool
    def search(q: str) -> str:
        return q

    with agenttrace.run("fine"):
        search("x")
        agenttrace.llm("gpt-4o", finish_reason="stop")
    code, verdict = audit(configured)
    assert code == 0
    assert statuses(verdict)["tool_calls_returned"] == "pass"
    assert statuses(verdict)["unfinished_spans"] == "pass"


def test_a_last_response_asking_for_a_tool_that_never_ran_fails_completion_signal(configured: Path) -> None:
    with agenttrace.run("gave-up"):
        agenttrace.llm("gpt-4o", finish_reason="tool_calls")
    code, verdict = audit(configured)
    assert code == 1
    (violation,) = gate(verdict, "completion_signal")["violations"]
    assert violation["reason"] == (
        "the last LLM response (step 1) asked for a tool call that never ran: "
        "the run ended without the model's final answer"
    )


def test_a_last_tool_request_whose_tool_ran_still_has_no_final_answer(configured: Path) -> None:
    with agenttrace.run("request-limit"):
        agenttrace.llm("gpt-4o", finish_reason="tool_calls")
        with agenttrace.tool_call("deploy", call_id="call_1"):
            pass
    code, verdict = audit(configured)
    assert code == 1
    (violation,) = gate(verdict, "completion_signal")["violations"]
    assert violation["reason"] == (
        "the last LLM response (step 1) asked for a tool call, and the model never saw its result: "
        "the run ended without the model's final answer"
    )


def test_a_structured_answer_given_as_a_tool_call_passes(configured: Path) -> None:
    """pydantic-ai gives a structured answer as its `final_result` tool call (agent_answer_tools)."""
    with agenttrace.run("structured"):
        call = {"role": "assistant", "parts": [{"type": "tool_call", "name": "final_result", "id": "c1"}]}
        agenttrace.llm("gpt-4o", finish_reason="tool_calls", output_messages=[call])
    code, verdict = audit(configured)
    assert gate(verdict, "completion_signal")["status"] == "pass", verdict["reasons"]
    assert code == 0


LEAVES_ITS_SESSION_OPEN = """\
import sys
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

provider = TracerProvider(resource=Resource.create({"service.name": sys.argv[1]}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
tracer = provider.get_tracer("agent")
session = tracer.start_span("session_loop")  # never ended, so never exported
with tracer.start_as_current_span("session_task.run", context=trace.set_span_in_context(session)):
    pass
provider.shutdown()
sys.exit(int(sys.argv[2]))
"""


@pytest.mark.parametrize(
    ("service", "exit_code", "status"),
    [("codex_exec", 0, "pass"), ("my-agent", 0, "fail"), ("codex_exec", 1, "fail")],
)
def test_a_parent_never_sent_is_excused_only_for_a_known_agent_that_exited_0(
    tmp_path: Path, service: str, exit_code: int, status: str
) -> None:
    """An agent whose spans name a parent it never sent left that span open when its telemetry
    stopped: unfinished work, unless the agent is one known to leave its session spans open at a
    clean exit (agent_unsent_parents: Codex) and it exited 0."""
    (tmp_path / "agent.py").write_text(LEAVES_ITS_SESSION_OPEN)
    store = supervised(tmp_path, "--", sys.executable, "agent.py", service, str(exit_code))
    _, verdict = audit(store)
    found = gate(verdict, "unfinished_spans")
    assert found["status"] == status, found
    if status == "fail":
        (violation,) = found["violations"]
        assert violation["name"] == "session_task.run"
        assert violation["reason"].startswith("span `session_task.run` names a parent (")


@agenttrace.tool
def flaky(attempt: int) -> str:
    if attempt < 2:
        raise TimeoutError("upstream timed out")
    return "ok"


def test_an_error_recovered_by_a_later_success_passes(configured: Path) -> None:
    with agenttrace.run("retrying"):
        for attempt in (1, 2):
            with contextlib.suppress(TimeoutError):
                flaky(attempt)
    code, verdict = audit(configured)
    assert gate(verdict, "unrecovered_errors")["status"] == "pass"
    assert code == 0


def test_an_error_never_recovered_fails(configured: Path) -> None:
    with agenttrace.run("giving-up"):
        with contextlib.suppress(TimeoutError):
            flaky(1)
        agenttrace.llm("gpt-4o", finish_reason="stop")
    code, verdict = audit(configured)
    assert code == 1
    (violation,) = gate(verdict, "unrecovered_errors")["violations"]
    assert violation["reason"] == (
        "the tool flaky failed at step 1 (TimeoutError: upstream timed out) and no later call of it succeeded"
    )
    assert violation["what"] == "tool flaky"


# -- output ------------------------------------------------------------------------------------
def test_human_output_and_junit(configured: Path, tmp_path: Path) -> None:
    with agenttrace.run("writer"):
        agenttrace.llm("gpt-4o", finish_reason="length")
    junit = tmp_path / "audit.xml"
    result = run_cli("audit", "last", "--junit", str(junit), "--store", str(configured))
    assert result.returncode == 1
    assert "completion_signal" in result.stdout and "FAIL" in result.stdout
    assert ": FAILED (no exit code)" in result.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("14", "1", "11")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == set(CORE)
    failure = cases["completion_signal"].find("failure")
    assert failure is not None and "`length`" in (failure.get("message") or "")
    assert cases["exit_status"].find("skipped") is not None


def test_gates_lists_every_gate_and_show_sql_reruns(configured: Path) -> None:
    with agenttrace.run("writer"):
        agenttrace.llm("gpt-4o", finish_reason="length")
    listed = json.loads(run_cli("gates", "--json", "--store", str(configured)).stdout)
    assert [g["name"] for g in listed] == list(CORE)
    assert all(g["description"] and g["severity"] == "error" for g in listed)
    sql = run_cli("audit", "last", "--show-sql", "completion_signal", "--store", str(configured)).stdout
    assert "$run_id" not in sql
    rerun = run_cli("query", sql, "--json", "--store", str(configured))
    assert rerun.returncode == 0, rerun.stderr
    assert [r["finish_reason"] for r in json.loads(rerun.stdout)] == ["length"]
    # Every gate, comments and all, pastes into `agenttrace query`: the functions those two
    # commands call (`--show-sql` prints `sql_for_query`, `query` runs `Database.execute` once
    # `ensure_read_only` lets it), in this process: two commands per gate cost 30 s of the suite.
    run_id = resolve_run(StoreLayout(configured), "last")
    with Database(configured) as db:
        for gate in load_gates():
            shown = sql_for_query(gate, run_id)
            ensure_read_only(shown)
            columns, _ = db.execute(shown)
            assert "reason" in columns, gate.name
    assert [g.name for g in load_gates()] == list(CORE)


# -- user gates (see also test_audit_gates.py) -------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("SELECT span_id FROM spans WHERE run_id = $run_id", "its rows need the column(s) reason"),
        ("SELECT reason, span_id FROM no_such_view WHERE run_id = $run_id", "no_such_view"),
    ],
)
def test_a_broken_gate_is_named_with_exit_2_and_the_builtins_still_work(
    configured: Path, tmp_path: Path, sql: str, problem: str
) -> None:
    with agenttrace.run("ok"):
        agenttrace.llm("gpt-4o", finish_reason="stop")
    broken = tmp_path / "mine"
    broken.mkdir()
    (broken / "bad.sql").write_text(f"-- description: broken on purpose\n{sql}\n")
    result = run_cli("audit", "last", "--gates", str(broken), "--store", str(configured))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: gate {broken / 'bad.sql'}: ") and problem in line
    code, verdict = audit(configured)
    assert code == 0 and len(verdict["gates"]) == len(CORE)


# -- bad input ---------------------------------------------------------------------------------
def test_an_unknown_run(configured: Path) -> None:
    with agenttrace.run("ok"):
        pass
    result = run_cli("audit", "no-such-run", "--store", str(configured))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: no run matches 'no-such-run'")


def test_a_run_in_progress_is_not_done(tmp_path: Path) -> None:
    store = tmp_path / "store"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import agenttrace, time\nwith agenttrace.run('long'):\n    time.sleep(60)"],
        env={**os.environ, "AGENTTRACE_STORE": str(store), "AGENTTRACE_FLUSH_INTERVAL": "0.1"},
    )
    try:
        deadline = time.monotonic() + 30
        while not list((store / "spool").glob("*/*.arrows")) if (store / "spool").exists() else True:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)
        code, verdict = audit(store)
        assert code == 1
        assert verdict["state"] == "running"
        assert verdict["reasons"][0] == "the run is running: it has not ended (still in progress)"
    finally:
        holder.kill()
        holder.wait()


def test_a_corrupt_part_is_audited_with_a_warning(configured: Path) -> None:
    run_id = "20261125T120000-c0de"
    with agenttrace.run("first half", run_id=run_id):
        agenttrace.llm("gpt-4o", finish_reason="stop")
    partition = configured / "spans" / f"run_id={run_id}"
    (first_part,) = partition.glob("*.parquet")
    with agenttrace.run("second half", run_id=run_id):
        agenttrace.llm("gpt-4o", finish_reason="length")
    (second_part,) = set(partition.glob("*.parquet")) - {first_part}
    second_part.write_bytes(second_part.read_bytes()[:-100])
    result = run_cli("audit", run_id, "--json", "--store", str(configured))
    assert result.returncode == 0, result.stderr
    assert f"Warning: skipped corrupt part {second_part}" in result.stderr
    verdict = json.loads(result.stdout)
    assert gate(verdict, "completion_signal")["status"] == "pass", "audited on what could be read"


def test_audit_help() -> None:
    for command in ("audit", "gates"):
        sub = run_cli(command, "--help")
        assert sub.returncode == 0 and "Example:" in sub.stdout
