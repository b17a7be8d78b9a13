"""A pydantic-ai agent (OpenAIChatModel) with a tool that runs the project's tests. The tests fail,
the tool raises CalledProcessError, pydantic-ai lets it through and the program dies with a
traceback (exit 1)."""

import subprocess
import sys

from pydantic_ai import Agent
from pydantic_ai.models.openai import OpenAIChatModel

agent = Agent(OpenAIChatModel("gpt-4o-mini"), instructions="Check that the project's tests pass.")


@agent.tool_plain
def run_tests() -> str:
    """Run the test suite; returns its output."""
    done = subprocess.run([sys.executable, "check.py"], capture_output=True, text=True, check=True)
    return done.stdout


print(agent.run_sync("Do the tests pass?").output)
