"""The environment `agenttrace run` gives the agent: its own, plus where to send telemetry (the
run's receiver, for all three OTLP signals), the run's trace context and id, and the Python
bootstrap first on PYTHONPATH with what it needs to know found once here (the GenAI instrumentors
installed, and the modules whose import turns them on: `instrumentors.python_env`); minus the store
(the audited party is not handed it, DESIGN.md)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from opentelemetry import trace
from opentelemetry.trace import Span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .. import config, constants
from . import instrumentors
from .claim_desk import ENDPOINT_ENV

log = logging.getLogger(__name__)

BOOTSTRAP_DIR = Path(__file__).resolve().parent.parent / "_bootstrap"


def agent_env(root: Span, run_id: str, endpoint: str, flush_interval: float) -> dict[str, str]:
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier, context=trace.set_span_in_context(root))
    env = dict(os.environ)
    resource = f"{constants.RUN_ID}={run_id}"
    existing = env.get("OTEL_RESOURCE_ATTRIBUTES")
    pythonpath = env.get("PYTHONPATH")
    bootstrap = f"{BOOTSTRAP_DIR}{os.pathsep}{pythonpath}" if pythonpath else str(BOOTSTRAP_DIR)
    env.update(
        {
            "TRACEPARENT": sampled_only(carrier["traceparent"]),
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_RESOURCE_ATTRIBUTES": f"{existing},{resource}" if existing else resource,
            "AGENTTRACE_RUN_ID": run_id,
            ENDPOINT_ENV: endpoint,
            "AGENTTRACE_FLUSH_INTERVAL": str(flush_interval),
            "PYTHONPATH": bootstrap,
        }
    )
    for kind in ("TRACES", "LOGS", "METRICS"):  # all three signals go to the receiver
        for name in (f"OTEL_EXPORTER_OTLP_{kind}_ENDPOINT", f"OTEL_EXPORTER_OTLP_{kind}_PROTOCOL"):
            env.pop(name, None)  # the receiver forwards to it; the agent sends to the receiver
    env.pop(config.STORE_ENV, None)  # the audited party is not handed the store (DESIGN.md)
    env.update(python_env())
    return env


def python_env() -> dict[str, str]:
    """What the Python bootstrap is handed (`instrumentors.python_env`); nothing when it cannot be
    found, and each Python process then finds its own at the first import of a GenAI library."""
    try:
        return instrumentors.python_env()
    except Exception as exc:  # a broken distribution's metadata: the children look for themselves
        log.debug("agenttrace: instrumentor list not handed down: %s", exc)
        return {instrumentors.TRIGGERS_ENV: "", instrumentors.INSTRUMENTORS_ENV: ""}


def sampled_only(traceparent: str) -> str:
    """The traceparent with trace-flags `01` or `00`: the SDK sets the random-trace-id flag too
    (`03`), which some propagators refuse (Codex's accepts flags up to 2 only)."""
    head, flags = traceparent.rsplit("-", 1)
    return f"{head}-{int(flags, 16) & 0x01:02x}"
