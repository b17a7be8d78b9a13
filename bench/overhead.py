"""What agenttrace costs the traced program: creating and ending spans with agenttrace's processors
versus the bare OpenTelemetry SDK with a BatchSpanProcessor and a no-op exporter.

Both sides use a fresh TracerProvider per measurement (the global provider is never set) and the
same BatchSpanProcessor settings that `agenttrace.configure()` uses (schedule delay = flush
interval, its max_queue_size and max_export_batch_size), so the difference is agenttrace's work
only. agenttrace's side is wired as `configure()` wires it: PendingSpanProcessor, then
`tracing.batch_processor(ParquetSpanExporter)` (the SDK's BatchSpanProcessor, counting drops).

(a) program time: from the first span started to the last span ended (what the host program feels,
    including the export thread competing for the GIL);
(b) durable time: (a) plus `provider.shutdown()` (every span stored and sealed into Parquet);
(c) CPU time during (a), by thread (Linux, from /proc/self/task): the program's own thread, the
    batch processor's (conversion to Arrow), agenttrace's writer (spool writes, fsync), and the
    whole process. On a busy machine (a) follows the process's CPU time, since every thread competes
    for the same cores; on an idle one, only what holds the GIL slows the program.

Spans that never reach the store (a full batch-processor queue drops them) are counted and shown.

    python bench/overhead.py [--quick] [--spans N] [--reps R] [--flush-interval F]
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import (
    RESOURCE,
    SPANS_PER_RUN,
    LogCollector,
    clean_environment,
    emit,
    final_json,
    fmt_s,
    header,
    median,
    parser,
    spread,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from agenttrace.analysis import Database
from agenttrace.capture.exporter import ParquetSpanExporter, PendingSpanProcessor
from agenttrace.capture.tracing import BSP_MAX_EXPORT_BATCH, BSP_MAX_QUEUE, batch_processor


class NoopExporter(SpanExporter):
    """The baseline exporter: accepts everything, does nothing but count."""

    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def bsp(exporter: SpanExporter, flush_interval: float, queue: int = BSP_MAX_QUEUE) -> BatchSpanProcessor:
    """The bare SDK's processor, with the settings `configure()` gives agenttrace's."""
    return BatchSpanProcessor(
        exporter,
        schedule_delay_millis=flush_interval * 1000,
        max_queue_size=queue,
        max_export_batch_size=min(BSP_MAX_EXPORT_BATCH, queue),
    )


def measure_sdk(runs: int, steps: int, flush_interval: float) -> dict[str, Any]:
    provider = TracerProvider(resource=RESOURCE)
    exporter = NoopExporter()
    provider.add_span_processor(bsp(exporter, flush_interval))
    return _measure(provider, runs, steps) | {"stored": exporter.exported}


def measure_agenttrace(
    runs: int, steps: int, flush_interval: float, store: Path, queue: int = BSP_MAX_QUEUE
) -> dict[str, Any]:
    """agenttrace wired as configure() wires it (with `queue` as the batch processor's queue size)."""
    provider = TracerProvider(resource=RESOURCE)
    pending = PendingSpanProcessor(store, flush_interval=flush_interval)
    exporter = ParquetSpanExporter(store, flush_interval=flush_interval)
    provider.add_span_processor(pending)
    provider.add_span_processor(batch_processor(exporter, flush_interval, queue))
    result = _measure(provider, runs, steps)
    sink = exporter._sink
    db = Database(store)
    try:
        (stored, ended), *_ = db.execute("SELECT count(*), count(*) FILTER (WHERE ended) FROM spans")[1]
        records = dict(db.execute("SELECT RecordType, count(*) FROM raw_spans GROUP BY ALL")[1])
    finally:
        db.close()
    return result | {
        "stored": ended,
        "stored_unended": stored - ended,
        "start_records": records.get("start", 0),
        "end_records": records.get("end", 0),
        "failed_batches": sink.failed_batches,
        "dropped_pending": sink.dropped_pending,
        "dropped_counted": sink.dropped_spans,
        "spool_left": sum(1 for _ in (store / "spool").rglob("*.arrows")),
        "parts": sum(1 for _ in (store / "spans").rglob("*.parquet")),
    }


THREADS = {"MainThread": "program", "OtelBatchSpanRecordProcessor": "batch", "agenttrace-writer": "writer"}
"""The threads whose CPU time (c) shows, by their Python names."""


def _thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each of this process's threads, by native id; {} off Linux."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    for task in Path("/proc/self/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _cpu_by_role(before: dict[int, float], after: dict[int, float]) -> dict[str, float]:
    names = {t.native_id: t.name for t in threading.enumerate()}
    roles = dict.fromkeys(THREADS.values(), 0.0)
    for tid, seconds in after.items():
        role = THREADS.get(names.get(tid, ""))
        if role is not None:
            roles[role] += seconds - before.get(tid, 0.0)
    return roles


def _measure(provider: TracerProvider, runs: int, steps: int) -> dict[str, Any]:
    gc.collect()
    threads0 = _thread_cpu()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    created = emit(provider, runs, steps)
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    by_role = _cpu_by_role(threads0, _thread_cpu())
    provider.shutdown()
    t2 = time.perf_counter()
    return {
        "created": created,
        "program_s": t1 - t0,
        "durable_s": t2 - t0,
        "shutdown_s": t2 - t1,
        "cpu_s": cpu1 - cpu0,
        **{f"cpu_{role}_s": seconds for role, seconds in by_role.items()},
    }


def _us(seconds: float, spans: int, signed: bool = False) -> str:
    return f"{seconds / spans * 1e6:{'+' if signed else ''}.1f} us/span"


def _store_lines(label: str, results: list[dict[str, Any]]) -> None:
    print(f"  {label}:")
    for i, a in enumerate(results):
        print(
            f"    rep {i + 1}: {a['stored']}/{a['created']} stored, {a['created'] - a['stored']} lost; "
            f"raw records end={a['end_records']} start={a['start_records']}; rows never ended "
            f"{a['stored_unended']}; failed batches {a['failed_batches']}; dropped start records "
            f"{a['dropped_pending']}; dropped (counted by the processor) {a['dropped_counted']}; "
            f"parts {a['parts']}; spool segments left {a['spool_left']}"
        )


def main() -> None:
    ap = parser(__doc__.split("\n\n")[0])
    ap.add_argument("--spans", type=int, default=None, help="spans per measurement (default 100000)")
    ap.add_argument("--reps", type=int, default=None, help="measurements per side (default 5)")
    ap.add_argument("--flush-interval", type=float, default=0.5)
    args = ap.parse_args()
    clean_environment()
    logs = LogCollector().install()
    total = args.spans or (10_000 if args.quick else 100_000)
    reps = args.reps or (3 if args.quick else 5)
    runs = max(1, total // SPANS_PER_RUN)
    steps = (SPANS_PER_RUN - 1) // 3
    flush = args.flush_interval
    header("overhead: agenttrace processors vs bare SDK (BatchSpanProcessor + no-op exporter)", args.quick)
    created = runs * (1 + 3 * steps)
    print(
        f"workload: {runs} runs x (1 root + {steps} x [chat, execute_tool > process]) = {created} spans, "
        f"6 attributes each, created as fast as Python can; flush interval {flush} s; {reps} reps per side, "
        "order rotated each rep"
    )
    print(
        f"sides: sdk = BatchSpanProcessor(no-op exporter); agenttrace = configure() wiring "
        f"(max_queue_size {BSP_MAX_QUEUE}); agenttrace/no-drop = the same with a queue of {created} "
        "(nothing can be dropped; not what configure() does, shown for the cost of keeping every span)"
    )
    tmp = Path(tempfile.mkdtemp(prefix="agenttrace-bench-overhead-", dir=args.tmp))
    sides: dict[str, list[dict[str, Any]]] = {"sdk": [], "agenttrace": [], "agenttrace/no-drop": []}
    try:
        # warm-up: imports, first pyarrow/duckdb use, code paths
        measure_sdk(2, 30, flush)
        measure_agenttrace(2, 30, flush, tmp / "warmup")
        for rep in range(reps):
            order = list(sides)
            order = order[rep % 3 :] + order[: rep % 3]
            for side in order:
                store = tmp / f"store-{rep}-{side.replace('/', '-')}"
                if side == "sdk":
                    sides[side].append(measure_sdk(runs, steps, flush))
                else:
                    queue = BSP_MAX_QUEUE if side == "agenttrace" else created
                    sides[side].append(measure_agenttrace(runs, steps, flush, store, queue))
                shutil.rmtree(store, ignore_errors=True)
            print(
                f"  rep {rep + 1}: "
                + " | ".join(
                    f"{side} program {fmt_s(r[-1]['program_s'])} durable {fmt_s(r[-1]['durable_s'])} "
                    f"stored {r[-1]['stored']}"
                    for side, r in sides.items()
                )
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    sdk = sides["sdk"]
    med = {
        side: {k: median([r[k] for r in rs]) for k in ("program_s", "durable_s")}
        for side, rs in sides.items()
    }
    ratios: dict[str, dict[str, float]] = {}
    for side in ("agenttrace", "agenttrace/no-drop"):
        rs = sides[side]
        ratios[side] = {
            "program": med[side]["program_s"] / med["sdk"]["program_s"],
            "durable": med[side]["durable_s"] / med["sdk"]["durable_s"],
            "program_paired": median([a["program_s"] / s["program_s"] for a, s in zip(rs, sdk, strict=True)]),
            "durable_paired": median([a["durable_s"] / s["durable_s"] for a, s in zip(rs, sdk, strict=True)]),
        }
    agt = sides["agenttrace"]
    lost = [a["created"] - a["stored"] for a in agt]
    nodrop_lost = [a["created"] - a["stored"] for a in sides["agenttrace/no-drop"]]
    sdk_lost = [s["created"] - s["stored"] for s in sdk]

    print()
    print(f"(a) program time: create + end {created} spans (what the host program feels)")
    for side, rs in sides.items():
        print(
            f"    {side:<19} {spread([r['program_s'] for r in rs])} = {_us(med[side]['program_s'], created)}"
        )
    for side, r in ratios.items():
        print(
            f"    RATIO {side} / sdk: {r['program']:.2f}x (paired median {r['program_paired']:.2f}x), "
            f"{_us(med[side]['program_s'] - med['sdk']['program_s'], created, signed=True)}"
            + (
                f"; goal <= 1.5x {'met' if r['program'] <= 1.5 else 'NOT met'}"
                if side == "agenttrace"
                else ""
            )
        )
    print("(b) durable time: (a) + provider.shutdown() (every accepted span stored and sealed into Parquet)")
    for side, rs in sides.items():
        print(f"    {side:<19} {spread([r['durable_s'] for r in rs])}")
    for side in ("agenttrace", "agenttrace/no-drop"):
        print(f"    {side} shutdown alone: {spread([r['shutdown_s'] for r in sides[side]])}")
    for side, r in ratios.items():
        print(f"    RATIO {side} / sdk: {r['durable']:.2f}x (paired median {r['durable_paired']:.2f}x)")
    print("(c) CPU time during (a), by thread (user + system, from /proc; medians):")
    cpu_keys = ["cpu_s", *(f"cpu_{role}_s" for role in THREADS.values())]
    cpu = {side: {k: median([r[k] for r in rs]) for k in cpu_keys} for side, rs in sides.items()}
    for side in sides:
        c = cpu[side]
        print(
            f"    {side:<19} process {fmt_s(c['cpu_s'])} = program {fmt_s(c['cpu_program_s'])} + batch "
            f"processor {fmt_s(c['cpu_batch_s'])} + agenttrace writer {fmt_s(c['cpu_writer_s'])} + other"
        )
    for side in ("agenttrace", "agenttrace/no-drop"):
        extra = {k: cpu[side][k] - cpu["sdk"][k] for k in cpu_keys}
        per_span = {k: _us(v, created, signed=True) for k, v in extra.items()}
        print(
            f"    RATIO {side} / sdk, process CPU: {cpu[side]['cpu_s'] / cpu['sdk']['cpu_s']:.2f}x; extra "
            f"{per_span['cpu_s']} = program {per_span['cpu_program_s']}, batch processor "
            f"{per_span['cpu_batch_s']}, writer {per_span['cpu_writer_s']}"
        )
    print("spans that landed in the store (ended rows of SELECT ... FROM spans) vs created:")
    _store_lines("agenttrace (configure() wiring)", agt)
    _store_lines("agenttrace/no-drop", sides["agenttrace/no-drop"])
    print(f"  sdk: the no-op exporter received {[s['stored'] for s in sdk]} of {created} (lost {sdk_lost})")
    if any(lost):
        print(
            f"  WARNING: with configure()'s wiring agenttrace LOST spans in {sum(1 for x in lost if x)} of "
            f"{len(lost)} reps (median {median(lost):.0f}, max {max(lost)} of {created}): the batch "
            f"processor's queue ({BSP_MAX_QUEUE}) filled faster than ParquetSpanExporter.export drained it"
        )
    if any(nodrop_lost):
        print(f"  WARNING: agenttrace/no-drop lost spans too: {nodrop_lost}")
    for line in logs.report():
        print(f"  logged: {line}")
    final_json(
        {
            "bench": "overhead",
            "quick": args.quick,
            "spans": created,
            "reps": reps,
            "flush_interval_s": flush,
            "sdk_program_s": round(med["sdk"]["program_s"], 4),
            "sdk_durable_s": round(med["sdk"]["durable_s"], 4),
            "agenttrace_program_s": round(med["agenttrace"]["program_s"], 4),
            "agenttrace_durable_s": round(med["agenttrace"]["durable_s"], 4),
            "program_ratio": round(ratios["agenttrace"]["program"], 3),
            "program_ratio_paired": round(ratios["agenttrace"]["program_paired"], 3),
            "durable_ratio": round(ratios["agenttrace"]["durable"], 3),
            "durable_ratio_paired": round(ratios["agenttrace"]["durable_paired"], 3),
            "stored_median": median([a["stored"] for a in agt]),
            "stored_min": min(a["stored"] for a in agt),
            "lost_max": max(lost),
            "nodrop_program_s": round(med["agenttrace/no-drop"]["program_s"], 4),
            "nodrop_durable_s": round(med["agenttrace/no-drop"]["durable_s"], 4),
            "nodrop_program_ratio": round(ratios["agenttrace/no-drop"]["program"], 3),
            "nodrop_durable_ratio": round(ratios["agenttrace/no-drop"]["durable"], 3),
            "nodrop_lost_max": max(nodrop_lost),
            "sdk_lost_max": max(sdk_lost),
            "failed_batches_max": max(a["failed_batches"] for a in agt),
            "cpu_ratio": round(cpu["agenttrace"]["cpu_s"] / cpu["sdk"]["cpu_s"], 3),
            **{
                f"{side.replace('/', '_').replace('-', '_')}_{k}": round(v, 4)
                for side, c in cpu.items()
                for k, v in c.items()
            },
        }
    )


if __name__ == "__main__":
    main()
