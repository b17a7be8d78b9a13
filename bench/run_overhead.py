"""`agenttrace run` on a command that spawns 1,000 short processes: overhead, coverage, latency.

- Overhead: wall time of the command under `agenttrace run` against the same command bare, in the
  same run (sides alternate; medians). Two commands: a bash loop of 1,000 `/bin/true`, and a
  Python program making 1,000 `subprocess.run(["true"])` calls (instrumented by the bootstrap).
  Goal: <= 1.3x.
- Coverage: of those 1,000 processes, how many the run recorded, and how many with an exit code:
  with the kernel's process events (netlink, needs root or CAP_NET_ADMIN) and with /proc polling
  alone (AGENTTRACE_PROC_EVENTS=0). Goal: 100% for processes spawned from Python under the
  bootstrap.
- Latency: from the moment a 10 ms process ends to the moment its record can be queried in the
  store (a fresh reader polls every 50 ms; its own start-up is not counted).

    python bench/run_overhead.py [--quick] [--processes N] [--reps R]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import clean_environment, final_json, header, median, parser

from agenttrace.analysis import Database

BIN = Path(sys.executable).parent
GOAL = 1.3


def under_run(store: Path, cmd: list[str]) -> list[str]:
    return [str(BIN / "agenttrace"), "run", "--store", str(store), "--", *cmd]


def timed_run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def recorded(store: Path) -> dict[str, int]:
    """Processes below the command's own (the loop's children), with an exit code, and named."""
    with Database(store) as db:
        row = db.records(
            "SELECT count(*) AS seen, count(exit_code) AS with_exit, "
            "count(*) FILTER (WHERE executable = 'true') AS named FROM processes "
            "WHERE parent_pid IS DISTINCT FROM (SELECT TRY_CAST(attributes['agenttrace.supervisor.pid'] "
            "AS BIGINT) FROM spans WHERE attributes['agenttrace.span.type'] = 'run')"
        )[0]
    return {"seen": row["seen"], "with_exit": row["with_exit"], "named": row["named"]}


def latency(tmp: Path, reps: int) -> list[float]:
    """Seconds from a 10 ms process's end (its recorded end time) to its record being queryable."""
    found = []
    for rep in range(reps):
        store = tmp / f"latency-{rep}"
        agent = "sleep 0.5; sleep 0.01; sleep 4"
        run = subprocess.Popen(
            [str(BIN / "agenttrace"), "run", "--store", str(store), "--", "sh", "-c", agent],
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                time.sleep(0.05)
                if not (store / "spool").exists():
                    continue
                with Database(store) as db:
                    rows = db.records(
                        "SELECT epoch_ns(end_time) AS end_ns FROM processes "
                        "WHERE command_line = 'sleep 0.01' AND exit_code = 0"
                    )
                if rows:
                    found.append((time.time_ns() - rows[0]["end_ns"]) / 1e9)
                    break
        finally:
            run.wait(30)
    return found


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    if args.quick:
        args.processes, args.reps = 200, 1
    clean_environment()
    header(f"agenttrace run: a command spawning {args.processes} short processes", args.quick)
    n = args.processes
    commands = {
        "bash loop": ["bash", "-c", f"for i in $(seq {n}); do /bin/true; done"],
        "python subprocess.run": [
            sys.executable,
            "-c",
            f"import subprocess\nfor _ in range({n}): subprocess.run(['true'])",
        ],
    }
    result: dict[str, Any] = {"bench": "run_overhead", "processes": n}
    with tempfile.TemporaryDirectory(prefix="agenttrace-bench-", dir=args.tmp) as tmp_dir:
        tmp = Path(tmp_dir)
        for label, cmd in commands.items():
            bare, under = [], []
            coverage: dict[str, dict[str, int]] = {}
            for rep in range(args.reps):
                for side in ("bare", "run") if rep % 2 == 0 else ("run", "bare"):
                    if side == "bare":
                        bare.append(timed_run(cmd, tmp))
                        continue
                    store = tmp / f"{label.split()[0]}-{rep}"
                    under.append(
                        timed_run([str(BIN / "agenttrace"), "run", "--store", str(store), "--", *cmd], tmp)
                    )
                    coverage.setdefault("events+poll", recorded(store))
            store = tmp / f"{label.split()[0]}-poll"
            env = {**os.environ, "AGENTTRACE_PROC_EVENTS": "0"}
            timed_run(under_run(store, cmd), tmp, env)
            coverage["poll only"] = recorded(store)
            ratio = median(under) / median(bare)
            empty = [
                timed_run(under_run(tmp / f"{label.split()[0]}-empty-{i}", ["true"]), tmp) for i in range(2)
            ]
            per_process = (median(under) - median(empty)) / (median(bare) - 0.0)
            print(
                f"{label}: bare {median(bare):.2f} s, under agenttrace run {median(under):.2f} s "
                f"= {ratio:.2f}x "
                f"(goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})"
            )
            print(
                f"  of which fixed start-up and shutdown (`agenttrace run -- true`): {median(empty):.2f} s; "
                f"the processes themselves: {per_process:.2f}x their bare time"
            )
            result[f"{label.split()[0]}_fixed_s"] = round(median(empty), 2)
            result[f"{label.split()[0]}_marginal_ratio"] = round(per_process, 2)
            for mode, counts in coverage.items():
                print(
                    f"  recorded ({mode}): {counts['seen']}/{n} = {counts['seen'] / n:.1%}, "
                    f"with exit code {counts['with_exit']}/{n} = {counts['with_exit'] / n:.1%}, "
                    f"with their name {counts['named']}/{n} = {counts['named'] / n:.1%}"
                )
            key = label.split()[0]
            result[f"{key}_ratio"] = round(ratio, 2)
            for mode, counts in coverage.items():
                result[f"{key}_recorded_{mode.split()[0].replace('+', '_')}"] = round(counts["seen"] / n, 4)
                result[f"{key}_exit_{mode.split()[0].replace('+', '_')}"] = round(counts["with_exit"] / n, 4)
        lat = latency(tmp, max(3, args.reps))
        if lat:
            print(
                f"run-to-record latency of a 10 ms process: median {median(lat):.2f} s, max {max(lat):.2f} s "
                f"(n={len(lat)}; reader polls every 50 ms)"
            )
            result["latency_median_s"] = round(median(lat), 3)
    final_json(result)


if __name__ == "__main__":
    main()
