"""The tree of `agenttrace show` draws every span, also spans whose parents form a ring (a process
is drawn under the span its TRACEPARENT named: the agent's word, which could point anywhere)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from agenttrace.render.tree import span_tree


def span(span_id: str, parent: str | None) -> dict[str, Any]:
    return {
        "span_id": span_id, "parent_span_id": parent, "name": f"span-{span_id}", "step": None,
        "ended": True, "duration_ms": 1.0, "status_code": "Unset", "status_message": None,
        "finish_reason": None, "exit_code": None, "exception": None, "start_time": None,
    }  # fmt: skip


def test_spans_in_a_ring_are_drawn_not_dropped() -> None:
    run = {"run_id": "r", "name": "n", "state": "succeeded", "started": None, "duration_s": 1.0,
           "span_count": 4, "error_count": 0, "unfinished_count": 0}  # fmt: skip
    spans = [span("root", None), span("a", "b"), span("b", "a"), span("c", "a")]
    console = Console(width=100, record=True)
    console.print(span_tree(run, spans, limit=100))
    text = console.export_text()
    for name in ("span-root", "span-a", "span-b", "span-c"):
        assert text.count(name) == 1, text
    assert "more spans not drawn" not in text
