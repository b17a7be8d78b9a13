"""A DuckDB connection over a store, with the views of queries/views/*.sql defined on it.

The connection is a sandbox for the SQL users and gates bring (DESIGN.md, "Gates"): once the
store's parts are registered, it can read files inside the store only, cannot write files, attach
databases, install or load extensions, and its configuration is locked. Together with
`readonly.ensure_read_only` (one SELECT statement), gate SQL and `agenttrace query` can read the
store and nothing else.

Runs recorded by `agenttrace run` have a manifest (`store.manifest`): only the parts it lists are
read (span, log and sample parts alike), each row of `spans`, `logs` and `metrics` says who
reported it (`origin`: supervisor or agent), and whatever does not match the manifest is listed in
the `integrity_problems` table for the `integrity` gate.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import queries
from ..errors import QueryError, StoreError
from ..store.layout import KINDS, LOGS, PARTITION_PREFIX, SAMPLES, SPANS, StoreLayout
from ..store.manifest import ORIGINS, Manifest, RunCheck, check_run, manifested_runs, read_manifest, relative
from ..store.parts import list_parts, part_decode_problem
from ..store.reader import Snapshot, snapshot
from ..store.schema import KIND_SCHEMAS
from .sandbox import SQL_ERRORS, lock_down, sql_literal
from .sandbox import first_line as _first_line

log = logging.getLogger(__name__)

VIEWS = (
    "raw", "spans", "logs", "metrics", "processes", "agent_events", "answer_exits", "steps", "artifacts",
    "claims", "gpu_samples", "runs", "verifications", "claim_evidence",
)  # fmt: skip
"""View files in the order they are created (later views read earlier ones)."""

USER_VIEWS = (
    "runs", "spans", "steps", "processes", "artifacts", "claims", "gpu_samples", "gpu_events", "logs",
    "metrics",
)  # fmt: skip
"""The views users query; their columns are part of the contract (`verifications` and
`claim_evidence` are there too, for the gates and for people)."""

URL_CHECKS_SCHEMA = pa.schema([("url", pa.string()), ("status", pa.int32()), ("error", pa.string())])
"""`url_checks`: live answers for URLs cited as evidence (`agenttrace audit --online`)."""
PROBLEMS_SCHEMA = pa.schema([("run_id", pa.string()), ("reason", pa.string()), ("part", pa.string())])
"""`integrity_problems`: where a manifested run's records differ from its manifest."""
_SOURCE = {SPANS: "spans", LOGS: "logs", SAMPLES: "samples"}
"""Each kind's name in the registered relations: `_part_<name>` (parts of runs without a
manifest), `_part_<name>_<origin>` (a manifested run's listed parts), `_spool_<name>`."""

_MAX_CORRUPT_RETRIES = 16
_SQL_ERRORS = SQL_ERRORS


class Database:
    """The store, seen through DuckDB. `runs` limits it to some runs (faster for one run)."""

    def __init__(
        self,
        store: Path | StoreLayout,
        runs: Sequence[str] | None = None,
        *,
        verify: bool = False,
        manifests: dict[str, Manifest] | None = None,
    ) -> None:
        """`verify`: hash every part a manifest lists (an audit); `manifests`: manifests to use
        instead of the stored ones (the supervisor's own, while it audits the run it recorded)."""
        self.layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
        self.snapshot: Snapshot = snapshot(self.layout, list(runs) if runs is not None else None)
        self.warnings: list[str] = list(self.snapshot.warnings)
        self._materialized = False
        self._url_checks_set = False
        self._by_origin: dict[str, dict[str, list[Path]]] = {k: {o: [] for o in ORIGINS} for k in KINDS}
        """A manifested run's listed parts, by kind and origin."""
        self._problems: list[tuple[str, str, str | None]] = []
        self._supervised: list[str] = []
        self._verified: dict[Path, pa.Table] = {}
        """Bytes of parts hashed against their manifest, read once (an audit reads these)."""
        self._requested = list(runs) if runs is not None else None
        self._apply_manifests(manifests or {}, verify)
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        self._register_sources()
        for name in VIEWS:
            self.con.execute(queries.load(f"views/{name}.sql"))
        self._sandbox()

    def _apply_manifests(self, given: dict[str, Manifest], verify: bool) -> None:
        """Split the snapshot's parts (spans, logs, samples) by run; for each run with a manifest,
        keep only the parts it lists (by kind and origin) and note every difference. Spool records
        of a manifested run (written after its supervisor finished) are dropped and noted."""
        snap = self.snapshot
        by_run: dict[str, list[Path]] = {}
        for kind in KINDS:
            for part in snap.parts(kind):
                by_run.setdefault(part.parent.name.removeprefix(PARTITION_PREFIX), []).append(part)
        spool_runs: set[str] = set()
        for kind in KINDS:
            table = snap.spool(kind)
            if table.num_rows:
                spool_runs.update(table.column("RunId").to_pylist())
        checked: set[str] = set()  # runs whose parts are those their manifest lists
        candidates = set(by_run) | spool_runs | set(given)
        # A run whose parts are all gone is still a run its supervisor recorded: ask for it by id,
        # or list the runs that have a manifest.
        candidates |= (
            set(self._requested) if self._requested is not None else set(manifested_runs(self.layout))
        )
        for run_id in sorted(candidates):
            try:
                manifest = given.get(run_id) or read_manifest(self.layout, run_id)
            except StoreError as exc:
                self._supervised.append(run_id)
                self._problems.append((run_id, str(exc), None))
                continue
            if manifest is None:
                continue
            self._supervised.append(run_id)
            checked.add(run_id)
            on_disk = [p for kind in KINDS for p in list_parts(self.layout.root / kind, [run_id])]
            check = check_run(self.layout, manifest, on_disk, verify_hashes=verify)  # corrupt ones too
            self._decode_verified(run_id, check)
            for kind, origins in check.kind_parts.items():
                for origin, parts in origins.items():
                    self._by_origin.setdefault(kind, {}).setdefault(origin, []).extend(parts)
            self._problems += [(run_id, reason, part) for reason, part in check.problems]
            if run_id in spool_runs:
                self._problems.append(
                    (
                        run_id,
                        "records of the run were written into the spool after its supervisor "
                        "finished: they are not used",
                        None,
                    )
                )
        for kind in KINDS:
            parts = snap.parts(kind)
            parts[:] = [p for p in parts if p.parent.name.removeprefix(PARTITION_PREFIX) not in checked]
        if self._supervised:
            supervised = pa.array(self._supervised)
            for kind in KINDS:
                table = snap.spool(kind)
                if table.num_rows:
                    snap.set_spool(kind, table.filter(pc.invert(pc.is_in(table.column("RunId"), supervised))))

    def _decode_verified(self, run_id: str, check: RunCheck) -> None:
        """Decode the parts whose bytes matched the manifest, from those bytes; a part that does
        not decode is left out and named (its bytes are the supervisor's: a disk fault)."""
        for origins in check.kind_parts.values():
            for parts in origins.values():
                for part in list(parts):
                    data = check.verified.get(part)
                    if data is None:
                        continue
                    try:
                        self._verified[part] = pq.read_table(pa.BufferReader(data))
                    except (pa.ArrowException, OSError, ValueError) as exc:
                        parts.remove(part)
                        rel = relative(self.layout, part)
                        self._problems.append((run_id, f"part {rel} cannot be read: {exc}", rel))

    def is_supervised(self, run_id: str) -> bool:
        """Whether the run has a supervisor's manifest (even one that cannot be read)."""
        return run_id in self._supervised

    @property
    def problems(self) -> list[tuple[str, str, str | None]]:
        """(run, reason, part) where a manifested run's records differ from its manifest."""
        return list(self._problems)

    def _sandbox(self) -> None:
        """From here on the connection reads files inside the store only, loads no extension, and
        cannot be reconfigured (DuckDB's own settings; see the module docstring). It can write
        inside the store: `export` does, for derived tables; user SQL is one SELECT."""
        lock_down(self.con, str(self.layout.root))

    def materialize(self) -> None:
        """Compute the views once into temporary tables, for a series of queries over the same
        runs (an audit runs a dozen gate queries; each would otherwise recompute `spans`,
        `steps`, ... from the parts). The views keep their names and columns. Once per open."""
        if self._materialized:
            return
        self._materialized = True
        for name in VIEWS:
            if name == "raw":
                continue
            self.execute(f"CREATE OR REPLACE TEMP TABLE _materialized_{name} AS SELECT * FROM {name}")
            self.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _materialized_{name}")

    def export(self, select: str, path: Path, *, partition: str | None = None) -> None:
        """Write the rows of a SELECT of ours (after `materialize()`: over the computed views) as
        Parquet inside the store, in DuckDB's types (JSON stays JSON): a run's derived tables
        (`analysis.derive`). `partition`: `path` is a folder, and the rows go to one file
        `<partition>_0.parquet` per value of the column `_run` (`_run=<value>/`)."""
        options = "FORMAT parquet, COMPRESSION zstd"
        if partition is not None:
            pattern = sql_literal(partition + "_{i}")
            options += f", PARTITION_BY (_run), FILENAME_PATTERN {pattern}, OVERWRITE_OR_IGNORE true"
        self.execute(f"COPY ({select}) TO {sql_literal(str(path))} ({options})")

    def set_url_checks(self, checks: list[tuple[str, int | None, str | None]]) -> None:
        """Live answers (url, HTTP status, error) for the `claim_evidence` view; before
        `materialize()`."""
        urls, statuses, errors = (list(c) for c in zip(*checks, strict=True)) if checks else ([], [], [])
        table = pa.table({"url": urls, "status": statuses, "error": errors}, schema=URL_CHECKS_SCHEMA)
        self.con.register("url_checks", table)
        self._url_checks_set = True

    def _register_sources(self) -> None:
        """Register the parts as views; a part whose footer does not decode fails DuckDB's bind
        already, here, not at a query: it is skipped as a query skips it (and this runs again)."""
        try:
            self._register_each_source()
        except duckdb.Error as exc:
            if not self._skip_corrupt_parts(exc):  # which registers the rest again
                raise StoreError(f"the store cannot be read: {_first_line(exc)}") from None

    def _register_each_source(self) -> None:
        snap = self.snapshot
        self.con.register("_spool_spans", snap.spool_spans)
        self.con.register("_spool_logs", snap.spool_logs)
        self.con.register("_spool_samples", snap.spool_samples)
        self.con.register("live_runs", pa.table({"run_id": pa.array(snap.live_runs, pa.string())}))
        self.con.register("supervised_runs", pa.table({"run_id": pa.array(self._supervised, pa.string())}))
        problems = list(zip(*self._problems, strict=True)) if self._problems else [[], [], []]
        self.con.register(
            "integrity_problems",
            pa.table([pa.array(list(c), pa.string()) for c in problems], schema=PROBLEMS_SCHEMA),
        )
        if not self._url_checks_set:
            self.con.register("url_checks", URL_CHECKS_SCHEMA.empty_table())
        sources = []
        for kind, source in _SOURCE.items():
            schema = KIND_SCHEMAS[kind]
            sources.append((f"_part_{source}", snap.parts(kind), schema))
            for origin in ORIGINS:
                sources.append((f"_part_{source}_{origin}", self._by_origin[kind][origin], schema))
        for name, parts, schema in sources:
            if parts and all(p in self._verified for p in parts):  # read once, when checked
                table = pa.concat_tables([self._verified[p] for p in parts], promote_options="permissive")
                relation = self.con.from_arrow(table)
            elif parts:
                relation = self.con.read_parquet([str(p) for p in parts], union_by_name=True)
            else:
                relation = self.con.from_arrow(schema.empty_table())
            relation.create_view(name, replace=True)

    def _skip_corrupt_parts(self, error: duckdb.Error) -> bool:
        """After a read error, skip the parts to blame: the one the error names, else every part
        that does not decode in full. True if any part was skipped (the query can be retried)."""
        if isinstance(error, _SQL_ERRORS):
            return False
        message = str(error)
        reason = re.sub(r"\s+", " ", message.split("\n", 1)[0])
        skipped = False
        all_parts = [self.snapshot.parts(kind) for kind in KINDS]
        all_parts += [parts for origins in self._by_origin.values() for parts in origins.values()]
        for parts in all_parts:
            named = [p for p in parts if str(p) in message]
            for part in named or [p for p in parts if part_decode_problem(p)]:
                parts.remove(part)
                problem = part_decode_problem(part) or reason
                self.warnings.append(f"skipped corrupt part {part}: {problem}")
                run_id = part.parent.name.removeprefix(PARTITION_PREFIX)
                if run_id in self._supervised:  # a manifested run's part: its record is incomplete
                    rel = relative(self.layout, part)
                    self._problems.append((run_id, f"part {rel} cannot be read: {problem}", rel))
                skipped = True
        if skipped:
            self._register_sources()
        return skipped

    def execute(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement; return column names and rows. Raises QueryError."""
        for _ in range(_MAX_CORRUPT_RETRIES):
            try:
                result = self.con.execute(sql, params or {})
                columns = [d[0] for d in result.description or ()]
                return columns, result.fetchall()
            except duckdb.Error as exc:
                if self._skip_corrupt_parts(exc):
                    continue
                raise QueryError(_first_line(exc)) from exc
        raise QueryError("too many corrupt parts; run `agenttrace query` with --debug for details")

    def records(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        columns, rows = self.execute(sql, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def report(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run `queries/reports/<name>.sql` with bound parameters."""
        return self.records(queries.load(f"reports/{name}.sql"), params)

    def arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        for _ in range(_MAX_CORRUPT_RETRIES):
            try:
                return self.con.sql(sql, params=params or None).to_arrow_table()
            except duckdb.Error as exc:
                if self._skip_corrupt_parts(exc):
                    continue
                raise QueryError(_first_line(exc)) from exc
        raise QueryError("too many corrupt parts")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
