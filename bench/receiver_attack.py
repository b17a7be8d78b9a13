"""Receiver under attack: `agenttrace serve` while clients open runs that never end and slow clients
trickle bodies, next to well-behaved clients; against the well-behaved clients alone.

One `agenttrace serve` (fresh store, `ulimit -n` set to --nofile) per phase:

- baseline: only the well-behaved clients, for a quarter of --seconds;
- attack, for --seconds: the same well-behaved clients, plus
  - 10 attacking clients, each posting requests of 1,000 spans that never end (start only, end
    time 0), every one of its own trace, so each opens a run of its own, until it has opened
    10,000 runs (100,000 in all; the issue's attack) or time is up;
  - 16 slow clients, each sending a request head (Content-Length 1 MB) and then its body one byte
    every 100 ms, reconnecting whenever the server cuts it off.

The well-behaved clients (4) post runs of 10 requests of 50 ended spans (the root ends in the
last), each span id unique, as fast as they are answered. Reported: acknowledged (200) against
stored spans of the well-behaved clients (the store is read after a clean stop: everything
acknowledged must be there); their requests/s and latency, as ratios against the baseline; every
answer by status (no 500 may appear); peak open descriptors of the server (/proc/PID/fd, sampled
every 50 ms) against `ulimit -n` and against the documented bound (receiver.py:
FD_RESERVE + max_inflight + 2 x max_open_runs + max_connections); peak RSS against idle RSS (as
receiver_memory.py measures it); the attackers' runs opened per second; the time a SIGTERM takes.

    python bench/receiver_attack.py [--quick] [--seconds S] [--nofile N] [--attackers A]
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from _common import clean_environment, final_json, fmt_bytes, header, parser
from _servers import start_serve
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agenttrace.analysis import Database
from agenttrace.otlp.receiver import DEFAULT_MAX_INFLIGHT, FD_RESERVE, descriptor_budget

GOOD_CLIENTS = 4
GOOD_SPANS = 50
GOOD_REQUESTS_PER_RUN = 10
ATTACK_SPANS = 1_000
ATTACK_RUNS = 10_000
SLOW_CLIENTS = 16
SAMPLE_S = 0.05
T0 = 1_764_000_000_000_000_000


def good_body(run_id: str, first: int, last_of_run: bool) -> tuple[bytes, list[str]]:
    """GOOD_SPANS ended spans of a run (children of its root; the root itself in the last request)."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "agenttrace.run.id", run_id
    scope = rs.scope_spans.add()
    trace = (abs(hash(run_id)) % (1 << 64) + 1).to_bytes(16, "big")
    ids = []
    for i in range(first, first + GOOD_SPANS):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.parent_span_id = (
            trace,
            (i + 2).to_bytes(8, "big"),
            (1).to_bytes(8, "big"),
        )
        span.name = "execute_tool grep"
        span.start_time_unix_nano, span.end_time_unix_nano = T0 + i, T0 + i + 1_000_000
        attr = span.attributes.add()
        attr.key, attr.value.string_value = "gen_ai.tool.call.result", "src/a.py:12: foo()\n" * 5
        ids.append(span.span_id.hex())
    if last_of_run:
        root = scope.spans.add()
        root.trace_id, root.span_id, root.name = trace, (1).to_bytes(8, "big"), "invoke_agent coder"
        root.start_time_unix_nano, root.end_time_unix_nano = T0, T0 + 10**9
        ids.append(root.span_id.hex())
    return request.SerializeToString(), ids


def attack_body(first_trace: int) -> bytes:
    """ATTACK_SPANS spans that never end, each of its own trace (its own run)."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for t in range(first_trace, first_trace + ATTACK_SPANS):
        span = scope.spans.add()
        span.trace_id, span.span_id, span.name = t.to_bytes(16, "big"), (1).to_bytes(8, "big"), "never ends"
        span.start_time_unix_nano = T0
    return request.SerializeToString()


class Phase:
    """One server, its clients, and what they saw."""

    def __init__(self, url: str, seconds: float) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.stop_at = time.monotonic() + seconds
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.statuses: dict[str, dict[int, int]] = {"good": {}, "attack": {}}
        self.latencies: list[float] = []
        self.acked: set[str] = set()
        self.good_runs: set[str] = set()
        self.attack_runs = 0
        self.slow_cut = 0

    def done(self) -> bool:
        return self.stop.is_set() or time.monotonic() >= self.stop_at

    def count(self, kind: str, status: int) -> None:
        with self.lock:
            self.statuses[kind][status] = self.statuses[kind].get(status, 0) + 1

    def post(self, conn: http.client.HTTPConnection, body: bytes) -> int:
        try:
            conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
            response = conn.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            conn.close()  # reconnects on the next request
            return 0

    def good(self, n: int) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        run, request = 0, 0
        with contextlib.closing(conn):
            while not self.done():
                run_id = f"good-{n}-{run}"
                last = request == GOOD_REQUESTS_PER_RUN - 1
                body, ids = good_body(run_id, request * GOOD_SPANS, last)
                started = time.perf_counter()
                status = self.post(conn, body)
                elapsed = time.perf_counter() - started
                self.count("good", status)
                with self.lock:
                    self.latencies.append(elapsed)
                    self.good_runs.add(run_id)
                    if status == 200:
                        self.acked.update(f"{run_id}/{i}" for i in ids)
                if status == 200:
                    request += 1
                    if last:
                        run, request = run + 1, 0
                elif status in (0, 503):
                    time.sleep(0.05)

    def attacker(self, n: int) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        first = 1 + n * 10_000_000
        opened = 0
        with contextlib.closing(conn):
            while not self.done() and opened < ATTACK_RUNS:
                status = self.post(conn, attack_body(first))
                self.count("attack", status)
                if status == 200:
                    first += ATTACK_SPANS
                    opened += ATTACK_SPANS
                    with self.lock:
                        self.attack_runs += ATTACK_SPANS
                elif status in (0, 503):
                    time.sleep(0.05)

    def slow(self) -> None:
        head = (
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 1000000\r\n\r\n"
        )
        while not self.done():
            try:
                with socket.create_connection((self.host, self.port), timeout=30) as sock:
                    sock.sendall(head)
                    while not self.done():
                        sock.sendall(b"\x0a")
                        time.sleep(0.1)
            except OSError:
                with self.lock:
                    self.slow_cut += 1
                time.sleep(0.05)


def rss(process: psutil.Process) -> int:
    try:
        return process.memory_info().rss + sum(c.memory_info().rss for c in process.children(recursive=True))
    except psutil.Error:
        return 0


def descriptors(pid: int) -> int:
    try:
        return len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except OSError:
        return 0


def stored_good(store: Path, runs: set[str]) -> set[str]:
    if not runs:
        return set()
    with Database(store, runs=sorted(runs)) as db:
        rows = db.records("SELECT DISTINCT run_id, span_id FROM spans")
    return {f"{r['run_id']}/{r['span_id']}" for r in rows}


def run_phase(store: Path, nofile: int, seconds: float, attackers: int, slow: int) -> dict[str, Any]:
    server, url = start_serve(store, nofile=nofile)
    process = psutil.Process(server.pid)
    time.sleep(0.5)
    idle = rss(process)
    phase = Phase(url, seconds)
    threads = [threading.Thread(target=phase.good, args=(n,), daemon=True) for n in range(GOOD_CLIENTS)]
    threads += [threading.Thread(target=phase.attacker, args=(n,), daemon=True) for n in range(attackers)]
    threads += [threading.Thread(target=phase.slow, daemon=True) for _ in range(slow)]
    peak_rss, peak_fds = idle, descriptors(server.pid)
    samples: list[tuple[float, int]] = []
    started = time.monotonic()
    for thread in threads:
        thread.start()
    while time.monotonic() < phase.stop_at:
        samples.append((time.monotonic() - started, rss(process)))
        peak_rss = max(peak_rss, samples[-1][1])
        peak_fds = max(peak_fds, descriptors(server.pid))
        time.sleep(SAMPLE_S)
    quarter = seconds / 4
    first_quarter = max((r for t, r in samples if t <= quarter), default=idle)
    after = max((r for t, r in samples if t > quarter), default=idle)
    phase.stop.set()
    elapsed = time.monotonic() - started
    for thread in threads:  # an attacker's last request may still be in the server
        while thread.is_alive():
            peak_rss = max(peak_rss, rss(process))
            peak_fds = max(peak_fds, descriptors(server.pid))
            thread.join(SAMPLE_S)
    stopping = time.monotonic()
    server.send_signal(signal.SIGTERM)
    server.wait(120)
    shutdown = time.monotonic() - stopping
    stored = stored_good(store, phase.good_runs)
    good_ok = phase.statuses["good"].get(200, 0)
    return {
        "seconds": elapsed,
        "idle_rss": idle,
        "peak_rss": peak_rss,
        "rss_growth": after / max(first_quarter, 1),
        "peak_fds": peak_fds,
        "shutdown_s": shutdown,
        "exit": server.returncode,
        "statuses": phase.statuses,
        "acked": len(phase.acked),
        "stored": len(phase.acked & stored),
        "good_rps": good_ok / elapsed,
        "good_p50_ms": statistics.median(phase.latencies) * 1e3 if phase.latencies else 0.0,
        "good_p99_ms": _p99(phase.latencies) * 1e3,
        "attack_runs": phase.attack_runs,
        "attack_runs_per_s": phase.attack_runs / elapsed,
        "slow_cut": phase.slow_cut,
    }


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--nofile", type=int, default=1024, help="the server's ulimit -n (default 1024)")
    ap.add_argument("--attackers", type=int, default=10)
    args = ap.parse_args()
    if args.quick:
        args.seconds = 8.0
    clean_environment()
    header(f"receiver under attack: {args.seconds:.0f} s, ulimit -n {args.nofile}", args.quick)
    budget = descriptor_budget(args.nofile)
    bound = FD_RESERVE + DEFAULT_MAX_INFLIGHT + 2 * budget.max_open_runs + budget.max_connections
    print(
        f"server: max {budget.max_open_runs} open runs, {budget.max_connections} connections; "
        f"documented descriptor bound {bound} (ulimit -n {args.nofile})"
    )
    print(
        f"attack: {args.attackers} clients x {ATTACK_RUNS:,} runs that never end "
        f"({ATTACK_SPANS:,} a request), "
        f"{SLOW_CLIENTS} slow clients; well-behaved: {GOOD_CLIENTS} clients, {GOOD_SPANS} spans a request"
    )
    with tempfile.TemporaryDirectory(prefix="agenttrace-bench-", dir=args.tmp) as tmp_dir:
        tmp = Path(tmp_dir)
        base = run_phase(tmp / "baseline", args.nofile, args.seconds / 4, 0, 0)
        attack = run_phase(tmp / "attack", args.nofile, args.seconds, args.attackers, SLOW_CLIENTS)

    for name, r in (("alone", base), ("under attack", attack)):
        print(
            f"well-behaved {name:12}: {r['good_rps']:7.1f} requests/s, "
            f"latency p50 {r['good_p50_ms']:.1f} ms, "
            f"p99 {r['good_p99_ms']:.1f} ms; acknowledged {r['acked']:,} spans, stored {r['stored']:,}"
            f"{'' if r['stored'] == r['acked'] else ' (LOST ' + str(r['acked'] - r['stored']) + ')'}"
        )
    print(
        f"  under attack / alone: requests/s {attack['good_rps'] / max(base['good_rps'], 1e-9):.2f}x, "
        f"p99 latency {attack['good_p99_ms'] / max(base['good_p99_ms'], 1e-9):.2f}x"
    )
    print(
        f"answers: well-behaved {_statuses(attack['statuses']['good'])}, "
        f"attackers {_statuses(attack['statuses']['attack'])}"
    )
    print(
        f"attackers opened {attack['attack_runs']:,} runs ({attack['attack_runs_per_s']:.0f}/s); "
        f"slow clients cut off {attack['slow_cut']} times"
    )
    print(
        f"descriptors: peak {attack['peak_fds']} (alone {base['peak_fds']}), "
        f"{attack['peak_fds'] / bound:.2f}x the bound {bound}, "
        f"{attack['peak_fds'] / args.nofile:.2f}x ulimit -n"
    )
    print(
        f"memory: idle {fmt_bytes(attack['idle_rss'])}, peak {fmt_bytes(attack['peak_rss'])} "
        f"({attack['peak_rss'] / attack['idle_rss']:.2f}x idle; "
        f"alone {base['peak_rss'] / base['idle_rss']:.2f}x); peak after the first quarter "
        f"{attack['rss_growth']:.2f}x the first quarter's (bounded: {attack['rss_growth'] <= 1.25})"
    )
    print(
        f"shutdown (SIGTERM to exit): {attack['shutdown_s']:.2f} s "
        f"(alone {base['shutdown_s']:.2f} s), exit {attack['exit']}"
    )
    no_500 = all(500 not in s for r in (base, attack) for s in r["statuses"].values())
    kept = all(r["stored"] == r["acked"] for r in (base, attack))
    print(
        f"held: {'yes' if kept and no_500 and attack['peak_fds'] <= bound else 'NO'} "
        "(nothing acknowledged lost, no 500, descriptors within the bound)"
    )
    final_json(
        {
            "bench": "receiver_attack",
            "seconds": args.seconds,
            "nofile": args.nofile,
            "fd_bound": bound,
            "peak_fds": attack["peak_fds"],
            "peak_fds_over_bound": round(attack["peak_fds"] / bound, 2),
            "peak_rss_over_idle": round(attack["peak_rss"] / attack["idle_rss"], 2),
            "rss_late_over_early_peak": round(attack["rss_growth"], 2),
            "good_acked_spans": attack["acked"],
            "good_stored_spans": attack["stored"],
            "good_rps_under_attack_over_alone": round(attack["good_rps"] / max(base["good_rps"], 1e-9), 2),
            "good_p99_under_attack_over_alone": round(
                attack["good_p99_ms"] / max(base["good_p99_ms"], 1e-9), 2
            ),
            "attack_runs_per_s": round(attack["attack_runs_per_s"]),
            "shutdown_s": round(attack["shutdown_s"], 2),
            "statuses": attack["statuses"],
            "no_500": no_500,
            "nothing_lost": kept,
        }
    )


def _statuses(counts: dict[int, int]) -> str:
    return ", ".join(f"{status or 'no answer'}: {n:,}" for status, n in sorted(counts.items())) or "none"


if __name__ == "__main__":
    sys.exit(main())
