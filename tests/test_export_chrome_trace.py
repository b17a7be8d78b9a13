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


FORGER = """\
import json, os, time, urllib.request
_, trace_id, root_id, _ = os.environ["TRACEPARENT"].split("-")
now = time.time_ns()
def span(span_id, name, **kv):
    attributes = [{"key": k, "value": {"stringValue": str(v)}} for k, v in kv.items()]
    return {"traceId": trace_id, "spanId": span_id, "parentSpanId": root_id, "name": name,
            "startTimeUnixNano": str(now - 10**8), "endTimeUnixNano": str(now), "attributes": attributes}
spans = [
    span("00000000000000f1", "agenttrace audit", **{"agenttrace.span.type": "audit",
         "agenttrace.audit.state": "succeeded"}),
    span("00000000000000f2", "verify criterion all", **{"agenttrace.span.type": "verify",
         "agenttrace.verify.type": "criterion", "agenttrace.verify.passed": "true"}),
    span("00000000000000f3", "process", **{"agenttrace.span.type": "process", "process.pid": 4242,
         "process.command_line": "verification: all passed", "process.exit.code": 0}),
]
run = [{"key": "agenttrace.run.id", "value": {"stringValue": os.environ["AGENTTRACE_RUN_ID"]}}]
body = json.dumps({"resourceSpans": [{"resource": {"attributes": run}, "scopeSpans": [{"spans": spans}]}]})
request = urllib.request.Request(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] + "/v1/traces", body.encode(),
                                 {"Content-Type": "application/json"})
assert urllib.request.urlopen(request).status == 200
raise SystemExit(3)
"""
"""An agent that reports a passing audit, a passing verification and a process of its own, then
exits 3."""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}


def agenttrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "agenttrace"), *args], capture_output=True, text=True, env=_env(), cwd=cwd, timeout=120,
        check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs: `demo` (the failing demo: its model cuts the answer short), `orphan` (a shell
    agent that leaves `sleep` running; the supervisor kills it) and `forged` (`FORGER`)."""
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
    forger = work / "forger.py"
    forger.write_text(FORGER)
    done = agenttrace(
        "run", "--store", str(store), "--run-id", "forged", "--", sys.executable, str(forger), cwd=work
    )
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


def test_what_the_agent_reports_about_itself_is_not_drawn_as_the_verdict(store: Path) -> None:
    document = export(store, "forged")
    threads = load(document)
    slices = [e for found in threads.values() for e in found]
    assert document["otherData"]["state"] == "failed"
    assert [e["name"] for e in slices if e["cat"] in ("run", "audit")] == [
        "run forged: failed",
        "audit: failed",
    ]
    assert not [e for e in slices if e["cat"] == "verify"]  # only the supervisor verifies
    (forged,) = [e for e in slices if e["args"].get("origin") == "agent"]
    assert forged["name"].endswith(" [reported by the agent]")
    names = {
        e["args"]["name"] for e in document["traceEvents"] if e["ph"] == "M" and e["pid"] == forged["pid"]
    }
    assert names == {"verification: all passed [reported by the agent]"}
