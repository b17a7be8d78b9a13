"""`agenttrace export --format parquet|csv --view VIEW`: one view's rows for one run, from a store
the OTel SDK wrote (two runs, so that the other run's rows are seen to stay out)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
from conftest import query, run_cli
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import set_span_in_context


def two_runs(store: Path, make_provider: Callable[[Path], TracerProvider]) -> list[str]:
    """Two runs (each its own trace) of an agent span holding an LLM call and a tool call."""
    provider = make_provider(store)
    tracer = provider.get_tracer("test")
    runs = []
    for turn in range(2):
        with tracer.start_as_current_span(f"agent {turn}") as root:
            runs.append(f"{root.get_span_context().trace_id:032x}")
            inside = set_span_in_context(root)
            tracer.start_span("chat m", context=inside, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 12,
            }).end()  # fmt: skip
            tracer.start_span("execute_tool grep", context=inside, attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "grep",
            }).end()  # fmt: skip
    provider.force_flush()
    return runs


def test_parquet_of_a_view_holds_that_runs_rows_with_their_types(
    store: Path, make_provider: Callable[[Path], TracerProvider], tmp_path: Path
) -> None:
    first, _ = two_runs(store, make_provider)
    out = tmp_path / "steps.parquet"
    done = run_cli(
        "export", first, "--format", "parquet", "--view", "steps", "-o", str(out), "--store", str(store)
    )
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stderr and "view steps, rows 2" in done.stderr
    table = pq.read_table(out)
    expected = query(store, "SELECT * FROM steps WHERE run_id = $r ORDER BY step", {"r": first})
    assert table.num_rows == len(expected) == 2
    assert set(table.column("run_id").to_pylist()) == {first}
    assert sorted(table.column("step").to_pylist()) == [1, 2]
    assert table.column_names == list(expected[0])
    assert str(table.schema.field("start_time").type).startswith("timestamp")
    assert sorted(table.column("input_tokens").to_pylist(), key=str) == [12, None]


def test_csv_of_a_view_is_what_query_csv_prints_for_that_runs_rows(
    store: Path, make_provider: Callable[[Path], TracerProvider]
) -> None:
    first, _ = two_runs(store, make_provider)
    done = run_cli("export", first, "--format", "csv", "--view", "spans", "-o", "-", "--store", str(store))
    assert done.returncode == 0, done.stderr
    printed = run_cli(
        "query", f"SELECT * FROM spans WHERE run_id = '{first}'", "--csv", "--store", str(store)
    )
    assert printed.returncode == 0, printed.stderr
    assert sorted(done.stdout.splitlines()) == sorted(printed.stdout.splitlines())
    assert len(done.stdout.splitlines()) == 1 + 3  # the header and the run's three spans


def test_an_unknown_view_is_an_error_naming_the_views(
    store: Path, make_provider: Callable[[Path], TracerProvider], tmp_path: Path
) -> None:
    first, _ = two_runs(store, make_provider)
    done = run_cli(
        "export", first, "-f", "csv", "--view", "nope", "-o", str(tmp_path / "x.csv"), "--store", str(store)
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("Error: unknown view 'nope': choose one of ")
    for view in ("spans", "steps", "processes", "gpu_samples", "runs", "logs", "metrics"):
        assert view in line
    assert "raw_spans" not in line and "live_runs" not in line
    assert not list(tmp_path.glob("*x.csv*"))
