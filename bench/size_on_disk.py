"""Bytes per span in the store versus the same spans as OTLP protobuf.

The spans come from the shared workload generator (gen_otlp.py `payloads(runs, steps, batch)`),
as OTLP/HTTP protobuf bodies. Each body is decoded (ExportTraceServiceRequest), converted to store
rows (SPAN_SCHEMA: hex ids, SpanKind and StatusCode names, attributes as map<string,string>
stringified as the ClickHouse exporter does, RunId = trace id hex, RecordType 'end') and appended
through StoreWriter, so the real layout is used: one Parquet part per run. The store's size is the
total of spans/**/*.parquet; the baseline is the sum of the protobuf body sizes (also shown gzipped,
as OTLP/HTTP exporters usually send them, and the same rows as one Parquet file, which shows what
the per-run parts cost).

Cases: the gen_otlp defaults (100 runs x 40 steps), many small runs (many small parts), few big runs.

    python bench/size_on_disk.py [--quick] [--runs R --steps S]
"""

from __future__ import annotations

import gzip
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from _common import (
    LogCollector,
    clean_environment,
    final_json,
    fmt_bytes,
    header,
    load_gen_otlp,
    parser,
    timed,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from agenttrace.analysis import Database
from agenttrace.capture.records import attribute_value
from agenttrace.store.layout import StoreLayout
from agenttrace.store.schema import END, SPAN_SCHEMA
from agenttrace.store.writer import StoreWriter

GOAL = 0.5

KINDS = {
    trace_pb2.Span.SPAN_KIND_UNSPECIFIED: "Unspecified",
    trace_pb2.Span.SPAN_KIND_INTERNAL: "Internal",
    trace_pb2.Span.SPAN_KIND_SERVER: "Server",
    trace_pb2.Span.SPAN_KIND_CLIENT: "Client",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "Producer",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "Consumer",
}
STATUS = {
    trace_pb2.Status.STATUS_CODE_UNSET: "Unset",
    trace_pb2.Status.STATUS_CODE_OK: "Ok",
    trace_pb2.Status.STATUS_CODE_ERROR: "Error",
}


def any_value(value: common_pb2.AnyValue) -> Any:
    """An OTLP AnyValue as the Python value the SDK would hold."""
    which = value.WhichOneof("value")
    if which is None:
        return ""
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def as_string(value: common_pb2.AnyValue) -> str:
    """AsString() as the ClickHouse exporter writes it: strings as they are, ints in decimal,
    booleans true/false, arrays and maps as JSON (bytes as hex, as agenttrace.capture.records does)."""
    v = any_value(value)
    if isinstance(v, dict):
        return json.dumps(v, default=str, ensure_ascii=False)
    return attribute_value(v)


def pairs(attributes: Any) -> list[tuple[str, str]]:
    return [(kv.key, as_string(kv.value)) for kv in attributes]


def request_to_batch(body: bytes) -> pa.RecordBatch:
    """One OTLP/HTTP protobuf body as a record batch of store rows."""
    request = ExportTraceServiceRequest.FromString(body)
    cols: dict[str, list[Any]] = {name: [] for name in SPAN_SCHEMA.names}
    for resource_spans in request.resource_spans:
        resource = pairs(resource_spans.resource.attributes)
        service = next((v for k, v in resource if k == "service.name"), "")
        for scope_spans in resource_spans.scope_spans:
            scope_name, scope_version = scope_spans.scope.name, scope_spans.scope.version
            for span in scope_spans.spans:
                trace_id = span.trace_id.hex()
                start = span.start_time_unix_nano
                cols["Timestamp"].append(start)
                cols["TraceId"].append(trace_id)
                cols["SpanId"].append(span.span_id.hex())
                cols["ParentSpanId"].append(span.parent_span_id.hex())
                cols["TraceState"].append(span.trace_state)
                cols["SpanName"].append(span.name)
                cols["SpanKind"].append(KINDS.get(span.kind, "Unspecified"))
                cols["ServiceName"].append(service)
                cols["ResourceAttributes"].append(resource)
                cols["ScopeName"].append(scope_name)
                cols["ScopeVersion"].append(scope_version)
                cols["SpanAttributes"].append(pairs(span.attributes))
                cols["Duration"].append(max(0, span.end_time_unix_nano - start))
                cols["StatusCode"].append(STATUS.get(span.status.code, "Unset"))
                cols["StatusMessage"].append(span.status.message)
                cols["Events"].append(
                    [
                        {"Timestamp": e.time_unix_nano, "Name": e.name, "Attributes": pairs(e.attributes)}
                        for e in span.events
                    ]
                )
                cols["Links"].append(
                    [
                        {
                            "TraceId": link.trace_id.hex(),
                            "SpanId": link.span_id.hex(),
                            "TraceState": link.trace_state,
                            "Attributes": pairs(link.attributes),
                        }
                        for link in span.links
                    ]
                )
                cols["RunId"].append(trace_id)
                cols["RecordType"].append(END)
    return pa.RecordBatch.from_pydict(cols, schema=SPAN_SCHEMA)


def measure(gen: Any, label: str, runs: int, steps: int, batch: int, tmp: Path) -> dict[str, Any]:
    bodies, n = gen.payloads(runs, steps, batch)
    proto_bytes = sum(len(b) for b in bodies)
    gzip_bytes = sum(len(gzip.compress(b, 6)) for b in bodies)
    store = tmp / f"store-{label}"
    convert_s, record_batches = timed(lambda: [request_to_batch(b) for b in bodies])
    writer = StoreWriter(StoreLayout(store))

    def write() -> None:
        for rb in record_batches:
            writer.append(rb)
        writer.close()

    write_s, _ = timed(write)
    parts = sorted((store / "spans").rglob("*.parquet"))
    store_bytes = sum(p.stat().st_size for p in parts)
    footer_bytes = sum(pq.ParquetFile(p).metadata.serialized_size + 8 for p in parts)
    single = tmp / f"single-{label}.parquet"
    pq.write_table(
        pa.Table.from_batches(record_batches),
        single,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
    )
    single_bytes = single.stat().st_size
    with Database(store) as db:
        stored = db.execute("SELECT count(*) FROM spans")[1][0][0]
    shutil.rmtree(store, ignore_errors=True)
    single.unlink()
    return {
        "case": label,
        "runs": runs,
        "steps": steps,
        "spans": n,
        "stored": stored,
        "bodies": len(bodies),
        "proto_bytes": proto_bytes,
        "gzip_bytes": gzip_bytes,
        "store_bytes": store_bytes,
        "parts": len(parts),
        "footer_bytes": footer_bytes,
        "single_file_bytes": single_bytes,
        "ratio": store_bytes / proto_bytes,
        "ratio_gzip": store_bytes / gzip_bytes,
        "ratio_single": single_bytes / proto_bytes,
        "convert_s": convert_s,
        "write_s": write_s,
    }


def report(r: dict[str, Any]) -> None:
    n = r["spans"]
    print(
        f"[{r['case']}] {r['runs']} runs x {r['steps']} steps = {n} spans in {r['bodies']} OTLP bodies; "
        f"stored {r['stored']}/{n}"
    )
    print(f"    OTLP protobuf      {fmt_bytes(r['proto_bytes']):>12}  {r['proto_bytes'] / n:8.1f} B/span")
    print(f"    OTLP protobuf+gzip {fmt_bytes(r['gzip_bytes']):>12}  {r['gzip_bytes'] / n:8.1f} B/span")
    print(
        f"    store (spans/)     {fmt_bytes(r['store_bytes']):>12}  {r['store_bytes'] / n:8.1f} B/span  "
        f"in {r['parts']} parts ({r['store_bytes'] / r['parts'] / 1024:.1f} KiB/part, of which footer "
        f"{r['footer_bytes'] / r['parts'] / 1024:.1f} KiB)"
    )
    print(
        f"    one Parquet file   {fmt_bytes(r['single_file_bytes']):>12}  "
        f"{r['single_file_bytes'] / n:8.1f} B/span  (same rows, no per-run parts)"
    )
    verdict = "met" if r["ratio"] <= GOAL else "NOT met"
    print(
        f"    RATIO store / protobuf: {r['ratio']:.3f}x (goal <= {GOAL}x: {verdict})"
        f"; store / gzipped protobuf {r['ratio_gzip']:.3f}x; one file / protobuf {r['ratio_single']:.3f}x; "
        f"per-part overhead {(r['store_bytes'] - r['single_file_bytes']) / r['parts']:.0f} B/part"
    )
    print(f"    (convert {r['convert_s']:.2f} s, StoreWriter append+close {r['write_s']:.2f} s)")


def main() -> None:
    ap = parser(__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=None, help="one extra case with these runs (needs --steps)")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=512, help="spans per OTLP body (gen_otlp default 512)")
    args = ap.parse_args()
    clean_environment()
    logs = LogCollector().install()
    gen = load_gen_otlp()
    header("size on disk: store bytes/span vs OTLP protobuf", args.quick)
    cases = (
        [("default", 20, 40), ("small-runs", 200, 2), ("big-runs", 2, 400)]
        if args.quick
        else [("default", 100, 40), ("small-runs", 1000, 2), ("big-runs", 10, 400)]
    )
    if args.runs and args.steps:
        cases.append(("custom", args.runs, args.steps))
    print("sizes are deterministic (seeded workload, one measurement per case)")
    print(
        "note: gen_otlp puts the same ~1.4 KB of message text on every chat span, so the workload is very\n"
        "redundant (gzip shrinks the protobuf ~30x); the gzipped-protobuf ratio is the stricter comparison"
    )
    tmp = Path(tempfile.mkdtemp(prefix="agenttrace-bench-size-", dir=args.tmp))
    results = []
    try:
        for label, runs, steps in cases:
            results.append(measure(gen, label, runs, steps, args.batch, tmp))
            report(results[-1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for line in logs.report():
        print(f"  logged: {line}")
    final_json(
        {
            "bench": "size_on_disk",
            "quick": args.quick,
            "goal_ratio": GOAL,
            "cases": [
                {
                    k: round(v, 4) if isinstance(v, float) else v
                    for k, v in r.items()
                    if k not in ("convert_s", "write_s")
                }
                for r in results
            ],
        }
    )


if __name__ == "__main__":
    main()
