"""Fuzz: over 10,000 malformed OTLP bodies. Nothing crashes, nothing but 503 is a 5xx, and what was
stored before is still there, whole."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from conftest import query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agenttrace.otlp.receiver import Receiver

PB = {"content-type": "application/x-protobuf"}
JS = {"content-type": "application/json"}
OK = {200, 400, 413, 415}


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )


def valid_request(
    name: str = "NAME", span_id: bytes = b"\x01" * 8, trace_id: bytes = b"\x02" * 16
) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "fuzz"
    span = rs.scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = trace_id, span_id, name
    span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    attr = span.attributes.add()
    attr.key, attr.value.string_value = "k", "v"
    return request


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    store = tmp_path_factory.mktemp("fuzz") / "store"
    rx = Receiver(store, flush_interval=0.2, max_body=256 * 1024)
    keep = valid_request("kept", trace_id=bytes.fromhex("aa" * 16))
    assert rx.handle_http("POST", "/v1/traces", PB, keep.SerializeToString()).status == 200
    yield rx
    rx.close()
    rows = query(store, "SELECT name, ended FROM spans WHERE run_id = $r", {"r": "aa" * 16})
    assert rows == [{"name": "kept", "ended": True}], "fuzzing must not lose what was stored before"


def check(receiver: Receiver, headers: dict[str, str], body: bytes) -> None:
    answer = receiver.handle_http("POST", "/v1/traces", headers, body)
    assert answer.status in OK, (answer.status, answer.body[:200])


@fuzz(3000)
@given(body=st.binary(max_size=2048), as_json=st.booleans())
def test_random_bytes(receiver: Receiver, body: bytes, as_json: bool) -> None:
    check(receiver, JS if as_json else PB, body)


@fuzz(2000)
@given(name=st.text(max_size=50), cut=st.integers(min_value=0, max_value=400))
def test_truncated_protobuf(receiver: Receiver, name: str, cut: int) -> None:
    body = valid_request(name).SerializeToString()
    check(receiver, PB, body[: min(cut, len(body))])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELDS = [
    "resourceSpans",
    "scopeSpans",
    "spans",
    "traceId",
    "spanId",
    "name",
    "attributes",
    "kind",
    "startTimeUnixNano",
    "status",
    "events",
    "links",
    "resource",
    "value",
    "key",
]


@fuzz(2000)
@given(
    where=st.sampled_from(["top", "resource_spans", "scope_spans", "span", "attribute"]),
    field=st.sampled_from(FIELDS),
    value=JSON_VALUES,
)
def test_wrong_json_types(receiver: Receiver, where: str, field: str, value: object) -> None:
    span: dict = {
        "traceId": "ab" * 16,
        "spanId": "cd" * 8,
        "name": "x",
        "attributes": [{"key": "k", "value": {"stringValue": "v"}}],
    }
    scope: dict = {"spans": [span]}
    rs: dict = {"scopeSpans": [scope]}
    doc: dict = {"resourceSpans": [rs]}
    target = {
        "top": doc,
        "resource_spans": rs,
        "scope_spans": scope,
        "span": span,
        "attribute": span["attributes"][0],
    }[where]
    target[field] = value
    check(receiver, JS, json.dumps(doc).encode())


@fuzz(1500)
@given(
    trace=st.binary(max_size=40),
    span=st.binary(max_size=20),
    hex_json=st.text("0123456789abcdefXYZ-", max_size=70),
)
def test_ids_of_the_wrong_length(receiver: Receiver, trace: bytes, span: bytes, hex_json: str) -> None:
    check(receiver, PB, valid_request(trace_id=trace, span_id=span).SerializeToString())
    doc = {
        "resourceSpans": [
            {"scopeSpans": [{"spans": [{"traceId": hex_json, "spanId": hex_json[:16], "name": "x"}]}]}
        ]
    }
    check(receiver, JS, json.dumps(doc).encode())


@fuzz(1000)
@given(junk=st.binary(min_size=1, max_size=8).filter(lambda b: not _utf8(b)))
def test_invalid_utf8(receiver: Receiver, junk: bytes) -> None:
    body = valid_request("NAME").SerializeToString()
    at = body.index(b"NAME")
    patched = body[:at] + junk[:4].ljust(4, b"\xff") + body[at + 4 :]  # same length: still well-framed
    check(receiver, PB, patched)
    check(receiver, JS, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "' + junk + b'"}]}]}]}')


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@fuzz(300)
@given(size=st.integers(min_value=1, max_value=600_000))
def test_huge_attributes(receiver: Receiver, size: int) -> None:
    request = valid_request()
    attr = request.resource_spans[0].scope_spans[0].spans[0].attributes.add()
    attr.key, attr.value.string_value = "huge", "x" * size
    check(receiver, PB, request.SerializeToString())


@fuzz(300)
@given(depth=st.integers(min_value=50, max_value=50_000), kind=st.sampled_from(["[", '{"a":']))
def test_nesting_bombs(receiver: Receiver, depth: int, kind: str) -> None:
    closer = "]" if kind == "[" else "}"
    bomb = kind * depth + "1" + closer * depth
    check(
        receiver,
        JS,
        ('{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": ' + bomb + "}]}]}]}").encode(),
    )
    # protobuf: an AnyValue holding a kvlist holding a kvlist ... (each level: field 6, then field 1, field 2)
    inner = b"\x08\x01"  # bool_value: true
    for _ in range(min(depth, 3000)):
        kv = b"\x0a\x01k" + b"\x12" + _varint(len(inner)) + inner  # KeyValue{key="k", value=inner}
        kvlist = b"\x0a" + _varint(len(kv)) + kv  # KeyValueList{values=[kv]}
        inner = b"\x32" + _varint(len(kvlist)) + kvlist  # AnyValue{kvlist_value}
    request = valid_request()
    span = request.resource_spans[0].scope_spans[0].spans[0]
    body = request.SerializeToString()
    attr = b"\x0a\x01n\x12" + _varint(len(inner)) + inner
    span_bytes = span.SerializeToString() + b"\x4a" + _varint(len(attr)) + attr  # Span.attributes (field 9)
    scope_spans = b"\x12" + _varint(len(span_bytes)) + span_bytes
    resource_spans = b"\x12" + _varint(len(scope_spans)) + scope_spans
    body = b"\x0a" + _varint(len(resource_spans)) + resource_spans
    check(receiver, PB, body)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
