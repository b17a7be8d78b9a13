"""Readers: torn spool tails, dead writers' spools, corrupt parts, `.tmp` leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import query
from test_store_writer import rows

from agenttrace.analysis import Database
from agenttrace.store import StoreLayout, StoreWriter
from agenttrace.store.reader import run_ids, snapshot
from agenttrace.store.schema import SPAN_SCHEMA
from agenttrace.store.spool import SpoolSegment, read_segment


def test_torn_final_batch_is_dropped_and_earlier_batches_kept(tmp_path: Path) -> None:
    segment = SpoolSegment(tmp_path / "w-000001.arrows", SPAN_SCHEMA)
    segment.append(rows("r", 3))
    segment.append(rows("r", 4, start=3))
    segment.abandon()  # no end-of-stream marker, as after a crash
    data = (tmp_path / "w-000001.arrows").read_bytes()
    (tmp_path / "w-000001.arrows").write_bytes(data[:-40])

    read = read_segment(tmp_path / "w-000001.arrows", SPAN_SCHEMA)

    assert read.torn and read.problem is None
    assert read.table.num_rows == 3


def test_garbage_segment_is_named_and_skipped(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))
    writer.append(rows("r", 2))
    writer.close()
    bad = store / "spool" / "r" / "wdead-000001.arrows"
    bad.parent.mkdir(parents=True)
    garbage = os.urandom(4096)
    bad.write_bytes(garbage)

    with Database(store) as db:
        assert db.records("SELECT count(*) AS n FROM spans") == [{"n": 2}]
        assert any("wdead-000001.arrows" in w for w in db.warnings)
    quarantined = store / "quarantine" / "r" / "wdead-000001.arrows"
    assert quarantined.read_bytes() == garbage  # never deleted
    assert not bad.exists()


DEAD_WRITER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {tests!r})
    from test_store_writer import rows
    from agenttrace.store import StoreLayout, StoreWriter
    from pathlib import Path
    writer = StoreWriter(StoreLayout(Path({store!r})))
    writer.append(rows("crashed", 7))
    os._exit(0)   # dies without closing: no seal, lock dropped by the kernel
    """
)


def test_a_dead_writers_spool_is_recovered_once(store: Path) -> None:
    script = DEAD_WRITER.format(tests=str(Path(__file__).parent), store=str(store))
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert list((store / "spool" / "crashed").glob("*.arrows"))

    snap = snapshot(StoreLayout(store))

    assert snap.live_runs == []
    assert not (store / "spool" / "crashed").exists()
    assert len(snap.span_parts) == 1
    assert query(store, "SELECT count(*) AS n FROM spans") == [{"n": 7}]
    assert run_ids(StoreLayout(store)) == ["crashed"]


def test_a_part_corrupt_inside_is_skipped_when_duckdb_reads_it(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))
    writer.append(rows("good", 5))
    writer.append(rows("bad", 5000))
    writer.close()
    part = next((store / "spans" / "run_id=bad").glob("*.parquet"))
    data = bytearray(part.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 200] = b"\xff" * 200  # footer intact, pages garbled
    part.write_bytes(bytes(data))

    with Database(store) as db:
        result = db.records("SELECT run_id, count(*) AS n FROM spans GROUP BY run_id ORDER BY run_id")
        warnings = db.warnings

    assert result == [{"run_id": "good", "n": 5}]
    assert len(warnings) == 1 and warnings[0].startswith(f"skipped corrupt part {part}")
    assert part.exists()  # kept for a person to inspect


def test_empty_store_has_every_view_with_its_columns(store: Path) -> None:
    (store / "spans").mkdir(parents=True)
    expected = {
        "runs": [
            "run_id",
            "name",
            "state",
            "started",
            "ended",
            "duration_s",
            "exit_code",
            "signal",
            "command",
            "objective",
        ],
        "spans": [
            "run_id",
            "trace_id",
            "span_id",
            "parent_span_id",
            "name",
            "kind",
            "start_time",
            "end_time",
            "status_code",
            "status_message",
            "attributes",
            "ended",
        ],
        "steps": [
            "run_id",
            "step",
            "kind",
            "name",
            "span_id",
            "parent_span_id",
            "start_time",
            "end_time",
            "status_code",
            "model",
            "tool_name",
            "tool_call_id",
            "finish_reason",
            "input_tokens",
            "output_tokens",
            "input",
            "output",
        ],
        "processes": [
            "run_id",
            "span_id",
            "parent_span_id",
            "pid",
            "parent_pid",
            "executable",
            "command_line",
            "start_time",
            "end_time",
            "exit_code",
            "signal",
            "alive_at_exit",
        ],
        "artifacts": ["run_id", "path", "sha256", "size", "span_id", "role"],
        "claims": ["run_id", "span_id", "text", "evidence", "step"],
        "gpu_samples": [
            "run_id",
            "time",
            "device",
            "uuid",
            "utilization",
            "memory_used",
            "memory_total",
            "power_w",
            "pid",
            "process_memory",
        ],
    }
    with Database(store) as db:
        for view, columns in expected.items():
            names, found = db.execute(f"SELECT * FROM {view}")
            assert names[: len(columns)] == columns, view
            assert found == []


def test_parts_with_an_older_schema_still_read(store: Path) -> None:
    """A part written before a column existed reads with NULLs there (union by name)."""
    old = rows("old", 2).drop_columns(["ScopeVersion"])
    directory = store / "spans" / "run_id=old"
    directory.mkdir(parents=True)
    import pyarrow.parquet as pq

    pq.write_table(old, directory / "part-00000000000000000001-old.parquet")
    writer = StoreWriter(StoreLayout(store))
    writer.append(rows("new", 3))
    writer.close()
    assert query(store, "SELECT run_id, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1") == [
        {"run_id": "new", "n": 3},
        {"run_id": "old", "n": 2},
    ]
