"""OTLP/HTTP request bodies to `ExportTraceServiceRequest`: protobuf or JSON, plain or gzip.

The OTLP JSON rules (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) differ from
protobuf's canonical JSON in one place that matters: trace and span ids are hex strings, not
base64. Enums as integers, int64 as strings or numbers and unknown fields are all accepted by
`json_format` once the ids are converted. Every problem is an `OtlpDecodeError` whose message says
what is wrong; nothing else escapes.
"""

from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class OtlpDecodeError(ValueError):
    """A body that is not a valid OTLP trace export request (HTTP 400)."""


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


def parse_request(body: bytes, kind: str) -> ExportTraceServiceRequest:
    """Parse a (decompressed) body of media type `kind` into a request."""
    if kind == PROTOBUF:
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise OtlpDecodeError(
                f"body is not a valid OTLP protobuf ExportTraceServiceRequest ({exc})"
            ) from None
        return request
    return _parse_json(body)


def _parse_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OtlpDecodeError(f"JSON body is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError("JSON body must be an object with a resourceSpans array")
    try:
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except OtlpDecodeError:
        raise
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        raise OtlpDecodeError(f"JSON is not an OTLP ExportTraceServiceRequest ({_short(exc)})") from None


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
        raise OtlpDecodeError(f"a span or link must be an object, got {type(obj).__name__}")
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


def encode_response(kind: str, rejected: int = 0, message: str = "") -> bytes:
    """An ExportTraceServiceResponse (with partial_success when spans were rejected)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

    response = ExportTraceServiceResponse()
    if rejected:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    if kind == JSON:
        return json.dumps(json_format.MessageToDict(response)).encode()
    return response.SerializeToString()


__all__ = [
    "JSON",
    "PROTOBUF",
    "OtlpDecodeError",
    "OtlpTooLarge",
    "decompress",
    "encode_response",
    "media_type",
    "parse_request",
]
