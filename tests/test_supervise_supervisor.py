"""The supervisor's set-up: what is captured before the agent starts stays what it was then."""

from __future__ import annotations

import subprocess
from pathlib import Path

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
