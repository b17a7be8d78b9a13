"""`agenttrace serve` as a user runs it: real process, real signals, real clients."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import resource
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import BIN, free_port, query, run_cli, start_serve, wait_listening
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agenttrace.otlp.receiver import DEFAULT_MAX_INFLIGHT, FD_RESERVE, descriptor_budget
from agenttrace.store.layout import StoreLayout
from agenttrace.store.reader import snapshot


def request_body(run_id: str, first: int, n: int) -> tuple[bytes, list[str]]:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    kv = resource_spans.resource.attributes.add()
    kv.key, kv.value.string_value = "agenttrace.run.id", run_id
    scope = resource_spans.scope_spans.add()
    ids = []
    for i in range(first, first + n):
        span = scope.spans.add()
        span.trace_id = (1 + (hash(run_id) & 0xFFFF)).to_bytes(16, "big")
        span.span_id = (i + 1).to_bytes(8, "big")
        span.name = f"s{i}"
        span.start_time_unix_nano = 1_764_000_000_000_000_000 + i
        span.end_time_unix_nano = span.start_time_unix_nano + 1000
        ids.append(span.span_id.hex())
    return request.SerializeToString(), ids


def post(port: int, body: bytes) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
        method="POST",
    )
    try:
        with opener.open(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_sigterm_stores_everything_and_exits_cleanly(store: Path) -> None:
    port = free_port()
    serve = start_serve(store, port)
    body, ids = request_body("sigterm-run", 0, 20)
    assert post(port, body) == 200
    serve.send_signal(signal.SIGTERM)
    _, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err
    assert "stopped. spans 20" in err
    assert not list((store / "spool").rglob("*.arrows")), "everything is sealed into Parquet on exit"
    rows = query(store, "SELECT span_id FROM spans WHERE run_id = 'sigterm-run' ORDER BY span_id")
    assert [r["span_id"] for r in rows] == sorted(ids)


def test_every_acknowledged_span_survives_sigkill_under_load(store: Path) -> None:
    port = free_port()
    serve = start_serve(store, port)
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        first = n * 1_000_000
        while not stop.is_set():
            body, ids = request_body(f"load-{n}", first, 50)
            first += 50
            try:
                status = post(port, body)
            except OSError:
                return  # the server is gone: this request was never acknowledged
            if status == 200:
                with lock:
                    acked.extend(ids)

    clients = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(1.0 + random.random())
    serve.send_signal(signal.SIGKILL)
    serve.communicate(timeout=10)  # reaps it and closes its pipes
    stop.set()
    for thread in clients:
        thread.join(timeout=30)

    assert len(acked) > 500, "the load was real"
    rows = query(store, "SELECT span_id FROM spans WHERE run_id LIKE 'load-%'")
    stored = {r["span_id"] for r in rows}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged spans lost"


def test_bad_input_gives_one_error_line_and_exit_2(tmp_path: Path) -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = busy.getsockname()[1]
        result = run_cli("serve", "--store", str(tmp_path / "s1"), "--port", str(port))
        assert result.returncode == 2
        assert (
            result.stderr.strip().splitlines()[-1]
            == f"Error: port {port} on 127.0.0.1 is in use (pick another with --port)"
        )
    finally:
        busy.close()

    a_file = tmp_path / "file"
    a_file.write_text("not a store")
    result = run_cli("serve", "--store", str(a_file), "--port", "0")
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"Error: store path {a_file} is a file, not a directory",
    )

    result = run_cli("serve", "--store", str(tmp_path / "s2"), "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: listening on 0.0.0.0 (beyond this machine) needs a bearer token: "
        "pass --token or set AGENTTRACE_TOKEN"
    )

    result = run_cli("serve", "--store", str(tmp_path / "s3"), "--port", "0", "--forward", "otel:4318")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "Error: --forward URL 'otel:4318' is not an http(s) URL with a host, e.g. http://otel:4318"
    )


def test_unwritable_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = tmp_path / "file" / "store"  # cannot be created, even by root
    result = run_cli("serve", "--store", str(store), "--port", "0")
    assert result.returncode == 2
    assert result.stderr.strip() == f"Error: cannot create store at {store}: Not a directory"


def test_a_token_nobody_could_send_is_refused_at_start_up(tmp_path: Path) -> None:
    result = run_cli("serve", "--store", str(tmp_path / "s"), "--port", "0", "--token", " ")
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "Error: --token is blank: no client could authenticate with it",
    )
    result = run_cli("serve", "--store", str(tmp_path / "s"), "--port", "0", env={"AGENTTRACE_TOKEN": "  "})
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "Error: $AGENTTRACE_TOKEN is blank: no client could authenticate with it",
    )


def post_ok(port: int, body: bytes) -> None:
    assert post(port, body) == 200


def test_a_span_posted_while_its_run_is_sealed_survives_a_reader(store: Path) -> None:
    """The issue's reproduction: the seal of a big run is under way (its `.tmp` exists) when a late
    span of it arrives; a reader with recovery runs; one more span is acknowledged. Before the fix
    the late spool shared the sealed one's lock path, lost it, and the reader deleted it."""
    port = free_port()
    serve = start_serve(store, port)
    run = "sealed-run"
    for first in range(0, 30_000, 2_000):
        post_ok(port, request_body(run, first, 2_000)[0])
    parts = store / "spans" / f"run_id={run}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the run is quiet: its seal starts within a few intervals
        names = os.listdir(parts) if parts.is_dir() else []
        if any(n.endswith((".tmp", ".parquet")) for n in names):
            break
        time.sleep(0.001)
    late, late_ids = request_body(run, 30_000, 1)
    post_ok(port, late)
    snapshot(StoreLayout(store), recover=True)  # what `agenttrace query` does
    last, last_ids = request_body(run, 30_001, 1)
    post_ok(port, last)
    serve.send_signal(signal.SIGTERM)
    _, err = serve.communicate(timeout=60)
    assert serve.returncode == 0, err
    stored = {r["span_id"] for r in query(store, "SELECT span_id FROM spans WHERE run_id = $r", {"r": run})}
    assert set(late_ids + last_ids) <= stored
    assert len(stored) == 30_002


# -- under attack with few descriptors (issue 10) -------------------------------------------------------

NOFILE = 256
ATTACK_SPANS = 200


def _start_only(first_trace: int, n: int) -> bytes:
    """n spans that never end, each of its own trace (so each its own run)."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for t in range(first_trace, first_trace + n):
        span = scope.spans.add()
        span.trace_id = t.to_bytes(16, "big")
        span.span_id = (1).to_bytes(8, "big")
        span.name = "never ends"
        span.start_time_unix_nano = 1_764_000_000_000_000_000
    return request.SerializeToString()


def _post_kept_alive(conn: http.client.HTTPConnection, body: bytes) -> int:
    conn.request("POST", "/v1/traces", body, {"Content-Type": "application/x-protobuf"})
    response = conn.getresponse()
    response.read()
    return response.status


def test_under_attack_with_256_descriptors_nothing_acknowledged_is_lost(store: Path) -> None:
    """Clients opening thousands of runs that never end, slow clients trickling bodies and
    well-behaved clients, against `agenttrace serve` under `ulimit -n 256`."""
    port = free_port()
    serve = subprocess.Popen(
        [str(BIN / "agenttrace"), "serve", "--store", str(store), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AGENTTRACE_FLUSH_INTERVAL": "0.2"},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE)),
    )
    wait_listening(serve, port, "serve")
    budget = descriptor_budget(NOFILE)
    bound = FD_RESERVE + DEFAULT_MAX_INFLIGHT + 2 * budget.max_open_runs + budget.max_connections
    assert bound < NOFILE
    stop = threading.Event()
    statuses: dict[str, list[int]] = {"attack": [], "good": []}
    acked: list[str] = []
    peak = [0]

    def sample() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                peak[0] = max(peak[0], len(os.listdir(f"/proc/{serve.pid}/fd")))
            time.sleep(0.02)

    def attacker(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        first = 1 + n * 1_000_000
        with contextlib.closing(conn):
            while not stop.is_set():
                statuses["attack"].append(_post_kept_alive(conn, _start_only(first, ATTACK_SPANS)))
                first += ATTACK_SPANS

    def slow() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(
                    b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                    b"Content-Length: 1000000\r\n\r\n"
                )
                while not stop.wait(0.1):
                    s.sendall(b"\x0a")

    def good(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        first = 0
        with contextlib.closing(conn):
            while not stop.is_set():
                body, ids = request_body(f"good-{n}", first, 20)
                first += 20
                status = _post_kept_alive(conn, body)
                statuses["good"].append(status)
                if status == 200:
                    acked.extend(ids)

    threads = [threading.Thread(target=sample)]
    threads += [threading.Thread(target=attacker, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=slow, daemon=True) for _ in range(16)]
    threads += [threading.Thread(target=good, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(4)
    stop.set()
    for thread in threads:
        thread.join(30)
    stopping = time.monotonic()
    serve.send_signal(signal.SIGTERM)
    _, err = serve.communicate(timeout=60)
    shutdown = time.monotonic() - stopping

    assert serve.returncode == 0, err
    assert shutdown < 5, f"shutdown took {shutdown:.1f} s"
    assert sum(statuses["attack"]) and len(acked) >= 200, (statuses, len(acked))
    assert 500 not in statuses["attack"] + statuses["good"]
    assert peak[0] <= bound, f"{peak[0]} descriptors open, bound {bound}"
    stored = {r["span_id"] for r in query(store, "SELECT span_id FROM spans", runs=["good-0", "good-1"])}
    missing = set(acked) - stored
    assert not missing, f"{len(missing)} acknowledged spans lost"
    # Each attacking span is a run of its own, sealed into a part by the writer (not opened here:
    # DuckDB over thousands of one-row parts would be most of this test's time).
    attack_runs = [d for d in (store / "spans").iterdir() if not d.name.startswith("run_id=good-")]
    assert len(attack_runs) == ATTACK_SPANS * statuses["attack"].count(200)
    assert not list((store / "spool").rglob("*.arrows"))
