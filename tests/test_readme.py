"""The README's console blocks, typed as a new user types them right after `make demo`.

`make demo` runs in a copy of the repository (its Makefile and examples/, with `.venv` the
virtual environment this test runs in). Then each ```console block of README.md runs in a fresh
copy of that state, in order, every `$ ` line with the virtual environment activated
(`. .venv/bin/activate`, as the README says), and each command must exit as the README shows: 1
where its output shows a failed verdict (or an error gate that fails) or the `$ echo $?` after it
says 1, else 0; and print no
`Error:` line. A `$ cat FILE` whose FILE is not there shows a file the README asks you to save:
it is written from the block, made executable, and the block goes on.

Every `$ ` command of the README is in RUN (run here), in SERVE_BLOCK (run by
test_the_serve_block_shows_what_the_readme_shows, with a free port for 4318) or in SKIPPED with
its reason; a command in none of them fails the test, so a new README command cannot slip in
untested.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO, free_port, wait_listening

README = REPO / "README.md"
VENV = Path(sys.prefix)

# Commands run as written (after `. .venv/bin/activate`), each block from the state `make demo` leaves.
RUN = {
    ". .venv/bin/activate",
    "agenttrace runs",
    "OTEL_TRACES_EXPORTER=agenttrace OTEL_SERVICE_NAME=my-agent"
    " opentelemetry-instrument python examples/app.py",
    "agenttrace show last",
    "cat agent.sh",
    "agenttrace run -- ./agent.sh",
    "echo $?",
    "agenttrace orphans last",
    'agenttrace query "SELECT run_id, event_name, count(*) AS n FROM logs GROUP BY ALL ORDER BY ALL"',
    'agenttrace query "SELECT run_id, step, model, finish_reason, output_tokens FROM steps'
    " WHERE kind = 'llm' ORDER BY run_id, step\"",
    "agenttrace audit last",
    "agenttrace run --objective examples/objective.toml -- python examples/research_agent.py"
    " --report demo-answer.md --model fake-truncating",
    'agenttrace query "SELECT type, coalesce(id, path) AS what, passed, missing, exit_code FROM verifications'
    ' WHERE run_id = (SELECT max(run_id) FROM runs) ORDER BY start_time"',
    "agenttrace show last | tail -6",
    "agenttrace step last 3",
    "agenttrace report last",
    "agenttrace report last -o report.html --json",
    "agenttrace report --runs --state failed",
    "agenttrace export last --format perfetto",
    "agenttrace export last --format chrome-trace -o run.json",
    "agenttrace export last --format otlp-json --json",
    "agenttrace export last --format parquet --view processes",
    "agenttrace export last --format csv --view steps -o - | head -2",
    "agenttrace clickhouse init --to chdb://fleet-db",
    "agenttrace push --all --to chdb://fleet-db",
    "agenttrace runs --engine chdb://fleet-db",
    "agenttrace audit --all --since 1d --engine chdb://fleet-db",
}

# The `agenttrace serve` block: a server in the foreground and a client beside it.
SERVE_BLOCK = {
    "agenttrace serve",
    "curl -X POST http://127.0.0.1:4318/v1/traces -H 'Content-Type: application/json'"
    " --data @examples/span.json",
    "agenttrace show 5b8efff798038103d269b633813fc60c",
}

SKIPPED = {
    "agenttrace clickhouse init --to clickhouse://agenttrace@clickhouse:8123/otel": (
        "needs a ClickHouse server; tests/test_clickhouse_e2e.py runs it over an HTTP shim"
    ),
    "agenttrace push last --to clickhouse://agenttrace@clickhouse:8123/otel": (
        "needs a ClickHouse server; tests/test_clickhouse_e2e.py runs it over an HTTP shim"
    ),
    "agenttrace audit --all --since 1d --engine clickhouse://agenttrace@clickhouse:8123/otel --json": (
        "needs a ClickHouse server; tests/test_clickhouse_e2e.py runs it over an HTTP shim"
    ),
    "make demo": "what this test starts from (it runs `make demo` once, without reinstalling)",
    "make test": "the whole suite, this test included",
    "make lint": "ruff, run by `make test`",
    "make bench": "every benchmark: minutes",
    "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 node agent.js": "needs Node.js and an agent of yours",
    'agenttrace run --run-id fix-1 -- claude -p "Fix the failing test" --allowedTools Bash': (
        "needs Claude Code and its API key; tests/test_cli_run_agents.py runs it offline"
    ),
    'agenttrace run --run-id fix-2 -- codex exec "Fix the failing test"': (
        "needs Codex and its API key; tests/test_cli_run_agents.py runs it offline"
    ),
    'agenttrace run --run-id fix-3 -- gemini -p "Fix the failing test" --yolo': (
        "needs Gemini CLI and its API key; tests/test_cli_run_agents.py runs it offline"
    ),
    ".venv/bin/python bench/verdicts.py": "audits the 70-run corpus (minutes); tests/test_corpus.py does",
    "agenttrace run --gpu 0 -- python train.py 40GiB 80 4": (
        "needs an NVIDIA GPU; tests/test_cli_run_gpu.py runs it over the fake NVML"
    ),
    "agenttrace gpus": "needs an NVIDIA GPU; tests/test_cli_gpus.py runs it over the fake NVML",
    "python examples/fake_model_server.py --port 8089 &": "a background server; tests/test_cli_replay.py",
    "OPENAI_BASE_URL=http://127.0.0.1:8089/v1 agenttrace run --record -- python examples/research_agent.py"
    " --report answer.md": "needs the server above; tests/test_cli_replay.py records the same run",
    "kill %1": "stops the server above",
    "agenttrace replay 20261201T233305-6a10 -- python examples/research_agent.py --report answer.md": (
        "replays the run above; tests/test_cli_replay.py"
    ),
    "agenttrace diff 20261201T233305-6a10 last": "compares the runs above; tests/test_cli_replay.py",
    "agenttrace replay 20261201T233305-6a10 -- python examples/research_agent.py --report answer.md"
    ' --task "Count the lines of the README"': "replays the run above; tests/test_cli_replay.py",
    "agenttrace run --gpu 0 --gpu-wait 0 -- python train.py 40GiB 80 4": (
        "needs an NVIDIA GPU; tests/test_cli_run_gpu.py runs it over the fake NVML"
    ),
    "agenttrace run --protect-store -- sh -c 'echo forged > .agenttrace/gates.sql'": (
        "needs unprivileged user namespaces, often refused in containers; tests/test_supervise_protect.py"
    ),
}

# A failed verdict as the README shows one: the verdict line, or an error gate that fails (the rest abridged).
FAILED_VERDICT = re.compile(r"^(Run \S+: FAILED\b|\w+ +FAIL +error )", re.MULTILINE)


@dataclass
class Command:
    text: str  # as typed, without a trailing comment
    output: list[str] = field(default_factory=list)


@dataclass
class Block:
    line: int
    commands: list[Command]


def console_blocks(text: str) -> list[Block]:
    blocks = []
    for match in re.finditer(r"^```console\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        commands: list[Command] = []
        for line in match.group(1).splitlines():
            if line.startswith("$ "):
                commands.append(Command(re.sub(r"\s{2,}#.*$", "", line[2:]).rstrip()))
            elif commands:
                commands[-1].output.append(line)
        blocks.append(Block(text.count("\n", 0, match.start()) + 1, commands))
    return blocks


BLOCKS = console_blocks(README.read_text(encoding="utf-8"))


def test_every_readme_command_is_run_or_skipped_for_a_reason() -> None:
    commands = {c.text for block in BLOCKS for c in block.commands}
    assert commands, "README.md has no console block"
    unknown = commands - RUN - SERVE_BLOCK - set(SKIPPED)
    assert not unknown, f"README commands neither run nor skipped (list them in this test): {unknown}"
    stale = (RUN | SERVE_BLOCK | set(SKIPPED)) - commands
    assert not stale, f"commands listed in tests/test_readme.py that the README no longer has: {stale}"
    assert not (RUN & set(SKIPPED)) and not (SERVE_BLOCK & (RUN | set(SKIPPED)))


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "VIRTUAL_ENV"))}
    env["PATH"] = os.defpath  # only what activation puts first, then the system's
    return env


def shell(workdir: Path, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`command` as typed in a shell where `. .venv/bin/activate` was typed first."""
    return subprocess.run(
        ["bash", "-c", f". .venv/bin/activate\n{command}"],
        cwd=workdir,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's Makefile and examples/ after `make demo`, `.venv` this test's venv."""
    assert shutil.which("make"), "make is needed: `make demo` is the README's first command"
    root = tmp_path_factory.mktemp("readme") / "repo"
    root.mkdir()
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "examples", root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    (root / ".venv").symlink_to(VENV)
    # -o: the venv is installed already (and may not have been installed by make).
    demo = subprocess.run(
        ["make", "-o", ".venv/.installed", "demo"],
        cwd=root,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "Error:" not in demo.stdout + demo.stderr
    assert "(agenttrace run exited 1: this run is not done, as it should be)" in demo.stdout
    return root


def fresh_copy(after_demo: Path, tmp_path: Path) -> Path:
    workdir = tmp_path / "repo"
    shutil.copytree(after_demo, workdir, symlinks=True)
    return workdir


def expected_exit(command: Command, following: Command | None) -> int:
    if following is not None and following.text == "echo $?":
        return int(following.output[0])
    return 1 if FAILED_VERDICT.search("\n".join(command.output)) else 0


def stop_orphans(workdir: Path) -> None:
    """Stop what a README agent left running on purpose (its `sleep 300`)."""
    listed = shell(workdir, "agenttrace orphans last --json")
    for row in json.loads(listed.stdout or "[]"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(row["pid"]), signal.SIGKILL)


RUN_BLOCKS = [b for b in BLOCKS if any(c.text in RUN - {". .venv/bin/activate"} for c in b.commands)]


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[f"README.md:{b.line}" for b in RUN_BLOCKS])
def test_a_console_block_runs_as_written_after_make_demo(
    block: Block, after_demo: Path, tmp_path: Path
) -> None:
    workdir = fresh_copy(after_demo, tmp_path)
    try:
        for i, command in enumerate(block.commands):
            if command.text in SKIPPED or command.text in (". .venv/bin/activate", "echo $?"):
                continue  # activation is in every command; `echo $?` is checked with the command before it
            assert command.text in RUN, command.text
            shown = re.fullmatch(r"cat (\S+)", command.text)
            if shown and not (workdir / shown[1]).exists():
                path = workdir / shown[1]
                path.write_text("\n".join(command.output) + "\n", encoding="utf-8")
                path.chmod(path.stat().st_mode | stat.S_IXUSR)
            following = block.commands[i + 1] if i + 1 < len(block.commands) else None
            result = shell(workdir, command.text)
            said = result.stdout + result.stderr
            assert result.returncode == expected_exit(command, following), f"$ {command.text}\n{said}"
            assert "Error:" not in said, f"$ {command.text}\n{said}"
            if "opentelemetry-instrument" in command.text:
                assert "triage:" in result.stdout
    finally:
        stop_orphans(workdir)


def tree_labels(lines: list[str]) -> list[str]:
    """The spans of a `show` tree: each line's label, without durations and status."""
    return [re.split(r"\s{2}", line.split("── ", 1)[1])[0] for line in lines if "── " in line]


def test_the_app_example_stores_the_run_the_readme_shows(after_demo: Path, tmp_path: Path) -> None:
    """examples/app.py under `opentelemetry-instrument`: the README's tree, step for step."""
    block = next(b for b in BLOCKS if any("examples/app.py" in c.text for c in b.commands))
    shown = next(c for c in block.commands if c.text == "agenttrace show last")
    workdir = fresh_copy(after_demo, tmp_path)
    for command in block.commands:
        result = shell(workdir, command.text)
        assert result.returncode == 0, result.stderr
    labels = tree_labels(shown.output)
    assert labels == ["invoke_agent triage", "#1 llm chat gpt-4o", "#2 tool execute_tool search"]
    assert tree_labels(result.stdout.splitlines()) == labels, result.stdout
    assert "finish: tool_call" in result.stdout
    assert result.stdout.splitlines()[0].endswith("invoke_agent triage  succeeded")


def test_the_serve_block_shows_what_the_readme_shows(after_demo: Path, tmp_path: Path) -> None:
    """`agenttrace serve`, the README's curl of examples/span.json, then `show`: the README's output."""
    assert shutil.which("curl"), "curl is needed: the README's serve block posts with it"
    block = next(b for b in BLOCKS if any(c.text == "agenttrace serve" for c in b.commands))
    assert {c.text for c in block.commands} - set(SKIPPED) == SERVE_BLOCK
    workdir = fresh_copy(after_demo, tmp_path)
    port = free_port()
    serve = subprocess.Popen(
        ["bash", "-c", f". .venv/bin/activate\nexec agenttrace serve --port {port}"],
        cwd=workdir,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_listening(serve, port, "agenttrace serve")
        for command in block.commands:
            if command.text in SKIPPED or command.text == "agenttrace serve":
                continue
            result = shell(workdir, command.text.replace(":4318", f":{port}"))
            assert result.returncode == 0, result.stderr
            assert result.stdout.splitlines() == command.output, result.stdout
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=30)
    assert serve.returncode == 0, err
    assert "Error:" not in err
    shown = next(c for c in block.commands if c.text == "agenttrace serve").output
    assert f"receiving OTLP/HTTP on http://127.0.0.1:{port}/v1/traces" in err
    assert shown[0].startswith("agenttrace: receiving OTLP/HTTP on http://127.0.0.1:4318/v1/traces")
