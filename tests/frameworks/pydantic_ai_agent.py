"""A pydantic-ai agent with three file tools, talking to the OpenAI-compatible server at
OPENAI_BASE_URL. No agenttrace or OpenTelemetry code: `agenttrace run` instruments it.

    python pydantic_ai_agent.py MODEL TASK [ANSWER_FILE]

With ANSWER_FILE, the answer is also written there (a file for a replay to compare).
"""

import json
import sys
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel

agent = Agent(OpenAIChatModel(sys.argv[1]), instructions="Answer questions about the files here.")


@agent.tool_plain
def list_files(directory: str) -> str:
    """The names of the files in a directory, as a JSON list."""
    return json.dumps(sorted(p.name for p in Path(directory).iterdir() if p.is_file()))


@agent.tool_plain
def read_file(path: str) -> str:
    """The text of a file."""
    return Path(path).read_text()


@agent.tool_plain
def word_count(path: str) -> str:
    """Lines and words of a file, as JSON."""
    text = Path(path).read_text()
    return json.dumps({"lines": len(text.splitlines()), "words": len(text.split())})


answer = agent.run_sync(sys.argv[2]).output
if len(sys.argv) > 3:
    with open(sys.argv[3], "w") as f:
        f.write(answer + "\n")
print(answer)
