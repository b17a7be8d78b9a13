"""A LiteLLM agent (model `openai/gpt-4o-mini` at OPENAI_BASE_URL) with three file tools, each
running a command (find, cat, wc), calling with num_retries=2. The second model call is answered
HTTP 429 (rate limited, Retry-After 0) and retried; the run goes on: list, read, count, answer."""

import json
import os
import subprocess

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the cost map at import

import litellm


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def list_files(directory: str) -> str:
    """The names of the files in a directory, as a JSON list."""
    return json.dumps(
        sorted(run("find", directory, "-maxdepth", "1", "-type", "f", "-printf", "%f\\n").split())
    )


def read_file(path: str) -> str:
    """The text of a file."""
    return run("cat", "--", path)


def word_count(path: str) -> str:
    """Lines and words of a file, as JSON."""
    lines, words = run("wc", "-l", "-w", "--", path).split()[:2]
    return json.dumps({"lines": int(lines), "words": int(words)})


TOOLS = {f.__name__: f for f in (list_files, read_file, word_count)}
SCHEMAS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": function.__doc__,
            "parameters": {
                "type": "object",
                "properties": {
                    arg: {"type": "string"} for arg in function.__annotations__ if arg != "return"
                },
            },
        },
    }
    for name, function in TOOLS.items()
]
messages: list = [{"role": "user", "content": "Which file lists the inventory, and how long is it?"}]
while True:
    reply = litellm.completion(
        model="openai/gpt-4o-mini",
        api_base=os.environ["OPENAI_BASE_URL"],
        messages=messages,
        tools=SCHEMAS,
        num_retries=2,
    )
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    for call in message.tool_calls:
        result = TOOLS[call.function.name](**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
print(message.content)
