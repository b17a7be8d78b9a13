"""The OTLP receivers the ingest benchmarks start: `agenttrace serve` and Rotel (blackhole)."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(process: subprocess.Popen[bytes], port: int, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if process.poll() is not None:
                sys.exit(f"bench: {what} exited before listening")
            time.sleep(0.05)
    process.kill()
    sys.exit(f"bench: {what} did not listen on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start_serve(store: Path, *, nofile: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """`agenttrace serve` on a free port (with `ulimit -n nofile` when given); returns it and its
    /v1/traces URL once it listens."""
    port = free_port()

    def limit_descriptors() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    server = subprocess.Popen(
        [str(BIN / "agenttrace"), "serve", "--store", str(store), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=limit_descriptors if nofile is not None else None,
    )
    wait_listening(server, port, "agenttrace serve")
    return server, f"http://127.0.0.1:{port}/v1/traces"


def start_rotel_blackhole(tmp: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """Rotel forwarding to its blackhole exporter, or None when `rotel` is not installed."""
    try:
        import rotel
    except ImportError:
        return None
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "ROTEL_EXPORTER": "blackhole",
        "ROTEL_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{port}",
        "ROTEL_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{free_port()}",
        "ROTEL_PID_FILE": str(tmp / "rotel.pid"),
        "ROTEL_LOG_FILE": str(tmp / "rotel.log"),
    }
    agent = Path(rotel.__file__).parent / "rotel-agent"
    server = subprocess.Popen(
        [str(agent), "start"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_listening(server, port, "rotel")
    return server, f"http://127.0.0.1:{port}/v1/traces"


def post_until_stored(
    post: Callable[[], None], count: Callable[[], int], n: int
) -> tuple[int, float, float, float]:
    """Time `post()` (every body answered), then until a reader (`count()`) sees all `n` records:
    (records seen, seconds to the last answer, seconds to the first reader's count, seconds until
    queryable). A 200 means the records are in the spool, which every reader reads: a reader
    opened then must see them all; its own start-up (DuckDB, views) is reported apart."""
    start = time.perf_counter()
    post()
    acked = time.perf_counter() - start
    got = count()
    with_reader = time.perf_counter() - start
    queryable = acked if got == n else None  # all visible to the first reader after the 200s
    while got < n and time.perf_counter() - start < 300:
        time.sleep(0.02)
        got = count()
    return got, acked, with_reader, queryable if queryable is not None else time.perf_counter() - start
