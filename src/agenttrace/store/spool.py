"""The append-only spool: Arrow IPC stream segments, one writer each, guarded by a held lock file.

A writer holds an exclusive `flock` on `<spool>.lock` for as long as it owns segments of a run, and
appends record batches to `<spool>-<n>.arrows`. `<spool>` names one owner of one run's spool: a
writer opens a fresh one each time it (re)opens a run, so two owners never share a lock path or a
segment name. The kernel drops the lock when the process dies, however it dies, so a reader can
tell a live owner's segments (read them as they are) from a dead one's (recover them into a
Parquet part). A lock file appears (by rename) already locked, so a reader never mistakes a live
owner that is still taking its lock for a dead one. A torn final batch, from a crash in the middle
of an append, is dropped; every batch before it is read.

A segment is written as encapsulated IPC messages with `os.write`: the schema once, each batch
as one message, the end-of-stream marker on close; exactly the IPC stream format. Every byte
written goes into a running sha256 (unless made with digest=False), so the owner can tell at seal
time whether the file still holds exactly what it wrote (`SpoolSegment.check`). Files are created
0600.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

LOCK_SUFFIX = ".lock"
SEGMENT_SUFFIX = ".arrows"
FILE_MODE = 0o600
DIR_MODE = 0o700
END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"
"""The IPC stream's end-of-stream marker: continuation token, then a zero metadata length."""
_IOV_MAX = 512  # buffers per writev (Linux takes 1,024)
MAX_UNHASHED_BYTES = 8 << 20
"""Written bytes a segment keeps for its digest before hashing them itself, in `append`."""


_SCHEMA_MESSAGES: dict[pa.Schema, pa.Buffer] = {}


def _serialized(schema: pa.Schema) -> pa.Buffer:
    """The schema's IPC message, made once per schema (every new segment starts with it)."""
    message = _SCHEMA_MESSAGES.get(schema)
    if message is None:
        message = schema.serialize()
        if len(_SCHEMA_MESSAGES) < 64:  # the store's few schemas; any other is not kept
            _SCHEMA_MESSAGES[schema] = message
    return message


class SpoolSegment:
    """One append-only IPC stream file, written by its owner only.

    Each batch is serialized by Arrow into one buffer (the GIL is released while it copies) and
    written with one `os.write`: no Python file object taking the GIL back for each of a batch's
    many small buffers, and no per-segment write buffer (a receiver may have hundreds of runs
    open at once). The owner serializes writes (`append`, `close`); the bytes written are queued
    in order and hashed by `digest_pending`, which any thread may call at any time: the writer
    calls it after releasing its lock, so the hashing of one request's records overlaps others'
    work (hashlib gives up the GIL).
    """

    def __init__(self, path: Path, schema: pa.Schema, *, digest: bool = True) -> None:
        self.path = path
        self.rows = 0
        self.nbytes = 0
        self.closed = False
        # sha256 costs about as much as the rest of an append (~2 GB/s): only when someone
        # listens for tampering. Without it, `check` compares sizes only.
        self._digest = hashlib.sha256() if digest else None
        self._unhashed: deque[memoryview] = deque()  # written, in order, not yet in the digest
        self._hashed = 0  # bytes in the digest; written by drainers only, as nbytes by the owner
        self._hash_lock = threading.Lock()
        # The name is unique (spool id + sequence number): O_EXCL only guards against a bug.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            self._write([_serialized(schema)])
        except BaseException:
            os.close(self._fd)
            self.closed = True
            with contextlib.suppress(OSError):
                path.unlink()
            raise

    def append(self, batch: pa.RecordBatch | pa.Table) -> None:
        batches = batch.to_batches() if isinstance(batch, pa.Table) else [batch]
        self._write([b.serialize() for b in batches if b.num_rows])
        self.rows += batch.num_rows
        if (
            self._digest is not None and self.nbytes - self._hashed > MAX_UNHASHED_BYTES
        ):  # nobody drains: do not hold on to it all
            self.digest_pending()

    def _write(self, buffers: list[pa.Buffer]) -> None:
        """Write every buffer, queueing for the digest exactly the bytes that reach the file (also
        when a write fails part way)."""
        views = [memoryview(b) for b in buffers]
        while views:
            written = os.writev(self._fd, views[:_IOV_MAX])
            while written:
                view = views[0]
                if written >= len(view):
                    self._account(view)
                    written -= len(view)
                    views.pop(0)
                else:
                    self._account(view[:written])
                    views[0] = view[written:]
                    written = 0

    def _account(self, view: memoryview) -> None:
        if self._digest is not None:
            self._unhashed.append(view)
        self.nbytes += len(view)

    def digest_pending(self) -> None:
        """Add what was written since the last call to the running digest, in write order."""
        if self._digest is None:
            return
        with self._hash_lock:
            while self._unhashed:
                view = self._unhashed.popleft()
                self._digest.update(view)
                self._hashed += len(view)

    def fileno(self) -> int:
        return self._fd

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        """Finish the stream (end-of-stream marker) and close the file."""
        if self.closed:
            return
        try:
            self._write([pa.py_buffer(END_OF_STREAM)])
        finally:
            self.closed = True
            os.close(self._fd)

    def abandon(self) -> None:
        """Stop writing (after a failed append): the file keeps the complete batches already in it,
        and a torn one after them that readers drop."""
        if not self.closed:
            self.closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def check(self, data: bytes) -> str | None:
        """Why `data`, read back from this segment's file, is not exactly what was written to it;
        None when it is byte for byte (only its size is compared when made with digest=False)."""
        self.digest_pending()
        if len(data) != self.nbytes:
            return f"spool segment {self.path} holds {len(data)} bytes, its writer wrote {self.nbytes}"
        if self._digest is not None and hashlib.sha256(data).digest() != self._digest.digest():
            return f"spool segment {self.path} differs from what its writer wrote (sha256 mismatch)"
        return None


class WriterLock:
    """The lock file a writer holds while it owns segments of one run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Created and locked under a name readers ignore, then renamed into place: a reader never
        # sees this lock unlocked (it would take the owner for dead and delete the lock file).
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            os.rename(tmp, path)
        except BaseException:
            os.close(self._fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def release(self, remove: bool = True) -> None:
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self._fd)


@dataclass
class SegmentRead:
    table: pa.Table
    torn: bool
    problem: str | None = None
    missing: bool = False
    """The file is gone (its owner sealed it meanwhile): nothing to read, nothing wrong."""


def read_segment(path: Path, schema: pa.Schema) -> SegmentRead:
    """Every complete batch of a segment, even while its writer is still appending."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return SegmentRead(schema.empty_table(), torn=False, missing=True)
    except OSError as exc:
        return SegmentRead(schema.empty_table(), torn=False, problem=exc.strerror or str(exc))
    return parse_segment(data, schema)


def parse_segment(data: bytes, schema: pa.Schema) -> SegmentRead:
    """Every complete batch in the bytes of a segment."""
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
        try:
            table = table.select([n for n in schema.names if n in table.schema.names]).cast(schema)
        except (pa.ArrowException, ValueError) as exc:
            return SegmentRead(
                schema.empty_table(), torn=torn, problem=f"spool segment of another schema ({exc})"
            )
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
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
