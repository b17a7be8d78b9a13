"""Immutable Parquet parts: written as `.tmp` (mode 0600), fsynced, renamed; checked before reading."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import StoreError
from .files import fsync_dir
from .layout import SPANS
from .spool import DIR_MODE, FILE_MODE

PART_SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"
_MAGIC = b"PAR1"
SMALL_PART_ROWS = 1000
TINY_PART_ROWS = 2
"""Parts of this many rows or fewer are not compressed: their footer is most of them (zstd makes
one or two rows larger, not smaller), and setting zstd up for each column costs more than the
rest of the write. A flood of one-span runs that never end (issue 10) is sealed as such parts."""


@dataclass(frozen=True)
class WrittenPart:
    path: Path
    sha256: str
    """Hex sha256 of the exact bytes of the part file as written."""
    size: int


def write_part(table: pa.Table, directory: Path) -> Path:
    """Write `table` as a new part in `directory`; a reader never sees it half-written."""
    return put_part(table, directory).path


def put_part(table: pa.Table, directory: Path) -> WrittenPart:
    """Write `table` as a new part in `directory` (0600; the folder 0700 when created here), and
    say what was written. Raises StoreError.

    The Parquet file is encoded in memory first (by Arrow, without taking the GIL per buffer), so
    the digest is of exactly the bytes then written to `.tmp`, fsynced and renamed into place."""
    name = f"part-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}{PART_SUFFIX}"
    final = directory / name
    tmp = directory / (name + TMP_SUFFIX)
    created = False
    try:
        data = _encode(table)
        digest = hashlib.sha256(data).hexdigest()
        fd = _create(tmp)
        created = True
        try:
            _write_all(fd, memoryview(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, final)
        created = False
        fsync_dir(directory)
    except (OSError, pa.ArrowException) as exc:
        if created:
            tmp.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StoreError(f"cannot write part {final}: {reason}") from exc
    return WrittenPart(final, digest, len(data))


def _create(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(path, flags, FILE_MODE)
    except FileNotFoundError:  # the run's first part: make its folder
        path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        return os.open(path, flags, FILE_MODE)


def _encode(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    small = table.num_rows < SMALL_PART_ROWS
    tiny = table.num_rows <= TINY_PART_ROWS
    pq.write_table(
        table,
        sink,
        compression="none" if tiny else "zstd",
        compression_level=None if tiny else 3,
        # A dictionary page and min/max statistics per column cost more than they save in a
        # part of a few rows (a short run): there the fixed per-part overhead dominates.
        use_dictionary=not small,
        write_statistics=not small,
        store_schema=False,  # the Parquet types say it all; the Arrow schema costs KiBs a part
    )
    return sink.getvalue()


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


def list_parts(kind_dir: Path, run_ids: list[str] | None = None) -> list[Path]:
    """Every finished part under `kind_dir` (optionally only some runs); `.tmp` leftovers excluded."""
    if run_ids is None:
        dirs = sorted(p for p in kind_dir.glob("run_id=*") if p.is_dir()) if kind_dir.is_dir() else []
    else:
        dirs = [kind_dir / f"run_id={r}" for r in run_ids]
    parts: list[Path] = []
    for d in dirs:
        if d.is_dir():
            parts.extend(sorted(p for p in d.iterdir() if p.name.endswith(PART_SUFFIX)))
    return parts


def part_problem(path: Path) -> str | None:
    """Why `path` is not a readable Parquet part, or None if its header and footer are sound."""
    try:
        size = path.stat().st_size
        if size < 12:
            return f"{size} bytes, too small to be Parquet"
        with open(path, "rb") as f:
            head = f.read(4)
            f.seek(-4, os.SEEK_END)
            tail = f.read(4)
        if head != _MAGIC or tail != _MAGIC:
            return "truncated or not Parquet (missing PAR1 magic)"
        pq.read_metadata(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    except (pa.ArrowException, ValueError) as exc:
        return f"unreadable footer ({exc})"
    return None


def part_decode_problem(path: Path) -> str | None:
    """Why `path` does not decode in full (every page of every column), or None. Slow: used only
    after a query failed, to find the part to blame."""
    try:
        pq.read_table(path)
    except OSError as exc:
        return exc.strerror or str(exc)
    except (pa.ArrowException, ValueError) as exc:
        return f"undecodable data ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return None


@dataclass(frozen=True)
class PartWritten:
    """A Parquet part this writer wrote (passed to `StoreWriter(on_part=...)`)."""

    run_id: str
    path: Path
    """The final part file."""
    sha256: str
    """Hex sha256 of the exact bytes of the part file as written."""
    rows: int
    tampered: str | None = None
    """Set when a spool segment read back at seal time was not byte-identical to what this writer
    wrote (size or digest differ, or it is gone): why, naming the segment. The part then holds
    what could still be read, and the segment is moved to the store's quarantine folder."""
    kind: str = SPANS
    """The kind of its records (`spans`, `logs`, `samples`)."""
