"""A sealed run's derived tables: its views (queries/views/*.sql) computed once, kept next to its
parts, so that `audit`, `step` and `show` read small precomputed tables and `last` / `runs` read a
one-row summary instead of computing the views over every span.

    <store>/derived/run_id=<run>/<view>.parquet   the run's rows of each view (`spans`, `steps`,
                                                  `runs`: the run's summary, ...), as DuckDB wrote them
    <store>/derived/run_id=<run>/stamp.json       what they were computed from (`DerivedEntry`)
    <store>/derived/index/<started>--<run>        empty; the names sort by the runs' start times

They are a cache: deleting them changes nothing but speed. They are used only while

- the installed view SQL is the one that computed them (`views_digest`: an upgrade that fixes a
  view changes the verdicts of old runs when they are audited again, as it would without them);
- the run has no records in the spool (it is open, or something wrote into it after it was sealed);
- for a run recorded by `agenttrace run` (it has a manifest): the manifest lists them with their
  sha256 and their bytes match (the agent runs as the same user and could write forged tables
  into the store; it has no pen in the manifest's record of them, see `store.manifest`), and the
  run's parts match the manifest (else the `integrity` gate must see the problem: the views are
  computed);
- for any other run: the run's parts are exactly those they were computed from (parts are
  immutable; a new part or a compaction changes the list). Such runs were recorded in-process
  or through `agenttrace serve`, where anyone could write any record: nothing is lost by trusting
  a cache of what anyone could have written.

Anything else is a cache miss: the views are computed from the parts, as before this existed.
Nothing in this module needs pyarrow or DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from .. import queries
from ..errors import StoreError
from .files import run_part_names, run_parts, sha256_file
from .layout import PARTITION_PREFIX, StoreLayout, make_private_dirs
from .manifest import Manifest, read_manifest, relative

STAMP = "stamp.json"
TABLE_SUFFIX = ".parquet"
INDEX_SEPARATOR = "--"
SUMMARY = "runs"
"""The derived table that is the run's summary: its row of the `runs` view."""
_VIEW = re.compile(r"CREATE\s+OR\s+REPLACE\s+VIEW\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
_RAW_FILE = "raw.sql"
"""The views over the parts themselves (`raw_spans`, ...): never derived."""
_STARTED_FORMAT = "%Y%m%dT%H%M%S.%fZ"


@cache
def views_digest() -> str:
    """sha256 over agenttrace's version and the name and text of every view file: derived tables
    computed by other view SQL are not used."""
    from .. import __version__

    digest = hashlib.sha256(f"agenttrace {__version__}\n".encode())
    for path in sorted((queries.queries_dir() / "views").glob("*.sql")):
        digest.update(f"{path.name}\n".encode())
        digest.update(path.read_bytes())
        digest.update(b"\n")
    return digest.hexdigest()


@cache
def derived_names() -> tuple[str, ...]:
    """Every view the view files define, in file order, except the raw ones: those a run's derived
    folder may hold (intermediate views the gates read, such as `model_api_calls`, too). It holds
    those with a `run_id` column; the others are lookup tables that read no run's records, defined
    from their SQL by the reader, as is any view a run's entry does not list."""
    names: list[str] = []
    for path in sorted((queries.queries_dir() / "views").glob("*.sql")):
        if path.name == _RAW_FILE:
            continue
        for name in _VIEW.findall(path.read_text(encoding="utf-8")):
            if name not in names:
                names.append(name)
    return tuple(names)


@dataclass
class DerivedEntry:
    """What a run's derived tables were computed from, and their hashes (the stamp, and the
    `derived` entry of a supervised run's manifest)."""

    views: str
    started: str | None
    tables: dict[str, tuple[str, str]] = field(default_factory=dict)
    """name -> (path relative to the store, sha256)."""
    parts: list[str] = field(default_factory=list)
    """The run's parts they were computed from, relative to the store, sorted."""

    def as_json(self) -> dict[str, Any]:
        return {
            "views": self.views,
            "started": self.started,
            "tables": [
                {"name": name, "path": path, "sha256": sha} for name, (path, sha) in self.tables.items()
            ],
            "parts": self.parts,
        }

    @classmethod
    def from_json(cls, raw: Any) -> DerivedEntry | None:
        """None when malformed (a cache miss, never an error)."""
        try:
            tables = {str(t["name"]): (str(t["path"]), str(t["sha256"])) for t in raw["tables"]}
            started = raw.get("started")
            return cls(
                views=str(raw["views"]),
                started=None if started is None else str(started),
                tables=tables,
                parts=[str(p) for p in raw.get("parts", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None


def stamp_path(layout: StoreLayout, run_id: str) -> Path:
    return layout.derived_run_dir(run_id) / STAMP


def table_path(layout: StoreLayout, run_id: str, name: str) -> Path:
    return layout.derived_run_dir(run_id) / f"{name}{TABLE_SUFFIX}"


def read_stamp(layout: StoreLayout, run_id: str) -> DerivedEntry | None:
    try:
        return DerivedEntry.from_json(json.loads(stamp_path(layout, run_id).read_bytes()))
    except (OSError, ValueError):
        return None


@dataclass
class Usable:
    """A run's derived tables that may be read instead of its views."""

    tables: dict[str, Path]
    supervised: bool
    entry: DerivedEntry
    data: dict[str, bytes] = field(default_factory=dict)
    """With `keep_bytes`: each table's bytes, read once and hashed. Readers use these, not the
    file: a file changed after the check (by a process the agent left behind) is not what is read."""


def spool_has_records(layout: StoreLayout, run_id: str) -> bool:
    """Whether the run has anything in the spool (it is open, or was written after it was sealed)."""
    try:
        return any(layout.spool_run_dir(run_id).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError:
        return True


def usable(
    layout: StoreLayout,
    run_id: str,
    *,
    verify_parts: bool = False,
    tables: tuple[str, ...] | None = None,
    keep_bytes: bool = False,
    same_views: bool = True,
) -> Usable | None:
    """The run's derived tables if they may stand for its views (see the module docstring), else
    None. `verify_parts`: hash every part of a supervised run against its manifest (an audit),
    else check their presence. `tables`: check only these (default: all). `keep_bytes`: keep the
    bytes that were hashed (`Usable.data`). `same_views=False`: also tables computed by other view
    SQL (for the run's start alone, which is its root span's: `last`)."""
    miss = _why_not(layout, run_id, verify_parts, tables, keep_bytes, same_views)
    return miss if isinstance(miss, Usable) else None


def why_not(layout: StoreLayout, run_id: str, *, verify_parts: bool = False) -> str | None:
    """Why the run's derived tables are not used (None when they are): for `--debug` and tests."""
    miss = _why_not(layout, run_id, verify_parts, None, False, True)
    return None if isinstance(miss, Usable) else miss


def _why_not(
    layout: StoreLayout,
    run_id: str,
    verify_parts: bool,
    wanted: tuple[str, ...] | None,
    keep_bytes: bool,
    same_views: bool,
) -> Usable | str:
    from .manifest import check_run

    if spool_has_records(layout, run_id):
        return "the run has records in the spool"
    try:
        manifest: Manifest | None = read_manifest(layout, run_id)
    except StoreError as exc:
        return f"its manifest cannot be read: {exc}"
    if manifest is not None:
        on_disk = run_parts(layout, run_id)
        if manifest.derived is None:
            return "its manifest lists no derived tables"
        entry = DerivedEntry.from_json(manifest.derived)
        if entry is None:
            return "its manifest's derived entry is malformed"
        check = check_run(layout, manifest, on_disk, verify_hashes=verify_parts, keep_bytes=False)
        if check.problems:
            return f"its parts differ from its manifest: {check.problems[0][0]}"
    else:
        entry = read_stamp(layout, run_id)
        if entry is None:
            return "it has no derived tables"
        if entry.parts != run_part_names(layout, run_id):
            return "its parts changed since its derived tables were written"
    if entry.views != views_digest() and same_views:
        return "its derived tables were computed by other view SQL"
    where = "manifest" if manifest is not None else "stamp"
    names = derived_names()
    if not (set(entry.tables) <= set(names) or not same_views) or SUMMARY not in entry.tables:
        return "its derived tables are not those of the installed views"
    found: dict[str, Path] = {}
    data: dict[str, bytes] = {}
    for name in wanted if wanted is not None else list(entry.tables):
        rel, sha = entry.tables[name]
        path = table_path(layout, run_id, name)
        if rel != relative(layout, path):
            return f"derived table {name} is listed at another path ({rel})"
        try:  # always: tables are not fsynced, and one torn by a crash must not be read
            if keep_bytes:
                data[name] = path.read_bytes()
                actual = hashlib.sha256(data[name]).hexdigest()
            else:
                actual = sha256_file(path)
        except OSError:
            return f"derived table {rel} cannot be read"
        if actual != sha:
            return f"derived table {rel} does not match its sha256 in the {where}"
        found[name] = path
    return Usable(found, manifest is not None, entry, data)


# Writing (`analysis.derive` computes the tables; these put them in place).


EMPTY = "_empty_"
"""In a batch folder: a view's rows for no run (its schema), for the runs that have none."""
PARTITION = "_run"
"""The column a batch of runs' rows is split by, one folder per run (`_run=<run>/`)."""


def new_batch_dir(layout: StoreLayout) -> Path:
    """A fresh folder inside `derived/` for a batch of runs' tables being written. Raises OSError."""
    make_private_dirs(layout.root, layout.derived_dir)
    directory = layout.derived_dir / f".batch-{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp"
    directory.mkdir(mode=0o700)
    return directory


def place_run(
    layout: StoreLayout, batch: Path, run_id: str, names: list[str], entry: DerivedEntry, *, stamp: bool
) -> bool:
    """Move one run's tables from a batch folder into `derived/run_id=<run>/` (one rename of its
    folder), fill in `entry`'s tables and write the stamp (`stamp`: for a run without a manifest;
    a supervised run's entry goes into its manifest) and the index entry. False when its folder is
    not there (DuckDB escapes some characters in folder names: such a run is left to the views).

    Nothing is fsynced: a table lost or torn by a crash does not match its sha256 (always checked
    on read), which is a cache miss."""
    source = batch / f"{PARTITION}={run_id}"
    if not source.is_dir() or source.parent != batch:
        return False
    os.chmod(source, 0o700)  # DuckDB made it by the umask; the store is private
    for name in names:
        written = sorted(source.glob(f"{glob_escape(name)}_*{TABLE_SUFFIX}"))
        final = source / f"{name}{TABLE_SUFFIX}"
        if len(written) > 1:
            return False
        if written:
            os.replace(written[0], final)
        else:
            shutil.copyfile(batch / f"{EMPTY}{name}{TABLE_SUFFIX}", final)
        os.chmod(final, 0o600)
        rel = relative(layout, table_path(layout, run_id, name))
        entry.tables[name] = (rel, sha256_file(final))
    if stamp:
        (source / STAMP).write_text(json.dumps(entry.as_json(), separators=(",", ":")))
        os.chmod(source / STAMP, 0o600)
    target = layout.derived_run_dir(run_id)
    if target.exists():
        old = batch / f".old-{uuid.uuid4().hex[:12]}"
        os.replace(target, old)
    os.replace(source, target)
    if entry.started is not None:
        index = layout.derived_index_dir
        make_private_dirs(layout.root, index)
        name = f"{entry.started}{INDEX_SEPARATOR}{run_id}"
        for stale in index.glob(f"*{INDEX_SEPARATOR}{glob_escape(run_id)}"):
            if stale.name != name and stale.name.split(INDEX_SEPARATOR, 1)[1] == run_id:
                stale.unlink(missing_ok=True)
        os.close(os.open(index / name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    return True


def started_key(started: datetime | None) -> str | None:
    """A start time as a name that sorts in time order (UTC, microseconds)."""
    if started is None:
        return None
    if started.tzinfo is not None:
        started = started.astimezone(UTC)
    return started.strftime(_STARTED_FORMAT)


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def indexed_starts(layout: StoreLayout) -> dict[str, str]:
    """run id -> start key, from the index's file names (a folder listing: nothing is opened)."""
    try:
        names = os.listdir(layout.derived_index_dir)
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name in names:
        started, sep, run_id = name.partition(INDEX_SEPARATOR)
        if sep and run_id and not name.endswith(".tmp") and started > found.get(run_id, ""):
            found[run_id] = started
    return found


def summary_path(layout: StoreLayout, run_id: str) -> Path:
    return table_path(layout, run_id, SUMMARY)


def partition_run(path: Path) -> str:
    return path.parent.name.removeprefix(PARTITION_PREFIX)


__all__ = [
    "DerivedEntry",
    "Usable",
    "derived_names",
    "indexed_starts",
    "read_stamp",
    "spool_has_records",
    "started_key",
    "summary_path",
    "usable",
    "views_digest",
    "why_not",
]
