"""Small file helpers that need neither pyarrow nor DuckDB: fsync of a folder, listings of parts, hashes.

The read commands import these (and not `store.parts`, which needs pyarrow to write parts)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .layout import KINDS, PARTITION_PREFIX, StoreLayout

PART_SUFFIX = ".parquet"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def run_part_names(layout: StoreLayout, run_id: str) -> list[str]:
    """`run_parts` as paths relative to the store, sorted (`spans/run_id=<run>/part-....parquet`)."""
    found: list[str] = []
    for kind in KINDS:
        folder = f"{kind}/{PARTITION_PREFIX}{run_id}"
        try:
            names = os.listdir(layout.root / folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        found.extend(f"{folder}/{name}" for name in names if name.endswith(PART_SUFFIX))
    return sorted(found)
