"""A hand-written OpenAI SDK agent that checks a pinned dependency against an advisory and records
its finding as a claim (`agenttrace.claim`), with the finding's file and the sources the model cites
as evidence. It has only a read_file tool: the model cites the GitHub advisory from memory, and
nothing in the run ever fetched that URL."""

import json
import re
from pathlib import Path

from openai import OpenAI

import agenttrace


@agenttrace.tool
def read_file(path: str) -> str:
    """The text of a file."""
    return Path(path).read_text()


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
client = OpenAI()
task = (
    "Is the requests version pinned in requirements.txt affected by CVE-2024-35195? "
    "Answer in two sentences and cite your source."
)
messages: list = [{"role": "user", "content": task}]
with agenttrace.run("advisory-check"):
    for _ in range(4):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            result = read_file(**json.loads(call.function.arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    Path("finding.md").write_text(message.content + "\n")
    sources = re.findall(r"https?://[^\s)>\]]+", message.content)
    agenttrace.claim(message.content.split("\n")[0], evidence=["finding.md", *sources])
print(message.content)
