"""agenttrace: an agent run is not done when the model stops talking.

Record what an agent did as OpenTelemetry spans in a crash-safe Parquet store, and look at it
with `agenttrace runs`, `agenttrace show RUN` and `agenttrace query SQL`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .api import Run, ToolCall, llm, run, step, tool, tool_call
from .errors import (
    AgentTraceError,
    AmbiguousRunError,
    ConfigError,
    CorruptPartError,
    QueryError,
    RunNotFoundError,
    StoreError,
)
from .exporter import ParquetSpanExporter, PendingSpanProcessor
from .tracing import configure

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
    "configure",
    "llm",
    "run",
    "step",
    "tool",
    "tool_call",
]
