"""An OpenAI Agents SDK agent with three file tools, talking to the OpenAI-compatible server at
OPENAI_BASE_URL (the Responses API, the SDK's default, or chat completions with `--chat`). No
agenttrace or OpenTelemetry code: `agenttrace run` instruments it.

    python openai_agents_agent.py MODEL TASK [--chat]
"""

import json
import sys
from pathlib import Path

from agents import Agent, Runner, function_tool, set_default_openai_api


@function_tool
def list_files(directory: str) -> str:
    """The names of the files in a directory, as a JSON list."""
    return json.dumps(sorted(p.name for p in Path(directory).iterdir() if p.is_file()))


@function_tool
def read_file(path: str) -> str:
    """The text of a file."""
    return Path(path).read_text()


@function_tool
def word_count(path: str) -> str:
    """Lines and words of a file, as JSON."""
    text = Path(path).read_text()
    return json.dumps({"lines": len(text.splitlines()), "words": len(text.split())})


if "--chat" in sys.argv:
    set_default_openai_api("chat_completions")
agent = Agent(
    name="files",
    instructions="Answer questions about the files here.",
    model=sys.argv[1],
    tools=[list_files, read_file, word_count],
)
print(Runner.run_sync(agent, sys.argv[2]).final_output)
