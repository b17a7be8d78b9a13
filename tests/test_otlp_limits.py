"""The receiver under attack (issue 10): tokens, slow clients, impossible times, runs that never end,
a maintenance thread that must not die, and the seal race at the receiver."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pyarrow.parquet as pq
import pytest
from conftest import query
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from agenttrace.errors import ConfigError
from agenttrace.otlp import receiver as receiver_module
from agenttrace.otlp.receiver import Receiver, check_token, descriptor_budget
from agenttrace.otlp.server import OtlpServer
from agenttrace.store.layout import StoreLayout
from agenttrace.store.reader import snapshot

PB = {"content-type": "application/x-protobuf"}
TOKEN = "s3cret"


def spans_request(
    trace: int, spans: list[tuple[int, int, int]], parent: bytes = b"", run_id: str | None = None
) -> ExportTraceServiceRequest:
    """One request of spans (span number, start ns, end ns) of one trace."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    if run_id is not None:
        kv = rs.resource.attributes.add()
        kv.key, kv.value.string_value = "agenttrace.run.id", run_id
    scope = rs.scope_spans.add()
    for number, start, end in spans:
        span = scope.spans.add()
        span.trace_id = trace.to_bytes(16, "big")
        span.span_id = number.to_bytes(8, "big")
        span.parent_span_id = parent
        span.name = f"s{number}"
        span.start_time_unix_nano, span.end_time_unix_nano = start, end
    return request


def raw_exchange(port: int, head: bytes, body: bytes = b"", timeout: float = 5) -> bytes:
    """Send bytes as they are; everything the server answers until it closes (or `timeout`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR) if body else None
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and b"Connection: close" not in data:
                    break
        except (TimeoutError, ConnectionResetError):
            pass
        return data


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


@pytest.fixture
def guarded(store: Path) -> Iterator[OtlpServer]:
    with OtlpServer(store, port=0, grpc_port=0, token=TOKEN, request_deadline=1.0) as srv:
        yield srv


def post_with(port: int, authorization: bytes | None, body: bytes = b"{}") -> int:
    head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    if authorization is not None:
        head += b"Authorization: " + authorization + b"\r\n"
    head += b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    return status_of(raw_exchange(port, head, body))


# -- tokens ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", [b"Bearer", b"bearer", b"BEARER", b"bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(guarded: OtlpServer, scheme: bytes) -> None:
    assert post_with(guarded.port, scheme + b" " + TOKEN.encode()) == 200


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        b"",
        b"Bearer",
        b"Bearer ",
        b"s3cret",
        b"Basic czNjcmV0",
        b"Bearer s3cret extra",
        b"Bearer s3cre",
        b"Bearer \xc3\xa9\xe2\x82\xac",  # non-ASCII (UTF-8 bytes)
        b"Bearer \xff\xfe",  # not even UTF-8
        b"Bearer\ts3cret\x01",
    ],
)
def test_malformed_or_wrong_authorization_is_401(guarded: OtlpServer, authorization: bytes | None) -> None:
    assert post_with(guarded.port, authorization) == 401


def test_a_non_ascii_authorization_value_is_401_not_500(store: Path) -> None:
    rx = Receiver(store, token=TOKEN)
    try:
        for value in ("Bearer é€", "Bearer \udcff", "€"):
            answer = rx.handle_http("POST", "/v1/traces", {**PB, "authorization": value}, b"")
            assert answer.status == 401
    finally:
        rx.close()


def test_the_token_is_checked_before_the_body_is_read(guarded: OtlpServer) -> None:
    """A client without the token declares a big body and sends none: answered and closed at once."""
    head = (
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Content-Length: 10000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_exchange(guarded.port, head, timeout=5)
    assert status_of(answer) == 401 and b"Connection: close" in answer
    assert time.monotonic() - started < 0.9  # not after the request deadline: nothing was waited for


def test_grpc_follows_the_same_token_rules(guarded: OtlpServer, store: Path) -> None:
    assert guarded.grpc is not None
    request = spans_request(7, [(1, 1_700_000_000_000_000_000, 1_700_000_000_000_001_000)])
    with grpc.insecure_channel(f"127.0.0.1:{guarded.grpc.port}") as channel:
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        for value in (None, "Basic x", "Bearer nope", "Bearer", "s3cret"):
            metadata = [] if value is None else [("authorization", value)]
            with pytest.raises(grpc.RpcError) as caught:
                stub.Export(request, metadata=metadata, timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED, value
        for value in ("Bearer s3cret", "bearer s3cret", "BEARER s3cret"):
            stub.Export(request, metadata=[("authorization", value)], timeout=10)


@pytest.mark.parametrize("token", [" ", "", "\t\n", "two words", "tab\there", "é-not-ascii", "nul\x00"])
def test_a_token_nobody_could_send_is_refused_at_start_up(
    store: Path, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError):
        OtlpServer(store, port=0, token=token)
    if token and "\x00" not in token:  # an empty variable means "not set"; no NUL in one
        monkeypatch.setenv("AGENTTRACE_TOKEN", token)
        with pytest.raises(ConfigError, match="AGENTTRACE_TOKEN"):
            OtlpServer(store, port=0)
    assert check_token("a-good_token.~+/=") == "a-good_token.~+/="


# -- impossible times ---------------------------------------------------------------------------------


def test_times_past_2_to_the_63_reject_that_span_only(store: Path) -> None:
    good = (1, 1_700_000_000_000_000_000, 1_700_000_000_000_001_000)
    request = spans_request(9, [good, (2, 2**63, 2**63 + 5), (3, 1, 2**64 - 1), (4, 2**63 - 1, 2**63 - 1)])
    late_event = request.resource_spans[0].scope_spans[0].spans.add()
    late_event.CopyFrom(request.resource_spans[0].scope_spans[0].spans[0])
    late_event.span_id = (5).to_bytes(8, "big")
    late_event.events.add(time_unix_nano=2**63, name="in 2262")
    rx = Receiver(store)
    try:
        answer = rx.handle_http("POST", "/v1/traces", PB, request.SerializeToString())
        assert answer.status == 200
        response = ExportTraceServiceResponse.FromString(answer.body)
        assert response.partial_success.rejected_spans == 3
        assert "start_time_unix_nano 9223372036854775808 is past" in response.partial_success.error_message
        assert "end_time_unix_nano 18446744073709551615 is past" in response.partial_success.error_message
        doc = {
            "resourceSpans": [
                {
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "traceId": "0a" * 16,
                                    "spanId": "0b" * 8,
                                    "name": "json",
                                    "startTimeUnixNano": str(2**64 - 1),
                                    "endTimeUnixNano": str(2**64 - 1),
                                }
                            ]
                        }
                    ]
                }
            ]
        }
        answer = rx.handle_http(
            "POST", "/v1/traces", {"content-type": "application/json"}, json.dumps(doc).encode()
        )
        assert answer.status == 200 and json.loads(answer.body)["partialSuccess"]["rejectedSpans"] == "1"
    finally:
        rx.close()
    names = [r["name"] for r in query(store, "SELECT name FROM spans ORDER BY name")]
    assert names == ["s1", "s4"]


# -- bounded per-run state, a maintenance thread that never dies ---------------------------------------


def test_runs_that_never_end_leave_bounded_state(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receiver_module, "MAX_PENDING_SEALS", 10)
    monkeypatch.setattr(receiver_module, "MAX_REMEMBERED_RUNS", 50)
    rx = Receiver(store, flush_interval=60, max_open_runs=8)
    try:
        for trace in range(1, 201):  # 200 runs: half started only, half ended at once
            end = 1_700_000_000_000_001_000 if trace % 2 else 0
            body = spans_request(trace, [(1, 1_700_000_000_000_000_000, end)]).SerializeToString()
            assert rx.handle_http("POST", "/v1/traces", PB, body).status == 200
            assert rx.writer.open_runs <= 8
        assert len(rx._to_seal) <= 10 and len(rx._seen) <= 50
        assert rx.counters.runs == 200 and "runs 200" in rx.status_line()
    finally:
        rx.close()
    assert query(store, "SELECT count(*) AS n FROM spans")[0]["n"] == 200
    assert not list((store / "spool").iterdir())


def test_the_maintenance_thread_survives_os_errors(store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rx = Receiver(store, flush_interval=0.05)
    failures = []

    def emfile() -> None:
        failures.append(1)
        raise OSError(24, "Too many open files")

    real_sync = rx.writer.sync
    monkeypatch.setattr(rx.writer, "sync", emfile)
    try:
        body = spans_request(
            3, [(1, 1_700_000_000_000_000_000, 1_700_000_000_000_001_000)]
        ).SerializeToString()
        assert rx.handle_http("POST", "/v1/traces", PB, body).status == 200
        deadline = time.monotonic() + 5
        while len(failures) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(failures) >= 3 and rx._maintainer.is_alive()
        monkeypatch.setattr(rx.writer, "sync", real_sync)
        run = (3).to_bytes(16, "big").hex()
        while (store / "spool" / run).exists() and time.monotonic() < deadline + 5:
            time.sleep(0.02)  # the ended root's run is sealed once quiet: the thread still works
        assert not (store / "spool" / run).exists()
    finally:
        rx.close()


def test_descriptor_budget_fits_the_limit() -> None:
    for soft in (64, 256, 1024, 4096, 1 << 20):
        budget = descriptor_budget(soft)
        total = receiver_module.FD_RESERVE + 16 + 2 * budget.max_open_runs + budget.max_connections
        assert total <= max(soft, 64 + 16 + 2 * 4 + 4)
    assert descriptor_budget(1 << 20) == receiver_module.DescriptorBudget(256, 256)


# -- the seal race, at the receiver --------------------------------------------------------------------


def test_spans_acknowledged_while_their_run_is_sealed_are_stored(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rx = Receiver(store, flush_interval=60)
    run = "race-run"
    first = spans_request(
        1, [(n, 1_700_000_000_000_000_000 + n, 1_700_000_000_000_001_000) for n in range(1, 50)], run_id=run
    )
    assert rx.handle_http("POST", "/v1/traces", PB, first.SerializeToString()).status == 200
    entered, go = threading.Event(), threading.Event()
    real = pq.write_table

    def paused(*args: object, **kwargs: object) -> None:
        if not entered.is_set():
            entered.set()
            go.wait(30)
        real(*args, **kwargs)

    monkeypatch.setattr(pq, "write_table", paused)
    sealing = threading.Thread(target=rx.writer.seal_run, args=(run,))
    sealing.start()
    try:
        assert entered.wait(10)
        late = spans_request(
            1, [(100, 1_700_000_000_000_000_100, 1_700_000_000_000_002_000)], b"\x00" * 7 + b"\x01", run
        )
        assert rx.handle_http("POST", "/v1/traces", PB, late.SerializeToString()).status == 200
        snapshot(StoreLayout(store), recover=True)
        last = spans_request(
            1, [(101, 1_700_000_000_000_000_101, 1_700_000_000_000_002_000)], b"\x00" * 7 + b"\x01", run
        )
        assert rx.handle_http("POST", "/v1/traces", PB, last.SerializeToString()).status == 200
    finally:
        go.set()
        sealing.join(10)
        rx.close()
    names = {r["name"] for r in query(store, "SELECT name FROM spans WHERE run_id = $r", {"r": run})}
    assert {"s100", "s101"} <= names and len(names) == 51


# -- slow clients ---------------------------------------------------------------------------------------


def _trickle(port: int, stop: threading.Event, cut: list[float], head_only: bool) -> None:
    """Send a request's head (all of it, or a byte at a time) and then its body a byte at a time."""
    started = time.monotonic()
    head = (
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            if head_only:
                sent, rest = b"", head
            else:
                sent, rest = head, b"\x0a" * 100000
                sock.sendall(sent)
            for byte in rest:
                if stop.is_set():
                    return
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
    except OSError:  # cut off by the server
        cut.append(time.monotonic() - started)


def test_slow_clients_hold_no_slot_and_are_cut_off_at_the_deadline(store: Path) -> None:
    with OtlpServer(store, port=0, request_deadline=1.0) as srv:
        stop = threading.Event()
        cut: list[float] = []
        slow = [
            threading.Thread(target=_trickle, args=(srv.port, stop, cut, n % 4 == 0), daemon=True)
            for n in range(24)
        ]
        for thread in slow:
            thread.start()
        time.sleep(0.3)  # every slow client is sending by now
        body = spans_request(
            5, [(1, 1_700_000_000_000_000_000, 1_700_000_000_000_001_000)]
        ).SerializeToString()
        for _ in range(5):
            started = time.monotonic()
            head = (
                b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
            )
            assert status_of(raw_exchange(srv.port, head, body)) == 200
            assert time.monotonic() - started < 0.5
        deadline = time.monotonic() + 5
        while len(cut) < len(slow) and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        assert len(cut) == len(slow), "every slow client is cut off"
        assert max(cut) < 3.0  # the 1 s deadline, and the time it takes to notice a closed socket


def test_a_huge_request_head_is_refused(store: Path) -> None:
    with OtlpServer(store, port=0) as srv:
        head = b"POST /v1/traces HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 8000 + b"\r\n"
        answer = raw_exchange(srv.port, head * 20 + b"\r\n")
        assert status_of(answer) in (0, 431)  # answered 431, or closed: never read whole
        assert post_with(srv.port, None) == 200  # and the server goes on


def test_requests_opening_many_runs_past_the_bound_get_half_the_slots(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiver_module, "UNGATED_EVICTIONS", 1)
    rx = Receiver(store, flush_interval=60, max_open_runs=2, max_inflight=4)
    start = 1_700_000_000_000_000_000

    def never_ending(*traces: int) -> bytes:
        request = ExportTraceServiceRequest()
        for trace in traces:
            request.MergeFrom(spans_request(trace, [(1, start, 0)]))
        return request.SerializeToString()

    try:
        assert rx.handle_http("POST", "/v1/traces", PB, never_ending(1, 2)).status == 200  # the bound
        for _ in range(2):  # two requests are opening many runs (sealing others) right now
            assert rx._openers.acquire(blocking=False)
        many = never_ending(3, 4)
        answer = rx.handle_http("POST", "/v1/traces", PB, many)
        assert answer.status == 503 and answer.headers["Retry-After"] == "1"
        open_run = spans_request(2, [(2, start, start + 1)]).SerializeToString()
        assert rx.handle_http("POST", "/v1/traces", PB, open_run).status == 200  # never held up
        one_new = never_ending(5)  # a run starting: one eviction, not gated
        assert rx.handle_http("POST", "/v1/traces", PB, one_new).status == 200
        rx._openers.release()
        assert rx.handle_http("POST", "/v1/traces", PB, many).status == 200
        rx._openers.release()
    finally:
        rx.close()
    assert query(store, "SELECT count(*) AS n FROM spans")[0]["n"] == 6
