"""Resolving RUN (`last`, a prefix) and listing runs cost what one run costs, whatever the number
of runs: `last` is a listing of the derived index plus that run, `runs` reads the runs' one-row
summaries. Checked by the files a real `agenttrace` process opens (strace), not by timing."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import BIN
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agenttrace.analysis.derive import derive_runs
from agenttrace.analysis.resolve import resolve_run
from agenttrace.analysis.run_list import list_runs
from agenttrace.capture.records import spans_to_batch
from agenttrace.store.layout import StoreLayout
from agenttrace.store.writer import StoreWriter

RUNS = 1000


def one_run() -> pa.Table:
    """A small run as the SDK records it: an agent span with a chat call under it."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span(
            "invoke_agent coder", attributes={"gen_ai.operation.name": "invoke_agent"}
        ),
        tracer.start_as_current_span("chat", attributes={"gen_ai.operation.name": "chat"}),
    ):
        pass
    return pa.Table.from_batches([spans_to_batch(exporter.get_finished_spans())])


def many_runs(store: Path, runs: int) -> list[str]:
    """`runs` sealed runs, each started a second after the one before, with derived tables
    written by `derive_runs` (what the supervisor's `derive_run` does, a batch at a time)."""
    template = one_run()
    layout = StoreLayout(store)
    writer = StoreWriter(layout)
    ids = []
    run_col = template.schema.get_field_index("RunId")
    time_col = template.schema.get_field_index("Timestamp")
    times = template.column("Timestamp").cast(pa.int64())
    for i in range(runs):
        run_id = f"run-{i:04d}"
        shifted = pa.array([t - (runs - i) * 1_000_000_000 for t in times.to_pylist()], pa.int64())
        table = template.set_column(run_col, "RunId", pa.array([run_id] * template.num_rows, pa.string()))
        table = table.set_column(time_col, "Timestamp", shifted.cast(template.schema.field("Timestamp").type))
        writer.append(table, sync=False)
        writer.seal_run(run_id)
        ids.append(run_id)
    writer.close()
    for start in range(0, runs, 100):
        assert len(derive_runs(layout, ids[start : start + 100])) == len(ids[start : start + 100])
    return ids


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    store = tmp_path_factory.mktemp("many") / "store"
    return store, many_runs(store, RUNS)


def opened_files(store: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `agenttrace ARGS` under strace; the files (not folders) inside the store it opened."""
    assert shutil.which("strace"), "strace is needed to see the files opened (`make tools` installs it)"
    log = store.parent / "strace.log"
    result = subprocess.run(
        ["strace", "-f", "-qq", "-e", "trace=open,openat", "-o", str(log), str(BIN / "agenttrace"), *args,
         "--store", str(store)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    opened = set()
    for line in log.read_text().splitlines():
        match = re.search(r'open(?:at)?\((?:AT_FDCWD, )?"([^"]+)", ([^,)]+)', line)
        inside = match is not None and match.group(1).startswith(str(store))
        if inside and match and "O_DIRECTORY" not in match.group(2) and "= -1" not in line:
            opened.add(match.group(1)[len(str(store)) + 1 :])
    return result, opened


def run_of(path: str) -> str | None:
    match = re.search(r"run_id=([^/]+)/", path) or re.match(r"manifests/(.+)\.json$", path)
    return match.group(1) if match else None


def test_audit_last_in_a_store_of_1000_runs_reads_only_that_runs_data(
    big_store: tuple[Path, list[str]],
) -> None:
    store, ids = big_store
    assert resolve_run(StoreLayout(store), "last") == ids[-1]
    for args in (["audit", "last", "--json"], ["step", "last", "1", "--json"], ["show", "last"]):
        result, opened = opened_files(store, *args)
        assert result.returncode in (0, 1), result.stderr
        assert ids[-1] in result.stdout
        runs = {run_of(p) for p in opened} - {None}
        assert runs == {ids[-1]}, (args, sorted(opened)[:20])
        assert f"derived/run_id={ids[-1]}/steps.parquet" in opened or args[0] == "show"


def test_runs_reads_summaries_not_spans(big_store: tuple[Path, list[str]]) -> None:
    store, ids = big_store
    result, opened = opened_files(store, "runs", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count('"run_id"') == RUNS
    assert not [p for p in opened if p.startswith(("spans/", "logs/", "samples/"))]
    assert {p for p in opened if p.startswith("derived/")} >= {
        f"derived/run_id={r}/runs.parquet" for r in ids
    }


def test_runs_lists_what_the_views_list(tmp_path: Path) -> None:
    from agenttrace.analysis import Database

    store = tmp_path / "store"
    ids = many_runs(store, 30)
    layout = StoreLayout(store)
    with Database(layout) as db:
        expected = db.report("run_list", state=None)
    assert list_runs(layout) == (expected, [])
    shutil.rmtree(layout.derived_run_dir(ids[3]))  # one without a summary: computed from its records
    assert list_runs(layout) == (expected, [])
    assert list_runs(layout, "failed") == ([], [])


def test_last_is_the_latest_start_with_or_without_the_index(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ids = many_runs(store, 5)
    layout = StoreLayout(store)
    assert resolve_run(layout, "last") == ids[-1]
    shutil.rmtree(layout.derived_run_dir(ids[-1]))
    (
        layout.derived_index_dir
        / next(p.name for p in layout.derived_index_dir.iterdir() if ids[-1] in p.name)
    ).unlink()
    assert resolve_run(layout, "last") == ids[-1]  # computed from the runs the index lacks
    shutil.rmtree(layout.derived_dir)
    assert resolve_run(layout, "last") == ids[-1]
    assert resolve_run(layout, "run-0003") == ids[3]


def test_a_name_written_into_the_index_does_not_make_another_run_last(tmp_path: Path) -> None:
    store = tmp_path / "store"
    ids = many_runs(store, 5)
    layout = StoreLayout(store)
    (layout.derived_index_dir / f"99991231T235959.000000Z--{ids[1]}").touch()
    (layout.derived_index_dir / "99991231T235959.000000Z--no-such-run").touch()
    assert resolve_run(layout, "last") == ids[-1]
