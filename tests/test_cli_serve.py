"""`agenttrace serve` as a user runs it: real process, real signals, real clients."""

from __future__ import annotations

import random
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from conftest import free_port, query, run_cli, start_serve
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


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
