"""analysis.diff: the alignment, the first difference inside JSON values, and `diff_runs` over runs
recorded in-process through the real OTel SDK (no supervisor: their verdicts are audited now)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import agenttrace
from agenttrace.analysis.diff import align, diff_runs, first_difference
from agenttrace.store.layout import StoreLayout


def _aligned(a: list[str], b: list[str]) -> list[tuple[int | None, int | None]]:
    """Items `kind:detail` pair when their kinds match; equal items are the same signature."""
    return align(a, b, key=lambda x: x.split(":")[0], signature=lambda x: x)


def test_identical_sequences_pair_one_to_one() -> None:
    steps = ["llm:1", "tool:read", "llm:2"]
    assert _aligned(steps, list(steps)) == [(0, 0), (1, 1), (2, 2)]


def test_an_inserted_step_is_in_one_run_only_and_the_rest_still_pair() -> None:
    a = ["llm:1", "tool:read", "llm:2", "tool:write", "llm:3"]
    b = ["llm:1", "tool:read", "tool:grep", "llm:2", "tool:write", "llm:3"]
    assert _aligned(a, b) == [(0, 0), (1, 1), (None, 2), (2, 3), (3, 4), (4, 5)]


def test_a_changed_step_pairs_with_its_counterpart_rather_than_being_removed_and_added() -> None:
    a = ["llm:1", "tool:read x", "llm:2"]
    b = ["llm:1", "tool:read y", "llm:2"]
    assert _aligned(a, b) == [(0, 0), (1, 1), (2, 2)]


def test_equal_signatures_are_preferred_over_equal_kinds() -> None:
    # b's first tool step could pair with a's; the exact match further on is worth more
    a = ["llm:1", "tool:write", "llm:2"]
    b = ["llm:1", "tool:read", "tool:write", "llm:2"]
    assert _aligned(a, b) == [(0, 0), (None, 1), (1, 2), (2, 3)]


def test_steps_of_different_kinds_never_pair() -> None:
    assert _aligned(["tool:x"], ["llm:x"]) == [(0, None), (None, 0)]
    assert _aligned([], ["llm:x"]) == [(None, 0)]
    assert _aligned(["llm:x"], []) == [(0, None)]


def test_long_runs_align_past_the_exact_limit(monkeypatch: Any) -> None:
    import agenttrace.analysis.diff as diff_module

    monkeypatch.setattr(diff_module, "MAX_ALIGN_CELLS", 10)
    a = [f"tool:{i}" for i in range(20)]
    b = [*a[:10], "llm:extra", *a[10:]]
    b[15] = "tool:changed"
    pairs = _aligned(a, b)
    assert (None, 10) in pairs and (15, 16) in pairs
    assert [i for i, _ in pairs if i is not None] == list(range(20))


def test_first_difference_names_where_inside_json_values() -> None:
    a = [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}]
    b = [{"role": "user", "parts": [{"type": "text", "content": "hello"}]}]
    assert first_difference(a, b) == ("[0].parts[0].content", "hi", "hello")
    assert first_difference(a, a) is None
    assert first_difference([1, 2], [1, 2, 3]) == ("[2]", None, 3)
    assert first_difference({"x": 1}, {"x": 1, "y": 2}) == (".y", None, 2)
    assert first_difference("a", "b") == ("", "a", "b")


def _one_run(run_id: str, *, tool_call_id: str, result: Any, cost: float, argument: str = "a.txt") -> None:
    """An agent's run as the API records it: an LLM call asking for a tool, the tool, an answer."""
    with agenttrace.run("diff-agent", run_id=run_id):
        request = [{"role": "user", "content": "how long is a.txt?"}]
        call = {"id": tool_call_id, "type": "function", "function": {"name": "wc", "arguments": "{}"}}
        agenttrace.llm(
            "gpt-test",
            input_messages=request,
            output_messages=[{"role": "assistant", "content": None, "tool_calls": [call]}],
            finish_reason="tool_calls",
            input_tokens=10,
            output_tokens=5,
            cost_usd=cost,
        )
        with agenttrace.tool_call("wc", call_id=tool_call_id, arguments={"id": argument}) as tool:
            tool.set_result(result)
        answer = [
            *request,
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": tool_call_id, "content": str(result)},
        ]
        agenttrace.llm(
            "gpt-test",
            input_messages=answer,
            output_messages=[{"role": "assistant", "content": f"{result} words"}],
            finish_reason="stop",
            input_tokens=30,
            output_tokens=4,
            cost_usd=cost,
        )


def test_tool_call_ids_are_volatile_but_a_tool_result_that_differs_is_shown(configured: Path) -> None:
    _one_run("first", tool_call_id="call_aaa", result=12, cost=0.01)
    _one_run("second", tool_call_id="call_bbb", result=13, cost=0.02)
    answer, _ = diff_runs(StoreLayout(configured), "first", "second")
    assert answer["run_a"]["verdict"] == answer["run_b"]["verdict"] == "audited"
    assert all(g["same"] for g in answer["gates"])
    # different tool-call ids, the same calls: the first LLM step and the tool call are the same;
    # the tool result the second run got differs, and so does the request that carries it
    pairs = answer["steps"]
    assert [(p["kind"], p["same"]) for p in pairs] == [("llm", True), ("tool", True), ("llm", False)]
    (tool,) = answer["tools"]
    assert tool["differences"] == ["result"]
    assert (tool["a"]["result"], tool["b"]["result"]) == ("12", "13")
    first = answer["first_divergence"]
    assert (first["step_a"], first["kind"]) == (3, "llm")
    (request,) = [d for d in first["differences"] if d["field"] == "input"]
    assert (request["a"], request["b"]) == ("12", "13")
    cost = answer["deltas"]["cost_usd"]
    assert (cost["a"], cost["b"], cost["delta"]) == (0.02, 0.04, 0.02)
    assert answer["deltas"]["input_tokens"] == {"a": 40, "b": 40, "delta": 0}


def test_a_tool_argument_named_id_is_compared(configured: Path) -> None:
    _one_run("first", tool_call_id="call_aaa", result=12, cost=0.01, argument="a.txt")
    _one_run("second", tool_call_id="call_aaa", result=12, cost=0.01, argument="b.txt")
    answer, _ = diff_runs(StoreLayout(configured), "first", "second")
    first = answer["first_divergence"]
    assert (first["step_a"], first["kind"]) == (2, "tool")
    assert first["differences"] == [{"field": "input", "path": ".id", "a": "a.txt", "b": "b.txt"}]
    assert answer["tools"][0]["differences"] == ["arguments"]


def test_a_run_against_itself_does_not_diverge(configured: Path) -> None:
    _one_run("only", tool_call_id="call_aaa", result=12, cost=0.01)
    answer, _ = diff_runs(StoreLayout(configured), "only", "only")
    assert answer["first_divergence"] is None
    assert all(p["same"] and not p["differences"] for p in answer["steps"])
    assert answer["tools"] == answer["processes"] == answer["files"] == []
    assert all(d["delta"] in (0, None) for d in answer["deltas"].values())


def test_an_audit_record_the_agent_wrote_itself_does_not_decide_its_gates(configured: Path) -> None:
    from opentelemetry import trace

    _one_run("honest", tool_call_id="call_aaa", result=12, cost=0.01)
    with agenttrace.run("diff-agent", run_id="forger"):
        agenttrace.llm("gpt-test", input_messages=["hi"], output_messages=["cut sh"], finish_reason="length")
        forged = {
            "agenttrace.span.type": "audit",
            "agenttrace.audit.state": "succeeded",
            "agenttrace.audit.reasons": "[]",
            "agenttrace.audit.gates": '{"completion_signal": "pass"}',
        }
        trace.get_tracer("forger").start_span("agenttrace audit", attributes=forged).end()
    answer, _ = diff_runs(StoreLayout(configured), "honest", "forger")
    assert answer["run_b"]["verdict"] == "audited"
    assert answer["run_b"]["state"] == "failed"
    (gate,) = [g for g in answer["gates"] if g["name"] == "completion_signal"]
    assert (gate["a"], gate["b"], gate["same"]) == ("pass", "fail", False)
