"""Helpers shared by the benchmarks: argument parsing, medians, the report, the shared workload."""

from __future__ import annotations

import argparse
import collections
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

SHARED_BENCH = Path(os.environ.get("AGENTTRACE_SHARED_BENCH", "/work/shared/bench"))
"""Where the shared workload generator gen_otlp.py lives (read-only)."""

RESOURCE = Resource.create({"service.name": "bench-agent"})
SPANS_PER_RUN = 1000
"""One agent run of `emit`: a root span and 333 steps of (chat, execute_tool > process)."""


def parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument(
        "--quick", action="store_true", help="a small run (under ~20 s) to check the script works"
    )
    ap.add_argument(
        "--tmp", default=None, help="folder for temporary stores (default: the system temp folder)"
    )
    return ap


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def fmt_s(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    return f"{seconds * 1e3:.1f} ms"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def spread(values: Sequence[float]) -> str:
    """`median (min..max)` of timings, for the report."""
    return f"{fmt_s(median(values))} (min {fmt_s(min(values))}, max {fmt_s(max(values))}, n={len(values)})"


def alternate(
    reps: int, tmp: Path, sides: list[tuple[str, Callable[[Path], dict[str, Any] | None]]]
) -> dict[str, list[dict[str, Any]]]:
    """Each side's results over `reps` repetitions, each in its own folder under `tmp`, the sides'
    order alternating: neither side always runs on a warm machine. A side returning None (not
    installed) is left out of that repetition."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in sides}
    for rep in range(reps):
        rep_dir = tmp / f"rep{rep}"
        rep_dir.mkdir()
        for name, side in sides if rep % 2 == 0 else list(reversed(sides)):
            result = side(rep_dir)
            if result is not None:
                results[name].append(result)
    return results


def header(title: str, quick: bool) -> None:
    print(f"== {title}{' (--quick)' if quick else ''} ==")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s), pid {os.getpid()}")


def final_json(result: dict[str, Any]) -> None:
    """The one machine-readable line every benchmark ends with."""
    print(json.dumps(result, sort_keys=True), flush=True)


def load_gen_otlp() -> ModuleType:
    """The shared workload generator, or exit with a message saying where it was looked for."""
    if not (SHARED_BENCH / "gen_otlp.py").is_file():
        sys.exit(
            f"bench: the shared workload generator {SHARED_BENCH / 'gen_otlp.py'} is missing; "
            "set AGENTTRACE_SHARED_BENCH to the folder that holds gen_otlp.py"
        )
    if str(SHARED_BENCH) not in sys.path:
        sys.path.insert(0, str(SHARED_BENCH))
    import gen_otlp

    return gen_otlp


def clean_environment() -> None:
    """No AGENTTRACE_* / OTEL_* setting from the caller's shell changes what is measured."""
    for name in list(os.environ):
        if name.startswith(("AGENTTRACE_", "OTEL_")):
            del os.environ[name]


def emit(provider: TracerProvider, runs: int, steps: int) -> int:
    """The host program: `runs` agent runs, each a root span with nested children, ~6 attributes
    each. Returns the number of spans created."""
    tracer = provider.get_tracer("bench.agent", "1.0")
    n = 0
    for r in range(runs):
        with tracer.start_as_current_span(
            "invoke_agent coder",
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": "coder",
                "gen_ai.agent.id": f"agent-{r}",
                "gen_ai.conversation.id": f"conv-{r:06d}",
                "gen_ai.request.model": "gpt-4o",
                "bench.run.index": r,
            },
        ):
            n += 1
            for i in range(steps):
                with tracer.start_as_current_span(
                    "chat gpt-4o",
                    kind=SpanKind.CLIENT,
                    attributes={
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.usage.input_tokens": 1200 + i,
                        "gen_ai.usage.output_tokens": 80,
                        "gen_ai.response.finish_reasons": '["tool_calls"]',
                    },
                ):
                    pass
                with (
                    tracer.start_as_current_span(
                        "execute_tool grep",
                        attributes={
                            "gen_ai.operation.name": "execute_tool",
                            "gen_ai.tool.name": "grep",
                            "gen_ai.tool.call.id": f"call_{r}_{i}",
                            "gen_ai.tool.call.arguments": '{"pattern": "foo", "path": "src/"}',
                            "gen_ai.tool.call.result": "src/a.py:12: foo()",
                            "bench.tool.ok": True,
                        },
                    ),
                    tracer.start_as_current_span(
                        "process grep",
                        attributes={
                            "process.pid": 1000 + i,
                            "process.executable.name": "grep",
                            "process.command_line": "grep -rn foo src/",
                            "process.exit.code": 0,
                            "process.working_directory": "/work/repo",
                            "bench.process.timed_out": False,
                        },
                    ),
                ):
                    pass
                n += 3
    return n


class LogCollector(logging.Handler):
    """Collects the warnings the SDK and agenttrace log (e.g. "Queue full, dropping Span.") so the
    report shows them instead of stray stderr lines. The SDK rate-limits repeats, so the counts are
    lower bounds; the store counts are what tell how many spans were lost."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.name}: {record.getMessage().splitlines()[0][:200]}"] += 1

    def install(self) -> LogCollector:
        logging.getLogger().addHandler(self)
        return self

    def report(self) -> list[str]:
        return [f"{n} x {message}" for message, n in self.counts.most_common()]
