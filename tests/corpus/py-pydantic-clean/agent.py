"""A pydantic-ai agent (OpenAIChatModel) with three file tools: it lists the files, reads the
inventory and counts its lines, then answers. Its objective has a token budget a little over what the
model billed, so a call counted twice (pydantic-ai's span and the OpenAI SDK's) would break it."""

import json
from pathlib import Path

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel

agent = Agent(OpenAIChatModel("gpt-4o-mini"), instructions="Answer questions about the files here.")


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


result = agent.run_sync("Which file lists the inventory, and how long is it?")
print(result.output)
print("usage:", result.usage())
