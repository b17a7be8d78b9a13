"""Where everything lives inside a store directory.

<root>/spans/run_id=<run>/part-<seq>-<uuid>.parquet     immutable span parts
<root>/logs/run_id=<run>/part-<seq>-<uuid>.parquet      immutable OTLP log record parts
<root>/samples/run_id=<run>/part-<seq>-<uuid>.parquet   metric data points (OTLP metrics, GPU)
<root>/spool/<run>/<writer>.lock                        held (flock) while a writer lives
<root>/spool/<run>/<writer>-<n>.arrows                  append-only Arrow IPC stream segments (spans)
<root>/spool/<run>/logs/..., spool/<run>/samples/...     the same, for log records and data points
<root>/artifacts/sha256/<aa>/<hash>                     content-addressed files
<root>/quarantine/<run>/<file>                          unreadable spool segments, kept for a person
<root>/manifests/<run>.json                             what `agenttrace run`'s supervisor wrote
<root>/derived/run_id=<run>/<view>.parquet              a sealed run's views, computed once (a cache)
<root>/derived/index/<started>--<run>                   empty; names sort by the runs' start times

The store is private: its folders are created 0700 and its files 0600 (or stricter, by the umask),
since it holds prompts, outputs and copies of evidence files. A store made by an earlier version
with open folders has its root closed (0700) the next time it is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import StoreError

SPANS = "spans"
LOGS = "logs"
SAMPLES = "samples"
KINDS = (SPANS, LOGS, SAMPLES)
"""The kinds of records a store holds, each in its own folder of parts and its own spool."""
PARTITION_PREFIX = "run_id="
DERIVED = "derived"
"""A sealed run's views, computed once (`store.derived`): a cache, never the record."""


@dataclass(frozen=True)
class StoreLayout:
    root: Path

    @property
    def spool_dir(self) -> Path:
        return self.root / "spool"

    @property
    def artifacts_dir(self) -> Path:
        return self.root / "artifacts"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    @property
    def derived_dir(self) -> Path:
        return self.root / DERIVED

    @property
    def derived_index_dir(self) -> Path:
        return self.root / DERIVED / "index"

    def derived_run_dir(self, run_id: str) -> Path:
        """The folder of one run's derived tables."""
        return self.root / DERIVED / f"{PARTITION_PREFIX}{run_id}"

    def run_ids(self) -> list[str]:
        """Every run id with parts or spool records, sorted (folder names only: nothing is read)."""
        found: set[str] = set()
        for kind in KINDS:
            kind_dir = self.root / kind
            if kind_dir.is_dir():
                found.update(
                    p.name[len(PARTITION_PREFIX) :]
                    for p in kind_dir.iterdir()
                    if p.name.startswith(PARTITION_PREFIX)
                )
        if self.spool_dir.is_dir():
            found.update(p.name for p in self.spool_dir.iterdir() if p.is_dir() and any(p.iterdir()))
        return sorted(found)

    def partition_dir(self, kind: str, run_id: str) -> Path:
        """The folder holding one run's parts of one kind (`spans`, `logs` or `samples`)."""
        return self.root / kind / f"{PARTITION_PREFIX}{run_id}"

    def spool_run_dir(self, run_id: str, kind: str = SPANS) -> Path:
        """The folder of one run's spool segments of one kind: spans directly in the run's spool
        folder (as before there were other kinds), other kinds in a sub-folder named after the
        kind, so that no reader takes one kind's segments for another's."""
        base = self.spool_dir / run_id
        return base if kind == SPANS else base / kind

    def require_readable(self) -> None:
        """Raise StoreError unless the store exists and is a directory."""
        if self.root.is_file():
            raise StoreError(f"store path {self.root} is a file, not a directory")
        if not self.root.is_dir():
            raise StoreError(
                f"no agenttrace store at {self.root} "
                "(record a run first, or pass --store / set AGENTTRACE_STORE)"
            )

    def require_writable(self) -> None:
        """Create the store if needed; raise StoreError if it cannot be written."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"store path {self.root} is a file, not a directory")
        try:
            if not self.root.parent.exists():  # the parents get the usual mode; the store is private
                self.root.parent.mkdir(parents=True)
            make_private_dirs(self.root, self.root)
            mode = self.root.stat().st_mode & 0o777
            if mode & 0o077 and self.root.stat().st_uid == os.getuid():
                os.chmod(self.root, mode & 0o700)
            for sub in (self.root / SPANS, self.spool_dir):
                make_private_dirs(self.root, sub)
        except OSError as exc:
            raise StoreError(f"cannot create store at {self.root}: {exc.strerror or exc}") from exc
        if not os.access(self.spool_dir, os.W_OK | os.X_OK):
            raise StoreError(f"store at {self.root} is not writable")


def make_private_dirs(base: Path, folder: Path) -> None:
    """Create `folder` and any missing parents below `base` with mode 0700 (mkdir's `parents=True`
    would give the parents the default mode)."""
    missing = []
    current = folder
    while not current.is_dir():
        missing.append(current)
        if current == base or current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            if not path.is_dir():
                raise
