"""Claims and their evidence: output without evidence is an opinion.

    agenttrace.claim("all 10 endpoints were audited", evidence=["report.md", "https://ci/run/7"])

A claim is a span (type `claim`) with its text and its evidence, each reference resolved when
the claim is made:

    file   a path inside the working directory (relative to it, or absolute): copied,
           content-addressed, into `<store>/artifacts/sha256/`; the record keeps path, sha256,
           size and content type. A file outside the working directory (after following
           symlinks) is refused: evidence is the run's own work, and a claim must not be a way to
           copy someone's private file into the store
    url    `http://` or `https://`: resolves if an HTTP span in the run fetched it with a 2xx,
           or with `agenttrace audit --online`, which checks it live
    span   `span:<16 hex digits>` (or the bare id): a tool call, a test run, a process
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span

from .. import config, constants
from ..errors import AgentTraceError, ConfigError, StoreError
from ..store.artifact_store import ArtifactStore, NotAFileError, OutsideError
from ..store.layout import StoreLayout
from ..supervise.artifacts import event_attributes

CLAIM_TEXT = "agenttrace.claim.text"
CLAIM_EVIDENCE = "agenttrace.claim.evidence"
MAX_CLAIM_CHARS = 4000

_SPAN_ID = re.compile(r"^[0-9a-fA-F]{16}$")
_lock = threading.Lock()
_claimed_files: dict[int, dict[str, str]] = {}
"""trace id -> {path: sha256 when claimed}: the files this process cited, re-checked when an
`agenttrace.run()` block ends."""


def resolve_evidence(
    ref: Any, cwd: Path, artifacts: ArtifactStore, workdir: Path | None = None
) -> dict[str, Any]:
    """One evidence reference as it is recorded; a relative path is taken from `cwd`, and a file
    must be inside `workdir` (default `cwd`). Never raises for a file it cannot use: the record
    says why (the `evidence` gate then fails the claim)."""
    if isinstance(ref, Span):
        return {"kind": "span", "ref": f"{ref.get_span_context().span_id:016x}"}
    if hasattr(ref, "span") and isinstance(ref.span, Span):  # a ToolCall
        return {"kind": "span", "ref": f"{ref.span.get_span_context().span_id:016x}"}
    if not isinstance(ref, str | os.PathLike):
        raise ConfigError(f"evidence must be a path, a URL or a span id, got {type(ref).__name__}")
    text = os.fspath(ref)
    if not text.strip():
        raise ConfigError("evidence must not be empty")
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        return {"kind": "url", "ref": text}
    if lowered.startswith("span:"):
        span_id = text[5:].strip().lower()
        if not _SPAN_ID.match(span_id):
            raise ConfigError(f"evidence {text!r}: a span id is 16 hex digits")
        return {"kind": "span", "ref": span_id}
    if _SPAN_ID.match(text) and not (cwd / text).exists():
        return {"kind": "span", "ref": text.lower()}
    if lowered.startswith("file://"):
        text = text[7:]
    elif lowered.startswith("file:"):
        text = text[5:]
    path = Path(os.path.abspath(cwd / text))
    record: dict[str, Any] = {"kind": "file", "ref": os.fspath(ref), "path": str(path)}
    outside = outside_workdir(path, workdir or cwd)
    if outside:
        return record | {"error": outside}
    try:
        stored = artifacts.put(path, within=workdir or cwd)
    except OutsideError:  # swapped for a link to outside between the check and the open
        return record | {"error": _outside(Path(os.path.realpath(workdir or cwd)))}
    except FileNotFoundError:
        return record | {"error": "no such file"}
    except IsADirectoryError:
        return record | {"error": "is a directory, not a file"}
    except PermissionError:
        return record | {"error": "cannot be read (permission denied)"}
    except NotAFileError:
        return record | {"error": "is not a regular file (a pipe, socket or device)"}
    except (OSError, ValueError, AgentTraceError) as exc:  # ValueError: a NUL in the path
        return record | {"error": f"could not be stored: {exc}"}
    return record | {
        "sha256": stored.sha256,
        "size": stored.size,
        "content_type": stored.content_type,
        "stored": stored.stored,
    }


def outside_workdir(path: Path, workdir: Path) -> str | None:
    """Why `path` may not be cited as evidence (it resolves outside `workdir`), or None."""
    try:
        real, root = Path(os.path.realpath(path)), Path(os.path.realpath(workdir))
    except (OSError, ValueError) as exc:
        return f"cannot be resolved: {exc}"
    if real == root or root in real.parents:
        return None
    return _outside(root)


def _outside(root: Path) -> str:
    return (
        f"is outside the run's working directory {root}: a claim may cite only files inside it "
        "(copy what backs the claim into the working directory)"
    )


def record_claim(
    tracer: trace.Tracer,
    text: str,
    evidence: Iterable[Any],
    *,
    store: Path | None = None,
    settings: config.Settings | None = None,
    cwd: Path | None = None,
    context: otel_context.Context | None = None,
    run_id: str | None = None,
    workdir: Path | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """Resolve the evidence, record the claim as a span; its span id and evidence records.
    Files must be inside `workdir` (default: `cwd`, else the current directory). `settings` as
    the caller resolved them (the supervisor), else read for `store`."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a claim needs its text")
    if settings is None:
        settings = config.load(store)
    artifacts = ArtifactStore(StoreLayout(settings.store), settings.max_artifact_bytes)
    where = cwd or Path.cwd()
    items = [resolve_evidence(ref, where, artifacts, workdir or where) for ref in evidence]
    attributes: dict[str, Any] = {
        constants.SPAN_TYPE: "claim",
        CLAIM_TEXT: text[:MAX_CLAIM_CHARS],
        CLAIM_EVIDENCE: json.dumps(items, ensure_ascii=False),
    }
    if run_id:
        attributes[constants.RUN_ID] = run_id
    span = tracer.start_span("claim", context=context, attributes=attributes)
    for item in items:
        if item["kind"] == "file" and "sha256" in item:
            span.add_event(
                "agenttrace.artifact",
                event_attributes(
                    item["path"], item["sha256"], item["size"], "evidence",
                    content_type=item["content_type"], stored=item["stored"],
                ),
            )  # fmt: skip
    span.end()
    trace_id = span.get_span_context().trace_id
    with _lock:
        files = _claimed_files.setdefault(trace_id, {})
        files.update({i["path"]: i["sha256"] for i in items if i["kind"] == "file" and "sha256" in i})
    return f"{span.get_span_context().span_id:016x}", items


def claim(text: str, *, evidence: Iterable[Any] = ()) -> str:
    """Record a claim the agent makes, with its evidence: paths, URLs, span ids (or spans and
    tool calls). Returns the claim's span id. A file that cannot be read is recorded as such and
    fails the `evidence` gate; only a claim without text, or evidence of an unknown type, raises
    ConfigError."""
    from ..capture.tracing import current_store, tracer

    if isinstance(evidence, str | os.PathLike):
        evidence = [evidence]
    supervised = _supervisor_endpoint()
    if supervised is not None:  # under `agenttrace run`: the supervisor records it
        return _claim_through(supervised, text, list(evidence))
    store = config.store_path(current_store())
    span_id, _ = record_claim(tracer(), text, list(evidence), store=store)
    return span_id


def _supervisor_endpoint() -> tuple[str, str] | None:
    """(run id, endpoint) of the `agenttrace run` this process is part of, if any."""
    from ..ids import is_safe_run_id
    from ..supervise.claim_desk import ENDPOINT_ENV

    run_id, endpoint = os.environ.get("AGENTTRACE_RUN_ID"), os.environ.get(ENDPOINT_ENV)
    return (run_id, endpoint) if run_id and endpoint and is_safe_run_id(run_id) else None


def _claim_through(supervised: tuple[str, str], text: str, evidence: list[Any]) -> str:
    """Send the claim to the supervisor, under the current span. Returns its span id, or "" when
    the supervisor could not be reached (logged: telemetry never breaks the agent)."""
    import logging

    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from ..supervise.claim_desk import evidence_refs, send_claim

    if not isinstance(text, str) or not text.strip():
        raise ConfigError("a claim needs its text")
    refs = evidence_refs(evidence)
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    traceparent = carrier.get("traceparent") or os.environ.get("TRACEPARENT")
    try:
        answer = send_claim(supervised[1], supervised[0], text, refs, Path.cwd(), traceparent)
    except StoreError as exc:
        logging.getLogger("agenttrace").warning("agenttrace: %s", exc)
        return ""
    return str(answer.get("span_id", ""))


def files_cited_in_store(layout: StoreLayout, run_id: str) -> list[str]:
    """The files the run's claims cited, read from its stored records (the spool and any part),
    with Arrow compute rather than a DuckDB session: `agenttrace run` asks after every agent."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from ..store.reader import snapshot

    snap = snapshot(layout, [run_id], recover=False)
    tables = [snap.spool_spans]
    for part in snap.span_parts:
        try:
            tables.append(pq.read_table(part, columns=["SpanAttributes"]))
        except Exception:  # a corrupt part: the audit reports it
            continue
    paths: set[str] = set()
    for table in tables:
        if table.num_rows == 0:
            continue
        attributes = table.column("SpanAttributes")
        is_claim = pc.equal(pc.map_lookup(attributes, constants.SPAN_TYPE, "first"), "claim")
        for raw in pc.map_lookup(attributes.filter(is_claim), CLAIM_EVIDENCE, "first").to_pylist():
            try:
                items = json.loads(raw or "[]")
            except ValueError:
                continue
            paths.update(
                i["path"]
                for i in items
                if isinstance(i, dict) and i.get("kind") == "file" and i.get("sha256")
            )
    return sorted(paths)


def claimed_files(trace_id: int) -> dict[str, str]:
    """The files cited as evidence in this process under one trace (a run): path -> sha256."""
    with _lock:
        return dict(_claimed_files.pop(trace_id, {}))


__all__ = ["claim", "claimed_files", "files_cited_in_store", "record_claim", "resolve_evidence"]
