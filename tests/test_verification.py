"""The verification phase of `agenttrace.run(objective=...)`: deliverables checked and copied,
`covers` items looked for, `command` checks run with their timeout, all recorded as spans."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from conftest import query

import agenttrace
from agenttrace.analysis import Database
from agenttrace.audit.gates import load_gates
from agenttrace.audit.verdict import audit
from agenttrace.errors import ConfigError


def violations(store: Path, run_id: str) -> dict[str, list[str]]:
    with Database(store, runs=[run_id]) as db:
        verdict = audit(db, run_id, load_gates(store))
    return {g.gate.name: [v["reason"] for v in g.violations] for g in verdict.gates if g.status == "fail"}


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet is not: its parent here may be a pid 1 that never reaps)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state in ("Z", "X"):
            return False
        time.sleep(0.05)
    return True


def test_a_command_that_outlives_its_timeout_is_killed_with_its_children(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    objective = {
        "criteria": [
            {"id": "hangs", "command": "sleep 60 & echo $! > child.pid; echo started; wait", "timeout": "1s"},
            {"id": "quick", "command": "echo fine", "timeout": 30},
        ]
    }
    started = time.monotonic()
    with agenttrace.run("verify", objective=objective) as run:
        pass
    assert time.monotonic() - started < 20
    child = int((tmp_path / "child.pid").read_text())
    assert not alive(child), "the timeout stops the check's whole process group"

    found = violations(configured, run.id)
    assert found == {"criteria": [found["criteria"][0]]}
    assert found["criteria"][0].startswith(
        "criterion hangs: `sleep 60 & echo $! > child.pid; echo started; wait` did not finish "
        "within 1.0 s (its output is evidence sha256 "
    )
    checks = query(
        configured, "SELECT id, passed, timed_out, output_tail FROM verifications ORDER BY start_time"
    )
    assert [(c["id"], c["passed"], c["timed_out"]) for c in checks] == [
        ("hangs", False, True),
        ("quick", True, False),
    ]
    assert checks[0]["output_tail"] == "started\n" and checks[1]["output_tail"] == "fine\n"


def test_covers_with_regex_and_a_deliverable_the_run_did_not_write(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "old.md").write_text("written before the run\n")
    objective = {
        "deliverables": [{"path": "report.md"}, {"path": "old.md"}],
        "criteria": [
            {
                "id": "ids",
                "covers": [r"CVE-\d{4}-\d+", r"^## Summary$", "GHSA-"],
                "in": "report.md",
                "match": "regex",
            }
        ],
    }
    with agenttrace.run("verify", objective=objective) as run:
        (tmp_path / "report.md").write_text("## Summary\nFixed CVE-2024-1234.\n")
    assert violations(configured, run.id) == {
        "deliverables": [
            "deliverable old.md was not written during the run (it is not in the artifact manifest)"
        ],
        "criteria": ['criterion ids: "GHSA-" is not covered in report.md'],
    }
    states = query(
        configured,
        "SELECT e.Attributes['agenttrace.run.state'] AS state FROM spans, unnest(events) AS u(e) "
        "WHERE e.Name = 'agenttrace.state'",
    )
    assert [s["state"] for s in states] == ["verifying"]


def test_a_bad_objective_raises_before_the_block_runs(configured: Path, tmp_path: Path) -> None:
    ran = []
    objective = {"criteria": [{"id": "c", "covers": ["x"], "in": "nope.md"}]}
    with (
        pytest.raises(ConfigError, match=r"criteria\[0\]\.in: 'nope.md' names no deliverable"),
        agenttrace.run("verify", objective=objective),
    ):
        ran.append(True)
    assert ran == []
    bad = tmp_path / "objective.toml"
    bad.write_text("[limits]\ntokens = 'many'\n")
    with (
        pytest.raises(ConfigError, match=rf"objective {bad}: limits.tokens: must be an integer"),
        agenttrace.run("verify", objective=bad),
    ):
        ran.append(True)
    assert ran == []
