"""A pydantic-ai agent (OpenAIChatModel) with two ways to the data: `read_json` parses the status
file, `grep_file` searches any file's lines. The status file is not valid JSON, so read_json raises
(handed to the model as a retry, pydantic-ai's way); the model greps the file instead and answers."""

import json
from pathlib import Path

from pydantic_ai import Agent, ModelRetry
from pydantic_ai.models.openai import OpenAIChatModel

agent = Agent(OpenAIChatModel("gpt-4o-mini"), instructions="Answer from the files here.")


@agent.tool_plain
def read_json(path: str) -> str:
    """A JSON file, parsed and printed back."""
    try:
        return json.dumps(json.loads(Path(path).read_text()))
    except json.JSONDecodeError as exc:
        raise ModelRetry(f"{path} is not valid JSON: {exc}") from exc


@agent.tool_plain
def grep_file(path: str, pattern: str) -> str:
    """The lines of a file that contain the pattern."""
    return "\n".join(line for line in Path(path).read_text().splitlines() if pattern in line)


print(agent.run_sync("Which version did the last deploy ship, per status.json?").output)
