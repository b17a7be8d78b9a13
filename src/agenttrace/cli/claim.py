"""`agenttrace claim TEXT --evidence X ...`: record a claim from any process inside a run."""

from __future__ import annotations

import logging
import os
from typing import Annotated, Any

import typer

from .common import JsonOption, StoreOption, handle_errors, print_json, stderr

RUN_ID_ENV = "AGENTTRACE_RUN_ID"


@handle_errors
def claim(
    text: Annotated[str, typer.Argument(help="The claim, in one sentence.", show_default=False)],
    evidence: Annotated[
        list[str] | None,
        typer.Option(
            "--evidence",
            "-e",
            help="What backs the claim (repeat it): a file (copied, content-addressed, into the "
            "store), an http(s) URL the run fetched, or span:<id> (a tool call, a test run, a "
            "process).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Record a claim the agent makes, with its evidence, in the run this process belongs to.

    Meant for agents in any language: under `agenttrace run`, the environment says which run and
    where its receiver is (AGENTTRACE_RUN_ID, OTEL_EXPORTER_OTLP_ENDPOINT, TRACEPARENT). The
    `evidence` gate fails a claim without evidence, or whose evidence does not resolve.

    Exit status: 0 when the claim and all its evidence were recorded; 2 when a piece of evidence
    could not be read (the claim is still recorded, and the evidence gate will fail it) or the
    process is not inside a run.

    Example: agenttrace claim "all tests pass" --evidence test-report.xml --evidence span:5f1c0a9e2b7d4c11
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from .. import config
    from ..claims import record_claim
    from ..errors import ConfigError, StoreError
    from ..ids import is_safe_run_id

    run_id = os.environ.get(RUN_ID_ENV)
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not run_id or not endpoint:
        raise ConfigError(
            "not inside a run: `agenttrace claim` records into the run of the `agenttrace run` that "
            f"started this process ({RUN_ID_ENV} and OTEL_EXPORTER_OTLP_ENDPOINT are not set)"
        )
    if not is_safe_run_id(run_id):
        raise ConfigError(f"{RUN_ID_ENV}={run_id!r} is not a run id")
    # The exporter logs each retry; the one Error: line below says what went wrong.
    logging.getLogger("opentelemetry.exporter.otlp").setLevel(logging.CRITICAL)
    exporter = _Delivered(endpoint.rstrip("/") + "/v1/traces")
    provider = TracerProvider(resource=Resource.create({}))  # OTEL_RESOURCE_ATTRIBUTES: the run id
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traceparent = os.environ.get("TRACEPARENT")
    context = TraceContextTextMapPropagator().extract({"traceparent": traceparent}) if traceparent else None
    span_id, items = record_claim(
        provider.get_tracer("agenttrace.claim"),
        text,
        evidence or [],
        store=config.store_path(store),
        context=context,
        run_id=run_id,
    )
    provider.shutdown()
    if not exporter.delivered:
        raise StoreError(
            f"the claim could not be sent to the run's receiver at {endpoint} (has the run ended?)"
        )
    if json_:
        print_json({"run_id": run_id, "span_id": span_id, "text": text, "evidence": items})
    else:  # stderr: the agent's stdout is its own output
        stderr().print(f"agenttrace: claim {span_id} recorded in run {run_id} with {_summary(items)}")
    problems = [f"evidence {i['ref']}: {i['error']}" for i in items if "error" in i]
    if problems:
        raise ConfigError("; ".join(problems) + " (the claim is recorded; the evidence gate will fail it)")


def _summary(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no evidence (the evidence gate will fail it)"
    parts = []
    for item in items:
        if item["kind"] == "file" and "sha256" in item:
            parts.append(f"file {item['ref']} (sha256 {item['sha256'][:12]}…, {item['size']:,} bytes)")
        elif item["kind"] == "file":
            parts.append(f"file {item['ref']} ({item['error']})")
        else:
            parts.append(f"{item['kind']} {item['ref']}")
    return "evidence: " + "; ".join(parts)


class _Delivered:
    """An OTLP/HTTP exporter that remembers whether the receiver took the spans."""

    def __init__(self, endpoint: str) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self._inner = OTLPSpanExporter(endpoint=endpoint, timeout=5)
        self.delivered = False

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        result = self._inner.export(spans)
        self.delivered = result == SpanExportResult.SUCCESS
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
