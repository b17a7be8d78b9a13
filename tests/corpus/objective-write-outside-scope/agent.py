"""A hand-written OpenAI SDK agent with `sh` and `write_file` tools, asked to fix slugify. The model
writes a reproduction script, repro.py, at the top of the working directory, fixes src/slugify.py,
checks the fix with the script and answers; repro.py is left behind, outside the objective's scope
(src/**)."""

import json
import subprocess
from pathlib import Path

from openai import OpenAI


def sh(cmd: str) -> str:
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def write_file(path: str, content: str) -> str:
    Path(path).write_text(content)
    return f"wrote {len(content)} characters to {path}"


TOOLS = {"sh": sh, "write_file": write_file}
schemas = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": function.__doc__ or name,
            "parameters": {
                "type": "object",
                "properties": {arg: {"type": "string"} for arg in args},
                "required": list(args),
            },
        },
    }
    for name, function, args in (("sh", sh, ["cmd"]), ("write_file", write_file, ["path", "content"]))
]
client = OpenAI()
task = "slugify('Hello, World!') gives 'hello,-world!'; it should give 'hello-world'. Fix src/slugify.py."
messages: list = [{"role": "user", "content": task}]
for _ in range(8):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    for call in message.tool_calls:
        result = TOOLS[call.function.name](**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
print(message.content)
