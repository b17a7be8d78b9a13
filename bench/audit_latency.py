"""Audit latency: `audit` of one run in a big store, against a bare DuckDB scan of that run.

The store: 1,000 runs of ~2,000 spans each (>= 2M spans; gen_otlp's agent runs: an invoke_agent
root, chat spans with GenAI attributes and ~1.5 KB of messages, execute_tool spans, process
spans), written through StoreWriter as the exporter writes them (one sealed part per run). Then:

- audit: open the store for one run (DuckDB + views) and evaluate every gate, in this process;
- baseline: a bare DuckDB scan of that run's partition in the same process
  (`SELECT count(*), max(Timestamp) FROM read_parquet('spans/run_id=<run>/*.parquet')`).
Goal: audit <= 3x the bare scan. Also the wall time of the CLI (`agenttrace audit RUN` and
`agenttrace step RUN 14`, new processes): goal under 1 s. The same for one run of 200k spans.

Each run's derived tables (`store.derived`) are written as `agenttrace run` writes them, by
`analysis.derive.derive_runs` (what the supervisor's `derive_run` is, a batch of runs at a time),
and every figure is taken twice in the same run: over the derived tables, and with them moved
away (the views computed from the parts: the path before derived tables, and still the path of
open runs and of runs sealed before them). On the big store also `agenttrace audit last`,
`step last 14` and `runs` (wall time and peak RSS of the child, from `/usr/bin/time`); goals
< 0.5 s and < 300 MiB whatever the number of runs.

    python bench/audit_latency.py [--quick] [--runs R] [--reps N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from _common import clean_environment, final_json, fmt_s, header, load_gen_otlp, median, parser
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agenttrace.analysis import Database
from agenttrace.analysis.derive import derive_runs
from agenttrace.analysis.derived import DerivedDatabase
from agenttrace.audit.gates import load_gates
from agenttrace.audit.verdict import audit
from agenttrace.otlp.convert import convert
from agenttrace.store.layout import StoreLayout
from agenttrace.store.writer import StoreWriter

BIN = Path(sys.executable).parent
GOAL = 3.0


def run_table(gen: Any, steps: int) -> pa.Table:
    bodies, _ = gen.payloads(1, steps, 4096)
    batches = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        batches.append(convert(request).batch)
    return pa.Table.from_batches(batches)


def write_runs(store: Path, template: pa.Table, runs: int, prefix: str) -> list[str]:
    writer = StoreWriter(StoreLayout(store))
    ids = []
    column = template.schema.get_field_index("RunId")
    for i in range(runs):
        run_id = f"{prefix}-{i:04d}"
        table = template.set_column(column, "RunId", pa.array([run_id] * template.num_rows, pa.string()))
        writer.append(table, sync=False)
        writer.seal_run(run_id)
        ids.append(run_id)
    writer.close()
    return ids


def derive(store: Path, ids: list[str], batch: int = 50) -> float:
    """Write every run's derived tables; the seconds it took."""
    started = time.perf_counter()
    for i in range(0, len(ids), batch):
        chunk = ids[i : i + batch]
        written = derive_runs(StoreLayout(store), chunk)
        assert len(written) == len(chunk), f"derived {len(written)} of {len(chunk)} runs"
    return time.perf_counter() - started


def child(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of a new process, from GNU time."""
    out = Path(tempfile.mkstemp(prefix="agenttrace-time-")[1])
    start = time.perf_counter()
    subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(out), *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        cwd=cwd,
    )
    seconds = time.perf_counter() - start
    try:
        rss = int(out.read_text().split()[-1]) / 1024
    except (ValueError, IndexError):
        rss = float("nan")
    out.unlink()
    return seconds, rss


def read_commands(store: Path, reps: int) -> dict[str, Any]:
    """`audit last`, `step last 14` and `runs` on the whole store: wall time and peak RSS."""
    figures: dict[str, Any] = {}
    for name, args in (("audit_last", ["audit", "last"]), ("step_last_14", ["step", "last", "14"]),
                       ("runs", ["runs"])):  # fmt: skip
        samples = [child([str(BIN / "agenttrace"), *args, "--store", str(store)]) for _ in range(reps)]
        figures[f"{name}_s"] = median([s for s, _ in samples])
        figures[f"{name}_rss_mib"] = max(r for _, r in samples)
    return figures


def measure(store: Path, run_id: str, reps: int, derived: bool) -> dict[str, Any]:
    gates = load_gates(None)
    layout = StoreLayout(store)
    part_glob = str(store / "spans" / f"run_id={run_id}" / "*.parquet")
    audits, scans, cli_audit, cli_step = [], [], [], []
    for rep in range(reps):
        for side in ("audit", "scan") if rep % 2 == 0 else ("scan", "audit"):
            start = time.perf_counter()
            if side == "audit":
                fast = DerivedDatabase.open(layout, run_id, verify=True)
                assert (fast is not None) == derived, f"derived tables used: {fast is not None}"
                with fast or Database(layout, runs=[run_id], verify=True) as db:
                    verdict = audit(db, run_id, gates)
                audits.append(time.perf_counter() - start)
            else:
                con = duckdb.connect(":memory:")
                con.execute(f"SELECT count(*), max(Timestamp) FROM read_parquet('{part_glob}')").fetchall()
                con.close()
                scans.append(time.perf_counter() - start)
        for args, sink in ((["audit", run_id], cli_audit), (["step", run_id, "14"], cli_step)):
            sink.append(child([str(BIN / "agenttrace"), *args, "--store", str(store)]))
    return {
        "audit_s": median(audits),
        "scan_s": median(scans),
        "ratio": median(audits) / median(scans),
        "cli_audit_s": median([s for s, _ in cli_audit]),
        "cli_audit_rss_mib": max(r for _, r in cli_audit),
        "cli_step_s": median([s for s, _ in cli_step]),
        "cli_step_rss_mib": max(r for _, r in cli_step),
        "gates": len(verdict.gates),
    }


def both_ways(store: Path, run_id: str, reps: int, whole_store: bool) -> dict[str, dict[str, Any]]:
    """The figures over the derived tables, then with them moved away (the views)."""
    result = {"derived": measure(store, run_id, reps, True)}
    if whole_store:
        result["derived"] |= read_commands(store, reps)
    (store / "derived").rename(store / "derived.off")
    try:
        result["views"] = measure(store, run_id, max(1, reps // 2), False)
        if whole_store:
            result["views"] |= read_commands(store, 1)  # 17 s and 3 GB each before: once
    finally:
        (store / "derived.off").rename(store / "derived")
    return result


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    big_steps = 88_000
    if args.quick:
        args.runs, args.reps, big_steps = 50, 2, 8_800
    clean_environment()
    header("audit latency", args.quick)
    gen = load_gen_otlp()
    result: dict[str, Any] = {"bench": "audit_latency"}
    with tempfile.TemporaryDirectory(prefix="agenttrace-bench-", dir=args.tmp) as tmp_dir:
        tmp = Path(tmp_dir)
        template = run_table(gen, 888)
        started = time.perf_counter()
        ids = write_runs(tmp / "many", template, args.runs, "many")
        spans = template.num_rows * args.runs
        print(
            f"store: {args.runs} runs x {template.num_rows} spans = {spans:,} spans "
            f"(written in {fmt_s(time.perf_counter() - started)}; derived tables of every run written "
            f"in {fmt_s(derive(tmp / 'many', ids))})"
        )
        many = both_ways(tmp / "many", ids[len(ids) // 2], args.reps, whole_store=True)
        big_template = run_table(gen, big_steps)
        (big_id,) = write_runs(tmp / "big", big_template, 1, "big")
        print(
            f"single run: {big_template.num_rows:,} spans (derived in {fmt_s(derive(tmp / 'big', [big_id]))})"
        )
        big = both_ways(tmp / "big", big_id, max(2, args.reps // 2), whole_store=False)
    for label, key, sides in (("one run of many", "many", many), ("one big run", "big", big)):
        for side, figures in sides.items():
            print(
                f"{label} [{side}]: audit ({figures['gates']} gates) {fmt_s(figures['audit_s'])} "
                f"vs bare scan {fmt_s(figures['scan_s'])} = {figures['ratio']:.1f}x (goal <= {GOAL:.0f}x: "
                f"{'met' if figures['ratio'] <= GOAL else 'NOT met'}); "
                f"CLI audit {fmt_s(figures['cli_audit_s'])} ({figures['cli_audit_rss_mib']:.0f} MiB), "
                f"CLI step {fmt_s(figures['cli_step_s'])} ({figures['cli_step_rss_mib']:.0f} MiB)"
            )
            if "runs_s" in figures:
                print(
                    f"  whole store [{side}]: audit last {fmt_s(figures['audit_last_s'])} "
                    f"({figures['audit_last_rss_mib']:.0f} MiB), "
                    f"step last 14 {fmt_s(figures['step_last_14_s'])} "
                    f"({figures['step_last_14_rss_mib']:.0f} MiB), "
                    f"runs {fmt_s(figures['runs_s'])} ({figures['runs_rss_mib']:.0f} MiB) "
                    "(goal < 0.5 s and < 300 MiB)"
                )
            result |= {f"{key}_{side}_{k}": round(v, 3) for k, v in figures.items()}
        for k in ("audit_s", "cli_audit_s", "cli_step_s"):
            result[f"{key}_speedup_{k}"] = round(sides["views"][k] / sides["derived"][k], 2)
    result["spans"] = spans
    final_json(result)


if __name__ == "__main__":
    main()
