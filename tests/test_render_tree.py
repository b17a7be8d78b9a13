"""The tree of `agenttrace show` draws every span, also spans whose parents form a ring (a process
is drawn under the span its TRACEPARENT named: the agent's word, which could point anywhere); and a
run's GPU use: marks on processes, the lease and what went wrong with it."""

from __future__ import annotations

from datetime import UTC, datetime
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


def lease_row(**given: Any) -> dict[str, Any]:
    row = {
        "span_id": "lease", "start_time": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "end_time": datetime(2026, 1, 2, 3, 4, 9, tzinfo=UTC), "ended": True, "request": "0",
        "waited_s": 2.5, "lost": None, "device": 0, "uuid": "GPU-a", "name": "NVIDIA H200", "samples": 4,
        "utilization_max": 0.6, "utilization_avg": 0.45, "memory_used_max": 3 << 30,
        "memory_total": 80 << 30, "xids": [], "ecc_uncorrected": 0,
    }  # fmt: skip
    return row | given


def use_row(span_id: str | None, **given: Any) -> dict[str, Any]:
    row = {
        "span_id": span_id, "pid": 42, "command_line": "python train.py", "device": 0, "uuid": "GPU-a",
        "leased": True, "first_seen": datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC),
        "last_seen": datetime(2026, 1, 2, 3, 4, 8, tzinfo=UTC), "samples": 3, "peak_memory": 1 << 30,
    }  # fmt: skip
    return row | given


def drawn(gpu: dict[str, Any] | None) -> str:
    run = {"run_id": "r", "name": "n", "state": "failed", "started": None, "duration_s": 1.0,
           "span_count": 2, "error_count": 0, "unfinished_count": 0}  # fmt: skip
    console = Console(width=200, record=True)
    console.print(span_tree(run, [span("root", None), span("p", "root")], limit=100, gpu=gpu))
    return console.export_text()


def test_gpu_use_is_marked_on_processes_with_the_lease_and_its_troubles() -> None:
    gpu = {
        "lease": [
            lease_row(lost="its lock file was removed", xids=[79, 48], ecc_uncorrected=2),
            lease_row(device=1, uuid="GPU-b", samples=0, utilization_max=None, memory_used_max=None),
        ],
        "processes": [
            use_row("p"),
            use_row("p", device=3, uuid="GPU-d", leased=False, peak_memory=512 << 20),
            use_row(None, pid=43, command_line="nvidia-smi"),
        ],
        "intruders": [],
    }
    text = drawn(gpu)
    assert "span-p  1 ms  ok  GPU 0: 1.0 GiB peak, GPU 3 (not leased): 512.0 MiB peak" in text, text
    assert (
        "GPU lease: GPU 0 (GPU-a), GPU 1 (GPU-b) · waited 2.5 s · held 03:04:05.000 to 03:04:09.000" in text
    )
    assert "  LOST: its lock file was removed" in text
    assert (
        "  GPU 0 NVIDIA H200: utilization max 60% (avg 45%), memory peak 3.0 GiB of 80.0 GiB, 4 samples"
        " · Xid 79, 48 · 2 uncorrected ECC error(s)"
    ) in text, text
    assert "  GPU 1 NVIDIA H200: never sampled while leased" in text
    assert "Processes of the run on a GPU, not in its process tree (1):" in text
    assert "  - pid 43 `nvidia-smi` from 03:04:06.000 to 03:04:08.000  GPU 0: 1.0 GiB peak" in text
    assert "never let go" not in text and "Intruders" not in text

    unended = drawn({"lease": [lease_row(ended=False)], "processes": [], "intruders": []})
    assert "never let go: the supervisor holding it did not end it" in unended


def test_no_gpu_records_and_no_gpu_use_draw_nothing_of_gpus() -> None:
    for gpu in (None, {"lease": [], "processes": [], "intruders": []}):
        assert "GPU" not in drawn(gpu)
