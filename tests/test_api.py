"""The Python API as an agent author uses it: run, step, tool, tool_call, llm."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import query

import agenttrace

SECRET = "sk-live-4f9c2b7e1d8a6c3f5e0b9a7d"


def root_attributes(store: Path, run_id: str) -> dict[str, str]:
    rows = query(
        store, "SELECT attributes FROM spans WHERE run_id = $r AND parent_span_id IS NULL", {"r": run_id}
    )
    return dict(rows[0]["attributes"])


def test_run_records_the_environment_without_secret_values(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for cmd in (
        ["init", "-q"],
        ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "x"],
    ):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    monkeypatch.chdir(repo)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setattr(
        sys, "argv", ["agent.py", "--api-key", SECRET, f"--token={SECRET}", "--task", "triage"]
    )

    with agenttrace.run("env-agent") as run:
        pass

    attrs = root_attributes(configured, run.id)
    assert attrs["agenttrace.run.id"] == run.id and attrs["agenttrace.run.name"] == "env-agent"
    assert json.loads(attrs["process.command_args"]) == [
        "agent.py",
        "--api-key",
        "[REDACTED]",
        "--token=[REDACTED]",
        "--task",
        "triage",
    ]
    assert attrs["process.working_directory"] == str(repo)
    assert attrs["vcs.ref.head.revision"] == commit and attrs["agenttrace.git.dirty"] == "false"
    assert attrs["process.runtime.version"] == ".".join(map(str, sys.version_info[:3]))
    assert "agenttrace_audit" in json.loads(attrs["agenttrace.python.packages"])  # the distribution
    assert "OPENAI_API_KEY" in json.loads(attrs["agenttrace.env.names"])
    stored = b"".join(p.read_bytes() for p in configured.rglob("*") if p.is_file())
    assert SECRET.encode() not in stored


def test_dirty_working_tree_is_flagged(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "f.txt").write_text("a")
    for cmd in (
        ["init", "-q"],
        ["add", "f.txt"],
        ["-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", *cmd], cwd=repo, check=True)
    (repo / "f.txt").write_text("changed")
    monkeypatch.chdir(repo)
    with agenttrace.run("dirty") as run:
        pass
    assert root_attributes(configured, run.id)["agenttrace.git.dirty"] == "true"


def test_steps_tools_and_llm_calls_nest_under_the_run(configured: Path) -> None:
    @agenttrace.tool
    def word_count(text: str, lower: bool = True) -> int:
        """Count the words in a text."""
        return len(text.split())

    with agenttrace.run("nesting") as run, agenttrace.step("analyse", kind="agent"):
        assert word_count("a b c") == 3
        agenttrace.llm("gpt-4o", input_tokens=5, output_tokens=2, finish_reason="stop")

    rows = query(
        configured,
        "SELECT s.name, p.name AS parent, st.kind, s.attributes FROM spans s "
        "LEFT JOIN spans p ON p.span_id = s.parent_span_id LEFT JOIN steps st ON st.span_id = s.span_id "
        "WHERE s.run_id = $r ORDER BY s.start_time",
        {"r": run.id},
    )
    assert [(r["name"], r["parent"], r["kind"]) for r in rows] == [
        ("nesting", None, None),
        ("analyse", "nesting", None),  # an agent step holding the calls: a container
        ("execute_tool word_count", "analyse", "tool"),
        ("chat gpt-4o", "analyse", "llm"),
    ]
    tool = dict(rows[2]["attributes"])
    assert tool["gen_ai.operation.name"] == "execute_tool" and tool["gen_ai.tool.name"] == "word_count"
    assert json.loads(tool["gen_ai.tool.call.arguments"]) == {"text": "a b c", "lower": True}
    assert tool["gen_ai.tool.call.result"] == "3"
    assert tool["gen_ai.tool.description"] == "Count the words in a text."


def test_tool_exception_is_recorded_and_reraised(configured: Path) -> None:
    @agenttrace.tool(name="fetch_url")
    def fetch(url: str) -> str:
        raise ConnectionError(f"cannot reach {url}")

    with agenttrace.run("failing-tool") as run, pytest.raises(ConnectionError, match="cannot reach http://x"):
        fetch("http://x")

    rows = query(
        configured,
        "SELECT status_code, status_message, attributes['error.type'] AS error_type, "
        "events[1].Name AS event, attributes['gen_ai.tool.call.result'] AS result "
        "FROM spans WHERE run_id = $r AND name = 'execute_tool fetch_url'",
        {"r": run.id},
    )
    assert rows == [
        {
            "status_code": "Error",
            "status_message": "ConnectionError: cannot reach http://x",
            "error_type": "ConnectionError",
            "event": "exception",
            "result": None,
        }
    ]


def test_async_tools_are_traced(configured: Path) -> None:
    @agenttrace.tool
    async def lookup(key: str) -> dict[str, str]:
        await asyncio.sleep(0)
        return {"key": key, "value": "v"}

    with agenttrace.run("async") as run:
        assert asyncio.run(lookup("k")) == {"key": "k", "value": "v"}
    rows = query(configured, "SELECT tool_name, input, output FROM steps WHERE run_id = $r", {"r": run.id})
    assert rows == [{"tool_name": "lookup", "input": '{"key": "k"}', "output": '{"key": "k", "value": "v"}'}]


def test_tool_call_links_the_model_given_id(configured: Path) -> None:
    with (
        agenttrace.run("ids") as run,
        agenttrace.tool_call("grep", call_id="call_9", arguments={"pattern": "TODO"}) as call,
    ):
        call.set_result(["a.py:3"])
    rows = query(configured, "SELECT tool_call_id, input, output FROM steps WHERE run_id = $r", {"r": run.id})
    assert rows == [{"tool_call_id": "call_9", "input": '{"pattern": "TODO"}', "output": '["a.py:3"]'}]


def test_llm_records_an_uninstrumented_call(configured: Path) -> None:
    with agenttrace.run("llm") as run:
        span_id = agenttrace.llm(
            "claude-x",
            provider="anthropic",
            input_messages=[{"role": "system", "content": "be brief"}, "list the files"],
            output_messages=[
                {
                    "role": "assistant",
                    "content": "",
                    "tool_calls": [
                        {
                            "id": "toolu_1",
                            "type": "function",
                            "function": {"name": "ls", "arguments": '{"path": "."}'},
                        }
                    ],
                }
            ],
            finish_reason="tool_use",
            input_tokens=120,
            output_tokens=30,
            response_id="msg_1",
            start_time=1_700_000_000_000_000_000,
            end_time=1_700_000_001_500_000_000,
        )
    rows = query(configured, "SELECT * FROM steps WHERE run_id = $r", {"r": run.id})
    assert len(rows) == 1
    step = rows[0]
    assert step["span_id"] == span_id
    assert (step["kind"], step["model"], step["provider"]) == ("llm", "claude-x", "anthropic")
    assert (step["finish_reason"], step["finish_reason_raw"]) == ("tool_call", "tool_use")
    assert (step["input_tokens"], step["output_tokens"], step["duration_ms"]) == (120, 30, 1500.0)
    assert json.loads(step["input"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "list the files"}]},
    ]
    assert json.loads(step["output"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "toolu_1", "name": "ls", "arguments": {"path": "."}}],
        }
    ]


def test_llm_error_is_recorded(configured: Path) -> None:
    with agenttrace.run("llm-error") as run:
        agenttrace.llm("gpt-4o", error="rate_limit_exceeded", finish_reason="error")
    rows = query(configured, "SELECT status_code, finish_reason FROM steps WHERE run_id = $r", {"r": run.id})
    assert rows == [{"status_code": "Error", "finish_reason": "error"}]


def test_large_payloads_are_truncated_with_a_marker(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTRACE_MAX_ATTRIBUTE_BYTES", "100")

    @agenttrace.tool
    def dump() -> str:
        return "z" * 10_000

    with agenttrace.run("big") as run:
        dump()
    output = query(configured, "SELECT output FROM steps WHERE run_id = $r", {"r": run.id})[0]["output"]
    assert output.startswith("zzz") and output.endswith("…[truncated by agenttrace]")
    assert len(output.encode()) < 200


def test_a_failing_run_is_failed_and_an_interrupted_one_cancelled(configured: Path) -> None:
    with pytest.raises(ValueError), agenttrace.run("boom", run_id="run-boom"):
        raise ValueError("bad plan")
    with pytest.raises(KeyboardInterrupt), agenttrace.run("stopped", run_id="run-stopped"):
        raise KeyboardInterrupt
    with agenttrace.run("fine", run_id="run-fine"):
        pass
    rows = query(configured, "SELECT run_id, state, status_message FROM runs ORDER BY run_id")
    assert rows == [
        {"run_id": "run-boom", "state": "failed", "status_message": "ValueError: bad plan"},
        {"run_id": "run-fine", "state": "succeeded", "status_message": None},
        {"run_id": "run-stopped", "state": "cancelled", "status_message": "KeyboardInterrupt: "},
    ]


def test_runs_are_sealed_into_parquet_when_they_end(configured: Path) -> None:
    with agenttrace.run("sealed") as run, agenttrace.step("s"):
        pass
    assert list((configured / "spans" / f"run_id={run.id}").glob("part-*.parquet"))
    assert not (configured / "spool" / run.id).exists()


def test_bad_run_id_is_refused(configured: Path) -> None:
    with (
        pytest.raises(agenttrace.ConfigError, match=r"run id '\.\./x' must be"),
        agenttrace.run("x", run_id="../x"),
    ):
        pass


def test_run_uses_the_store_it_is_given(configured: Path, tmp_path: Path) -> None:
    other = tmp_path / "other-store"
    with agenttrace.run("elsewhere", store=str(other)) as run:
        pass
    assert run.store == str(other)
    assert query(other, "SELECT name FROM runs") == [{"name": "elsewhere"}]
    assert not (configured / "spans" / f"run_id={run.id}").exists()


def test_public_surface_is_importable() -> None:
    for name in agenttrace.__all__:
        assert getattr(agenttrace, name) is not None, name
