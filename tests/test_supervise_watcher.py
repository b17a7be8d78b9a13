"""The process watcher with real processes: the TRACEPARENT a process was exec'd with, and names.

A process whose TRACEPARENT names another span than its parent's is `declared` under that span
(Claude Code hands its Bash tool's span to the tool's processes); `agenttrace run` records it on
the process span, and show and step draw it there. It is the agent's word: it moves where a
process is drawn and nothing else, so a TRACEPARENT naming a span that is not in the run leaves
the process, the verdict and the orphan gate as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import query, run_cli

from agenttrace.supervise import procfs
from agenttrace.supervise.watcher import Proc, ProcessWatcher, become_subreaper

A = "00-" + "a" * 32 + "-" + "1" * 16 + "-01"
B = "00-" + "b" * 32 + "-" + "2" * 16 + "-01"


@pytest.fixture(scope="module", autouse=True)
def subreaper() -> Iterator[None]:
    """The watcher reaps the command's orphans, as `agenttrace run` does (tests run in a worker)."""
    assert become_subreaper()
    yield


def watch(script: str, env: dict[str, str]) -> dict[int, Proc]:
    """Run `sh -c script` under a watcher until it exits; every process seen, by pid."""
    child = subprocess.Popen(["sh", "-c", script], env={"PATH": os.environ["PATH"], **env})
    watcher = ProcessWatcher(child.pid, on_start=lambda p: None, on_end=lambda p: None)
    watcher.start()
    try:
        while not watcher.root_exited.wait(0.05):
            pass
        deadline = time.monotonic() + 10  # its children: ended and reaped
        while watcher.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
        child.returncode = 0  # reaped by the watcher
    return watcher.procs


def read_traceparent(env: dict[str, str]) -> str | None:
    """procfs.traceparent of a live `sleep` with `env` (once its exec has set the environment up)."""
    with subprocess.Popen(["sleep", "5"], env=env) as process:
        try:
            deadline = time.monotonic() + 10
            while (value := procfs.traceparent(process.pid)) is None and time.monotonic() < deadline:
                time.sleep(0.01)
            return value
        finally:
            process.kill()


def test_traceparent_reads_the_environment_a_process_was_execd_with() -> None:
    assert read_traceparent({"TRACEPARENT": A, "X": "1"}) == "a" * 32 + "-" + "1" * 16
    assert read_traceparent({"TRACEPARENT": "junk", "X": "1"}) == ""
    assert read_traceparent({"TRACEPARENT": "00-" + "0" * 32 + "-" + "1" * 16 + "-01", "X": "1"}) == ""
    assert read_traceparent({"X": "1"}) == ""
    assert procfs.traceparent(2**22 + 1) is None  # no such process


def test_a_process_with_another_traceparent_than_its_parents_is_declared_under_that_span() -> None:
    procs = watch(
        # a child the agent handed span B, a grandchild inheriting it, a child inheriting A
        f"TRACEPARENT={B} sh -c 'sleep 0.5; echo done' & sleep 0.5; wait",
        {"TRACEPARENT": A},
    )
    by_argv = {tuple(p.argv): p for p in procs.values()}
    tool = by_argv[("sh", "-c", "sleep 0.5; echo done")]
    assert tool.declared == "b" * 32 + "-" + "2" * 16
    under_tool = [p for p in procs.values() if p.ppid == tool.pid]
    assert [p.argv for p in under_tool] == [["sleep", "0.5"]]
    assert under_tool[0].declared is None  # same TRACEPARENT as its parent: drawn under it
    root_sleep = [p for p in procs.values() if p.argv == ["sleep", "0.5"] and p.ppid != tool.pid]
    assert len(root_sleep) == 1 and root_sleep[0].declared is None  # A: what the command was given
    assert all(p.declared is None for p in procs.values() if p is not tool)


def test_a_subshell_that_never_execs_is_named_after_its_parent_not_unknown() -> None:
    # `watch` starts the command before the watcher listens (agenttrace run listens first): the
    # sleep lets the watcher start before bash does, so bash is seen with its argv even on a busy
    # machine (a process that started and ended unwatched is another matter than its name).
    procs = watch("sleep 0.3; bash -c 'for i in 1 2 3 4 5 6 7 8; do (exit 3); done'; true", {})
    # (this worker is a subreaper: another test's orphans may be its children too)
    looping = [
        p for p in procs.values() if p.argv[:2] == ["bash", "-c"] and "do (exit 3)" in " ".join(p.argv)
    ]
    bash = [p for p in looping if p.ppid not in {q.pid for q in looping}]  # not one of its subshells
    assert len(bash) == 1
    subshells = [p for p in procs.values() if p.ppid == bash[0].pid]
    assert subshells  # in poll mode one that lived between two polls may be missed
    for proc in subshells:
        assert proc.name == "bash", proc  # argv too where it was read, or known from the events
        assert proc.exit_code in (3, None)


def test_agenttrace_run_records_the_span_and_the_agents_word_changes_no_verdict(tmp_path: Path) -> None:
    """A TRACEPARENT naming a span the run does not have: the process keeps its place, the run
    passes, `processes` lists it; left running, the orphan gate still fails the run."""
    store = tmp_path / "store"
    tool = f"TRACEPARENT={B} sh -c 'sleep 0.3; true'"
    result = run_cli("run", "--store", str(store), "--run-id", "said", "--", "sh", "-c", tool, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = query(
        store,
        "SELECT span_id, parent_span_id, attributes FROM spans WHERE run_id = 'said' "
        "AND attributes['agenttrace.process.traceparent.span_id'] <> ''",
    )
    assert len(rows) == 1, rows
    assert rows[0]["attributes"]["agenttrace.process.traceparent.trace_id"] == "b" * 32
    assert rows[0]["attributes"]["agenttrace.process.traceparent.span_id"] == "2" * 16
    processes = query(store, "SELECT span_id, parent_span_id FROM processes WHERE run_id = 'said'")
    assert {"span_id": rows[0]["span_id"], "parent_span_id": rows[0]["parent_span_id"]} in processes
    shown = run_cli("show", "--store", str(store), "said").stdout
    assert "not in this run" not in shown and "process sleep" in shown, shown

    left = f"TRACEPARENT={B} sleep 30 & exit 0"
    result = run_cli(
        "run", "--store", str(store), "--run-id", "left", "--on-orphans", "kill", "--", "sh", "-c", left,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    audit = json.loads(run_cli("audit", "--store", str(store), "left", "--json").stdout)
    gates = {g["name"]: g for g in audit["gates"]}
    assert gates["orphan_processes"]["status"] == "fail"
    assert "sleep 30" in gates["orphan_processes"]["violations"][0]["reason"]
    assert gates["unfinished_spans"]["status"] == "pass"
