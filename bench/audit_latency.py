"""Audit latency: `audit` of one run in a big store, against a bare DuckDB scan of that run.

The store: 1,000 runs of ~2,000 spans each (>= 2M spans; gen_otlp's agent runs: an invoke_agent
root, chat spans with GenAI attributes and ~1.5 KB of messages, execute_tool spans, process
spans), written through StoreWriter as the exporter writes them (one sealed part per run). Then:

- audit: open the store for one run (DuckDB + views) and evaluate every gate, in this process;
- baseline: a bare DuckDB scan of that run's partition in the same process
  (`SELECT count(*), max(Timestamp) FROM read_parquet('spans/run_id=<run>/*.parquet')`).
Goal: audit <= 3x the bare scan. Also the wall time of the CLI (`agenttrace audit RUN` and
`agenttrace step RUN 14`, new processes): goal under 1 s. The same for one run of 200k spans.

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


def measure(store: Path, run_id: str, reps: int) -> dict[str, Any]:
    gates = load_gates(store)
    part_glob = str(store / "spans" / f"run_id={run_id}" / "*.parquet")
    audits, scans, cli_audit, cli_step = [], [], [], []
    for rep in range(reps):
        for side in ("audit", "scan") if rep % 2 == 0 else ("scan", "audit"):
            start = time.perf_counter()
            if side == "audit":
                with Database(StoreLayout(store), runs=[run_id]) as db:
                    verdict = audit(db, run_id, gates)
                audits.append(time.perf_counter() - start)
            else:
                con = duckdb.connect(":memory:")
                con.execute(f"SELECT count(*), max(Timestamp) FROM read_parquet('{part_glob}')").fetchall()
                con.close()
                scans.append(time.perf_counter() - start)
        for args, sink in ((["audit", run_id], cli_audit), (["step", run_id, "14"], cli_step)):
            start = time.perf_counter()
            subprocess.run(
                [str(BIN / "agenttrace"), *args, "--store", str(store)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            sink.append(time.perf_counter() - start)
    return {
        "audit_s": median(audits),
        "scan_s": median(scans),
        "ratio": median(audits) / median(scans),
        "cli_audit_s": median(cli_audit),
        "cli_step_s": median(cli_step),
        "gates": len(verdict.gates),
    }


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
            f"(written in {fmt_s(time.perf_counter() - started)})"
        )
        many = measure(tmp / "many", ids[len(ids) // 2], args.reps)
        big_template = run_table(gen, big_steps)
        (big_id,) = write_runs(tmp / "big", big_template, 1, "big")
        print(f"single run: {big_template.num_rows:,} spans")
        big = measure(tmp / "big", big_id, max(2, args.reps // 2))
    for label, figures in (("one run of many", many), ("one big run", big)):
        print(
            f"{label}: audit ({figures['gates']} gates) {fmt_s(figures['audit_s'])} vs bare scan "
            f"{fmt_s(figures['scan_s'])} = {figures['ratio']:.1f}x (goal <= {GOAL:.0f}x: "
            f"{'met' if figures['ratio'] <= GOAL else 'NOT met'}); "
            f"CLI audit {fmt_s(figures['cli_audit_s'])}, CLI step {fmt_s(figures['cli_step_s'])} (goal < 1 s)"
        )
        key = "many" if label.startswith("one run") else "big"
        result |= {f"{key}_{k}": round(v, 3) for k, v in figures.items()}
    result["spans"] = spans
    final_json(result)


if __name__ == "__main__":
    main()
