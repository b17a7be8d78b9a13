"""Receiver memory: peak RSS of `agenttrace serve` under a sustained load of 10 concurrent clients.

Each client posts gen_otlp.py bodies (its own runs: seeds differ) as fast as the server answers,
for --seconds. The server's RSS is sampled every 50 ms (psutil, the process and its children).
Bounded means: after the first quarter of the load, RSS stops growing, although the clients keep
sending far more than it holds. Against, in the same run:

- the same server idle, right after start (what the load adds);
- the bytes the clients sent (what an unbounded queue would have to hold);
- Rotel (blackhole exporter) under the same load, when `rotel` is installed.

    python bench/receiver_memory.py [--quick] [--seconds S] [--clients C]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from _common import clean_environment, final_json, fmt_bytes, header, load_gen_otlp, parser
from _servers import start_rotel_blackhole, start_serve, stop


def rss(process: psutil.Process) -> int:
    try:
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            total += child.memory_info().rss
        return total
    except psutil.Error:
        return 0


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/x-protobuf"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def load(
    server: subprocess.Popen[bytes], url: str, work: list[list[bytes]], seconds: float
) -> dict[str, Any]:
    """Run the clients for `seconds` while sampling the server's RSS."""
    process = psutil.Process(server.pid)
    idle = rss(process)
    stop_at = time.monotonic() + seconds
    statuses: dict[int, int] = {}
    sent = [0]
    lock = threading.Lock()

    def client(bodies: list[bytes]) -> None:
        i = 0
        while time.monotonic() < stop_at:
            body = bodies[i % len(bodies)]
            i += 1
            try:
                status = post(url, body)
            except OSError:
                status = 0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                sent[0] += len(body) if status == 200 else 0
            if status == 503:
                time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(bodies,)) for bodies in work]
    samples: list[tuple[float, int]] = []
    start = time.monotonic()
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        samples.append((time.monotonic() - start, rss(process)))
        time.sleep(0.05)
    quarter = seconds / 4
    first = max((r for t, r in samples if t <= quarter), default=0)
    rest = max((r for t, r in samples if t > quarter), default=0)
    return {
        "idle": idle,
        "peak": max(r for _, r in samples),
        "peak_first_quarter": first,
        "peak_after": rest,
        "statuses": statuses,
        "acked_bytes": sent[0],
    }


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", type=int, default=10)
    args = ap.parse_args()
    if args.quick:
        args.seconds = 6.0
    clean_environment()
    header(f"receiver memory: {args.clients} concurrent clients for {args.seconds:.0f} s", args.quick)
    gen = load_gen_otlp()
    work = [gen.payloads(20, 40, 512, seed=100 + c)[0] for c in range(args.clients)]
    per_body = sum(len(b) for bodies in work for b in bodies) / sum(map(len, work))
    print(f"each client: 20 runs x 40 steps in {len(work[0])} bodies of ~{fmt_bytes(per_body)}, looped")

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="agenttrace-bench-", dir=args.tmp) as tmp_dir:
        tmp = Path(tmp_dir)
        server, url = start_serve(tmp / "store")
        try:
            time.sleep(0.5)
            results["agenttrace"] = load(server, url, work, args.seconds)
        finally:
            stop(server)
        started = start_rotel_blackhole(tmp)
        if started is not None:
            server, url = started
            try:
                results["rotel"] = load(server, url, work, args.seconds)
            finally:
                stop(server)

    ours = results["agenttrace"]
    growth = ours["peak_after"] / max(ours["peak_first_quarter"], 1)
    print(
        f"agenttrace serve: idle {fmt_bytes(ours['idle'])}, peak {fmt_bytes(ours['peak'])} "
        f"({ours['peak'] / ours['idle']:.2f}x idle); peak in the first quarter "
        f"{fmt_bytes(ours['peak_first_quarter'])}, after it {fmt_bytes(ours['peak_after'])} ({growth:.2f}x)"
    )
    print(
        f"  answers {dict(sorted(ours['statuses'].items()))}; acknowledged {fmt_bytes(ours['acked_bytes'])} "
        f"of protobuf: peak RSS / bytes taken in = {ours['peak'] / max(ours['acked_bytes'], 1):.3f}"
    )
    result: dict[str, Any] = {
        "bench": "receiver_memory",
        "clients": args.clients,
        "seconds": args.seconds,
        "agenttrace_idle_rss": ours["idle"],
        "agenttrace_peak_rss": ours["peak"],
        "agenttrace_peak_over_idle": round(ours["peak"] / ours["idle"], 2),
        "agenttrace_late_over_early_peak": round(growth, 2),
        "agenttrace_acked_bytes": ours["acked_bytes"],
        "agenttrace_statuses": ours["statuses"],
    }
    if "rotel" in results:
        theirs = results["rotel"]
        print(
            f"rotel blackhole : idle {fmt_bytes(theirs['idle'])}, peak {fmt_bytes(theirs['peak'])}; "
            f"agenttrace's peak is {ours['peak'] / theirs['peak']:.2f}x Rotel's "
            f"(acknowledged {fmt_bytes(theirs['acked_bytes'])})"
        )
        result.update(
            rotel_peak_rss=theirs["peak"], agenttrace_over_rotel_peak=round(ours["peak"] / theirs["peak"], 2)
        )
    print(
        f"bounded: {'yes' if growth <= 1.25 else 'NO'} "
        "(the peak after the first quarter is at most 1.25x the first quarter's)"
    )
    final_json(result)


if __name__ == "__main__":
    sys.exit(main())
