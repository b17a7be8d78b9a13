"""StoreWriter: durable appends, sealing into immutable parts, many writers at once."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from conftest import query

from agenttrace.errors import StoreError
from agenttrace.store import StoreLayout, StoreWriter
from agenttrace.store.reader import snapshot
from agenttrace.store.schema import SPAN_SCHEMA
from agenttrace.store.spool import SpoolSegment, read_segment, writer_alive
from agenttrace.store.writer import PartWritten


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


# -- the seal race (issue 10): a span of a run arriving while that run is being sealed ----------------


def _pause_part_writing(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """Make the next Parquet write wait: (entered, go)."""
    entered, go = threading.Event(), threading.Event()
    real = pq.write_table

    def paused(*args: object, **kwargs: object) -> None:
        if not entered.is_set():
            entered.set()
            assert go.wait(30)
        real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", paused)
    return entered, go


def test_spans_written_while_their_run_is_sealed_survive_a_recovering_reader(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = StoreLayout(store)
    writer = StoreWriter(layout)
    writer.append(rows("r", 5))
    entered, go = _pause_part_writing(monkeypatch)
    sealing = threading.Thread(target=writer.seal_run, args=("r",))
    sealing.start()
    assert entered.wait(10)
    late = threading.Thread(target=writer.append, args=(rows("r", 1, writer="late1"),))
    late.start()
    late.join(0.5)  # returns at once now; before the fix it waited on the sealed spool's lock
    go.set()
    sealing.join(10)
    late.join(10)

    snap = snapshot(layout, recover=True)  # what `agenttrace query` does meanwhile
    assert snap.live_runs == ["r"]
    writer.append(rows("r", 1, writer="late2"))  # acknowledged: must be stored
    writer.close()

    stored = {r["span_id"] for r in query(store, "SELECT span_id FROM spans")}
    assert {"late1-00000000", "late2-00000000"} <= stored
    assert len(stored) == 7


def test_a_reopened_run_never_reuses_a_lock_or_segment_name(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))
    spool = store / "spool" / "r"
    writer.append(rows("r", 1))
    first = {p.name for p in spool.iterdir()}
    writer.seal_run("r")
    writer.append(rows("r", 1, start=1))
    second = {p.name for p in spool.iterdir()}
    writer.close()
    assert len(first) == 2 and len(second) == 2  # a lock and a segment
    assert not first & second


# -- bounded open files: an LRU of open runs, sealed by the writer itself ------------------------------


def _spool_descriptors(store: Path) -> int:
    """Descriptors of this process open on files under the store's spool."""
    spool = str(store / "spool")
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(spool):
                count += 1
    return count


def test_open_runs_are_bounded_by_sealing_the_least_recently_written(store: Path) -> None:
    parts: list[PartWritten] = []
    writer = StoreWriter(StoreLayout(store), max_open_runs=3, on_part=parts.append)
    writer.append(rows("keep", 1))
    peak = 0
    for n in range(20):
        writer.append(rows(f"never-ends-{n:02d}", 2))
        writer.append(rows("keep", 1, start=n + 1))  # written often: never the least recent
        peak = max(peak, _spool_descriptors(store))
        assert writer.open_runs <= 3
    assert peak <= 2 * 3
    assert writer.evicted == 18
    assert "keep" not in {p.run_id for p in parts}
    # An evicted run is sealed into a part and its spool removed by the writer: nothing is left
    # for a reader to recover while the writer lives.
    assert sorted(p.name for p in (store / "spool").iterdir()) == ["keep", "never-ends-18", "never-ends-19"]
    assert count(store) == 21 + 40
    writer.append(rows("never-ends-00", 1, start=2))  # a late record reopens an evicted run
    writer.close()
    assert count(store, "never-ends-00") == 3
    assert count(store, "keep") == 21


def test_appends_to_other_runs_go_on_while_a_run_is_evicted(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = StoreWriter(StoreLayout(store), max_open_runs=2)
    writer.append(rows("old", 1))
    writer.append(rows("busy", 1))
    entered, go = _pause_part_writing(monkeypatch)
    evicting = threading.Thread(target=writer.append, args=(rows("new", 1),))  # evicts "old"
    evicting.start()
    assert entered.wait(10)
    done = threading.Event()
    other = threading.Thread(target=lambda: (writer.append(rows("busy", 1, start=1)), done.set()))
    other.start()
    assert done.wait(5), "the eviction held the writer's lock"
    go.set()
    evicting.join(10)
    other.join(10)
    writer.close()
    assert count(store) == 4


# -- on_part: every part, with the digest of its bytes; tampering with a live segment ------------------


def test_every_part_is_reported_with_the_sha256_of_its_bytes(store: Path) -> None:
    parts: list[PartWritten] = []
    writer = StoreWriter(StoreLayout(store), seal_rows=100, max_open_runs=2, on_part=parts.append)
    writer.append(rows("big", 150))  # sealed on size
    writer.append(rows("done", 3))
    writer.seal_run("done")  # seal_run
    writer.append(rows("a", 2))
    writer.append(rows("b", 2))  # evicts "big" (LRU)
    writer.flush_parts()  # flush_parts
    writer.append(rows("a", 1, start=2))
    writer.close()  # close
    on_disk = {p for p in (store / "spans").rglob("*.parquet")}
    assert {p.path for p in parts} == on_disk
    for part in parts:
        assert part.tampered is None
        assert part.sha256 == hashlib.sha256(part.path.read_bytes()).hexdigest()
        assert part.rows == pq.read_table(part.path).num_rows
    assert sum(p.rows for p in parts) == 150 + 3 + 2 + 2 + 1


def test_a_failing_on_part_callback_does_not_fail_the_writer(store: Path) -> None:
    def broken(part: PartWritten) -> None:
        raise RuntimeError("boom")

    writer = StoreWriter(StoreLayout(store), on_part=broken)
    writer.append(rows("r", 2))
    writer.seal_run("r")
    writer.close()
    assert count(store) == 2


TAMPER = {
    "append": "open(p, 'ab').write(b'\\x00' * 100)",
    "truncate": "os.truncate(p, os.path.getsize(p) - 300)",
    "rewrite": "b = bytearray(open(p, 'rb').read()); b[-50:-40] = b'x' * 10; open(p, 'r+b').write(b)",
    "replace": "open(p + '.new', 'wb').write(open(p, 'rb').read()[:-8]); os.replace(p + '.new', p)",
    "delete": "os.unlink(p)",
}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_another_process_changing_a_live_segment_is_reported_as_tampered(store: Path, how: str) -> None:
    parts: list[PartWritten] = []
    writer = StoreWriter(StoreLayout(store), on_part=parts.append)
    writer.append(rows("r", 20))
    writer.append(rows("r", 20, start=20))
    (segment,) = (store / "spool" / "r").glob("*.arrows")
    script = f"import os; p = {str(segment)!r}; {TAMPER[how]}"
    subprocess.run([sys.executable, "-c", script], check=True, timeout=30)
    writer.seal_run("r")
    writer.close()

    (part,) = parts
    assert part.tampered is not None and segment.name in part.tampered
    assert part.sha256 == hashlib.sha256(part.path.read_bytes()).hexdigest()
    assert part.rows == pq.read_table(part.path).num_rows
    if how == "append":
        assert part.rows == 40  # what this writer wrote is still read
    if how != "delete":
        assert (store / "quarantine" / "r" / segment.name).exists()  # kept for a person
    assert not (store / "spool" / "r").exists()


def test_a_segment_round_trips_through_the_ipc_stream_reader(tmp_path: Path) -> None:
    segment = SpoolSegment(tmp_path / "w-000001.arrows", SPAN_SCHEMA)
    segment.append(rows("r", 3))
    segment.append(rows("r", 4, start=3).slice(1, 2))
    segment.close()
    data = (tmp_path / "w-000001.arrows").read_bytes()
    assert segment.check(data) is None and segment.nbytes == len(data)
    table = ipc.open_stream(data).read_all()
    assert table.num_rows == 5 and table.schema.equals(SPAN_SCHEMA)
    assert read_segment(tmp_path / "w-000001.arrows", SPAN_SCHEMA).table.equals(table)


# -- a live writer never leaves its segments to readers ------------------------------------------------


def test_a_failed_seal_keeps_the_spool_locked_and_is_retried(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = StoreLayout(store)
    writer = StoreWriter(layout)
    writer.append(rows("r", 4))
    real = pq.write_table

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", disk_full)
    with pytest.raises(StoreError, match="No space left"):
        writer.seal_run("r")
    (lock,) = (store / "spool" / "r").glob("*.lock")
    assert writer_alive(lock)
    snap = snapshot(layout, recover=True)
    assert snap.live_runs == ["r"] and snap.spool_spans.num_rows == 4  # read, not recovered

    monkeypatch.setattr(pq, "write_table", real)
    writer.sync()  # retries the seal
    assert not (store / "spool" / "r").exists()
    assert len(list((store / "spans" / "run_id=r").glob("*.parquet"))) == 1
    writer.close()
    assert count(store) == 4


def test_files_and_folders_the_writer_creates_are_private(store: Path) -> None:
    old = os.umask(0o022)
    try:
        writer = StoreWriter(StoreLayout(store))
        writer.append(rows("r", 2))
        spool = store / "spool" / "r"
        assert stat.S_IMODE(spool.stat().st_mode) == 0o700
        for path in spool.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        writer.close()
    finally:
        os.umask(old)
    partition = store / "spans" / "run_id=r"
    assert stat.S_IMODE(partition.stat().st_mode) == 0o700
    (part,) = partition.iterdir()
    assert stat.S_IMODE(part.stat().st_mode) == 0o600


def test_without_a_hook_a_segment_of_another_size_is_still_quarantined(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store))  # no on_part: sizes compared, no running digest
    writer.append(rows("r", 20))
    (segment,) = (store / "spool" / "r").glob("*.arrows")
    with open(segment, "ab") as f:
        f.write(b"\x00" * 100)
    writer.close()
    assert (store / "quarantine" / "r" / segment.name).exists()
    assert count(store) == 20
