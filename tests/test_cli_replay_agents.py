"""Issue 15's acceptance with real agents, offline: `agenttrace run --record` a session of the real
Claude Code, of Codex (its model provider's `base_url` from its config.toml, overridden with
`-c`) and of a pydantic-ai agent against the fake model servers on loopback; stop the server;
`agenttrace replay` the session. The same tool calls run, in the same order, with the same
arguments; the same files are written; the verdict is the same; `agenttrace diff` finds no
divergence in steps. A replay with a changed prompt stops at the first request and says how it
differs; `agenttrace diff` of a passing and a failing run names the step where they part and the
gates that differ; no store holds the API keys the agents were given.

The CLIs come from `.agents/` (`make agents`); without them these tests fail, they do not skip.
One recording and one replay per agent (module-scoped fixtures) serve several tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import BIN, query

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "agents"))
sys.path.insert(0, str(REPO / "examples"))
from cli_agents import AgentRun, base_environment, recipe, run_cli_agent  # noqa: E402
from fake_model_server import start_in_thread  # noqa: E402
from fake_servers import Scenario  # noqa: E402

AGENTTRACE = str(BIN / "agenttrace")
KEYS = {
    "ANTHROPIC_API_KEY": "sk-ant-agenttrace-r3-Zq7Xw3Lr9Kp2Vm5NtY8u",
    "OPENAI_API_KEY": "sk-agenttrace-r3-Hn4Tb8Yc1Qd6Wf0JsE3x",
    "GEMINI_API_KEY": "AIza-agenttrace-r3-Rx2Ls7Pk5Mv9Bg3CwQ1z",
}
"""Every agent here is given all three (distinctive, so a grep of the store cannot miss one)."""
SCENARIO = Scenario("sleepy", "echo hello > out.txt; sleep 0.5", "I wrote hello to out.txt. Done.")
"""The one shell command the fake model asks the CLIs for: it sleeps so that the process watcher,
polling /proc, surely sees its `sleep` in both runs (the comparison does not depend on it)."""
PYDANTIC_AGENT = REPO / "tests" / "frameworks" / "pydantic_ai_agent.py"
TASK = "Which file lists the inventory?"
CODEX_HEADER = re.compile(r"Chunk ID: [0-9a-f]+|Wall time: [0-9.]+ seconds")
"""Codex's tool output starts with a random chunk id and a timing."""


@dataclass
class Replayed:
    """A recorded run and its replay, in one store."""

    store: Path
    recorded: str
    replayed: str
    record_dir: Path
    replay_dir: Path
    replay: subprocess.CompletedProcess[str]
    agent: AgentRun | None = None
    """The CLI's recording run (its fake server, stopped, with the exchanges it saw)."""
    model_url: str = ""
    """The fake model server's base URL, stopped before the replay."""


def refused(url: str) -> bool:
    """Nothing listens at url's host and port any more."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def supervise(
    argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run argv (an agenttrace command) in its own process group; whatever it leaves is killed."""
    with subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def replay_cli(
    name: str,
    model_url: str,
    store: Path,
    recorded: str,
    run_id: str,
    workdir: Path,
    home: Path,
    prompt: str = "",
) -> subprocess.CompletedProcess[str]:
    """`agenttrace replay RECORDED -- <the CLI>` in workdir, set up as for the recording (same HOME
    and config, the stopped fake server's URL as the upstream); `prompt` replaces the CLI's.
    The same HOME, as when the same user replays a run: Claude Code and Gemini CLI name folders
    under HOME in their prompts, and the normalised request replaces the working directory, not HOME.
    The working directory is another one (with the same base name)."""
    spec = recipe(name, model_url, None, home)
    for relative, text in spec.files.items():
        (home / relative).write_text(text)
    argv = list(spec.argv)
    if prompt:
        at = argv.index("-p") + 1
        argv[at] = prompt
    workdir.mkdir(parents=True)
    env = {**base_environment(home), **spec.env, **KEYS}
    command = [AGENTTRACE, "replay", "--store", str(store), "--run-id", run_id, "--timeout", "120s"]
    return supervise([*command, recorded, "--", *argv], workdir, env)


def record_and_replay_cli(name: str, base: Path) -> Replayed:
    store, home = base / "store", base / "home"
    recorded, replayed = f"{name}-recorded", f"{name}-replayed"
    wrapper = [AGENTTRACE, "run", "--store", str(store), "--run-id", recorded, "--record", "--"]
    record_dir = base / "recorded" / "work"
    agent = run_cli_agent(name, SCENARIO, record_dir, None, home=home, wrapper=wrapper, extra_env=KEYS)  # type: ignore[arg-type]
    assert agent.returncode == 0, agent.describe()
    assert refused(agent.server.url)  # the fake model server is stopped: the replay cannot reach it
    replay_dir = base / "replayed" / "work"
    result = replay_cli(name, agent.server.url, store, recorded, replayed, replay_dir, home)
    return Replayed(store, recorded, replayed, record_dir, replay_dir, result, agent, agent.server.url)


def pydantic_files(workdir: Path) -> Path:
    workdir.mkdir(parents=True)
    (workdir / "inventory.md").write_text("# Inventory\nThree boxes of screws.\nTwo hammers.\n")
    (workdir / "notes.txt").write_text("misc notes\n")
    return workdir


def pydantic_env(model_url: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "OPENAI_BASE_URL": model_url,
        **KEYS,
    }


def replay_pydantic(base: Path, model_url: str, run_id: str, task: str) -> subprocess.CompletedProcess[str]:
    command = [AGENTTRACE, "replay", "--store", str(base / "store"), "--run-id", run_id, "--timeout", "120s"]
    agent = [sys.executable, str(PYDANTIC_AGENT), "fake-gpt", task, "answer.md"]
    return supervise(
        [*command, "pydantic-recorded", "--", *agent], pydantic_files(base / run_id), pydantic_env(model_url)
    )


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return record_and_replay_cli("claude", tmp_path_factory.mktemp("claude"))


@pytest.fixture(scope="module")
def codex(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return record_and_replay_cli("codex", tmp_path_factory.mktemp("codex"))


@pytest.fixture(scope="module")
def gemini(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    return record_and_replay_cli("gemini", tmp_path_factory.mktemp("gemini"))


@pytest.fixture(scope="module")
def pydantic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayed]:
    base = tmp_path_factory.mktemp("pydantic")
    store = base / "store"
    server, url = start_in_thread()
    try:
        record = [AGENTTRACE, "run", "--store", str(store), "--run-id", "pydantic-recorded", "--record", "--"]
        agent = [sys.executable, str(PYDANTIC_AGENT), "fake-gpt", TASK, "answer.md"]
        recorded = supervise([*record, *agent], pydantic_files(base / "recorded"), pydantic_env(url))
        assert recorded.returncode == 0, recorded.stdout[-3000:] + recorded.stderr[-3000:]
        assert len(server.responses) == 3  # list_files; read_file + word_count; the answer
    finally:
        server.shutdown()
        server.server_close()
    assert refused(url)
    result = replay_pydantic(base, url, "pydantic-replayed", TASK)
    replay_dir = base / "pydantic-replayed"
    yield Replayed(
        store, "pydantic-recorded", "pydantic-replayed", base / "recorded", replay_dir, result, model_url=url
    )


# -- what the two runs did ----------------------------------------------------------------------------


def tool_calls(store: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's tool steps in order: tool, call id, arguments, result (Codex's header blanked)."""
    rows = query(
        store,
        "SELECT step, tool_name, tool_call_id, input, output FROM steps "
        "WHERE run_id = $r AND kind = 'tool' ORDER BY step",
        {"r": run_id},
    )
    for row in rows:
        row["output"] = CODEX_HEADER.sub("", str(row["output"]))
    return rows


def step_kinds(store: Path, run_id: str) -> list[tuple[int, str, str | None]]:
    rows = query(
        store, "SELECT step, kind, tool_name FROM steps WHERE run_id = $r ORDER BY step", {"r": run_id}
    )
    return [(r["step"], r["kind"], r["tool_name"]) for r in rows]


def tool_processes(store: Path, run_id: str) -> list[tuple[str, int | None]]:
    """The `sleep` the tool ran: command line and exit code, in start order."""
    rows = query(
        store,
        "SELECT command_line, exit_code FROM processes WHERE run_id = $r AND executable = 'sleep' "
        "ORDER BY start_time",
        {"r": run_id},
    )
    return [(r["command_line"], r["exit_code"]) for r in rows]


def written(store: Path, run_id: str) -> list[tuple[str, str]]:
    rows = query(
        store,
        "SELECT path, sha256 FROM artifacts WHERE run_id = $r AND role = 'written' ORDER BY path",
        {"r": run_id},
    )
    return [(r["path"], r["sha256"]) for r in rows]


def audit(store: Path, run_id: str) -> dict[str, Any]:
    result = subprocess.run(
        [AGENTTRACE, "audit", "--store", str(store), run_id, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def gate_statuses(answer: dict[str, Any]) -> dict[str, str]:
    return {g["name"]: g["status"] for g in answer["gates"]}


def diff(store: Path, a: str, b: str) -> tuple[int, dict[str, Any]]:
    result = subprocess.run(
        [AGENTTRACE, "diff", "--store", str(store), a, b, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def exchanges(store: Path, run_id: str) -> list[dict[str, Any]]:
    """The run's recorded model exchanges (the supervisor's `llm_exchange` spans), in order."""
    return query(
        store,
        "SELECT attributes['agenttrace.exchange.path'] AS path, "
        "attributes['agenttrace.exchange.mode'] AS mode, "
        "attributes['agenttrace.exchange.request_headers'] AS headers FROM spans WHERE run_id = $r "
        "AND attributes['agenttrace.span.type'] = 'llm_exchange' "
        "ORDER BY CAST(attributes['agenttrace.exchange.seq'] AS INTEGER)",
        {"r": run_id},
    )


def assert_replayed_the_same(pair: Replayed, tool: str | None, files: list[str]) -> None:
    """Acceptance 1: same tool calls in the same order with the same arguments and results, same
    processes for them, same files written, same verdict, no divergence in `agenttrace diff`."""
    store = pair.store
    assert pair.replay.returncode == 0, pair.replay.stdout[-3000:] + pair.replay.stderr[-5000:]
    calls = tool_calls(store, pair.recorded)
    assert calls, step_kinds(store, pair.recorded)
    assert tool_calls(store, pair.replayed) == calls
    assert step_kinds(store, pair.replayed) == step_kinds(store, pair.recorded)
    if tool is not None:
        assert calls[0]["tool_name"] == tool and SCENARIO.command in str(calls[0]["input"]), calls
        ran = tool_processes(store, pair.recorded)
        assert ran == [("sleep 0.5", 0)], ran
        assert tool_processes(store, pair.replayed) == ran
    recorded_files = written(store, pair.recorded)
    assert [path for path, _ in recorded_files] == files
    assert written(store, pair.replayed) == recorded_files  # path and sha256
    for path in files:
        assert (pair.replay_dir / path).read_bytes() == (pair.record_dir / path).read_bytes()

    a, b = audit(store, pair.recorded), audit(store, pair.replayed)
    assert a["state"] == b["state"] == "succeeded"
    assert a["exit"] == b["exit"] == {"code": 0, "signal": None}
    gates_a, gates_b = gate_statuses(a), gate_statuses(b)
    assert (gates_a.pop("replay"), gates_b.pop("replay")) == ("n/a", "pass")  # a replay, that held
    assert gates_b == gates_a

    code, answer = diff(store, pair.recorded, pair.replayed)
    assert code == 0, answer["first_divergence"]
    assert answer["first_divergence"] is None
    assert all(s["same"] for s in answer["steps"]), answer["steps"]
    assert [s["step_a"] for s in answer["steps"]] == [s["step_b"] for s in answer["steps"]]
    assert answer["files"] == [], answer["files"]
    for tool_call in answer["tools"]:  # Codex's results differ in their chunk id and timing only
        assert tool_call["differences"] == ["result"], tool_call
        a, b = (CODEX_HEADER.sub("", tool_call[r]["result"]) for r in ("a", "b"))
        assert a == b, tool_call
    assert answer["run_b"]["replay_of"] == pair.recorded and answer["run_a"]["replay_of"] is None

    served = exchanges(store, pair.replayed)
    assert served and {e["mode"] for e in served} == {"replay"}, served
    assert [e["path"] for e in served] == [e["path"] for e in exchanges(store, pair.recorded)]


def assert_no_secret_in(pair: Replayed, auth: str) -> None:
    """Acceptance 5: the key header of every recorded exchange is `[redacted]`, and not one byte
    sequence of any key given to the agent is in any file of the store."""
    recorded = exchanges(pair.store, pair.recorded)
    assert recorded
    for exchange in recorded:
        headers = {k.lower(): v for k, v in json.loads(exchange["headers"])}
        assert headers[auth] == "[redacted]", headers
    files = [p for p in pair.store.rglob("*") if p.is_file()]
    assert any("artifacts" in p.parts for p in files)  # the recorded bodies are there
    for path in files:
        data = path.read_bytes()
        for name, key in KEYS.items():
            assert key.encode() not in data, f"{name} in {path}"
            assert key[-12:].encode() not in data, f"part of {name} in {path}"


# -- acceptance 1, 2 and 5 ---------------------------------------------------------------------------------


def test_a_claude_code_session_replays_with_the_model_server_stopped(claude: Replayed) -> None:
    assert claude.agent is not None
    turns = [e.kind for e in claude.agent.server.model_turns()]
    assert "tool_call" in turns and "final" in turns, claude.agent.describe()
    assert all(e.headers.get("x-api-key") == KEYS["ANTHROPIC_API_KEY"] for e in claude.agent.server.requests)
    assert_replayed_the_same(claude, "Bash", ["out.txt"])
    assert (claude.replay_dir / "out.txt").read_text() == "hello\n"
    assert json.loads(claude.replay.stdout.splitlines()[0])["result"] == "I wrote hello to out.txt. Done."
    assert_no_secret_in(claude, "x-api-key")


def test_a_codex_session_replays_with_the_model_server_stopped(codex: Replayed) -> None:
    """Codex's provider comes from $CODEX_HOME/config.toml: the supervisor reads its base_url as the
    upstream and points Codex at the proxy with `-c model_providers.fake.base_url=...`."""
    assert codex.agent is not None
    turns = [e.kind for e in codex.agent.server.model_turns()]
    assert "tool_call" in turns and "final" in turns, codex.agent.describe()
    bearer = f"Bearer {KEYS['OPENAI_API_KEY']}"  # through the proxy, to the model
    assert all(e.headers.get("authorization") == bearer for e in codex.agent.server.requests)
    paths = [e["path"] for e in exchanges(codex.store, codex.recorded)]
    assert paths.count("/responses") == 2, paths  # the model's two turns went through the proxy
    config = (codex.store.parent / "home" / ".codex" / "config.toml").read_text()
    assert config == codex.agent.files[".codex/config.toml"]  # not written by agenttrace
    assert f'base_url = "{codex.model_url}/v1"' in config
    assert_replayed_the_same(codex, "exec_command", ["out.txt"])
    assert (codex.replay_dir / "out.txt").read_text() == "hello\n"
    assert_no_secret_in(codex, "authorization")  # Codex sends it as a bearer token


def test_a_gemini_cli_session_replays_with_the_model_server_stopped(gemini: Replayed) -> None:
    """Gemini CLI too: its model router's call and its two turns are served from the recording, the
    same shell command runs, the same file is written, the verdict is the same. (Its tool calls'
    `callId` and `prompt_id` are ids it makes up each run, so only their arguments are compared;
    and `agenttrace diff` is not asked here: it compares the LLM steps' raw input, where Gemini
    CLI's session context names each run's own working directory.)"""
    assert gemini.agent is not None
    turns = [e.kind for e in gemini.agent.server.model_turns()]
    assert "tool_call" in turns and "final" in turns, gemini.agent.describe()
    assert all(
        e.headers.get("x-goog-api-key") == KEYS["GEMINI_API_KEY"] for e in gemini.agent.server.requests
    )
    store = gemini.store
    assert gemini.replay.returncode == 0, gemini.replay.stdout[-3000:] + gemini.replay.stderr[-5000:]

    def calls(run_id: str) -> list[tuple[int, str, Any]]:
        rows = tool_calls(store, run_id)
        return [(r["step"], r["tool_name"], json.loads(r["input"])["args"]) for r in rows]

    recorded = calls(gemini.recorded)
    assert [(tool, args["command"]) for _, tool, args in recorded] == [
        ("run_shell_command", SCENARIO.command)
    ]
    assert calls(gemini.replayed) == recorded
    assert step_kinds(store, gemini.replayed) == step_kinds(store, gemini.recorded)
    assert (
        tool_processes(store, gemini.replayed) == tool_processes(store, gemini.recorded) == [("sleep 0.5", 0)]
    )
    assert written(store, gemini.replayed) == written(store, gemini.recorded) != []
    a, b = audit(store, gemini.recorded), audit(store, gemini.replayed)
    assert (a["state"], b["state"], a["exit"]) == ("succeeded", "succeeded", b["exit"])
    gates_a, gates_b = gate_statuses(a), gate_statuses(b)
    assert (gates_a.pop("replay"), gates_b.pop("replay")) == ("n/a", "pass")
    assert gates_b == gates_a
    served = exchanges(store, gemini.replayed)
    assert [e["path"] for e in served] == [e["path"] for e in exchanges(store, gemini.recorded)]
    assert len(served) >= 3 and {e["mode"] for e in served} == {"replay"}, served
    assert_no_secret_in(gemini, "x-goog-api-key")


def test_a_pydantic_ai_agent_replays_with_the_model_server_stopped(pydantic: Replayed) -> None:
    assert_replayed_the_same(pydantic, None, ["answer.md"])
    tools = [c["tool_name"] for c in tool_calls(pydantic.store, pydantic.recorded)]
    assert tools == ["list_files", "read_file", "word_count"], tools
    assert "inventory.md" in (pydantic.replay_dir / "answer.md").read_text()
    assert_no_secret_in(pydantic, "authorization")


# -- acceptance 3: a changed prompt -------------------------------------------------------------------


def test_a_replay_with_a_changed_task_stops_at_the_first_request_and_shows_the_diff(
    pydantic: Replayed,
) -> None:
    base = pydantic.store.parent
    result = replay_pydantic(base, pydantic.model_url, "pydantic-changed", "Which file lists the hammers?")
    assert result.returncode == 1, result.stderr[-3000:]
    change = 'body.messages[1].content: "Which file lists the inventory?" -> "Which file lists the hammers?"'
    said = [line for line in result.stderr.splitlines() if line.startswith("agenttrace: replay diverged")]
    assert said == ["agenttrace: replay diverged at request 1 (POST /openai/chat/completions), "
                    "exchange 1 of the recording:"], result.stderr[-3000:]  # fmt: skip
    after = result.stderr.splitlines()
    assert after[after.index(said[0]) + 1].strip() == change
    (gate,) = [g for g in audit(pydantic.store, "pydantic-changed")["gates"] if g["name"] == "replay"]
    assert gate["status"] == "fail"
    (violation,) = gate["violations"]
    assert violation["reason"].startswith("the replay of run pydantic-recorded diverged at request 1 ")
    assert change in violation["reason"]
    assert violation["request"] == 1
    assert not (base / "pydantic-changed" / "answer.md").exists()  # it stopped there


def test_a_claude_code_replay_with_a_changed_prompt_stops_at_the_first_request(
    claude: Replayed, tmp_path: Path
) -> None:
    home = claude.store.parent / "home"
    prompt = "Create a file named out.txt containing the word goodbye, using the shell."
    result = replay_cli(
        "claude",
        claude.model_url,
        claude.store,
        claude.recorded,
        "claude-changed",
        tmp_path / "work",
        home,
        prompt,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    lines = result.stderr.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.startswith("agenttrace: replay diverged")]
    assert "request 1 (POST /anthropic/v1/messages" in lines[at], lines[at]
    assert "the word hello" in lines[at + 1] and "the word goodbye" in lines[at + 1], lines[at + 1]
    assert lines[at + 1].strip().startswith("body.messages[0].content"), lines[at + 1]
    (gate,) = [g for g in audit(claude.store, "claude-changed")["gates"] if g["name"] == "replay"]
    assert gate["status"] == "fail" and "the word goodbye" in gate["violations"][0]["reason"], gate
    assert not (tmp_path / "work" / "out.txt").exists()


# -- acceptance 4: a passing and a failing run ------------------------------------------------------------


def test_diff_of_a_passing_and_a_failing_claude_run_names_the_step_and_the_gates(
    claude: Replayed, tmp_path: Path
) -> None:
    """The same Claude Code, this time with a command that exits 2 and a model claiming success."""
    wrapper = [AGENTTRACE, "run", "--store", str(claude.store), "--run-id", "claude-exit2", "--"]
    failing = run_cli_agent(
        "claude", "exit2", tmp_path / "work", None, home=tmp_path / "home", wrapper=wrapper
    )
    assert failing.returncode == 1, failing.describe()  # agenttrace's verdict: claude itself exits 0
    code, answer = diff(claude.store, claude.recorded, "claude-exit2")
    assert code == 1
    first = answer["first_divergence"]
    assert (first["step_a"], first["step_b"], first["kind"]) == (2, 2, "tool"), first
    assert first["differences"][0] == {
        "field": "input",
        "path": ".command",
        "a": SCENARIO.command,
        "b": "echo hello > out.txt; exit 2",
    }, first
    differ = {g["name"]: (g["a"], g["b"]) for g in answer["gates"] if not g["same"]}
    assert differ.get("unrecovered_errors") == ("pass", "fail"), answer["gates"]
    assert all(a in ("pass", "n/a") for a, _ in differ.values()), differ
    (tool,) = answer["tools"]
    assert "exit 2" in json.dumps(tool), tool
    text = subprocess.run(
        [AGENTTRACE, "diff", "--store", str(claude.store), claude.recorded, "claude-exit2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert text.returncode == 1
    assert "first divergence: step 2 (tool)" in text.stdout, text.stdout
    assert "unrecovered_errors" in text.stdout.split("Gates:")[1].splitlines()[0], text.stdout
