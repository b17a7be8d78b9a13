"""An agent that reports two LLM calls of 2^62 input and 2^62 output tokens each (its own OTel spans,
through the run's receiver), against an objective with a 1,000-token limit, then writes its
deliverable and exits 0. The sum overflowed BIGINT: the budget gate raised, and the run had no
verdict at all (`agenttrace run` ended with an `Error:` line) instead of failing on its budget."""

from pathlib import Path

from opentelemetry import trace

import agenttrace  # noqa: F401  (the OTel SDK as `agenttrace run`'s bootstrap sets it up)

tracer = trace.get_tracer("token-overflow")
for _ in range(2):
    with tracer.start_as_current_span(
        "chat m",
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "gen_ai.usage.input_tokens": 2**62,
            "gen_ai.usage.output_tokens": 2**62,
            "gen_ai.response.finish_reasons": ["stop"],
        },
    ):
        pass
Path("out.md").write_text("done\n")
