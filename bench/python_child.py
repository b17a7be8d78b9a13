"""What the Python bootstrap costs a Python child of the agent: the wall time of a short Python
process with the environment `agenttrace run` gives the agent (`agent_env`: the bootstrap first on
PYTHONPATH, the receiver's endpoint, the run's TRACEPARENT and the instrumentor list handed down)
against the same process bare, in the same run, medians of alternating reps. And where the time
goes: `python -X importtime`, the modules the bootstrap's environment imports that a bare process
does not, with their own times.

Children: `python -c pass`; one that imports `json` and `subprocess` only (no instrumented library:
it pays the finder and a stub on Popen); and, for information, one that starts one process (the
first process sets tracing up: the OTel SDK and the exporter, whose spans go to a blackhole OTLP
receiver in this process). Goal (issue 13): the bootstrap adds < 20 ms to a child that uses no
instrumented library.

    python bench/python_child.py [--quick] [--reps N] [--compare-src DIR]

`--compare-src DIR` adds a side with another agenttrace's `src` folder (a `git worktree` of an
older commit, say) first on PYTHONPATH, its bootstrap in front: before/after in one run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import clean_environment, final_json, fmt_s, header, median, parser
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from agenttrace.supervise.agent_env import BOOTSTRAP_DIR, agent_env

CHILDREN = {
    "python -c pass": "pass",
    "imports json, subprocess": "import json, subprocess",
    "starts one process": "import subprocess; subprocess.run(['true'])",
}
NO_INSTRUMENTED_LIBRARY = ("python -c pass", "imports json, subprocess")
GOAL_MS = 20.0


class _Blackhole(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def environments(endpoint: str, compare_src: Path | None) -> dict[str, dict[str, str]]:
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    root = NonRecordingSpan(
        SpanContext(0x0123456789ABCDEF0123456789ABCDEF, 0x0123456789ABCDEF, False, TraceFlags(1))
    )
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(bare)
    try:
        bootstrap = agent_env(root, "20260101T000000-b00t", endpoint, 0.5)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    sides = {"bare": bare, "bootstrap": bootstrap}
    if compare_src is not None:
        other = dict(bootstrap)
        other["PYTHONPATH"] = f"{compare_src / 'agenttrace' / '_bootstrap'}{os.pathsep}{compare_src}"
        sides["compare"] = other
    return sides


def wall(code: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def importtime(code: str, env: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Module -> (self µs, cumulative µs) of `python -X importtime -c code`."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], env=env, capture_output=True, text=True
    ).stderr
    found: dict[str, tuple[int, int]] = {}
    for line in err.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if m:
            found[m.group(4)] = (int(m.group(1)), int(m.group(2)))
    return found


def extra_imports(code: str, env: dict[str, str], bare: dict[str, str], reps: int) -> list[tuple[str, int]]:
    """The modules imported with `env` and not bare, with their own time (median µs of `reps`)."""
    runs = [importtime(code, env) for _ in range(reps)]
    plain = set(importtime(code, bare))
    names = sorted(set(runs[0]) - plain)
    return sorted(((n, int(median([r.get(n, (0, 0))[0] for r in runs]))) for n in names), key=lambda x: -x[1])


def slug(child: str) -> str:
    return re.sub(r"\W+", "_", child).strip("_")


def main() -> None:
    ap = parser(__doc__.split("\n", 1)[0])
    ap.add_argument("--reps", type=int, default=31)
    ap.add_argument("--compare-src", type=Path, default=None, help="another agenttrace's src folder")
    args = ap.parse_args()
    reps = 5 if args.quick else args.reps
    clean_environment()
    header("the Python bootstrap in a child of the agent", args.quick)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Blackhole)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    envs = environments(f"http://127.0.0.1:{server.server_address[1]}", args.compare_src)
    print(f"bootstrap: {BOOTSTRAP_DIR}; sides: {', '.join(envs)}; {reps} reps, order alternating")
    times: dict[tuple[str, str], list[float]] = {}
    for rep in range(reps):
        sides = list(envs.items()) if rep % 2 == 0 else list(reversed(envs.items()))
        for child, code in CHILDREN.items():
            for side, env in sides:
                times.setdefault((child, side), []).append(wall(code, env))
    server.shutdown()
    result: dict[str, Any] = {"bench": "python_child", "reps": reps}
    print(f"\n{'child':<26} {'side':<10} {'median':>9} {'added':>9} {'x bare':>7}")
    for child in CHILDREN:
        base = median(times[(child, "bare")])
        for side in envs:
            m = median(times[(child, side)])
            print(f"{child:<26} {side:<10} {fmt_s(m):>9} {(m - base) * 1e3:>+7.1f}ms {m / base:>6.2f}x")
            key = slug(child)
            result[f"{key}.{side}_s"] = round(m, 4)
            result[f"{key}.{side}_ratio"] = round(m / base, 3)
            result[f"{key}.{side}_added_ms"] = round((m - base) * 1e3, 2)
    worst = max(median(times[(c, "bootstrap")]) - median(times[(c, "bare")]) for c in NO_INSTRUMENTED_LIBRARY)
    verdict = "met" if worst * 1e3 < GOAL_MS else "MISSED"
    print(f"\ngoal: the bootstrap adds < {GOAL_MS:.0f} ms to a child with no instrumented library: "
          f"{verdict} (+{worst * 1e3:.1f} ms at most)")  # fmt: skip
    result["added_ms_max"] = round(worst * 1e3, 2)
    for side in [s for s in envs if s != "bare"]:
        for child, code in CHILDREN.items():
            extra = extra_imports(code, envs[side], envs["bare"], 3 if args.quick else 5)
            total = sum(us for _, us in extra)
            top = ", ".join(f"{name} {us / 1e3:.1f}" for name, us in extra[:12])
            print(f"\n-X importtime, {side}, {child}: {len(extra)} modules more than bare, "
                  f"{total / 1e3:.1f} ms of their own; the largest (ms): {top or '-'}")  # fmt: skip
            result[f"importtime.{slug(child)}.{side}_extra_ms"] = round(total / 1e3, 2)
    final_json(result)


if __name__ == "__main__":
    main()
