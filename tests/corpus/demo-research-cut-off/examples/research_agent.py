"""A small research agent, traced with agenttrace.

It answers a question about the files next to it: it sends the task to a chat model (any
OpenAI-compatible `/chat/completions` endpoint, called with urllib), runs the tools the model asks
for (list, read and count the words of files in this directory), feeds the results back, and
stops when the model answers (`finish_reason` `stop`, or `length` for an answer cut short).

    python examples/research_agent.py [--model fake-gpt] [--task "..."] [--base-url URL] [--report FILE]

Without `--base-url` or `$OPENAI_BASE_URL` it starts the scripted fake server of
`fake_model_server.py` in a thread; `--model fake-truncating` makes that server cut the final
answer short. The run goes to `$AGENTTRACE_STORE` (default `./.agenttrace`): every model call is an
LLM step and every tool call a tool step, linked to the model turn that asked for it by the tool
call id. With `--report FILE` the answer is also written to FILE and recorded as a claim, with the
file and the tool calls it rests on as evidence. Look at it with `agenttrace show last`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import agenttrace

ROOT = Path(__file__).resolve().parent
"""The tools see this directory and nothing outside it."""

DEFAULT_TASK = "Find the sample agent among the files in the examples directory and tell me how long it is."
SYSTEM_PROMPT = (
    "You are a careful research assistant. Use the tools to look at the files before answering, "
    "and answer in one or two sentences."
)


class ToolError(Exception):
    """A tool call the agent cannot run (unknown tool, bad arguments); the model is told why."""


class ModelError(Exception):
    """The model endpoint failed or answered with something that is not a chat completion."""


# --- Tools: real work on the local filesystem, confined to ROOT --------------------------------


def _inside_root(path: str) -> Path:
    target = (ROOT / path).resolve()
    if not target.is_relative_to(ROOT):
        raise ToolError(f"{path!r} is outside the {ROOT.name}/ directory")
    return target


def list_files(directory: str = ".") -> list[str]:
    """The files in a directory (relative to the examples directory), sorted; hidden files skipped."""
    folder = _inside_root(directory)
    return sorted(
        str(p.relative_to(ROOT)) for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
    )


def read_file(path: str, max_chars: int = 2000) -> str:
    """The text of a file, at most `max_chars` characters of it."""
    return _inside_root(path).read_text(encoding="utf-8", errors="replace")[:max_chars]


def word_count(path: str) -> dict[str, int]:
    """Lines, words and characters of a text file."""
    text = _inside_root(path).read_text(encoding="utf-8", errors="replace")
    return {"lines": len(text.splitlines()), "words": len(text.split()), "chars": len(text)}


@dataclass(frozen=True)
class Tool:
    function: Callable[..., Any]
    description: str
    parameters: dict[str, Any]

    def schema(self, name: str) -> dict[str, Any]:
        """The tool as an OpenAI `tools` entry."""
        return {
            "type": "function",
            "function": {"name": name, "description": self.description, "parameters": self.parameters},
        }


def _path_parameters(**extra: Any) -> dict[str, Any]:
    properties = {"path": {"type": "string", "description": "A file path relative to the directory."}}
    return {"type": "object", "properties": {**properties, **extra}, "required": ["path"]}


TOOLS: dict[str, Tool] = {
    "list_files": Tool(
        list_files,
        "List the files in a directory.",
        {"type": "object", "properties": {"directory": {"type": "string", "default": "."}}},
    ),
    "read_file": Tool(
        read_file,
        "Read the beginning of a text file.",
        _path_parameters(max_chars={"type": "integer", "default": 2000}),
    ),
    "word_count": Tool(
        word_count, "Count the lines, words and characters of a text file.", _path_parameters()
    ),
}


def run_tool(call: dict[str, Any], done: list[str] | None = None) -> dict[str, Any]:
    """Run one tool call the model asked for, as an agenttrace tool step carrying the call's id.
    Returns the `tool` message for the model; a failing tool becomes an error message (and an
    error on its step) rather than ending the run. The span id of a call that worked is appended
    to `done` (evidence for the answer)."""
    function = call.get("function") or {}
    name = str(function.get("name", "?"))
    raw = function.get("arguments") or "{}"
    try:
        arguments: Any = json.loads(raw)
    except ValueError:
        arguments = raw
    tool = TOOLS.get(name)
    try:
        with agenttrace.tool_call(
            name, call_id=call.get("id"), arguments=arguments, description=tool.description if tool else None
        ) as step:
            if tool is None:
                raise ToolError(f"there is no tool named {name!r}")
            if not isinstance(arguments, dict):
                raise ToolError(f"arguments must be a JSON object, got {raw!r}")
            result = tool.function(**arguments)
            step.set_result(result)
        if done is not None:
            done.append(f"span:{step.span.get_span_context().span_id:016x}")
        content = result if isinstance(result, str) else json.dumps(result)
    except (ToolError, OSError, TypeError, ValueError) as exc:
        content = f"error: {exc}"
    return {"role": "tool", "tool_call_id": call.get("id"), "content": content}


# --- The model -----------------------------------------------------------------------------------


@dataclass
class ChatClient:
    """A minimal OpenAI chat-completions client over urllib."""

    base_url: str
    api_key: str
    timeout: float = 30.0

    def complete(
        self, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = json.dumps({"model": model, "messages": messages, "tools": tools}).encode()
        request = urllib.request.Request(
            self.base_url.rstrip("/") + "/chat/completions",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                response = json.load(reply)
        except urllib.error.HTTPError as exc:
            with exc:
                detail = exc.read().decode("utf-8", "replace")
            with suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]["message"]
            raise ModelError(f"HTTP {exc.code} from {request.full_url}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            raise ModelError(f"cannot reach {request.full_url}: {exc}") from exc
        if not isinstance(response, dict) or not response.get("choices"):
            raise ModelError(f"not a chat completion: {str(response)[:200]}")
        return response


def call_model(
    client: ChatClient, model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> tuple[dict[str, Any], str]:
    """One model turn, recorded as an LLM step; returns the assistant message and finish reason."""
    started = time.time_ns()
    try:
        response = client.complete(model, messages, tools)
    except ModelError as exc:
        agenttrace.llm(model, input_messages=messages, provider="openai", error=exc, start_time=started)
        raise
    choice = response["choices"][0]
    message = {k: v for k, v in choice["message"].items() if k in ("role", "content", "tool_calls")}
    usage = response.get("usage") or {}
    agenttrace.llm(
        model,
        input_messages=messages,
        output_messages=[message],
        finish_reason=choice.get("finish_reason"),
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        provider="openai",
        response_id=response.get("id"),
        start_time=started,
        attributes={"gen_ai.response.model": response.get("model", model)},
    )
    return message, choice.get("finish_reason") or "stop"


# --- The agent loop ------------------------------------------------------------------------------


@dataclass
class Outcome:
    run_id: str
    store: str
    answer: str
    finish_reason: str
    model_calls: int
    tool_calls: int


def research(
    task: str, model: str, client: ChatClient, max_turns: int = 8, report: Path | None = None
) -> Outcome:
    """Run the agent on `task` as one agenttrace run; returns what it found. With `report`, the
    answer is also written to that file, and claimed with the file and the tool calls as evidence."""
    with agenttrace.run("research-agent", attributes={"agenttrace.objective": task}) as run:
        with agenttrace.step("plan"):
            tools = [tool.schema(name) for name, tool in TOOLS.items()]
            messages: list[dict[str, Any]] = [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": task},
            ]
        tool_calls = 0
        evidence: list[str] = []
        for turn in range(1, max_turns + 1):
            message, finish_reason = call_model(client, model, messages, tools)
            messages.append(message)
            calls = message.get("tool_calls") or []
            if not calls:
                answer = message.get("content") or ""
                if report is not None:
                    report.write_text(f"# {task}\n\n{answer}\n")
                    agenttrace.claim(answer, evidence=[report, *evidence])
                return Outcome(run.id, run.store, answer, finish_reason, turn, tool_calls)
            for call in calls:
                messages.append(run_tool(call, evidence))
                tool_calls += 1
        raise RuntimeError(f"no answer after {max_turns} model calls")


@contextmanager
def model_endpoint(base_url: str | None) -> Iterator[str]:
    """The endpoint to use: `base_url` if given, else a fake server started for the run."""
    if base_url:
        yield base_url
        return
    sys.path.insert(0, str(ROOT))
    from fake_model_server import start_in_thread

    server, url = start_in_thread()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A small research agent, traced with agenttrace.")
    parser.add_argument("--model", default="fake-gpt", help="Model name (default fake-gpt).")
    parser.add_argument("--task", default=DEFAULT_TASK, help="What to find out.")
    parser.add_argument(
        "--base-url",
        default=os.environ.get("OPENAI_BASE_URL"),
        help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8089/v1 (default $OPENAI_BASE_URL, "
        "else a fake server started in-process).",
    )
    parser.add_argument("--max-turns", type=int, default=8, help="Give up after this many model calls.")
    parser.add_argument(
        "--report", type=Path, help="Also write the answer to this file, and claim it with its evidence."
    )
    args = parser.parse_args(argv)

    with model_endpoint(args.base_url) as url:
        client = ChatClient(url, os.environ.get("OPENAI_API_KEY") or "sk-fake")
        try:
            outcome = research(args.task, args.model, client, args.max_turns, args.report)
        except ModelError as exc:  # the run is recorded as failed, with the error on its LLM step
            print(f"error: {exc}", file=sys.stderr)
            return 1

    print(f"run:    {outcome.run_id}  ({outcome.model_calls} model calls, {outcome.tool_calls} tool calls)")
    print(f"answer: {outcome.answer}")
    if outcome.finish_reason != "stop":
        print(f"note:   the answer is incomplete (finish_reason {outcome.finish_reason!r})")
    if not os.environ.get("AGENTTRACE_ENDPOINT"):  # under `agenttrace run`, the supervisor says where
        print(f"see it: agenttrace show {outcome.run_id} --store {outcome.store}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
