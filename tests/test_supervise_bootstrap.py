"""The Python bootstrap starts lazily (issue 13): a Python child of the agent that imports no
instrumented library loads neither agenttrace nor OpenTelemetry, only the sitecustomize's finder
(a rule, counted in sys.modules, not a timing: bench/python_child.py has the times). Tracing is
set up at the first process started, the first model-API request, the first import of the
OpenTelemetry API or of a library with a GenAI instrumentor; the instrumentor list comes from the
supervisor (no entry-point scan in the children) unless it was found for another interpreter; and
nothing the agent puts in those variables breaks a program. The children are real interpreters,
under `agenttrace run` where spans must reach the store.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import query, run_cli
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from agenttrace.supervise import instrumentors
from agenttrace.supervise.agent_env import agent_env

ROOT = NonRecordingSpan(
    SpanContext(0x0123456789ABCDEF0123456789ABCDEF, 0x0123456789ABCDEF, False, TraceFlags(1))
)
LOADED = """
import json, sys
print(json.dumps({
    "agenttrace": sorted(m for m in sys.modules if m.startswith("agenttrace")),
    "opentelemetry": sorted(m for m in sys.modules if m.startswith("opentelemetry")),
    "requests": "requests" in sys.modules or "urllib3" in sys.modules,
    "metadata": "importlib.metadata" in sys.modules,
    "finder": type(sys.meta_path[0]).__name__,
    "popen": getattr(sys.modules.get("subprocess"), "Popen", None) and
             sys.modules["subprocess"].Popen.__init__.__qualname__,
}))
"""


def child_env(endpoint: str = "http://127.0.0.1:9", **extra: str) -> dict[str, str]:
    """The environment `agenttrace run` gives the agent (no receiver behind `endpoint`)."""
    env = agent_env(ROOT, "20260101T000000-test", endpoint, 0.5)
    env.update(extra)
    return env


def run_child(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def loaded(prelude: str, env: dict[str, str]) -> dict[str, Any]:
    result = run_child(prelude + "\n" + LOADED, env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.parametrize("prelude", ["pass", "import json, subprocess", "import urllib.request, http.client"])
def test_a_child_that_uses_no_instrumented_library_loads_only_the_finder(prelude: str) -> None:
    found = loaded(prelude, child_env())
    assert (found["agenttrace"], found["opentelemetry"], found["requests"], found["metadata"]) == (
        [],
        [],
        False,
        False,
    )
    assert found["finder"] == "_Finder"
    if "subprocess" in prelude:
        assert found["popen"] == "_on_first_call.<locals>.stub", "a stub until the first process"


def test_outside_agenttrace_run_the_bootstrap_does_nothing() -> None:
    env = {k: v for k, v in child_env().items() if k != "AGENTTRACE_RUN_ID"}
    found = loaded("import subprocess; subprocess.run(['true'])", env)
    assert found["finder"] != "_Finder" and found["popen"] == "Popen.__init__"
    assert found["agenttrace"] == []


def test_the_first_process_sets_tracing_up_and_each_is_a_span(tmp_path: Path) -> None:
    child = "import subprocess; subprocess.run(['true']); subprocess.run(['sh', '-c', 'exit 3'])"
    agent = f"import subprocess, sys; print(subprocess.run([sys.executable, '-c', {child!r}]).returncode)"
    result = run_cli(
        "run", "--store", str(tmp_path / "store"), "--", sys.executable, "-c", agent, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "0"
    rows = query(
        tmp_path / "store",
        "SELECT executable, exit_code, span_id, parent_span_id FROM processes WHERE source = 'python' "
        "ORDER BY start_time",
    )
    assert [(r["executable"], r["exit_code"]) for r in rows] == [
        (Path(sys.executable).name, 0),
        ("true", 0),
        ("sh", 3),
    ], "the child's spans were sent when it exited"
    assert rows[1]["parent_span_id"] == rows[2]["parent_span_id"] == rows[0]["span_id"]


def test_a_process_started_first_from_another_thread_still_hangs_under_the_run(tmp_path: Path) -> None:
    """Tracing set up in a worker thread: the main thread's processes, and the worker's, have the
    run's root span as their parent (TRACEPARENT), as when it is set up in the main thread."""
    agent = (
        "import subprocess, threading\n"
        "t = threading.Thread(target=subprocess.run, args=(['true'],)); t.start(); t.join()\n"
        "subprocess.run(['false'])\n"
    )
    result = run_cli(
        "run", "--store", str(tmp_path / "store"), "--", sys.executable, "-c", agent, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (run,) = query(tmp_path / "store", "SELECT root_span_id FROM runs")
    rows = query(
        tmp_path / "store",
        "SELECT executable, parent_span_id FROM processes WHERE source = 'python' ORDER BY start_time",
    )
    assert [(r["executable"], r["parent_span_id"]) for r in rows] == [
        ("true", run["root_span_id"]),
        ("false", run["root_span_id"]),
    ]


SCANS = """
import importlib.metadata as metadata
scans = []
real = metadata.entry_points
def entry_points(**kw):
    scans.append(kw.get("group"))
    return real(**kw)
metadata.entry_points = entry_points
import pydantic_ai  # a library with instrumentation: tracing is set up, its instrumentor turned on
from opentelemetry import trace
import agenttrace.supervise.bootstrap as b
print(json.dumps({"scans": [g for g in scans if g == "opentelemetry_instrumentor"], "active": b.active(),
                  "sdk": type(trace.get_tracer_provider()).__module__}))
"""


def test_children_use_the_instrumentor_list_handed_down_and_scan_only_when_it_is_not_theirs() -> None:
    handed = child_env()
    assert handed[instrumentors.TRIGGERS_ENV].startswith(sys.prefix + "|")
    code = "import json\n" + SCANS
    result = run_child(code, handed)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "scans": [],
        "active": True,
        "sdk": "opentelemetry.sdk.trace",
    }
    other = child_env(
        **{
            instrumentors.TRIGGERS_ENV: handed[instrumentors.TRIGGERS_ENV].replace(
                sys.prefix, "/another/python"
            ),
            instrumentors.INSTRUMENTORS_ENV: handed[instrumentors.INSTRUMENTORS_ENV].replace(
                sys.prefix, "/another/python"
            ),
        }
    )
    result = run_child(code, other)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["scans"] == ["opentelemetry_instrumentor"]


def test_the_list_handed_down_is_the_one_the_child_would_find() -> None:
    env = instrumentors.python_env()
    found = instrumentors.handed_down(env)
    scanned = instrumentors.genai_instrumentors()
    assert {k: [(i.name, i.distribution) for i in v] for k, v in found.items()} == {
        k: [(i.name, i.distribution) for i in v] for k, v in scanned.items()
    }
    assert env[instrumentors.TRIGGERS_ENV].split("|")[1].split(",") == sorted(
        instrumentors.triggers_of(scanned)
    )
    disabled = instrumentors.handed_down({**env, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai"})
    assert "openai" not in disabled and "anthropic" in disabled, "each child reads its own disabled list"


@pytest.mark.parametrize(
    "garbage",
    [
        {instrumentors.TRIGGERS_ENV: "|||,,subprocess", instrumentors.INSTRUMENTORS_ENV: "{not json"},
        {instrumentors.TRIGGERS_ENV: f"{sys.prefix}|json,os", instrumentors.INSTRUMENTORS_ENV: "[1, 2]"},
        {instrumentors.INSTRUMENTORS_ENV: json.dumps({"prefix": sys.prefix, "libraries": {"openai": [[1]]}})},
    ],
)
def test_what_the_agent_sets_in_those_variables_never_breaks_a_program(garbage: dict[str, str]) -> None:
    program = "import json, subprocess, pydantic_ai; print(subprocess.run(['sh', '-c', 'exit 4']).returncode)"
    result = run_child(program, child_env(**garbage))
    assert (result.returncode, result.stdout) == (0, "4\n"), result.stderr


def test_with_no_receiver_the_program_runs_unchanged_and_says_so_once(tmp_path: Path) -> None:
    program = "import subprocess\nfor _ in range(3): subprocess.run(['true'])\nprint('done')"
    result = run_child(program, child_env())  # nothing listens on port 9
    assert (result.returncode, result.stdout) == (0, "done\n")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) <= 1 and all("could not be sent to the run's receiver" in line for line in lines), lines


def test_the_agent_environment_hands_the_list_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTRACE_PYTHON_TRIGGERS", "/stale|x|y")
    env = agent_env(ROOT, "20260101T000000-test", "http://127.0.0.1:9", 0.5)
    assert env[instrumentors.TRIGGERS_ENV].startswith(f"{sys.prefix}|")
    handed = json.loads(env[instrumentors.INSTRUMENTORS_ENV])
    assert handed["prefix"] == sys.prefix and "openai" in handed["libraries"]
    assert env["PYTHONPATH"].split(os.pathsep)[0].endswith("_bootstrap")
