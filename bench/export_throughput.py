"""Spans per second into Parquet through agenttrace's exporter path, versus the physical limit
measured in the same run: `pyarrow.parquet.write_table` of the same rows, already an Arrow table,
with the same compression (zstd level 3, dictionary encoding), to one file, fsynced.

The ReadableSpans are made once, up front, with a real SDK TracerProvider and an
InMemorySpanExporter, so span creation is not measured; conversion is.

Paths measured (each rep writes a fresh store; everything durable and sealed into Parquet):
  exporter   ParquetSpanExporter.export() in batches of 512 (the BatchSpanProcessor default), then
             shutdown() (seals the spool into Parquet parts, one per run);
  breakdown  the same work by hand: records.spans_to_batch(batch, "end") -> StoreWriter.append(),
             then StoreWriter.close(), each step timed separately;
  limit      pyarrow.parquet.write_table(table) of all rows at once, plus fsync.

    python bench/export_throughput.py [--quick] [--spans N] [--reps R] [--batch B]
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from _common import (
    RESOURCE,
    SPANS_PER_RUN,
    LogCollector,
    clean_environment,
    emit,
    final_json,
    fmt_bytes,
    fmt_s,
    header,
    median,
    parser,
    spread,
    timed,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agenttrace.capture.exporter import ParquetSpanExporter
from agenttrace.capture.records import spans_to_batch
from agenttrace.store.layout import StoreLayout
from agenttrace.store.schema import END
from agenttrace.store.writer import StoreWriter


def make_spans(total: int) -> list[ReadableSpan]:
    provider = TracerProvider(resource=RESOURCE)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    runs = max(1, total // SPANS_PER_RUN)
    emit(provider, runs, (SPANS_PER_RUN - 1) // 3)
    spans = list(memory.get_finished_spans())
    provider.shutdown()
    return spans


def batches(spans: Sequence[ReadableSpan], size: int) -> list[Sequence[ReadableSpan]]:
    return [spans[i : i + size] for i in range(0, len(spans), size)]


def store_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "spans").rglob("*.parquet"))


def run_exporter(chunks: list[Sequence[ReadableSpan]], store: Path) -> dict[str, Any]:
    exporter = ParquetSpanExporter(store, flush_interval=0.5)
    gc.collect()
    t0 = time.perf_counter()
    for chunk in chunks:
        exporter.export(chunk)
    t1 = time.perf_counter()
    exporter.shutdown()
    t2 = time.perf_counter()
    return {
        "total_s": t2 - t0,
        "export_s": t1 - t0,
        "seal_s": t2 - t1,
        "failed_batches": exporter.failed_batches,
        "bytes": store_bytes(store),
        "parts": sum(1 for _ in (store / "spans").rglob("*.parquet")),
    }


def run_breakdown(chunks: list[Sequence[ReadableSpan]], store: Path) -> dict[str, Any]:
    writer = StoreWriter(StoreLayout(store))
    convert = append = 0.0
    gc.collect()
    t0 = time.perf_counter()
    for chunk in chunks:
        a = time.perf_counter()
        batch = spans_to_batch(chunk, END)
        b = time.perf_counter()
        writer.append(batch)
        c = time.perf_counter()
        convert += b - a
        append += c - b
    t1 = time.perf_counter()
    writer.close()
    t2 = time.perf_counter()
    return {"total_s": t2 - t0, "convert_s": convert, "append_s": append, "close_s": t2 - t1}


def run_limit(table: pa.Table, path: Path) -> dict[str, Any]:
    gc.collect()
    t0 = time.perf_counter()
    with open(path, "wb") as sink:
        pq.write_table(table, sink, compression="zstd", compression_level=3, use_dictionary=True)
        sink.flush()
        os.fsync(sink.fileno())
    t1 = time.perf_counter()
    return {"total_s": t1 - t0, "bytes": path.stat().st_size}


def run_limit_per_run(tables: list[pa.Table], folder: Path) -> dict[str, Any]:
    """The limit with the store's layout: one file per run, each fsynced (no spool, no renames)."""
    folder.mkdir()
    gc.collect()
    t0 = time.perf_counter()
    for i, table in enumerate(tables):
        with open(folder / f"{i}.parquet", "wb") as sink:
            pq.write_table(table, sink, compression="zstd", compression_level=3, use_dictionary=True)
            sink.flush()
            os.fsync(sink.fileno())
    t1 = time.perf_counter()
    return {"total_s": t1 - t0, "bytes": sum(p.stat().st_size for p in folder.iterdir())}


def main() -> None:
    ap = parser(__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=None, help="spans (default 100000)")
    ap.add_argument("--reps", type=int, default=None, help="measurements per path (default 5)")
    ap.add_argument("--batch", type=int, default=512, help="spans per export() call (default 512)")
    args = ap.parse_args()
    clean_environment()
    logs = LogCollector().install()
    total = args.spans or (10_000 if args.quick else 100_000)
    reps = args.reps or (3 if args.quick else 5)
    header("export throughput: exporter path vs pyarrow.parquet.write_table of the same rows", args.quick)

    t_make, spans = timed(lambda: make_spans(total))
    n = len(spans)
    chunks = batches(spans, args.batch)
    table = pa.Table.from_batches([spans_to_batch(spans, END)])
    run_ids = sorted(set(table.column("RunId").to_pylist()))
    runs = len(run_ids)
    per_run = [table.filter(pc.equal(table.column("RunId"), r)) for r in run_ids]
    print(
        f"workload: {n} ReadableSpans ({runs} runs, 6 attributes each) made once in {fmt_s(t_make)}; "
        f"{len(chunks)} export batches of {args.batch}; {reps} reps per path, order rotated each rep"
    )

    tmp = Path(tempfile.mkdtemp(prefix="agenttrace-bench-export-", dir=args.tmp))
    results: dict[str, list[dict[str, Any]]] = {
        "limit": [],
        "exporter": [],
        "breakdown": [],
        "limit/per-run": [],
    }
    try:
        run_exporter(chunks[:4], tmp / "warmup-e")  # warm-up
        run_limit(table.slice(0, 2048), tmp / "warmup.parquet")
        for rep in range(reps):
            order = list(results)
            order = order[rep % len(order) :] + order[: rep % len(order)]
            for path in order:
                target = tmp / f"{path.replace('/', '-')}-{rep}"
                if path == "limit":
                    results[path].append(run_limit(table, target.with_suffix(".parquet")))
                    target.with_suffix(".parquet").unlink()
                elif path == "limit/per-run":
                    results[path].append(run_limit_per_run(per_run, target))
                elif path == "exporter":
                    results[path].append(run_exporter(chunks, target))
                else:
                    results[path].append(run_breakdown(chunks, target))
                shutil.rmtree(target, ignore_errors=True)
            print(
                f"  rep {rep + 1}: "
                + " | ".join(f"{path} {fmt_s(r[-1]['total_s'])}" for path, r in results.items())
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    lim, exp, brk = results["limit"], results["exporter"], results["breakdown"]
    lim_s, exp_s, brk_s = (median([r["total_s"] for r in rs]) for rs in (lim, exp, brk))
    ratio = exp_s / lim_s
    paired = median([e["total_s"] / m["total_s"] for e, m in zip(exp, lim, strict=True)])
    conv_s = median([r["convert_s"] for r in brk])
    app_s = median([r["append_s"] for r in brk])
    close_s = median([r["close_s"] for r in brk])

    print()
    print(f"limit     write_table + fsync, 1 file: {spread([r['total_s'] for r in lim])}")
    print(f"          = {n / lim_s:,.0f} spans/s, {fmt_bytes(lim[0]['bytes'])}")
    print(f"exporter  export() x {len(chunks)} + shutdown(): {spread([r['total_s'] for r in exp])}")
    print(
        f"          = {n / exp_s:,.0f} spans/s, {fmt_bytes(exp[0]['bytes'])} in {exp[0]['parts']} parts; "
        f"export() calls {fmt_s(median([r['export_s'] for r in exp]))}, "
        f"shutdown() (seal) {fmt_s(median([r['seal_s'] for r in exp]))}; "
        f"failed batches {max(r['failed_batches'] for r in exp)}"
    )
    print(
        f"RATIO exporter time / limit time: {ratio:.1f}x (paired median {paired:.1f}x); "
        f"the exporter reaches {1 / ratio:.1%} of the physical limit"
    )
    per_run_s = median([r["total_s"] for r in results["limit/per-run"]])
    print(
        f"reference: limit with one file per run ({runs} files, each fsynced): "
        f"{spread([r['total_s'] for r in results['limit/per-run']])} = {n / per_run_s:,.0f} spans/s, "
        f"{fmt_bytes(results['limit/per-run'][0]['bytes'])}; exporter / this = {exp_s / per_run_s:.1f}x"
    )
    print(f"breakdown (by hand, same work): {spread([r['total_s'] for r in brk])} = {n / brk_s:,.0f} spans/s")
    for label, secs in (
        ("records.spans_to_batch (conversion)", conv_s),
        ("StoreWriter.append (spool IPC write + fsync)", app_s),
        ("StoreWriter.close (spool -> Parquet parts)", close_s),
    ):
        print(
            f"    {label:<46} {fmt_s(secs):>10}  {secs / brk_s:6.1%}  {secs / n * 1e6:6.2f} us/span"
            f"  ({secs / lim_s:.1f}x the limit)"
        )
    for line in logs.report():
        print(f"  logged: {line}")
    final_json(
        {
            "bench": "export_throughput",
            "quick": args.quick,
            "spans": n,
            "runs": runs,
            "reps": reps,
            "batch": args.batch,
            "limit_s": round(lim_s, 4),
            "limit_spans_per_s": round(n / lim_s),
            "exporter_s": round(exp_s, 4),
            "exporter_spans_per_s": round(n / exp_s),
            "ratio": round(ratio, 3),
            "ratio_paired": round(paired, 3),
            "convert_s": round(conv_s, 4),
            "append_s": round(app_s, 4),
            "close_s": round(close_s, 4),
            "convert_us_per_span": round(conv_s / n * 1e6, 3),
            "limit_per_run_s": round(per_run_s, 4),
            "ratio_vs_per_run_limit": round(exp_s / per_run_s, 3),
            "limit_bytes": lim[0]["bytes"],
            "store_bytes": exp[0]["bytes"],
            "failed_batches_max": max(r["failed_batches"] for r in exp),
        }
    )


if __name__ == "__main__":
    main()
