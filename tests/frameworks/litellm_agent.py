"""A LiteLLM agent with three file tools: a loop of `litellm.completion` calls to the
OpenAI-compatible server at OPENAI_BASE_URL (model `openai/MODEL`), running the tools the model
asks for until it answers. No agenttrace or OpenTelemetry code: `agenttrace run` instruments it.
LiteLLM has no tools of its own, so nothing records a tool span; each tool runs a command (`find`,
`cat`, `wc`), which the run records as a process.

    python litellm_agent.py MODEL TASK
"""

import json
import os
import subprocess
import sys

# LiteLLM fetches its model cost map from GitHub at import unless told to use the copy it ships.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm


def run(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def list_files(directory: str) -> str:
    """The names of the files in a directory, as a JSON list."""
    return json.dumps(
        sorted(run("find", directory, "-maxdepth", "1", "-type", "f", "-printf", "%f\\n").splitlines())
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
                "required": [arg for arg in function.__annotations__ if arg != "return"],
            },
        },
    }
    for name, function in TOOLS.items()
]

messages: list = [
    {"role": "system", "content": "Answer questions about the files here."},
    {"role": "user", "content": sys.argv[2]},
]
while True:
    reply = litellm.completion(
        model=f"openai/{sys.argv[1]}",
        api_base=os.environ["OPENAI_BASE_URL"],
        messages=messages,
        tools=SCHEMAS,
    )
    message = reply.choices[0].message
    calls = message.tool_calls or []
    messages.append(
        {
            "role": "assistant",
            "content": message.content,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": c.function.arguments},
                }
                for c in calls
            ],
        }
        if calls
        else {"role": "assistant", "content": message.content}
    )
    if not calls:
        break
    for call in calls:
        result = TOOLS[call.function.name](**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
print(message.content)
