"""An OpenAI Agents SDK agent (Responses API) with a file tool. The model's first read names a file
that does not exist: the tool raises FileNotFoundError, which the SDK hands back to the model as the
tool's result; the model reads the right file and answers."""

from pathlib import Path

from agents import Agent, Runner, function_tool


@function_tool
def read_file(path: str) -> str:
    """The text of a file."""
    return Path(path).read_text()


agent = Agent(
    name="reader", instructions="Answer from the files here.", model="gpt-4o-mini", tools=[read_file]
)
print(Runner.run_sync(agent, "What port does the service listen on?").final_output)
