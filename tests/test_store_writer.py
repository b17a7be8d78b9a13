"""StoreWriter: durable appends, sealing into immutable parts, many writers at once."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import query

from agenttrace.errors import StoreError
from agenttrace.store import StoreLayout, StoreWriter
from agenttrace.store.schema import SPAN_SCHEMA


def rows(run_id: str, n: int, writer: str = "w", start: int = 0) -> pa.Table:
    """n ended spans of one run, with span ids that say who wrote them."""
    return pa.Table.from_pylist(
        [
            {
                "Timestamp": 1_700_000_000_000_000_000 + i,
                "TraceId": "ab" * 16,
                "SpanId": f"{writer}-{i:08d}",
                "ParentSpanId": "",
                "TraceState": "",
                "SpanName": f"span {i}",
                "SpanKind": "Internal",
                "ServiceName": "svc",
                "ResourceAttributes": [],
                "ScopeName": "",
                "ScopeVersion": "",
                "SpanAttributes": [("i", str(i))],
                "Duration": 1000,
                "StatusCode": "Unset",
                "StatusMessage": "",
                "Events": [],
                "Links": [],
                "RunId": run_id,
                "RecordType": "end",
            }
            for i in range(start, start + n)
        ],
        schema=SPAN_SCHEMA,
    )


def count(store: Path, run_id: str | None = None) -> int:
    sql = "SELECT count(*) AS n FROM spans" + (" WHERE run_id = $r" if run_id else "")
    return query(store, sql, {"r": run_id} if run_id else None)[0]["n"]


def test_append_is_readable_before_sealing_and_sealed_into_one_part_on_close(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))
    writer.append(rows("run-a", 10))
    writer.append(rows("run-a", 5, start=10))
    assert list((store / "spool" / "run-a").glob("*.arrows"))
    assert count(store, "run-a") == 15  # a live writer's spool is read as it is

    writer.close()

    parts = list((store / "spans" / "run_id=run-a").glob("*.parquet"))
    assert len(parts) == 1
    assert pq.read_table(parts[0]).num_rows == 15
    assert not (store / "spool" / "run-a").exists()
    assert not list(store.rglob("*.tmp"))


def test_records_are_split_by_run(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))
    writer.append(pa.concat_tables([rows("run-a", 3), rows("run-b", 4)]))
    writer.close()
    assert count(store, "run-a") == 3 and count(store, "run-b") == 4
    assert {p.name for p in (store / "spans").iterdir()} == {"run_id=run-a", "run_id=run-b"}


def test_a_segment_past_the_seal_size_becomes_a_part_while_writing(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store), seal_rows=100)
    for batch in range(5):
        writer.append(rows("big", 40, start=batch * 40))
    parts = list((store / "spans" / "run_id=big").glob("*.parquet"))
    assert len(parts) == 1  # 120 rows sealed; 80 still in the spool
    assert count(store, "big") == 200
    writer.close()
    assert count(store, "big") == 200


def test_seal_run_releases_only_that_run(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))
    writer.append(pa.concat_tables([rows("done", 2), rows("busy", 2)]))
    writer.seal_run("done")
    assert not (store / "spool" / "done").exists()
    assert list((store / "spool" / "busy").glob("*.lock"))
    writer.close()


def test_unsafe_run_ids_never_name_a_folder(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))
    with pytest.raises(StoreError, match="cannot name a store folder"):
        writer.append(rows("../../etc", 1))
    writer.close()
    assert not (store.parent / "etc").exists()


def test_store_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(StoreError, match="is a file, not a directory"):
        StoreWriter(StoreLayout(path))


def test_many_threads_lose_nothing(store: Path) -> None:
    writers = [StoreWriter(StoreLayout(store), seal_rows=500) for _ in range(2)]

    def work(t: int) -> None:
        for b in range(20):
            writers[t % 2].append(rows("shared", 50, writer=f"t{t}", start=b * 50))

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
    assert count(store, "shared") == 8 * 20 * 50
    assert query(store, "SELECT count(DISTINCT span_id) AS n FROM spans")[0]["n"] == 8000


def _process_writer(store: str, worker: int) -> None:
    writer = StoreWriter(StoreLayout(Path(store)), seal_rows=300)
    for b in range(10):
        writer.append(rows("shared", 100, writer=f"p{worker}", start=b * 100))
    writer.close()


def test_many_processes_lose_nothing(store: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(str(store), w)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert count(store, "shared") == 4 * 10 * 100
    assert query(store, "SELECT count(DISTINCT span_id) AS n FROM spans")[0]["n"] == 4000
