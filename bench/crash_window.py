"""What a crash loses: the time between a SIGKILL and the end of the newest span that survived it.

A child Python process calls `agenttrace.configure(store, flush_interval=F)` and, inside one open
root span, ends one short span every ~2 ms, each carrying its own end time (wall clock ns) as an
attribute. The parent kills it with a real SIGKILL at a random moment 1-2 s after it started
emitting, then opens the store (Database recovers the dead writer's spool into Parquet) and computes

    loss window = kill time - end time of the newest stored span

The design promises a crash loses at most about one flush interval. Reported as median and max, in
ms and as a multiple of F, for F = 0.5 s (the default) and F = 0.1 s. Also checked: the stored spans
are exactly seq 1..N with no gap, and the open root span is visible as never ended.

    python bench/crash_window.py [--quick] [--reps R] [--intervals 0.5,0.1] [--seed S]
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from _common import LogCollector, clean_environment, final_json, header, median, parser

from agenttrace.analysis import Database

PERIOD_S = 0.002

CHILD = textwrap.dedent(
    """
    import sys, time
    from opentelemetry import trace
    import agenttrace

    store, flush, period = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    provider = agenttrace.configure(store, flush_interval=flush, service_name="crash-bench")
    tracer = provider.get_tracer("bench.crash")
    root = tracer.start_span("crash-bench run")  # never ends: the process dies inside it
    ctx = trace.set_span_in_context(root)
    seq = 0
    print(time.time_ns(), flush=True)
    while True:
        seq += 1
        span = tracer.start_span("tick", context=ctx)
        span.set_attribute("bench.seq", seq)
        end_ns = time.time_ns()
        span.set_attribute("bench.end_ns", end_ns)
        span.end(end_time=end_ns)
        time.sleep(period)
    """
)


def one_crash(store: Path, flush: float, delay: float) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_"))}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), str(flush), str(PERIOD_S)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    if not first:
        proc.kill()
        proc.wait()
        raise SystemExit(f"crash_window: the child did not start (exit {proc.returncode})")
    started_ns = int(first)
    time.sleep(delay)
    kill_ns = time.time_ns()
    os.kill(proc.pid, signal.SIGKILL)
    rc = proc.wait(30)
    proc.stdout.close()
    t0 = time.perf_counter()
    with Database(store) as db:
        (ticks, newest_end, max_seq), *_ = db.execute(
            "SELECT count(*), max(CAST(attributes['bench.end_ns'] AS BIGINT)), "
            "max(CAST(attributes['bench.seq'] AS BIGINT)) FROM spans WHERE name = 'tick' AND ended"
        )[1]
        unended = db.execute("SELECT list(name) FROM spans WHERE NOT ended")[1][0][0] or []
        warnings = list(db.warnings)
    open_s = time.perf_counter() - t0
    spool_left = sum(1 for _ in (store / "spool").rglob("*.arrows"))
    newest = newest_end if newest_end is not None else started_ns
    return {
        "flush_s": flush,
        "delay_s": delay,
        "rc": rc,
        "ticks": ticks,
        "max_seq": max_seq or 0,
        "gap_free": ticks == (max_seq or 0),
        "unended": unended,
        "loss_s": (kill_ns - newest) / 1e9,
        "emitting_s": (kill_ns - started_ns) / 1e9,
        "recover_open_s": open_s,
        "spool_left": spool_left,
        "warnings": warnings,
    }


def main() -> None:
    ap = parser(__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=None, help="crashes per flush interval (default 10)")
    ap.add_argument("--intervals", default="0.5,0.1", help="flush intervals in seconds, comma-separated")
    ap.add_argument("--seed", type=int, default=None, help="seed for the kill moments (default: random)")
    args = ap.parse_args()
    clean_environment()
    logs = LogCollector().install()
    reps = args.reps or (3 if args.quick else 10)
    intervals = [float(x) for x in args.intervals.split(",")]
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    lo, hi = (0.8, 1.2) if args.quick else (1.0, 2.0)
    header("crash window: SIGKILL vs newest stored span", args.quick)
    print(
        f"child: one span every {PERIOD_S * 1e3:.0f} ms inside an open root span; SIGKILL {lo}-{hi} s after "
        f"the first span; {reps} crashes per flush interval; seed {seed}"
    )
    tmp = Path(tempfile.mkdtemp(prefix="agenttrace-bench-crash-", dir=args.tmp))
    results: dict[float, list[dict[str, Any]]] = {f: [] for f in intervals}
    try:
        for rep in range(reps):
            for flush in intervals if rep % 2 == 0 else intervals[::-1]:
                store = tmp / f"store-{flush}-{rep}"
                r = one_crash(store, flush, rng.uniform(lo, hi))
                results[flush].append(r)
                print(
                    f"  F={flush:<4} rep {rep + 1:>2}: killed after {r['emitting_s']:.2f} s (rc {r['rc']}), "
                    f"stored {r['ticks']} ticks (seq 1..{r['max_seq']}, gap-free {r['gap_free']}), "
                    f"loss window {r['loss_s'] * 1e3:7.1f} ms = {r['loss_s'] / flush:.2f} F; "
                    f"never ended {r['unended']}; spool left {r['spool_left']}; "
                    f"open+recover {r['recover_open_s'] * 1e3:.0f} ms"
                )
                for w in r["warnings"]:
                    print(f"      store warning: {w}")
                shutil.rmtree(store, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    summary = []
    for flush, rs in results.items():
        losses = [r["loss_s"] for r in rs]
        med, worst = median(losses), max(losses)
        # spans/s the child emitted, from the spans stored before the newest one
        rates = [r["ticks"] / (r["emitting_s"] - r["loss_s"]) for r in rs if r["emitting_s"] > r["loss_s"]]
        rate = median(rates) if rates else 0.0
        problems = [
            r for r in rs if not r["gap_free"] or r["unended"] != ["crash-bench run"] or r["spool_left"]
        ]
        print(
            f"F = {flush} s: loss window median {med * 1e3:.1f} ms = {med / flush:.2f} F, "
            f"max {worst * 1e3:.1f} ms = {worst / flush:.2f} F, min {min(losses) * 1e3:.1f} ms "
            f"(n={len(rs)}); ~{rate:.0f} spans/s emitted, so the median crash lost ~{med * rate:.0f} spans"
        )
        print(
            f"    promise 'at most about one flush interval': max/F = {worst / flush:.2f} "
            f"({'kept' if worst <= 1.5 * flush else 'NOT kept'} with a 1.5 F allowance); "
            f"integrity problems (gaps, wrong unended spans, spool left): {len(problems)}"
        )
        summary.append(
            {
                "flush_s": flush,
                "n": len(rs),
                "median_ms": round(med * 1e3, 2),
                "max_ms": round(worst * 1e3, 2),
                "min_ms": round(min(losses) * 1e3, 2),
                "median_over_f": round(med / flush, 3),
                "max_over_f": round(worst / flush, 3),
                "integrity_problems": len(problems),
            }
        )
    for line in logs.report():
        print(f"  logged: {line}")
    final_json({"bench": "crash_window", "quick": args.quick, "seed": seed, "intervals": summary})


if __name__ == "__main__":
    main()
