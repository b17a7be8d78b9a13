"""OTLP/HTTP request bodies to export requests of the three signals (`ExportTraceServiceRequest`,
`ExportLogsServiceRequest`, `ExportMetricsServiceRequest`): protobuf or JSON, plain or gzip.

The OTLP JSON rules (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) differ from
protobuf's canonical JSON in one place that matters: trace and span ids are hex strings, not
base64 (in spans and links, log records, and metric exemplars). Enums as integers, int64 as
strings or numbers (`intValue`, `asInt`, `count`, times) and unknown fields are all accepted by
`json_format` once the ids are converted. Every problem is an `OtlpDecodeError` whose message says
what is wrong; nothing else escapes.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from ..store.layout import LOGS as LOG_RECORDS
from ..store.layout import SAMPLES, SPANS

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


@dataclass(frozen=True)
class Signal:
    """One OTLP signal: where it is posted, its messages, and the kind of record it is stored as."""

    name: str
    """`traces`, `logs` or `metrics` (as in OTEL_EXPORTER_OTLP_<NAME>_ENDPOINT)."""
    path: str
    kind: str
    """The store's kind of record (`layout.KINDS`)."""
    request: type[Message]
    response: type[Message]
    rejected_field: str
    """The count in the response's `partial_success`."""
    noun: str
    """What one record is called in messages."""
    top: str
    """The JSON body's top-level array."""


TRACES = Signal(
    "traces", "/v1/traces", SPANS, ExportTraceServiceRequest, ExportTraceServiceResponse,
    "rejected_spans", "span", "resourceSpans",
)  # fmt: skip
LOGS = Signal(
    "logs", "/v1/logs", LOG_RECORDS, ExportLogsServiceRequest, ExportLogsServiceResponse,
    "rejected_log_records", "log record", "resourceLogs",
)  # fmt: skip
METRICS = Signal(
    "metrics", "/v1/metrics", SAMPLES, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
    "rejected_data_points", "data point", "resourceMetrics",
)  # fmt: skip
SIGNALS = {s.path: s for s in (TRACES, LOGS, METRICS)}
"""The signals by their OTLP/HTTP path."""


class OtlpDecodeError(ValueError):
    """A body that is not a valid OTLP export request (HTTP 400)."""


class OtlpTooLarge(ValueError):
    """A body, or its decompressed form, over the size limit (HTTP 413)."""


def media_type(content_type: str | None) -> str | None:
    """`application/json` from `application/json; charset=utf-8`; None for anything else."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind if kind in (PROTOBUF, JSON) else None


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body without its Content-Encoding (`gzip` or none), never more than `limit` bytes."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise OtlpDecodeError(f"unsupported Content-Encoding {encoding!r} (use gzip or none)")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
        if len(data) > limit:
            raise OtlpTooLarge(f"decompressed body is over the {limit}-byte limit")
        data += inflater.flush()
    except zlib.error as exc:
        raise OtlpDecodeError(f"body is not valid gzip ({exc})") from None
    if len(data) > limit:
        raise OtlpTooLarge(f"decompressed body is over the {limit}-byte limit")
    if not inflater.eof:
        raise OtlpDecodeError("gzip body is truncated")
    return data


def parse_request(body: bytes, kind: str, signal: Signal = TRACES) -> Any:
    """Parse a (decompressed) body of media type `kind` into the signal's export request."""
    if kind == PROTOBUF:
        request = signal.request()
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise OtlpDecodeError(
                f"body is not a valid OTLP protobuf {signal.request.__name__} ({exc})"
            ) from None
        return request
    return _parse_json(body, signal)


def _parse_json(body: bytes, signal: Signal = TRACES) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OtlpDecodeError(f"JSON body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError(f"JSON body must be an object with a {signal.top} array")
    try:
        _HEX_IDS[signal.name](document)
        return json_format.ParseDict(document, signal.request(), ignore_unknown_fields=True)
    except OtlpDecodeError:
        raise
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        raise OtlpDecodeError(f"JSON is not an OTLP {signal.request.__name__} ({_short(exc)})") from None


_ID_FIELDS = {
    "traceId": 16,
    "trace_id": 16,
    "spanId": 8,
    "span_id": 8,
    "parentSpanId": 8,
    "parent_span_id": 8,
}


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP JSON ids are hex; protobuf JSON wants base64. Convert in place, checking each."""
    resource_spans = document.get("resourceSpans", document.get("resource_spans", []))
    if not isinstance(resource_spans, list):
        raise OtlpDecodeError("resourceSpans must be an array")
    for rs in resource_spans:
        if not isinstance(rs, dict):
            raise OtlpDecodeError("each resourceSpans item must be an object")
        for ss in _list(rs, "scopeSpans", "scope_spans"):
            for span in _list(ss, "spans", "spans"):
                _convert_ids(span)
                for link in _list(span, "links", "links"):
                    _convert_ids(link)


def _log_ids_to_base64(document: dict[str, Any]) -> None:
    for rl in _list(document, "resourceLogs", "resource_logs"):
        for sl in _list(rl, "scopeLogs", "scope_logs"):
            for record in _list(sl, "logRecords", "log_records"):
                _convert_ids(record)


_METRIC_DATA = (
    ("gauge", "gauge"),
    ("sum", "sum"),
    ("histogram", "histogram"),
    ("exponentialHistogram", "exponential_histogram"),
    ("summary", "summary"),
)


def _metric_ids_to_base64(document: dict[str, Any]) -> None:
    """Metrics carry ids in their exemplars only."""
    for rm in _list(document, "resourceMetrics", "resource_metrics"):
        for sm in _list(rm, "scopeMetrics", "scope_metrics"):
            for metric in _list(sm, "metrics", "metrics"):
                if not isinstance(metric, dict):
                    raise OtlpDecodeError(f"a metric must be an object, got {type(metric).__name__}")
                for camel, snake in _METRIC_DATA:
                    data = metric.get(camel, metric.get(snake))
                    if data is None:
                        continue
                    for point in _list(data, "dataPoints", "data_points"):
                        for exemplar in _list(point, "exemplars", "exemplars"):
                            _convert_ids(exemplar)


_HEX_IDS = {"traces": _hex_ids_to_base64, "logs": _log_ids_to_base64, "metrics": _metric_ids_to_base64}


def _list(obj: Any, camel: str, snake: str) -> list[Any]:
    if not isinstance(obj, dict):
        raise OtlpDecodeError(f"expected an object holding {camel}, got {type(obj).__name__}")
    value = obj.get(camel, obj.get(snake, []))
    if value is None:
        return []
    if not isinstance(value, list):
        raise OtlpDecodeError(f"{camel} must be an array, got {type(value).__name__}")
    return value


def _convert_ids(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise OtlpDecodeError(
            f"a span, link, log record or exemplar must be an object, got {type(obj).__name__}"
        )
    for key in _ID_FIELDS:
        value = obj.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise OtlpDecodeError(f"{key} must be a hex string, got {type(value).__name__}")
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raise OtlpDecodeError(f"{key} {value[:40]!r} is not hex") from None
        obj[key] = base64.b64encode(raw).decode("ascii")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def response_message(signal: Signal, rejected: int = 0, message: str = "") -> Any:
    """The signal's Export...ServiceResponse (with partial_success when records were rejected)."""
    response = signal.response()
    if rejected:
        setattr(response.partial_success, signal.rejected_field, rejected)
        response.partial_success.error_message = message
    return response


def encode_response(kind: str, rejected: int = 0, message: str = "", signal: Signal = TRACES) -> bytes:
    """The signal's response (with partial_success when records were rejected), encoded as `kind`."""
    response = response_message(signal, rejected, message)
    if kind == JSON:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()


__all__ = [
    "JSON",
    "LOGS",
    "METRICS",
    "PROTOBUF",
    "SIGNALS",
    "TRACES",
    "OtlpDecodeError",
    "OtlpTooLarge",
    "Signal",
    "decompress",
    "encode_response",
    "media_type",
    "parse_request",
    "response_message",
]
