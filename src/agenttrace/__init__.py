"""agenttrace: an agent run is not done when the model stops talking.

Record what an agent did as OpenTelemetry spans in a crash-safe Parquet store, and look at it
with `agenttrace runs`, `agenttrace show RUN` and `agenttrace query SQL`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from .errors import (
    AgentTraceError,
    AmbiguousRunError,
    ConfigError,
    CorruptPartError,
    QueryError,
    RunNotFoundError,
    StoreError,
)

if TYPE_CHECKING:
    from .capture.api import Run, ToolCall, llm, run, step, tool, tool_call
    from .capture.exporter import ParquetSpanExporter, PendingSpanProcessor
    from .capture.tracing import configure
    from .objective.claims import claim

_LAZY = {
    "Run": "capture.api",
    "ToolCall": "capture.api",
    "llm": "capture.api",
    "run": "capture.api",
    "step": "capture.api",
    "tool": "capture.api",
    "tool_call": "capture.api",
    "ParquetSpanExporter": "capture.exporter",
    "PendingSpanProcessor": "capture.exporter",
    "configure": "capture.tracing",
    "claim": "objective.claims",
}


def __getattr__(name: str) -> Any:
    """The API is imported on first use: `import agenttrace` stays cheap (pyarrow loads only when
    something is recorded), which matters for every Python process `agenttrace run` instruments."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'agenttrace' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AgentTraceError",
    "AmbiguousRunError",
    "ConfigError",
    "CorruptPartError",
    "ParquetSpanExporter",
    "PendingSpanProcessor",
    "QueryError",
    "Run",
    "RunNotFoundError",
    "StoreError",
    "ToolCall",
    "__version__",
    "claim",
    "configure",
    "llm",
    "run",
    "step",
    "tool",
    "tool_call",
]
