"""`agenttrace run` turns on a known CLI agent's own telemetry: the real Claude Code, Codex and
Gemini CLI (from `.agents/`, installed by `make agents`), run offline against the fake model
servers of tests/agents with no telemetry variable or config set by the test. Their spans, log
records and metrics land in the run; with --no-agent-telemetry none do, and the process tree is
still recorded. Only raw spans and logs are checked here, not steps or gate verdicts.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
from conftest import BIN, query, run_cli

from agenttrace.supervise import agent_telemetry
from agenttrace.supervise.agent_telemetry import apply, codex_overrides, detect

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "agents"))
from cli_agents import AgentRun, run_cli_agent  # noqa: E402
from fake_servers import Scenario  # noqa: E402

CLIS = ("claude", "codex", "gemini")
ENDPOINT = "http://127.0.0.1:4999"

# What each CLI must have sent: an LLM-call span, a tool-call span (its command writes out.txt),
# an LLM-request/response log record, and the tool's log record.
EXPECTED = {
    "claude": {
        "llm_span": "claude_code.llm_request",
        "tool_span": "claude_code.tool",
        "llm_log": ("api_request",),
        "tool_log": ("tool_result",),
    },
    "codex": {
        "llm_span": "codex.sampling",
        "tool_span": "exec_command",
        "llm_log": ("codex.api_request",),
        "tool_log": ("codex.tool_result",),
    },
    "gemini": {
        "llm_span": "llm_call",
        "tool_span": "tool_call",
        "llm_log": ("gemini_cli.api_request", "gemini_cli.api_response"),
        "tool_log": ("gemini_cli.tool_call",),
    },
}


def supervised(name: str, tmp_path: Path, *options: str) -> tuple[AgentRun, str, Path]:
    """Run CLI `name` (scenario `happy`) under `agenttrace run`; the run, its id and the store.
    The CLI's HOME (with Codex's CODEX_HOME) is kept in tmp_path/home."""
    store, run_id = tmp_path / "store", f"{name}-run"
    wrapper = [str(BIN / "agenttrace"), "run", "--store", str(store), "--run-id", run_id, *options, "--"]
    run = run_cli_agent(name, "happy", tmp_path / "work", None, home=tmp_path / "home", wrapper=wrapper)
    return run, run_id, store


def event_names(store: Path, run_id: str) -> set[str]:
    rows = query(
        store,
        "SELECT DISTINCT coalesce(attributes['event.name'], event_name) AS name FROM logs WHERE run_id = $r",
        {"r": run_id},
    )
    return {row["name"] for row in rows}


def root_attribute(store: Path, run_id: str) -> str | None:
    rows = query(
        store,
        "SELECT attributes[$a] AS value FROM spans WHERE run_id = $r AND parent_span_id IS NULL "
        "AND attributes['agenttrace.span.type'] = 'run'",
        {"r": run_id, "a": agent_telemetry.ATTRIBUTE},
    )
    assert len(rows) == 1, rows
    return rows[0]["value"]


@pytest.mark.parametrize("name", CLIS)
def test_run_turns_on_the_agents_own_telemetry(name: str, tmp_path: Path) -> None:
    config = tmp_path / "home" / ".codex" / "config.toml"
    auth = config.parent / "auth.json"  # the user's: Codex must still find it, unchanged
    if name == "codex":
        auth.parent.mkdir(parents=True)
        auth.write_text('{"OPENAI_API_KEY": null}\n')
    run, run_id, store = supervised(name, tmp_path)
    assert (tmp_path / "work" / "out.txt").read_text().strip() == "hello", run.describe()
    assert query(store, "SELECT exit_code FROM runs WHERE run_id = $r", {"r": run_id}) == [{"exit_code": 0}]
    assert root_attribute(store, run_id) == name
    expected = EXPECTED[name]

    spans = query(
        store,
        "SELECT name, trace_id, attributes FROM spans WHERE run_id = $r AND origin = 'agent'",
        {"r": run_id},
    )
    names = {s["name"] for s in spans}
    assert expected["llm_span"] in names, (sorted(names)[:50], run.describe())
    assert expected["tool_span"] in names, sorted(names)[:50]
    events = event_names(store, run_id)
    assert events & set(expected["llm_log"]), sorted(events)
    assert events & set(expected["tool_log"]), sorted(events)
    tool_logs = query(
        store,
        "SELECT attributes FROM logs WHERE run_id = $r AND coalesce(attributes['event.name'], event_name) "
        "IN (SELECT unnest($n))",
        {"r": run_id, "n": list(expected["tool_log"])},
    )
    assert any("out.txt" in str(row["attributes"]) for row in tool_logs), tool_logs
    metrics = query(store, "SELECT count(*) AS n FROM metrics WHERE run_id = $r", {"r": run_id})
    assert metrics[0]["n"] > 0

    if name in ("claude", "codex"):  # they honour TRACEPARENT (Codex only with flags 01)
        root = query(
            store,
            "SELECT trace_id FROM spans WHERE run_id = $r AND parent_span_id IS NULL "
            "AND attributes['agenttrace.span.type'] = 'run'",
            {"r": run_id},
        )[0]["trace_id"]
        joined = {s["name"] for s in spans if s["trace_id"] == root}
        assert expected["tool_span"] in joined, sorted(joined)[:50]
    if name == "codex":  # -c overrides: the user's config file is read where it is, never written
        assert config.read_bytes() == run.files[".codex/config.toml"].encode()  # byte for byte
        assert "[otel]" not in config.read_text()
        assert auth.read_text() == '{"OPENAI_API_KEY": null}\n'
        assert not [p for p in config.parent.iterdir() if p.name.startswith("config") and p != config]
        kinds = [e.kind for e in run.server.requests]
        assert "tool_call" in kinds and "final" in kinds, kinds  # its model provider, from config.toml


@pytest.mark.parametrize("name", CLIS)
def test_no_agent_telemetry_leaves_it_off(name: str, tmp_path: Path) -> None:
    run, run_id, store = supervised(name, tmp_path, "--no-agent-telemetry")
    assert (tmp_path / "work" / "out.txt").read_text().strip() == "hello", run.describe()
    assert root_attribute(store, run_id) == "off"
    for view in ("spans", "logs", "metrics"):
        rows = query(
            store, f"SELECT count(*) AS n FROM {view} WHERE run_id = $r AND origin = 'agent'", {"r": run_id}
        )
        assert rows == [{"n": 0}], view
    processes = query(store, "SELECT command_line FROM processes WHERE run_id = $r", {"r": run_id})
    assert any(name in (p["command_line"] or "") for p in processes), processes
    assert any("out.txt" in (p["command_line"] or "") for p in processes), processes


def test_the_traceparent_handed_to_the_agent_has_flags_01(tmp_path: Path) -> None:
    """Not `03` (the SDK's random-trace-id flag), which Codex's propagator refuses; and a command
    that is not a known agent gets no recipe and no `agenttrace.agent.telemetry`."""
    store = tmp_path / "store"
    result = run_cli(
        "run", "--store", str(store), "--run-id", "plain", "--",
        "sh", "-c", 'printf %s "$TRACEPARENT" > tp.txt; env > env.txt',
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    version, trace_id, span_id, flags = (tmp_path / "tp.txt").read_text().split("-")
    assert (version, flags) == ("00", "01")
    assert len(trace_id) == 32 and len(span_id) == 16
    assert root_attribute(store, "plain") is None
    env = (tmp_path / "env.txt").read_text()
    assert "CLAUDE_CODE_ENABLE_TELEMETRY" not in env and "GEMINI_TELEMETRY" not in env


# -- the recipes, without the CLIs -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["claude", "-p", "hi"], ("claude", 0)),
        (["/opt/x/node_modules/.bin/codex", "exec", "hi"], ("codex", 0)),
        (["gemini.js"], ("gemini", 0)),
        (["claude.exe", "-p", "hi"], ("claude", 0)),
        (["node", "/x/node_modules/@google/gemini-cli/dist/index.js", "-p", "hi"], ("gemini", 1)),
        (["node", "bin/codex.js", "exec"], ("codex", 1)),
        (["npx", "-y", "@openai/codex@0.171.0", "exec", "hi"], ("codex", 2)),
        (["npx", "claude", "-p", "hi"], ("claude", 1)),
        (["node", "--inspect", "claude"], None),
        (["python", "claude"], None),
        (["claudette"], None),
        (["sh", "-c", "claude -p hi"], None),
    ],
)
def test_detect(command: list[str], expected: tuple[str, int] | None) -> None:
    assert detect(command) == expected


def test_claude_gets_environment_variables_and_the_users_choices_win() -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_LOGS_EXPORTER": "none", "PATH": "/bin"}
    recipe = apply(["claude", "-p", "hi"], env, ENDPOINT)
    assert recipe is not None and recipe.name == "claude"
    assert recipe.argv == ["claude", "-p", "hi"]
    assert recipe.env["CLAUDE_CODE_ENABLE_TELEMETRY"] == "1"
    assert recipe.env["CLAUDE_CODE_ENHANCED_TELEMETRY_BETA"] == "1"
    assert recipe.env["CLAUDE_CODE_PROPAGATE_TRACEPARENT"] == "1"
    assert recipe.env["OTEL_TRACES_EXPORTER"] == recipe.env["OTEL_METRICS_EXPORTER"] == "otlp"
    assert recipe.env["OTEL_LOGS_EXPORTER"] == "none"  # the user's
    assert "OTEL_LOGS_EXPORTER" not in recipe.set
    assert env["OTEL_LOGS_EXPORTER"] == "none" and "CLAUDE_CODE_ENABLE_TELEMETRY" not in env  # not changed


def test_gemini_gets_environment_variables_pointing_at_the_receiver() -> None:
    env = {"GEMINI_TELEMETRY_OTLP_ENDPOINT": "http://collector:4317", "GEMINI_TELEMETRY_LOG_PROMPTS": "false"}
    recipe = apply(["gemini", "-p", "hi"], env, ENDPOINT + "/")
    assert recipe is not None and recipe.argv == ["gemini", "-p", "hi"]
    assert recipe.env["GEMINI_TELEMETRY_ENABLED"] == "true"
    assert recipe.env["GEMINI_TELEMETRY_TARGET"] == "local"
    assert recipe.env["GEMINI_TELEMETRY_TRACES_ENABLED"] == "true"
    assert recipe.env["GEMINI_TELEMETRY_OTLP_PROTOCOL"] == "http"
    assert recipe.env["GEMINI_TELEMETRY_OTLP_ENDPOINT"] == ENDPOINT  # the receiver forwards
    assert recipe.env["GEMINI_TELEMETRY_LOG_PROMPTS"] == "false"  # the user's


def test_codex_gets_config_overrides_after_its_executable(tmp_path: Path) -> None:
    env = {"CODEX_HOME": str(tmp_path / "nowhere")}
    recipe = apply(["npx", "-y", "@openai/codex", "exec", "hi"], env, ENDPOINT)
    assert recipe is not None and recipe.name == "codex"
    assert recipe.argv[:3] == ["npx", "-y", "@openai/codex"] and recipe.argv[-2:] == ["exec", "hi"]
    overrides = recipe.argv[3:-2]
    assert overrides[::2] == ["-c"] * 4
    exporter = '{ otlp-http = { endpoint = "%s/v1/%s", protocol = "binary" } }'
    assert overrides[1::2] == [
        "otel.exporter=" + exporter % (ENDPOINT, "logs"),
        "otel.trace_exporter=" + exporter % (ENDPOINT, "traces"),
        "otel.metrics_exporter=" + exporter % (ENDPOINT, "metrics"),
        "otel.log_user_prompt=true",
    ]
    assert recipe.env["OTEL_BSP_SCHEDULE_DELAY"] == "100"
    assert recipe.env["OTEL_BLRP_SCHEDULE_DELAY"] == "100"
    assert recipe.env["OTEL_METRIC_EXPORT_INTERVAL"] == "200"
    assert not (tmp_path / "nowhere").exists()


def test_codex_keeps_the_users_otel_settings_and_never_writes_their_config(tmp_path: Path) -> None:
    home = tmp_path / "codex-home"
    home.mkdir()
    config = home / "config.toml"
    config.write_bytes(
        b'model = "gpt-5.5"\n# my settings\n[otel]\nenvironment = "prod"\nexporter = "none"\n'
        b'[model_providers.x]\nbase_url = "http://127.0.0.1:1/v1"\n'
    )
    (home / "auth.json").write_text('{"OPENAI_API_KEY": "sk-mine"}')
    before = {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in home.iterdir()
    }
    env = {"CODEX_HOME": str(home)}
    args = ["exec", "-c", "otel.trace_exporter=none", "hi"]
    keys = [key for key, _ in codex_overrides(args, env, ENDPOINT)]
    assert keys == ["otel.metrics_exporter", "otel.log_user_prompt"]  # not the user's two
    recipe = apply(["codex", *args], env, ENDPOINT)
    assert recipe is not None and recipe.env["CODEX_HOME"] == str(home)
    after = {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in home.iterdir()
    }
    assert after == before
    # Without CODEX_HOME it is ~/.codex/config.toml that is read
    assert agent_telemetry.codex_home({"HOME": str(tmp_path)}) == tmp_path / ".codex"


def test_claudes_bash_tool_processes_are_drawn_under_its_tool_step(tmp_path: Path) -> None:
    """Claude Code hands its Bash tool's span to the tool's processes (TRACEPARENT): `show` draws
    that bash, and what it ran, under the tool step, not under claude.exe; `step RUN 2` lists them
    with their commands and exit codes; neither is a step of its own. (The command sleeps so that
    the watcher, polling /proc, surely sees it; the nesting does not depend on it.)"""
    scenario = Scenario("sleepy", "echo hello > out.txt; sleep 0.5", "I wrote hello to out.txt. Done.")
    store, run_id = tmp_path / "store", "claude-tool"
    wrapper = [str(BIN / "agenttrace"), "run", "--store", str(store), "--run-id", run_id, "--"]
    work, home = tmp_path / "work", tmp_path / "home"
    run = run_cli_agent("claude", scenario, work, None, home=home, wrapper=wrapper)  # type: ignore[arg-type]
    assert (tmp_path / "work" / "out.txt").read_text().strip() == "hello", run.describe()

    shown = run_cli("show", "--store", str(store), run_id).stdout
    lines = shown.splitlines()
    (tool,) = [i for i, line in enumerate(lines) if "#2 tool claude_code.tool" in line]
    depth = lines[tool].index("#2")
    subtree = []  # the lines drawn under the tool step
    for line in lines[tool + 1 :]:
        label = len(line) - len(line.lstrip(" │├└─"))
        if label <= depth:
            break
        subtree.append((label, line[label:]))
    labels = [text.split("  ")[0] for _, text in subtree]
    assert "claude_code.tool.execution" in labels, shown
    assert "process bash" in labels and "process sleep" in labels, shown
    (bash_at,) = [label for label, text in subtree if text.startswith("process bash")]
    (sleep_at,) = [label for label, text in subtree if text.startswith("process sleep")]
    assert sleep_at > bash_at, shown  # sleep under bash
    (bash,) = [text for _, text in subtree if text.startswith("process bash")]
    assert "exit 0" in bash, shown
    assert "?" not in " ".join(labels), shown

    steps = query(store, "SELECT step, kind FROM steps WHERE run_id = $r ORDER BY step", {"r": run_id})
    assert [(s["step"], s["kind"]) for s in steps] == [(1, "llm"), (2, "tool"), (3, "llm")], steps
    answer = json.loads(run_cli("step", "--store", str(store), run_id, "2", "--json").stdout)
    processes = [c for c in answer["children"] if c["kind"] == "process"]
    commands = {c["command_line"].split()[0]: c for c in processes}
    assert "echo hello > out.txt" in commands["/bin/bash"]["command_line"], processes
    assert commands["/bin/bash"]["exit_code"] == 0 and commands["sleep"]["exit_code"] == 0, processes
    text = run_cli("step", "--store", str(store), run_id, "2").stdout
    assert "process `sleep 0.5` (exit 0)" in text, text
