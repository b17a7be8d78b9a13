"""A hand-written OpenAI SDK agent whose tools are recorded with agenttrace's own API
(`@agenttrace.tool`, inside `agenttrace.run`). The model reads coverage.txt before it exists: the
tool raises FileNotFoundError, the error goes back to the model, which builds the report with the
`sh` tool and reads it again, then answers."""

import json
import subprocess
from pathlib import Path

from openai import OpenAI

import agenttrace


@agenttrace.tool
def read_file(path: str) -> str:
    """The text of a file."""
    return Path(path).read_text()


@agenttrace.tool
def sh(cmd: str) -> str:
    """Run a shell command; returns its output."""
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


TOOLS = {"read_file": read_file, "sh": sh}
schemas = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": function.__doc__,
            "parameters": {"type": "object", "properties": {arg: {"type": "string"}}, "required": [arg]},
        },
    }
    for name, function, arg in (("read_file", read_file, "path"), ("sh", sh, "cmd"))
]
client = OpenAI()
messages: list = [{"role": "user", "content": "What is the line coverage? The report is coverage.txt."}]
with agenttrace.run("coverage-agent"):
    while True:
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            try:
                result = TOOLS[call.function.name](**json.loads(call.function.arguments))
            except OSError as exc:
                result = f"error: {exc}"
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    print(message.content)
