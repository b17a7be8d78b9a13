"""A pydantic-ai agent (OpenAIChatModel) with a shell tool and a limit of 2 model requests. The model
is still working when the limit is reached: pydantic-ai raises UsageLimitExceeded before the third
request, the program catches it, prints a note and exits 0."""

import subprocess

from pydantic_ai import Agent
from pydantic_ai.exceptions import UsageLimitExceeded
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.usage import UsageLimits

agent = Agent(OpenAIChatModel("gpt-4o-mini"), instructions="Fix the failing test. Use the shell.")


@agent.tool_plain
def sh(cmd: str) -> str:
    """Run a shell command; returns its output."""
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    return done.stdout + done.stderr


try:
    print(
        agent.run_sync("test_math.py fails; make it pass.", usage_limits=UsageLimits(request_limit=2)).output
    )
except UsageLimitExceeded as exc:
    print(f"gave up: {exc}")
