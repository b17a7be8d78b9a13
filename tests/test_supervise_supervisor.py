"""The supervisor's set-up: what is captured before the agent starts stays what it was then."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from conftest import query, run_cli


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_the_repository_is_recorded_as_it_was_before_the_agent_started(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    git(work, "init", "-q")
    (work / "tracked.txt").write_text("before\n")
    git(work, "add", "tracked.txt")
    git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first")
    first = git(work, "rev-parse", "HEAD")
    # The agent commits at once and leaves a tracked file changed: neither is the run's start.
    agent = (
        "echo changed > tracked.txt && git -c user.name=t -c user.email=t@t commit -q -am second "
        "&& echo again > tracked.txt"
    )
    result = run_cli("run", "--store", str(tmp_path / "store"), "--", "sh", "-c", agent, cwd=work)
    assert result.returncode == 0, result.stderr
    assert git(work, "rev-parse", "HEAD") != first
    rows = query(
        tmp_path / "store",
        "SELECT attributes['vcs.ref.head.revision'] AS commit, attributes['agenttrace.git.dirty'] AS dirty "
        "FROM spans WHERE attributes['agenttrace.span.type'] = 'run'",
    )
    assert rows == [{"commit": first, "dirty": "false"}]


def test_a_directory_that_is_no_repository_records_no_commit(tmp_path: Path) -> None:
    result = run_cli("run", "--store", str(tmp_path / "store"), "--", "true", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = query(
        tmp_path / "store",
        "SELECT attributes['vcs.ref.head.revision'] AS commit FROM spans "
        "WHERE attributes['agenttrace.span.type'] = 'run'",
    )
    assert rows == [{"commit": None}]


def wait_for_derived(store: Path, run_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The run's manifest once its `derived` entry is in (written after `agenttrace run` returned)."""
    deadline = time.monotonic() + timeout
    path = store / "manifests" / f"{run_id}.json"
    while True:
        manifest = json.loads(path.read_text())
        if manifest.get("derived") or time.monotonic() > deadline:
            return manifest
        time.sleep(0.05)


def test_derived_tables_are_written_after_the_verdict_and_then_read(tmp_path: Path) -> None:
    """`agenttrace run` prints its verdict and returns; a detached process writes the run's derived
    tables and lists them in the manifest, and the next `audit` reads them instead of the views,
    with the same verdict."""
    store = tmp_path / "store"
    result = run_cli("run", "--store", str(store), "--json", "--", "sh", "-c", "exit 3", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    manifest = wait_for_derived(store, verdict["run_id"])
    assert manifest["derived"], manifest
    assert (store / "derived" / f"run_id={verdict['run_id']}" / "steps.parquet").is_file()
    again = run_cli("--debug", "audit", "last", "--store", str(store), "--json")
    assert f"run {verdict['run_id']}: read from its derived tables" in again.stderr
    assert json.loads(again.stdout)["state"] == verdict["state"] == "failed"
    assert json.loads(again.stdout)["gates"] == verdict["gates"]
