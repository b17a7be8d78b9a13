"""`agenttrace export --format chrome-trace`: the demo run and a run that leaves an orphan, exported
by the real CLI and read back as the Trace Event Format viewers (chrome://tracing, Perfetto's JSON
importer) read it: metadata names every process and thread, complete events of one thread nest
strictly, counters and instants where they belong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, query, run_cli

from agenttrace.export.chrome_trace import SYNTHETIC_PID

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}


def agenttrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "agenttrace"), *args], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=120,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two runs: `demo` (the failing demo: its model cuts the answer short) and `orphan` (a shell
    agent that leaves `sleep` running; the supervisor kills it)."""
    work = tmp_path_factory.mktemp("chrome")
    store = work / "store"
    done = agenttrace(
        "run", "--store", str(store), "--run-id", "demo", "--objective", str(EXAMPLES / "objective.toml"),
        "--", sys.executable, str(EXAMPLES / "research_agent.py"), "--report", "demo-answer.md",
        "--model", "fake-truncating", cwd=work,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    done = agenttrace(
        "run", "--store", str(store), "--run-id", "orphan", "--on-orphans", "kill", "--",
        "sh", "-c", "sleep 304 & exit 0", cwd=work,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return store


def load(document: dict[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """The complete events by (pid, tid), checked: every process and thread named, nesting strict."""
    assert set(document) == {"traceEvents", "displayTimeUnit", "otherData"}
    events = document["traceEvents"]
    names = {(e["pid"], e["tid"], e["name"]) for e in events if e["ph"] == "M"}
    threads: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for event in events:
        assert event["ph"] in {"M", "X", "C", "i"}
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if event["ph"] == "X":
            assert isinstance(event["ts"], int) and isinstance(event["dur"], int) and event["dur"] >= 0
            threads.setdefault((event["pid"], event["tid"]), []).append(event)
    for (pid, tid), slices in threads.items():
        assert any(n[0] == pid and n[2] == "process_name" for n in names), f"pid {pid} has no name"
        assert (pid, tid, "thread_name") in names, f"tid {tid} has no name"
        for i, a in enumerate(slices):
            a_end = a["ts"] + a["dur"]
            for b in slices[i + 1 :]:
                b_end = b["ts"] + b["dur"]
                disjoint = a_end <= b["ts"] or b_end <= a["ts"]
                nested = (a["ts"] <= b["ts"] and b_end <= a_end) or (b["ts"] <= a["ts"] and a_end <= b_end)
                assert disjoint or nested, f"{a['name']!r} and {b['name']!r} overlap partially"
    return threads


def export(store: Path, run: str) -> dict[str, Any]:
    done = run_cli("export", run, "--format", "chrome-trace", "-o", "-", "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert f"exported run {run} as chrome-trace" in done.stderr
    return json.loads(done.stdout)


def test_the_demo_run_has_a_slice_per_step_process_and_check_on_strictly_nested_threads(store: Path) -> None:
    document = export(store, "demo")
    threads = load(document)
    assert document["displayTimeUnit"] == "ms"
    assert document["otherData"]["run_id"] == "demo" and document["otherData"]["state"] == "failed"
    slices = [e for found in threads.values() for e in found]
    (seen,) = query(
        store,
        "SELECT (SELECT list(pid ORDER BY pid) FROM processes WHERE run_id = 'demo') AS pids, "
        "(SELECT count(*) FROM steps WHERE run_id = 'demo' AND kind <> 'verify') AS steps, "
        "(SELECT count(*) FROM verifications WHERE run_id = 'demo') AS checks",
    )
    assert len(slices) == seen["steps"] + len(seen["pids"]) + seen["checks"] + 2  # + the run, its audit
    processes = [e for e in slices if e["cat"] == "process"]
    assert sorted(e["pid"] for e in processes) == seen["pids"]
    assert all(e["tid"] == e["pid"] < SYNTHETIC_PID for e in processes)
    agent = next(e for e in processes if "research_agent.py" in e["args"]["command_line"])
    steps = sorted((e for e in slices if "step" in e["args"]), key=lambda e: e["args"]["step"])
    assert [e["args"]["step"] for e in steps] == list(range(1, 8))
    assert all(e["pid"] == agent["pid"] and e["tid"] >= SYNTHETIC_PID for e in steps)  # threads of the agent
    assert steps[-1]["args"]["finish_reason"] == "length"
    assert all(agent["ts"] <= e["ts"] and e["ts"] + e["dur"] <= agent["ts"] + agent["dur"] for e in steps)
    failed = sorted(e["name"] for e in slices if e["cat"] == "verify" and e["args"].get("passed") is False)
    assert failed == [
        "verify criterion answers-the-question: fail",
        "verify criterion the-agent-still-compiles: fail",
    ]
    instants = [e for e in document["traceEvents"] if e["ph"] == "i"]
    assert {e["name"] for e in instants} >= {
        "error: run demo: failed",
        "error: verify criterion answers-the-question: fail",
    }
    assert not [e for e in document["traceEvents"] if e["ph"] == "C"]  # no GPU


def test_an_orphaned_process_is_marked_and_its_discovery_is_an_instant(store: Path) -> None:
    document = export(store, "orphan")
    threads = load(document)
    (orphan,) = [e for found in threads.values() for e in found if e["args"].get("orphaned")]
    assert orphan["name"].startswith("sleep (pid ") and orphan["name"].endswith(" (orphaned)")
    assert orphan["args"]["command_line"] == "sleep 304"
    (found,) = [e for e in document["traceEvents"] if e["ph"] == "i" and e["name"].startswith("orphan found")]
    assert found["name"] == f"orphan found: pid {orphan['pid']}"
    assert (found["pid"], found["tid"]) == (orphan["pid"], orphan["tid"])
    assert document["otherData"]["state"] == "failed"
