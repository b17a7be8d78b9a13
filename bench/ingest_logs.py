"""OTLP log ingest: log records per second until durable and queryable, against Rotel's blackhole.

The workload: the log events a CLI coding agent sends (modelled on Claude Code's: `user_prompt`,
`api_request` with model, tokens, cost and duration, `tool_decision`, `tool_result` with the tool's
parameters, success and duration), each with its `session.id`, `event.name` and a dozen attributes,
R runs of E events, as OTLP/HTTP protobuf `ExportLogsServiceRequest` bodies of B records (each
run's records under a resource naming its `agenttrace.run.id`, as `agenttrace run` sets it),
posted one after another by gen_otlp's own `post_all` (one client, a new connection per body),
as `ingest.py` posts spans. Two receivers take the very same bodies, one after the other, in this
run:

- agenttrace: `agenttrace serve` (a child process, fresh store), `/v1/logs`. Its 200 means the
  records are in the spool: they survive a crash of the server (and of the machine after the next
  fsync, within one flush interval), and every reader reads the spool. So the clock stops at the
  last 200, provided a reader opened right after it (`SELECT count(*) FROM logs` in a new DuckDB)
  sees every record; if not, when one does. The reader's own start-up is reported apart.
- Rotel with its `blackhole` exporter (`ROTEL_EXPORTER=blackhole`, which takes logs as it takes
  traces): one OTLP hop that stores nothing, the ceiling of an OTLP receiver on this machine. The
  clock stops when the last body is acknowledged.

Goal (as for spans, issue 13): within 5x of Rotel's blackhole.

    python bench/ingest_logs.py [--quick] [--runs R --events E --batch B] [--reps N]
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import alternate, clean_environment, final_json, fmt_bytes, header, load_gen_otlp, median, parser
from _servers import post_until_stored, start_rotel_blackhole, start_serve, stop
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

from agenttrace.analysis import Database
from agenttrace.store.layout import StoreLayout

ROTEL_GOAL = 5.0
EVENTS = ("user_prompt", "api_request", "tool_decision", "tool_result")


def kv(key: str, value: Any) -> common_pb2.KeyValue:
    if isinstance(value, bool):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(bool_value=value))
    if isinstance(value, int):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))
    if isinstance(value, float):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(double_value=value))
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=str(value)))


def make_run(rng: random.Random, events: int, t0: int) -> list[logs_pb2.LogRecord]:
    session = f"{rng.getrandbits(128):032x}"
    records = []
    for i in range(events):
        name = EVENTS[i % len(EVENTS)]
        t = t0 + i * 50_000_000
        attrs: list[tuple[str, Any]] = [
            ("session.id", session),
            ("event.name", name),
            ("event.timestamp", f"2026-01-02T03:04:{i % 60:02d}.000Z"),
            ("event.sequence", i),
            ("user.id", "u-7f3a"),
            ("terminal.type", "xterm-256color"),
        ]
        if name == "user_prompt":
            attrs += [("prompt_length", 120 + i), ("prompt", "fix the failing test in src/app.py " * 3)]
        elif name == "api_request":
            attrs += [
                ("model", "claude-sonnet-4-5"),
                ("input_tokens", 1200 + i),
                ("output_tokens", 80 + i % 40),
                ("cache_read_tokens", 900),
                ("cost_usd", 0.0123),
                ("duration_ms", 900 + i % 300),
            ]
        elif name == "tool_decision":
            attrs += [("tool_name", "Bash"), ("decision", "accept"), ("source", "config")]
        else:
            attrs += [
                ("tool_name", "Bash"),
                ("success", i % 7 != 0),
                ("duration_ms", 150 + i % 50),
                (
                    "tool_parameters",
                    json.dumps({"bash_command": "pytest -q tests/test_app.py", "timeout": 120}),
                ),
            ]
        records.append(
            logs_pb2.LogRecord(
                time_unix_nano=t,
                observed_time_unix_nano=t + 1_000,
                severity_number=logs_pb2.SEVERITY_NUMBER_INFO,
                severity_text="INFO",
                body=common_pb2.AnyValue(string_value=f"claude_code.{name}"),
                attributes=[kv(k, v) for k, v in attrs],
                event_name=f"claude_code.{name}",
            )
        )
    return records


def payloads(runs: int, events: int, batch: int, seed: int = 7) -> tuple[list[bytes], int]:
    """OTLP/HTTP protobuf bodies of `batch` records; each run's records under its own resource."""
    rng = random.Random(seed)
    t0 = time.time_ns() - 10**12
    tagged = [
        (f"bench-{r:04d}", record) for r in range(runs) for record in make_run(rng, events, t0 + r * 10**9)
    ]
    bodies = []
    for i in range(0, len(tagged), batch):
        chunk = tagged[i : i + batch]
        request = ExportLogsServiceRequest()
        current = None
        scope = None
        for run_id, record in chunk:
            if run_id != current:
                resource = resource_pb2.Resource(
                    attributes=[kv("service.name", "claude-code"), kv("agenttrace.run.id", run_id)]
                )
                resource_logs = request.resource_logs.add(resource=resource)
                scope = resource_logs.scope_logs.add()
                scope.scope.name, scope.scope.version = "com.anthropic.claude_code.events", "2.1.0"
                current = run_id
            assert scope is not None
            scope.log_records.append(record)
        bodies.append(request.SerializeToString())
    return bodies, len(tagged)


def stored_records(store: Path) -> int:
    with Database(store) as db:
        return db.records("SELECT count(*) AS n FROM logs")[0]["n"]


def agenttrace_side(gen: Any, bodies: list[bytes], n: int, tmp: Path) -> dict[str, Any]:
    store = tmp / "agenttrace-store"
    server, traces_url = start_serve(store)
    url = traces_url.removesuffix("/v1/traces") + "/v1/logs"
    try:
        got, acked, with_reader, queryable = post_until_stored(
            lambda: gen.post_all(url, bodies), lambda: stored_records(store), n
        )
    finally:
        stop(server)
    sealed = stored_records(store)  # after a clean stop: every record sealed into Parquet
    size = sum(p.stat().st_size for p in (store / "logs").rglob("*.parquet"))
    return {
        "stored": got,
        "sealed": sealed,
        "post_s": acked,
        "queryable_s": queryable,
        "with_reader_s": with_reader,
        "records_per_s": got / queryable,
        "bytes_per_record": size / max(sealed, 1),
    }


def rotel_side(gen: Any, bodies: list[bytes], n: int, tmp: Path) -> dict[str, Any] | None:
    started = start_rotel_blackhole(tmp)
    if started is None:
        return None
    server, traces_url = started
    url = traces_url.removesuffix("/v1/traces") + "/v1/logs"
    try:
        start = time.perf_counter()
        gen.post_all(url, bodies)
        posted = time.perf_counter() - start
    finally:
        stop(server)
    return {"stored": 0, "post_s": posted, "queryable_s": posted, "records_per_s": n / posted}


def main() -> None:
    ap = parser((__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--events", type=int, default=400, help="log records per run")
    ap.add_argument("--batch", type=int, default=512, help="log records per request")
    ap.add_argument("--reps", type=int, default=3, help="repetitions of each side")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.events, args.reps = 5, 200, 1
    clean_environment()
    header("OTLP log ingest: log records/s until durable and queryable", args.quick)
    gen = load_gen_otlp()
    bodies, n = payloads(args.runs, args.events, args.batch)
    with tempfile.TemporaryDirectory(dir=args.tmp) as empty:  # load DuckDB's readers before timing
        StoreLayout(Path(empty) / "store").require_writable()
        stored_records(Path(empty) / "store")
    print(
        f"workload: {args.runs} runs x {args.events} log events = {n} records, {len(bodies)} bodies, "
        f"{fmt_bytes(sum(map(len, bodies)))} of protobuf ({fmt_bytes(sum(map(len, bodies)) / n)}/record)"
    )

    with tempfile.TemporaryDirectory(prefix="agenttrace-bench-", dir=args.tmp) as tmp_dir:
        results = alternate(
            args.reps,
            Path(tmp_dir),
            [
                ("ours", lambda d: agenttrace_side(gen, bodies, n, d)),
                ("rotel", lambda d: rotel_side(gen, bodies, n, d)),
            ],
        )
        ours, ceiling = results["ours"], results["rotel"]

    def med(results: list[dict[str, Any]], key: str) -> float:
        return median([r[key] for r in results])

    ours_rate = med(ours, "records_per_s")
    print(
        f"agenttrace serve : {ours_rate:10.0f} log records/s until durable and queryable "
        f"(last 200 after {med(ours, 'post_s'):.2f} s, queryable {med(ours, 'queryable_s'):.2f} s, "
        f"{min(r['stored'] for r in ours)}/{n} stored, {min(r['sealed'] for r in ours)}/{n} in Parquet "
        f"after stop, {med(ours, 'bytes_per_record'):.0f} B/record on disk)"
    )
    print(
        f"  a fresh reader (DuckDB + views) counted them all at {med(ours, 'with_reader_s'):.2f} s: "
        f"{n / med(ours, 'with_reader_s'):.0f} records/s including the reader's start-up"
    )
    result: dict[str, Any] = {
        "bench": "ingest_logs",
        "log_records": n,
        "agenttrace_records_per_s": round(ours_rate),
        "agenttrace_bytes_per_record": round(med(ours, "bytes_per_record")),
        "agenttrace_stored_all": all(r["stored"] == n and r["sealed"] == n for r in ours),
        "protobuf_bytes_per_record": round(sum(map(len, bodies)) / n),
    }
    if ceiling:
        rotel_rate = med(ceiling, "records_per_s")
        gap = rotel_rate / ours_rate
        print(f"rotel blackhole  : {rotel_rate:10.0f} log records/s acknowledged (stores nothing)")
        print(
            f"  Rotel / agenttrace = {gap:.2f}x  (goal: within {ROTEL_GOAL:.0f}x: "
            f"{'met' if gap <= ROTEL_GOAL else 'NOT met'})"
        )
        result.update(rotel_records_per_s=round(rotel_rate), rotel_over_agenttrace=round(gap, 2))
    else:
        print("rotel blackhole  : missing (pip install rotel)")
    final_json(result)


if __name__ == "__main__":
    main()
