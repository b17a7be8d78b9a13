"""Which GenAI instrumentors a Python process of the agent turns on, and on the import of which
modules: found once by the supervisor and handed down (`python_env`), so that the agent's Python
processes do not scan the installed distributions' entry points at start-up, or at all.

Three tables, all data: which library an instrumentor entry point covers, which modules' import
turns that library's instrumentor on, and which instrumentor is chosen where several are installed
for one library. Exactly one instrumentor per library is turned on, once, so one LLM call is not
recorded twice by two instrumentors of the same SDK. (A framework and the SDK under it, such as
LangChain over OpenAI, are two libraries: both are instrumented, and the `steps` view counts the
nested LLM spans of one call once.)

What is handed down is only a shortcut, never trusted: the agent can set environment variables
too, and what it sets here decides only which of its own calls it reports about itself (spans of
origin `agent`), as removing the bootstrap from PYTHONPATH would. A list found for another
interpreter (another `sys.prefix`), or none, and the process finds its own, at the first import of
a library that has an instrumentor at all (`all_triggers`), never at start-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

TRIGGERS_ENV = "AGENTTRACE_PYTHON_TRIGGERS"
"""`<sys.prefix>|<module>,...|<module>,...`: the modules whose first import turns instrumentation
on in a Python process of the agent (read by the bootstrap's sitecustomize, with no JSON): those of
the instrumentors installed in the interpreter of that prefix, and for any other interpreter every
module that could (`all_triggers`)."""
INSTRUMENTORS_ENV = "AGENTTRACE_PYTHON_INSTRUMENTORS"
"""JSON `{"prefix": sys.prefix, "libraries": {library: [[entry point, distribution, value], ...]}}`:
the installed instrumentors by library, each library's in the order they are tried."""
DISABLED_ENV = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
GROUP = "opentelemetry_instrumentor"

GENAI_INSTRUMENTORS = (
    "openai", "openai_v2", "openai_agents", "anthropic", "bedrock", "botocore", "cohere", "google_genai",
    "vertexai", "mistralai", "groq", "ollama", "langchain", "llama_index", "llamaindex", "crewai",
    "dspy", "haystack", "litellm", "smolagents", "autogen", "agno", "pydantic_ai", "mcp", "instructor",
    "together", "replicate", "transformers", "watsonx", "alephalpha", "sagemaker", "weaviate",
    "chromadb", "pinecone", "qdrant",
)  # fmt: skip
"""Entry-point names (group `opentelemetry_instrumentor`) of GenAI and agent-framework instrumentors."""

LIBRARY_OF = {
    "openai_v2": "openai", "llamaindex": "llama_index",
}  # fmt: skip
"""The library an instrumentor entry point covers, where it is not the entry point's own name.
(OpenInference and the official OpenAI instrumentor both name their entry point `openai`.)"""

TRIGGERS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",),
    "anthropic": ("anthropic",),
    # LangChain instrumentors patch langchain_core, which LangGraph programs import without `langchain`
    "langchain": ("langchain_core", "langchain", "langgraph", "langchain_openai", "langchain_anthropic",
                  "langchain_community"),
    "openai_agents": ("agents",),
    "pydantic_ai": ("pydantic_ai",),
    "litellm": ("litellm",),
    "google_genai": ("google.genai",),
    "llama_index": ("llama_index",),
    "bedrock": ("boto3", "botocore"),
    "botocore": ("botocore",),
    "watsonx": ("ibm_watsonx_ai",),
    "alephalpha": ("aleph_alpha_client",),
    "crewai": ("crewai",),
    "dspy": ("dspy",),
    "smolagents": ("smolagents",),
    "autogen": ("autogen_agentchat", "autogen_core", "autogen"),
    "agno": ("agno",),
    "haystack": ("haystack",),
    "instructor": ("instructor",),
    "mcp": ("mcp",),
}  # fmt: skip
"""Top-level modules whose import (whichever comes first) turns a library's instrumentor on; a
library not listed here is turned on by the import of the module named like it."""

PREFERENCE: dict[str, tuple[str, ...]] = {
    "openai": ("openinference-instrumentation-openai", "opentelemetry-instrumentation-openai-v2",
               "opentelemetry-instrumentation-openai"),
    "anthropic": ("openinference-instrumentation-anthropic", "opentelemetry-instrumentation-anthropic"),
    "langchain": ("openinference-instrumentation-langchain", "opentelemetry-instrumentation-langchain"),
    "openai_agents": ("openinference-instrumentation-openai-agents",
                      "opentelemetry-instrumentation-openai-agents-v2",
                      "opentelemetry-instrumentation-openai-agents"),
    "pydantic_ai": ("pydantic-ai-slim",),
    "litellm": ("openinference-instrumentation-litellm", "opentelemetry-instrumentation-litellm"),
}  # fmt: skip
"""Where several instrumentors of one library are installed, the distributions in the order they
are preferred: the first that turns on is the only one. OpenInference comes first (it records the
messages, tool calls and token counts as span attributes, which `steps` shows), then the official
OpenTelemetry instrumentor, then OpenLLMetry's. Instrumentors not listed come after, OpenInference
ones first, then by distribution name. `pydantic-ai-slim` is pydantic-ai's own instrumentation
(`Agent.instrument_all()`, GenAI semantic conventions), turned on by the bootstrap itself.
(LiteLLM's own `otel` callback needs code in the program; the OpenAI SDK that LiteLLM calls is a
library of its own, instrumented under it.)"""


class _PydanticAIInstrumentor:
    """pydantic-ai's built-in OpenTelemetry instrumentation (GenAI semantic conventions, spans on
    the global TracerProvider), for every agent that does not set its own. A program that calls
    `Agent.instrument_all()` (or Logfire's `instrument_pydantic_ai()`) later overrides it."""

    def instrument(self) -> None:
        from pydantic_ai import Agent

        if getattr(Agent, "_instrument_default", False) is False:
            Agent.instrument_all(True)


@dataclasses.dataclass(frozen=True)
class Instrumentor:
    name: str
    """The entry point's name (or the built-in's)."""
    distribution: str
    value: str
    """`module:attribute` of the instrumentor class, as the entry point names it ("" built in)."""
    load: Callable[[], Any]
    """() -> the instrumentor class: an object with .instrument() once called."""


BUILT_IN = {
    "pydantic_ai": (Instrumentor("pydantic_ai", "pydantic-ai-slim", "", lambda: _PydanticAIInstrumentor),),
}
"""Instrumentation the bootstrap turns on itself, for libraries that carry their own."""


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _rank(library: str, instrumentor: Instrumentor) -> tuple[int, int, str]:
    preferred = [_normalise(d) for d in PREFERENCE.get(library, ())]
    dist = _normalise(instrumentor.distribution)
    if dist in preferred:
        return (0, preferred.index(dist), dist)
    return (1, 0 if dist.startswith("openinference-") else 1, dist)


def load_value(value: str) -> Any:
    """The object an entry point's `module:attr.attr` value names (as `EntryPoint.load` does)."""
    from importlib import import_module

    module, _, attrs = value.partition(":")
    found = import_module(module.strip())
    for attr in filter(None, attrs.strip().split(".")):
        found = getattr(found, attr)
    return found


def _entry(name: str, distribution: str, value: str) -> Instrumentor:
    return Instrumentor(name, distribution, value, lambda: load_value(value))


def _installed() -> list[Instrumentor]:
    """The GenAI instrumentor entry points of this interpreter's distributions (importlib.metadata)."""
    from importlib import metadata

    found = []
    for entry in metadata.entry_points(group=GROUP):
        if entry.name in GENAI_INSTRUMENTORS:
            dist = entry.dist.name if entry.dist is not None else entry.value.split(":", 1)[0]
            found.append(_entry(entry.name, dist, entry.value))
    return found


def _disabled(environ: dict[str, str] | os._Environ[str]) -> set[str]:
    return {n.strip() for n in environ.get(DISABLED_ENV, "").split(",") if n.strip()}


def _by_library(entries: Iterable[Instrumentor], disabled: set[str]) -> dict[str, list[Instrumentor]]:
    found: dict[str, list[Instrumentor]] = {k: list(v) for k, v in BUILT_IN.items()}
    for entry in entries:
        if entry.name not in disabled:
            found.setdefault(LIBRARY_OF.get(entry.name, entry.name), []).append(entry)
    for library in [lib for lib in found if lib in disabled]:
        del found[library]
    return {library: sorted(found[library], key=lambda i: _rank(library, i)) for library in found}


def genai_instrumentors() -> dict[str, list[Instrumentor]]:
    """The installed GenAI instrumentors by library, each library's in the order they are tried.
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS (entry point or library names, comma-separated, as
    `opentelemetry-instrument` reads it) leaves some out: `pydantic_ai` the built-in one. Scans the
    entry points."""
    return _by_library(_installed(), _disabled(os.environ))


def triggers_of(libraries: Iterable[str]) -> dict[str, list[str]]:
    """Module -> the libraries whose instrumentor its import turns on."""
    table: dict[str, list[str]] = {}
    for library in libraries:
        for module in TRIGGERS.get(library, (library,)):
            table.setdefault(module, []).append(library)
    return table


def all_triggers() -> list[str]:
    """Every module that could turn an instrumentor on, whatever is installed: the triggers of a
    process that was handed no list it can use."""
    libraries = {LIBRARY_OF.get(n, n) for n in GENAI_INSTRUMENTORS} | set(BUILT_IN)
    return sorted(triggers_of(libraries))


def python_env() -> dict[str, str]:
    """For the agent's environment: the trigger modules and instrumentors of this interpreter, found
    once (one entry-point scan, here in the supervisor). Not filtered by the disabled list: each
    process reads its own OTEL_PYTHON_DISABLED_INSTRUMENTATIONS."""
    libraries = _by_library(_installed(), set())
    handed = {
        library: [[i.name, i.distribution, i.value] for i in entries if i.value]
        for library, entries in libraries.items()
    }
    return {
        TRIGGERS_ENV: f"{sys.prefix}|{','.join(sorted(triggers_of(libraries)))}|{','.join(all_triggers())}",
        INSTRUMENTORS_ENV: json.dumps({"prefix": sys.prefix, "libraries": handed}, separators=(",", ":")),
    }


def handed_down(environ: dict[str, str] | os._Environ[str] | None = None) -> dict[str, list[Instrumentor]]:
    """This process's GenAI instrumentors by library: the list the supervisor handed down when it was
    found for this interpreter, else a scan of the entry points. Disabled ones left out."""
    environ = os.environ if environ is None else environ
    disabled = _disabled(environ)
    try:
        document = json.loads(environ.get(INSTRUMENTORS_ENV) or "null")
        if isinstance(document, dict) and document.get("prefix") == sys.prefix:
            entries = [
                _entry(str(name), str(dist), str(value))
                for items in document["libraries"].values()
                for name, dist, value in items
                if str(name) in GENAI_INSTRUMENTORS
            ]
            return _by_library(entries, disabled)
    except (ValueError, TypeError, KeyError, AttributeError):
        pass  # not a list this process can use: find its own
    return _by_library(_installed(), disabled)


__all__ = [
    "BUILT_IN",
    "GENAI_INSTRUMENTORS",
    "INSTRUMENTORS_ENV",
    "LIBRARY_OF",
    "PREFERENCE",
    "TRIGGERS",
    "TRIGGERS_ENV",
    "Instrumentor",
    "all_triggers",
    "genai_instrumentors",
    "handed_down",
    "python_env",
    "triggers_of",
]
