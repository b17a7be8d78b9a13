"""Claims made inside `agenttrace run`, recorded by the supervisor (DESIGN.md, "Environment given
to the agent": an endpoint for `agenttrace claim`, not the store's path).

The agent does not write the store. `agenttrace claim` and `agenttrace.claim()` in a supervised
process POST the claim to the run's receiver at `$AGENTTRACE_ENDPOINT/agenttrace/v1/claims`:

    {"run_id": "...", "text": "all tests pass", "evidence": ["report.xml", "span:5f1c0a9e2b7d4c11"],
     "cwd": "/abs/dir/of/the/claimer", "traceparent": "00-<trace>-<span>-01"}

The supervisor resolves the evidence itself (files must be inside the run's working directory;
they are hashed and copied into the artifact store), records the claim as its own span under the
claimer's span, and answers with the claim's span id and the evidence records:

    200 {"span_id": "...", "evidence": [{"kind": "file", "ref": ..., "sha256": ..., ...}]}
    400 / 409 / 413 {"error": "..."}
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ..config import Settings
from ..errors import AgentTraceError, ConfigError, StoreError

CLAIMS_PATH = "/agenttrace/v1/claims"
ENDPOINT_ENV = "AGENTTRACE_ENDPOINT"
"""The supervisor's receiver, for claims: set by `agenttrace run` for the agent."""
MAX_BODY = 256 * 1024
MAX_EVIDENCE = 256
MAX_REF_CHARS = 4096
SEND_TIMEOUT_S = 60.0
"""Resolving evidence hashes and copies files: a large one takes a while."""


class ClaimDesk:
    """The supervisor's side: validates, resolves and records claims for one run. Thread-safe."""

    def __init__(
        self, run_id: str, root: Span, workdir: Path, settings: Settings, tracer: trace.Tracer
    ) -> None:
        self.run_id = run_id
        self.root = root
        self.workdir = workdir
        self.settings = settings
        self.tracer = tracer
        self._lock = threading.Lock()
        self._cited: dict[str, str] = {}

    @property
    def cited_files(self) -> list[str]:
        """Files the run's claims cited (and that could be hashed), for the verification phase."""
        with self._lock:
            return sorted(self._cited)

    def handle(self, method: str, body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON body). Never raises."""
        if method != "POST":
            return 405, {"error": f"{CLAIMS_PATH} takes POST"}
        if len(body) > MAX_BODY:
            return 413, {"error": f"a claim is at most {MAX_BODY} bytes"}
        try:
            request = _parse(body)
        except ConfigError as exc:
            return 400, {"error": str(exc)}
        if request["run_id"] != self.run_id:
            return 409, {"error": f"this receiver records run {self.run_id}, not {request['run_id']!r}"}
        try:
            span_id, items = self._record(request)
        except AgentTraceError as exc:
            return 400, {"error": str(exc)}
        except Exception as exc:  # a bug: say so, keep serving
            return 500, {"error": f"internal error: {type(exc).__name__}: {exc}"}
        return 200, {"span_id": span_id, "evidence": items}

    def _record(self, request: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
        from ..objective.claims import record_claim

        root = self.root.get_span_context()
        parent = trace.set_span_in_context(self.root)
        if request["traceparent"]:
            extracted = TraceContextTextMapPropagator().extract({"traceparent": request["traceparent"]})
            context = trace.get_current_span(extracted).get_span_context()
            if context.is_valid and context.trace_id == root.trace_id:
                parent = extracted
        span_id, items = record_claim(
            self.tracer,
            request["text"],
            request["evidence"],
            settings=self.settings,
            cwd=Path(request["cwd"]),
            context=parent,
            run_id=self.run_id,
            workdir=self.workdir,
        )
        with self._lock:
            self._cited.update(
                {i["path"]: i["sha256"] for i in items if i["kind"] == "file" and "sha256" in i}
            )
        return span_id, items


def _parse(body: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"a claim is a JSON object: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("a claim is a JSON object")
    text, evidence, cwd = raw.get("text"), raw.get("evidence", []), raw.get("cwd")
    run_id, traceparent = raw.get("run_id"), raw.get("traceparent")
    if not isinstance(run_id, str) or not run_id:
        raise ConfigError("`run_id` must be the run's id")
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a claim needs its `text`")
    if not isinstance(evidence, list) or not all(isinstance(e, str) for e in evidence):
        raise ConfigError("`evidence` must be a list of strings (paths, URLs, span:<id>)")
    if len(evidence) > MAX_EVIDENCE or any(len(e) > MAX_REF_CHARS or "\0" in e for e in evidence):
        raise ConfigError(
            f"at most {MAX_EVIDENCE} pieces of evidence of at most {MAX_REF_CHARS} characters, no NUL"
        )
    if not isinstance(cwd, str) or not cwd.startswith("/") or "\0" in cwd:
        raise ConfigError("`cwd` must be the claimer's absolute working directory")
    if traceparent is not None and not isinstance(traceparent, str):
        raise ConfigError("`traceparent` must be a W3C traceparent string")
    return {"run_id": run_id, "text": text, "evidence": evidence, "cwd": cwd, "traceparent": traceparent}


def evidence_refs(evidence: Iterable[Any]) -> list[str]:
    """Evidence as the desk takes it: strings, with spans and tool calls as `span:<id>`."""
    refs = []
    for ref in evidence:
        span = ref if isinstance(ref, Span) else getattr(ref, "span", None)
        if isinstance(span, Span):
            refs.append(f"span:{span.get_span_context().span_id:016x}")
        elif isinstance(ref, str):
            refs.append(ref)
        elif hasattr(ref, "__fspath__"):
            refs.append(str(ref.__fspath__()))
        else:
            raise ConfigError(f"evidence must be a path, a URL or a span id, got {type(ref).__name__}")
    return refs


def send_claim(
    endpoint: str, run_id: str, text: str, evidence: list[str], cwd: Path, traceparent: str | None
) -> dict[str, Any]:
    """POST a claim to the run's supervisor; its answer (span_id, evidence). Raises ConfigError for
    a claim it refused, StoreError when it cannot be reached."""
    body = json.dumps(
        {"run_id": run_id, "text": text, "evidence": evidence, "cwd": str(cwd), "traceparent": traceparent}
    ).encode()
    request = urllib.request.Request(
        endpoint.rstrip("/") + CLAIMS_PATH,
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=SEND_TIMEOUT_S) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error") or exc.reason
        except (ValueError, AttributeError, OSError):
            message = exc.reason
        if exc.code >= 500 or exc.code == 404:
            raise StoreError(
                f"the run's supervisor at {endpoint} could not record the claim: {message}"
            ) from None
        raise ConfigError(f"the claim was refused: {message}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StoreError(
            f"the claim could not be sent to the run's supervisor at {endpoint} "
            f"(has the run ended?): {reason}"
        ) from None


__all__ = ["CLAIMS_PATH", "ENDPOINT_ENV", "ClaimDesk", "evidence_refs", "send_claim"]
