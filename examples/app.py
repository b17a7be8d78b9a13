"""A program instrumented with plain OpenTelemetry, and nothing of agenttrace.

It records what a small triage agent does: an `invoke_agent triage` span with, inside it, one LLM
call that asks for a tool (`chat gpt-4o`, finish reason `tool_calls`) and that tool's call
(`execute_tool search`), with the OpenTelemetry GenAI attributes. It makes no network call: the
model's answer and the tool's result are made up.

Stored by agenttrace without a code change (README, "Any OpenTelemetry program"):

    OTEL_TRACES_EXPORTER=agenttrace OTEL_SERVICE_NAME=my-agent opentelemetry-instrument python examples/app.py
    agenttrace show last

Run bare (`python examples/app.py`) it does the same work, and OpenTelemetry's default no-op
tracer records nothing.
"""

from __future__ import annotations

import json

from opentelemetry import trace

tracer = trace.get_tracer("triage-app")


def main() -> None:
    question = "Why does the nightly build fail?"
    with tracer.start_as_current_span(
        "invoke_agent triage",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage"},
    ):
        call = {"id": "call_1", "name": "search", "arguments": {"query": "nightly build failure"}}
        with tracer.start_as_current_span(
            "chat gpt-4o",
            kind=trace.SpanKind.CLIENT,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o",
                "gen_ai.response.finish_reasons": ["tool_calls"],
                "gen_ai.usage.input_tokens": 42,
                "gen_ai.usage.output_tokens": 12,
                "gen_ai.input.messages": json.dumps([{"role": "user", "content": question}]),
            },
        ):
            pass  # a real agent calls its model here
        with tracer.start_as_current_span(
            "execute_tool search",
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": "search",
                "gen_ai.tool.call.id": call["id"],
                "gen_ai.tool.call.arguments": json.dumps(call["arguments"]),
            },
        ) as span:
            result = ["build 1482: test_sync timed out"]
            span.set_attribute("gen_ai.tool.call.result", json.dumps(result))
    print(f"triage: {result[0]}")


if __name__ == "__main__":
    main()
