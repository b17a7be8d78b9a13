"""`agenttrace run -- CMD` with real processes and real signals: states, exit codes, timeouts,
orphans, zero-code Python instrumentation, any-language process trees, artifacts, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, query, run_cli


def agenttrace_run(tmp_path: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--store", str(tmp_path / "store"), *args, cwd=tmp_path, timeout=timeout)


def the_run(tmp_path: Path) -> dict[str, Any]:
    rows = query(tmp_path / "store", "SELECT * FROM runs")
    assert len(rows) == 1, rows
    return rows[0]


def processes(tmp_path: Path) -> list[dict[str, Any]]:
    return query(tmp_path / "store", "SELECT * FROM processes ORDER BY start_time")


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_exit_0_succeeds_and_runs_json_shows_the_ending(tmp_path: Path) -> None:
    result = agenttrace_run(tmp_path, "--", "sh", "-c", "exit 0")
    assert result.returncode == 0, result.stderr
    assert "the command exited with code 0" in result.stderr
    assert ": SUCCEEDED (exit code 0)" in result.stderr
    listed = json.loads(run_cli("runs", "--json", "--store", str(tmp_path / "store")).stdout)
    assert len(listed) == 1
    assert {k: listed[0][k] for k in ("state", "exit_code", "signal")} == {
        "state": "succeeded",
        "exit_code": 0,
        "signal": None,
    }
    assert listed[0]["run_id"] and listed[0]["started"]


def test_exit_3_fails_with_code_3(tmp_path: Path) -> None:
    result = agenttrace_run(tmp_path, "--json", "--", "sh", "-c", "exit 3")
    assert result.returncode == 1
    run = the_run(tmp_path)
    assert (run["state"], run["exit_code"], run["signal"]) == ("failed", 3, None)
    printed = json.loads(result.stdout)
    assert (printed["run_id"], printed["state"], printed["exit"]) == (
        run["run_id"],
        "failed",
        {"code": 3, "signal": None},
    )


def test_a_child_that_sigkills_itself_fails_with_signal_9(tmp_path: Path) -> None:
    result = agenttrace_run(tmp_path, "--", "sh", "-c", "kill -9 $$")
    assert result.returncode == 1
    assert "killed by signal 9 (SIGKILL)" in result.stderr
    run = the_run(tmp_path)
    assert (run["state"], run["exit_code"], run["signal"]) == ("failed", None, "9")


def test_timeout_stops_the_whole_tree_and_ends_timed_out(tmp_path: Path) -> None:
    started = time.monotonic()
    result = agenttrace_run(tmp_path, "--timeout", "2s", "--", "sh", "-c", "sleep 60 & sleep 61; wait")
    took = time.monotonic() - started
    assert result.returncode == 1
    assert took < 15, f"took {took:.1f} s"
    assert the_run(tmp_path)["state"] == "timed_out"
    sleeps = [p for p in processes(tmp_path) if p["executable"] == "sleep"]
    assert len(sleeps) == 2
    assert all(gone(p["pid"]) for p in sleeps), "no sleep remains"
    assert all(p["signal"] == "15" for p in sleeps), "each was stopped by SIGTERM"


def test_an_orphan_fails_the_run_and_is_listed(tmp_path: Path) -> None:
    # The orphan must not hold this test's pipes, or reading them would wait for it.
    result = agenttrace_run(tmp_path, "--", "sh", "-c", "sleep 300 >/dev/null 2>&1 & exit 0")
    try:
        assert result.returncode == 1
        run = the_run(tmp_path)
        assert (run["state"], run["exit_code"]) == ("failed", 0)
        listed = json.loads(run_cli("orphans", "last", "--json", "--store", str(tmp_path / "store")).stdout)
        assert len(listed) == 1
        assert listed[0]["command_line"] == "sleep 300"
        assert listed[0]["left_running"] is True
        assert listed[0]["started_by_span"], "the span of the shell that started it"
        pid = listed[0]["pid"]
        assert not gone(pid), "fail mode leaves it running, and says so"
        assert f"orphan: pid {pid} `sleep 300`" in result.stderr
        assert "LEFT RUNNING" in result.stderr
    finally:
        subprocess.run(["pkill", "-f", "^sleep 300$"], check=False)


def test_on_orphans_kill_stops_them(tmp_path: Path) -> None:
    result = agenttrace_run(tmp_path, "--on-orphans", "kill", "--", "sh", "-c", "sleep 301 & exit 0")
    assert result.returncode == 1
    assert "still running when the command exited: killed" in result.stderr
    (orphan,) = [p for p in processes(tmp_path) if p["alive_at_exit"]]
    assert orphan["command_line"] == "sleep 301"
    assert gone(orphan["pid"])


def test_a_double_forked_setsid_daemon_is_caught(tmp_path: Path) -> None:
    daemon = "(setsid sh -c 'sleep 302 & exit 0' &); sleep 0.3; exit 0"
    result = agenttrace_run(tmp_path, "--on-orphans", "kill", "--", "sh", "-c", daemon)
    assert result.returncode == 1
    orphans = [p for p in processes(tmp_path) if p["alive_at_exit"]]
    assert [p["command_line"] for p in orphans] == ["sleep 302"]
    assert gone(orphans[0]["pid"])


AGENT_WITHOUT_AGENTTRACE = """
import subprocess
from opentelemetry import trace

tracer = trace.get_tracer("my-agent")
with tracer.start_as_current_span("invoke_agent fixer", attributes={"gen_ai.operation.name": "invoke_agent"}):
    with tracer.start_as_current_span(
        "execute_tool run_tests",
        attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "run_tests"},
    ):
        code = subprocess.run(["false"]).returncode
print("tests exit", code)
"""


def test_a_python_agent_with_no_agenttrace_import_is_instrumented(tmp_path: Path) -> None:
    (tmp_path / "agent.py").write_text(AGENT_WITHOUT_AGENTTRACE)
    result = agenttrace_run(tmp_path, "--", sys.executable, "agent.py")
    assert result.returncode == 0, result.stderr
    assert "tests exit 1" in result.stdout
    store = tmp_path / "store"
    spans = {r["name"]: r for r in query(store, "SELECT name, span_id, parent_span_id, run_id FROM spans")}
    run_id = the_run(tmp_path)["run_id"]
    assert {s["run_id"] for s in spans.values()} == {run_id}, "every span is in the one run"
    tool = spans["execute_tool run_tests"]
    assert spans["invoke_agent fixer"]["span_id"] == tool["parent_span_id"]
    (false,) = [p for p in processes(tmp_path) if p["executable"] == "false"]
    assert false["exit_code"] == 1
    assert false["parent_span_id"] == tool["span_id"], "the process hangs under the tool call"
    root = the_run(tmp_path)["root_span_id"]
    agent_root = spans["invoke_agent fixer"]["parent_span_id"]
    assert agent_root == root, "the agent's own spans hang under the run (TRACEPARENT)"


def test_python_started_by_the_agent_is_instrumented_too(tmp_path: Path) -> None:
    child = "import subprocess; subprocess.run(['sh', '-c', 'exit 5'])"
    agent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    result = agenttrace_run(tmp_path, "--", sys.executable, "-c", agent)
    assert result.returncode == 0, result.stderr
    exact = {p["executable"]: p for p in processes(tmp_path) if p["source"] == "python"}
    assert set(exact) == {"python", "sh"} or set(exact) == {Path(sys.executable).name, "sh"}, exact
    inner = exact.pop("sh")
    assert (inner["command_line"], inner["exit_code"]) == ("sh -c 'exit 5'", 5)
    (outer,) = exact.values()
    assert inner["parent_span_id"] == outer["span_id"], "the grandchild hangs under the child process"


def test_an_interpreter_without_agenttrace_runs_unchanged(tmp_path: Path) -> None:
    base = sys._base_executable  # the interpreter this venv was made from: agenttrace is not in it
    check = subprocess.run([base, "-c", "import agenttrace"], capture_output=True, check=False)
    assert check.returncode != 0, "the base interpreter must lack agenttrace"
    program = "import subprocess; subprocess.run(['sleep', '0.2']); print('ok')"
    result = agenttrace_run(tmp_path, "--", base, "-c", program)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    (sleep,) = [p for p in processes(tmp_path) if p["executable"] == "sleep"]
    assert (sleep["source"], sleep["exit_code"]) == ("watcher", 0), "only the watcher saw it"


def test_an_existing_sitecustomize_still_runs(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import os\nos.environ['USER_SITECUSTOMIZE'] = 'ran'\n")
    agent = "import os, subprocess; print(os.environ.get('USER_SITECUSTOMIZE')); subprocess.run(['true'])"
    result = run_cli(
        "run", "--store", str(tmp_path / "store"), "--", sys.executable, "-c", agent,
        cwd=tmp_path, env={"PYTHONPATH": str(site)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran"
    assert any(p["source"] == "python" for p in processes(tmp_path)), "and the bootstrap too"


def test_a_bash_agent_yields_its_process_tree_and_exit_codes(tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    script.write_text(
        "#!/bin/bash\nsleep 0.2\nsh -c 'sleep 0.2; exit 4'\ngrep -q zzz-not-there /etc/hostname\nexit 0\n"
    )
    script.chmod(0o755)
    result = agenttrace_run(tmp_path, "--", "./agent.sh")
    # the agent went on past a command that exited 4 and exited 0: not done (issue 12, class 3)
    assert result.returncode == 1, result.stderr
    (mode,) = query(
        tmp_path / "store",
        "SELECT attributes['agenttrace.watcher.mode'] AS mode FROM spans "
        "WHERE attributes['agenttrace.span.type'] = 'run'",
    )
    assert mode["mode"].startswith("events+poll"), (
        "the kernel's process events are needed for grandchildren's exit codes: run as root or "
        "with CAP_NET_ADMIN (this project's machines and CI are root)"
    )
    procs = processes(tmp_path)
    (bash,) = [p for p in procs if p["command_line"] == "/bin/bash ./agent.sh"]
    assert bash["exit_code"] == 0
    children = [p for p in procs if p["parent_span_id"] == bash["span_id"]]
    by_line = {p["command_line"]: p for p in children}
    # Grandchildren's exit codes come from the kernel's process events (root here, as in CI).
    assert by_line["sleep 0.2"]["exit_code"] == 0
    assert by_line["sh -c 'sleep 0.2; exit 4'"]["exit_code"] == 4
    # grep lives for a millisecond: its argv (even its name) may be gone before /proc is read,
    # but never is it shown with its parent's argv, and its exit code is exact.
    (grep,) = [p for p in children if p["command_line"] not in ("sleep 0.2", "sh -c 'sleep 0.2; exit 4'")]
    assert grep["command_line"] in ("grep -q zzz-not-there /etc/hostname", "grep", ""), grep
    assert grep["exit_code"] == 1
    assert the_run(tmp_path)["state"] == "failed"
    # The commands a shell agent runs are its steps: the failed `sh` is an unrecovered error;
    # `grep` exiting 1 is an answer (no match), not an error, when its name was read.
    audited = run_cli("audit", "last", "--json", "--store", str(tmp_path / "store"))
    (gate,) = [g for g in json.loads(audited.stdout)["gates"] if g["name"] == "unrecovered_errors"]
    failed = [v["reason"] for v in gate["violations"]]
    assert any("failed at step" in r and "(exit code 4)" in r for r in failed), failed
    if grep["command_line"]:
        assert not any("grep" in r for r in failed), failed


def test_files_written_by_the_agent_are_artifacts_with_their_hashes(tmp_path: Path) -> None:
    (tmp_path / "unchanged.txt").write_text("before")
    (tmp_path / "obsolete.txt").write_text("removed by the agent")
    (tmp_path / ".git").mkdir()
    agent = (
        "mkdir -p out && printf 'report body' > out/report.md && echo x > .git/ignored && echo y > log.txt"
        " && rm obsolete.txt"
    )
    result = agenttrace_run(tmp_path, "--", "sh", "-c", agent)
    assert result.returncode == 0, result.stderr
    rows = query(tmp_path / "store", "SELECT path, sha256, size, role FROM artifacts ORDER BY path")
    expected = {
        "log.txt": b"y\n",
        "out/report.md": b"report body",
    }
    written = [
        {"path": p, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b), "role": "written"}
        for p, b in expected.items()
    ]
    deleted = [{"path": "obsolete.txt", "sha256": None, "size": None, "role": "deleted"}]
    assert rows == sorted(written + deleted, key=lambda row: row["path"])


# -- signals -----------------------------------------------------------------------------------
def start_run(tmp_path: Path, *cmd: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [str(BIN / "agenttrace"), "run", "--store", str(tmp_path / "store"), "--", *cmd],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    marker = tmp_path / "started"
    while not marker.exists():
        assert time.monotonic() < deadline, "the agent did not start"
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    return process


def test_sigint_is_forwarded_and_the_run_ends_cancelled(tmp_path: Path) -> None:
    process = start_run(tmp_path, "sh", "-c", "touch started; sleep 60")
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    run = the_run(tmp_path)
    assert run["state"] == "cancelled"
    assert run["signal"] == "2", "the agent got the SIGINT"


def test_a_second_sigint_while_cancelling_kills_the_tree(tmp_path: Path) -> None:
    stubborn = textwrap.dedent(
        """
        import signal, time, pathlib
        signal.signal(signal.SIGINT, lambda *a: None)
        pathlib.Path("started").touch()
        time.sleep(60)
        """
    )
    process = start_run(tmp_path, sys.executable, "-c", stubborn)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None, "the agent ignored the first one"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.strip().splitlines()[-1] == (
        "Error: interrupted again while cancelling: the agent's process tree was killed"
    )
    run = the_run(tmp_path)
    assert (run["state"], run["signal"]) == ("cancelled", "9")


# -- bad input ---------------------------------------------------------------------------------
def test_no_command_is_an_error(tmp_path: Path) -> None:
    result = run_cli("run", "--store", str(tmp_path / "store"), cwd=tmp_path)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "Error: no command to run: agenttrace run [OPTIONS] -- CMD [ARGS...]",
    )


def test_a_command_not_found_is_recorded_as_exit_127(tmp_path: Path) -> None:
    result = agenttrace_run(tmp_path, "--", "no-such-agent-xyz", "--flag")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "Error: command not found: no-such-agent-xyz"
    run = the_run(tmp_path)
    assert (run["state"], run["exit_code"]) == ("failed", 127)


def test_an_unwritable_store_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = run_cli(
        "run", "--store", str(tmp_path / "file" / "store"), "--", "touch", "ran", cwd=tmp_path
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: cannot create store at")
    assert not (tmp_path / "ran").exists(), "the command never ran"


@pytest.mark.parametrize("bad", ["soon", "-5s", "0", "5x"])
def test_an_invalid_timeout_is_refused(tmp_path: Path, bad: str) -> None:
    result = agenttrace_run(tmp_path, "--timeout", bad, "--", "true")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"Error: --timeout {bad!r} is not a positive duration such as 90, 30s, 500ms, 5m or 1h30m"
    )


def test_an_agent_using_agenttrace_run_joins_the_supervised_run(tmp_path: Path) -> None:
    agent = Path(__file__).resolve().parents[1] / "examples" / "research_agent.py"
    result = agenttrace_run(tmp_path, "--", sys.executable, str(agent))
    assert result.returncode == 0, result.stderr
    run = the_run(tmp_path)  # one run, not one for the supervisor and one for the agent
    assert run["state"] == "succeeded"
    steps = query(tmp_path / "store", "SELECT kind, name, parent_span_id FROM steps ORDER BY step")
    # the agent's span holds its calls: a container, not a step; its calls are the steps
    assert not [s for s in steps if s["kind"] == "agent"]
    (agent_span,) = query(
        tmp_path / "store", "SELECT parent_span_id FROM spans WHERE name = 'research-agent'"
    )
    assert agent_span["parent_span_id"] == run["root_span_id"]
    assert [s["kind"] for s in steps].count("llm") == 3
    assert not [s for s in steps if s["kind"] == "process" and "git" in s["name"]], (
        "agenttrace's own git calls are not the agent's work"
    )


OPENAI_AGENT = """
import sys
sys.path.insert(0, {examples!r})
import openai
from fake_model_server import start_in_thread

server, base_url = start_in_thread()
client = openai.OpenAI(base_url=base_url, api_key="not-a-real-key")
reply = client.chat.completions.create(model="fake-gpt", messages=[{{"role": "user", "content": "hi"}}])
print(reply.choices[0].finish_reason)
server.shutdown()
"""


def test_installed_genai_instrumentors_are_turned_on(tmp_path: Path) -> None:
    """The OpenAI SDK, instrumented by OpenInference's instrumentor, with no code in the agent."""
    examples = str(Path(__file__).resolve().parents[1] / "examples")
    (tmp_path / "agent.py").write_text(OPENAI_AGENT.format(examples=examples))
    result = agenttrace_run(tmp_path, "--", sys.executable, "agent.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "stop"
    (llm,) = query(tmp_path / "store", "SELECT * FROM steps WHERE kind = 'llm'")
    assert (llm["model"], llm["finish_reason"]) == ("fake-gpt", "stop")
    assert llm["input_tokens"] and llm["output_tokens"]
    assert "not-a-real-key" not in json.dumps(
        query(tmp_path / "store", "SELECT attributes FROM spans"), default=str
    )


def test_a_hung_agent_killed_by_the_timeout_leaves_its_open_spans_unfinished(tmp_path: Path) -> None:
    hung = textwrap.dedent(
        """
        import time
        from opentelemetry import trace
        with trace.get_tracer("agent").start_as_current_span("execute_tool wait_forever"):
            time.sleep(60)
        """
    )
    result = agenttrace_run(tmp_path, "--timeout", "3s", "--", sys.executable, "-c", hung)
    assert result.returncode == 1
    assert the_run(tmp_path)["state"] == "timed_out"
    (span,) = query(tmp_path / "store", "SELECT ended FROM spans WHERE name = 'execute_tool wait_forever'")
    assert span["ended"] is False, "its start record came over OTLP before the agent was killed"


def test_show_draws_a_python_spawned_process_once_with_what_it_ran_under_it(tmp_path: Path) -> None:
    """The watcher and the Python bootstrap both record `sh`: `show` draws it once (the exact
    record), and `sleep`, which only the watcher saw, under it."""
    (tmp_path / "agent.py").write_text('import subprocess\nsubprocess.run(["sh", "-c", "sleep 0.3; true"])\n')
    result = agenttrace_run(tmp_path, "--", sys.executable, "agent.py")
    assert result.returncode == 0, result.stderr
    shown = run_cli("show", "last", "--store", str(tmp_path / "store")).stdout.splitlines()
    sh_lines = [line for line in shown if "process sh " in line]
    assert len(sh_lines) == 1, shown
    (sleep_line,) = [line for line in shown if "process sleep " in line]
    indent = lambda line: len(line) - len(line.lstrip(" │├└─"))  # noqa: E731
    assert shown.index(sleep_line) == shown.index(sh_lines[0]) + 1, shown
    assert indent(sleep_line) > indent(sh_lines[0]), shown
