"""Acceptance: a process killed with SIGKILL leaves a record of everything up to its last flush."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import query, run_cli

AGENT = textwrap.dedent(
    """
    import sys, time
    import agenttrace

    agenttrace.configure(flush_interval=0.2)
    with agenttrace.run("crashy-agent") as run:
        for i in range(1, 4):
            with agenttrace.step(f"step {i}"):
                time.sleep(0.01)
        with agenttrace.step("step 4"):
            print(run.id, flush=True)
            time.sleep(600)   # killed here, with step 4 open
    """
)


def start_agent(store: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", AGENT],
        env={**os.environ, "AGENTTRACE_STORE": str(store)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    assert run_id, "the agent did not start"
    return proc, run_id


def kill_after_flush(proc: subprocess.Popen[str]) -> None:
    time.sleep(0.2 * 4)  # well past one flush interval
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL
    assert proc.stdout is not None
    proc.stdout.close()


def test_sigkilled_agent_shows_finished_steps_and_the_unfinished_one(store: Path) -> None:
    proc, run_id = start_agent(store)
    kill_after_flush(proc)

    result = run_cli("show", "last", "--store", str(store))

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert run_id in out
    for i in (1, 2, 3):
        line = next(line for line in out.splitlines() if f"step {i}" in line)
        assert "ok" in line and "UNFINISHED" not in line
    step4 = next(line for line in out.splitlines() if "step 4" in line)
    assert "UNFINISHED" in step4 and "never ended" in step4
    run_line = next(line for line in out.splitlines() if line.startswith(f"Run {run_id}"))
    assert "unknown" in run_line  # records stopped arriving without an end


def test_killed_run_is_recovered_into_parquet_and_spool_emptied(store: Path) -> None:
    proc, run_id = start_agent(store)
    kill_after_flush(proc)
    spool = store / "spool" / run_id
    assert any(spool.glob("*.arrows")), "the dead writer left its records in the spool"

    rows = query(store, "SELECT name, ended FROM spans WHERE run_id = $r ORDER BY start_time", {"r": run_id})

    assert [(r["name"], r["ended"]) for r in rows] == [
        ("crashy-agent", False),
        ("step 1", True),
        ("step 2", True),
        ("step 3", True),
        ("step 4", False),
    ]
    assert not spool.exists() or not any(spool.glob("*.arrows"))
    assert list((store / "spans" / f"run_id={run_id}").glob("part-*.parquet"))
    again = query(store, "SELECT count(*) AS n FROM spans WHERE run_id = $r", {"r": run_id})
    assert again == [{"n": 5}]


def test_live_run_is_visible_within_a_flush_interval_and_reported_running(store: Path) -> None:
    proc, run_id = start_agent(store)
    try:
        time.sleep(0.2 * 3)
        rows = query(store, "SELECT state FROM runs WHERE run_id = $r", {"r": run_id})
        assert rows == [{"state": "running"}]
        names = query(store, "SELECT name FROM spans WHERE run_id = $r AND NOT ended", {"r": run_id})
        assert sorted(r["name"] for r in names) == ["crashy-agent", "step 4"]
        assert any((store / "spool" / run_id).glob("*.arrows")), "a live writer's spool is left alone"
    finally:
        proc.kill()
        proc.wait(10)
        assert proc.stdout is not None
        proc.stdout.close()
