"""OTLP ingest: spans per second until durable and queryable, against Phoenix and Rotel's blackhole.

The workload is the shared generator's (gen_otlp.py `payloads(runs, steps, 512)`): OTLP/HTTP
protobuf bodies of realistic agent runs, posted one after another by gen_otlp's own `post_all`
(one client, a new connection per body). Three receivers take the very same bodies, one after the
other, in this run:

- agenttrace: `agenttrace serve` (a child process, fresh store). Its 200 means the spans are in the
  spool: they survive a crash of the server (and of the machine after the next fsync, within one
  flush interval, the exporter's guarantee), and every reader reads the spool. So the clock stops
  at the last 200, provided a reader opened right after it (`SELECT count(*) FROM spans` in a new
  DuckDB) sees every span; if not, when one does. The reader's own start-up is reported apart.
- Arize Phoenix: `/work/shared/bench/peer_phoenix.py` (starts `phoenix serve`, posts the same
  workload, polls its SQLite database until every span is stored). Needs `arize-phoenix` installed
  (`make test` installs it); without it the Phoenix side is reported as missing.
- Rotel with its `blackhole` exporter: one OTLP hop that stores nothing, the ceiling of an OTLP
  receiver on this machine. The clock stops when the last body is acknowledged.

Goals: agenttrace >= 100x Phoenix's spans/s (issue 3), and within 5x of Rotel's blackhole (issue 13).

    python bench/ingest.py [--quick] [--runs R --steps S] [--reps N]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    SHARED_BENCH,
    alternate,
    clean_environment,
    final_json,
    fmt_bytes,
    header,
    load_gen_otlp,
    median,
    parser,
)
from _servers import free_port, post_until_stored, start_rotel_blackhole, start_serve, stop

from agenttrace.analysis import Database
from agenttrace.store.layout import StoreLayout

PHOENIX_GOAL = 100.0
ROTEL_GOAL = 5.0


def stored_spans(store: Path) -> int:
    with Database(store) as db:
        return db.records("SELECT count(*) AS n FROM spans")[0]["n"]


def agenttrace_side(gen: Any, bodies: list[bytes], n: int, tmp: Path) -> dict[str, Any]:
    store = tmp / "agenttrace-store"
    server, url = start_serve(store)
    try:
        got, acked, with_reader, queryable = post_until_stored(
            lambda: gen.post_all(url, bodies), lambda: stored_spans(store), n
        )
    finally:
        stop(server)
    size = sum(p.stat().st_size for p in (store / "spans").rglob("*.parquet"))
    return {
        "stored": got,
        "post_s": acked,
        "queryable_s": queryable,
        "with_reader_s": with_reader,
        "spans_per_s": got / queryable,
        "bytes_per_span": size / max(got, 1),
    }


def rotel_side(gen: Any, bodies: list[bytes], n: int, tmp: Path) -> dict[str, Any] | None:
    started = start_rotel_blackhole(tmp)
    if started is None:
        return None
    server, url = started
    try:
        start = time.perf_counter()
        gen.post_all(url, bodies)
        posted = time.perf_counter() - start
    finally:
        stop(server)
    return {"stored": 0, "post_s": posted, "queryable_s": posted, "spans_per_s": n / posted}


def phoenix_side(runs: int, steps: int) -> dict[str, Any] | None:
    try:
        import phoenix  # noqa: F401
    except ImportError:
        return None
    result = subprocess.run(
        [
            sys.executable,
            str(SHARED_BENCH / "peer_phoenix.py"),
            "--runs",
            str(runs),
            "--steps",
            str(steps),
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode != 0 or not lines:
        print(f"  phoenix failed (exit {result.returncode}): {result.stderr.strip()[-400:]}")
        return None
    peer = json.loads(lines[-1])
    return {
        "stored": peer["stored"],
        "post_s": peer["post_s"],
        "queryable_s": peer["queryable_s"],
        "spans_per_s": peer["spans_per_s"],
        "bytes_per_span": peer["bytes_per_span"],
    }


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--reps", type=int, default=3, help="repetitions of the agenttrace and Rotel sides")
    ap.add_argument("--no-phoenix", action="store_true", help="leave out the (slow) Phoenix side")
    args = ap.parse_args()
    if args.quick:
        args.runs, args.reps = 5, 1
    clean_environment()
    header("OTLP ingest: spans/s until durable and queryable", args.quick)
    gen = load_gen_otlp()
    bodies, n = gen.payloads(args.runs, args.steps, 512)
    with tempfile.TemporaryDirectory(dir=args.tmp) as empty:  # load DuckDB's readers before timing
        StoreLayout(Path(empty) / "store").require_writable()
        stored_spans(Path(empty) / "store")
    print(
        f"workload: gen_otlp {args.runs} runs x {args.steps} steps = {n} spans, "
        f"{len(bodies)} bodies, {fmt_bytes(sum(map(len, bodies)))} of protobuf"
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
        phoenix = None if args.no_phoenix else phoenix_side(args.runs, args.steps)

    def med(results: list[dict[str, Any]], key: str) -> float:
        return median([r[key] for r in results])

    ours_rate = med(ours, "spans_per_s")
    print(
        f"agenttrace serve : {ours_rate:10.0f} spans/s until durable and queryable "
        f"(last 200 after {med(ours, 'post_s'):.2f} s, queryable {med(ours, 'queryable_s'):.2f} s, "
        f"{min(r['stored'] for r in ours)}/{n} stored, {med(ours, 'bytes_per_span'):.0f} B/span on disk)"
    )
    print(
        f"  a fresh reader (DuckDB + views) counted them all at {med(ours, 'with_reader_s'):.2f} s: "
        f"{n / med(ours, 'with_reader_s'):.0f} spans/s including the reader's start-up"
    )
    result: dict[str, Any] = {
        "bench": "ingest",
        "spans": n,
        "agenttrace_spans_per_s": round(ours_rate),
        "agenttrace_bytes_per_span": round(med(ours, "bytes_per_span")),
        "agenttrace_stored_all": all(r["stored"] == n for r in ours),
    }
    if ceiling:
        rotel_rate = med(ceiling, "spans_per_s")
        gap = rotel_rate / ours_rate
        print(f"rotel blackhole  : {rotel_rate:10.0f} spans/s acknowledged (stores nothing)")
        print(
            f"  Rotel / agenttrace = {gap:.2f}x  (goal: within {ROTEL_GOAL:.0f}x: "
            f"{'met' if gap <= ROTEL_GOAL else 'NOT met'})"
        )
        result.update(rotel_spans_per_s=round(rotel_rate), rotel_over_agenttrace=round(gap, 2))
    else:
        print("rotel blackhole  : missing (pip install rotel)")
    if phoenix:
        speedup = ours_rate / phoenix["spans_per_s"]
        print(
            f"arize phoenix    : {phoenix['spans_per_s']:10.1f} spans/s until queryable "
            f"({phoenix['stored']}/{n} stored, {phoenix['bytes_per_span']} B/span on disk)"
        )
        print(
            f"  agenttrace / Phoenix = {speedup:.0f}x  (goal: >= {PHOENIX_GOAL:.0f}x: "
            f"{'met' if speedup >= PHOENIX_GOAL else 'NOT met'}); bytes/span "
            f"{med(ours, 'bytes_per_span') / phoenix['bytes_per_span']:.3f}x Phoenix's"
        )
        result.update(phoenix_spans_per_s=phoenix["spans_per_s"], agenttrace_over_phoenix=round(speedup, 1))
    elif args.no_phoenix:
        print("arize phoenix    : left out (--no-phoenix)")
    else:
        print("arize phoenix    : missing (pip install arize-phoenix; make test installs it)")
    final_json(result)


if __name__ == "__main__":
    main()
