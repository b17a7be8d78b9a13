"""A hand-written OpenAI SDK agent that records itself with agenttrace's own API, as the README shows:
`agenttrace.run`, `agenttrace.llm` after each model call (with the tokens the API reported) and
`agenttrace.tool_call` around each tool. Run under `agenttrace run`, the OpenAI SDK is also
instrumented with no code, so every model call is recorded twice: by the agent and by the
instrumentor. Its objective has a token budget a little over what the model billed."""

import json
import time
from pathlib import Path

from openai import OpenAI

import agenttrace

client = OpenAI()
schemas = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "The text of a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
]
messages: list = [{"role": "user", "content": "Summarise the open issues in ISSUES.md in one line each."}]
with agenttrace.run("issue-summariser"):
    while True:
        started = time.time_ns()
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
        message = reply.choices[0].message
        agenttrace.llm(
            "gpt-4o-mini",
            input_messages=messages,
            output_messages=[message.model_dump(exclude_none=True)],
            finish_reason=reply.choices[0].finish_reason,
            input_tokens=reply.usage.prompt_tokens,
            output_tokens=reply.usage.completion_tokens,
            provider="openai",
            response_id=reply.id,
            start_time=started,
        )
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)
            with agenttrace.tool_call("read_file", call_id=call.id, arguments=arguments) as recorded:
                result = Path(arguments["path"]).read_text()
                recorded.set_result(result)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    print(message.content)
