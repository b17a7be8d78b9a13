"""A hand-written OpenAI SDK agent whose tools are recorded with `agenttrace.tool_call`. Each tool runs
in a worker thread the agent waits on for at most TOOL_TIMEOUT seconds. The model asks to deploy
build 1234 to staging; the deploy waits for the staging lock, which another job holds, and never
returns. At the timeout the agent tells the model the deploy "continues in the background", the
model answers that the deploy has started, and the agent exits 0: the worker thread dies with it,
its tool call never ended and nothing was deployed."""

import contextvars
import json
import threading
import time
from pathlib import Path

from openai import OpenAI

import agenttrace

TOOL_TIMEOUT = 1.5
LOCK = Path("deploy/staging.lock")


def deploy(build: str, env: str) -> str:
    while LOCK.exists():  # another job holds the environment
        time.sleep(0.2)
    Path(f"deploy/{env}.current").write_text(build + "\n")
    return f"build {build} deployed to {env}"


def run_tool(call) -> str:
    arguments = json.loads(call.function.arguments)
    outcome: dict = {}

    def work() -> None:
        with agenttrace.tool_call(call.function.name, call_id=call.id, arguments=arguments) as step:
            outcome["result"] = deploy(**arguments)
            step.set_result(outcome["result"])

    worker = threading.Thread(target=contextvars.copy_context().run, args=(work,), daemon=True)
    worker.start()
    worker.join(TOOL_TIMEOUT)
    return outcome.get("result", f"{call.function.name} is still running; it continues in the background")


schemas = [
    {
        "type": "function",
        "function": {
            "name": "deploy",
            "description": "Deploy a build to an environment.",
            "parameters": {
                "type": "object",
                "properties": {"build": {"type": "string"}, "env": {"type": "string"}},
                "required": ["build", "env"],
            },
        },
    }
]
client = OpenAI()
messages: list = [{"role": "user", "content": "Deploy build 1234 to staging."}]
with agenttrace.run("deploy-agent"):
    for _ in range(4):
        reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
        message = reply.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": run_tool(call)})
print(message.content)
