"""The append-only spool: Arrow IPC stream segments, one writer each, guarded by a held lock file.

A writer holds an exclusive `flock` on `<writer>.lock` for as long as it lives, and appends
record batches to `<writer>-<n>.arrows`, flushing and fsyncing each append. The kernel drops the
lock when the process dies, however it dies, so a reader can tell a live writer's segments (read
them as they are) from a dead one's (recover them into a Parquet part). A torn final batch, from
a crash in the middle of an append, is dropped; every batch before it is read.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

LOCK_SUFFIX = ".lock"
SEGMENT_SUFFIX = ".arrows"
BUFFER_BYTES = 64 * 1024
"""Coalesces the many small buffers of one batch into few writes. Every open run holds one, so it
stays small: a receiver may have thousands of runs open at once."""


class SpoolSegment:
    """One append-only IPC stream file, written by its owner only.

    Written through Arrow's native file, not a Python file object: Arrow writes a record batch as
    many small buffers, and a Python file object would take the GIL back for each of them, which
    starves the exporter's thread while the traced program is busy.
    """

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.rows = 0
        # The name is unique (writer id + sequence number), so creating it plainly is safe.
        self._file = pa.OSFile(str(path), mode="w")
        self._out = pa.BufferedOutputStream(self._file, buffer_size=BUFFER_BYTES)
        self._stream = ipc.new_stream(self._out, schema)
        self._out.flush()

    @property
    def nbytes(self) -> int:
        return self._out.tell()

    def append(self, batch: pa.RecordBatch | pa.Table) -> None:
        if isinstance(batch, pa.Table):
            self._stream.write_table(batch)
        else:
            self._stream.write_batch(batch)
        self._out.flush()
        self.rows += batch.num_rows

    def fileno(self) -> int:
        return self._file.fileno()

    def sync(self) -> None:
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Finish the stream (end-of-stream marker) and close the file."""
        try:
            self._stream.close()
            self._out.flush()
        finally:
            self._out.close()

    def abandon(self) -> None:
        """Stop writing (after a failed append): whatever is still buffered goes nowhere, and the
        file keeps only the complete batches already in it."""
        with contextlib.suppress(OSError, ValueError, pa.ArrowException):
            devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.dup2(devnull, self._file.fileno())
            finally:
                os.close(devnull)
            self._out.close()


class WriterLock:
    """The lock file a writer holds while it owns segments of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self, remove: bool = True) -> None:
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)


@dataclass
class SegmentRead:
    table: pa.Table
    torn: bool
    problem: str | None = None


def read_segment(path: Path, schema: pa.Schema) -> SegmentRead:
    """Every complete batch of a segment, even while its writer is still appending."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return SegmentRead(schema.empty_table(), torn=False, problem=exc.strerror or str(exc))
    batches: list[pa.RecordBatch] = []
    torn = False
    try:
        reader = ipc.open_stream(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        if len(data) < 512:  # the writer has not finished the schema message yet
            return SegmentRead(schema.empty_table(), torn=True)
        return SegmentRead(schema.empty_table(), torn=True, problem=f"unreadable spool segment ({exc})")
    while True:
        try:
            batches.append(reader.read_next_batch())
        except StopIteration:
            break
        except (pa.ArrowException, OSError):
            torn = True
            break
    table = pa.Table.from_batches(batches, schema=reader.schema) if batches else reader.schema.empty_table()
    if not table.schema.equals(schema):
        table = table.select([n for n in schema.names if n in table.schema.names]).cast(schema)
    return SegmentRead(table, torn)


def writer_alive(lock_path: Path) -> bool:
    """Whether a live process holds this writer lock."""
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def writer_id_of(segment: Path) -> str:
    return segment.name.rsplit("-", 1)[0]


def try_claim(lock_path: Path) -> int | None:
    """Take a dead writer's lock for recovery; None if its writer (or another recoverer) holds it."""
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
