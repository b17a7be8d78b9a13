"""Small file helpers that need neither pyarrow nor DuckDB: durable renames, listings of parts, hashes.

The read commands import these (and not `store.parts`, which needs pyarrow to write parts)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

from .layout import KINDS, StoreLayout

PART_SUFFIX = ".parquet"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(target: Path, data: bytes) -> None:
    """Write `data` to `target` (0600) as `.tmp`, fsynced, renamed into place. Raises OSError."""
    tmp = target.with_name(target.name + ".tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(target.parent)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_parts(layout: StoreLayout, run_id: str) -> list[Path]:
    """Every finished part of one run, of every kind (spans, logs, samples), in a stable order;
    `.tmp` leftovers excluded. Folder listings only: no part is opened."""
    found: list[Path] = []
    for kind in KINDS:
        directory = layout.partition_dir(kind, run_id)
        try:
            found.extend(sorted(p for p in directory.iterdir() if p.name.endswith(PART_SUFFIX)))
        except (FileNotFoundError, NotADirectoryError):
            continue
    return found
