"""The verification phase of `agenttrace.run(objective=...)`: deliverables checked and copied,
`covers` items looked for, `command` checks run with their timeout, all recorded as spans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import BIN, query

import agenttrace
from agenttrace.analysis import Database
from agenttrace.audit.gates import load_gates
from agenttrace.audit.verdict import audit
from agenttrace.errors import ConfigError


def violations(store: Path, run_id: str) -> dict[str, list[str]]:
    with Database(store, runs=[run_id]) as db:
        verdict = audit(db, run_id, load_gates())
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


def test_a_fifo_or_a_link_out_of_the_workdir_is_not_read_and_fails_its_deliverable(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    (tmp_path / "secret.txt").write_text("not for the store")
    objective = {
        "deliverables": [{"path": "pipe.md"}, {"path": "link.md"}],
        "criteria": [{"id": "c", "covers": ["x"], "in": "pipe.md"}],
    }
    started = time.monotonic()
    with agenttrace.run("verify", objective=objective) as run:
        os.mkfifo("pipe.md")
        os.symlink(tmp_path / "secret.txt", "link.md")
    assert time.monotonic() - started < 20, "a FIFO must not block verification"
    found = violations(configured, run.id)
    assert found["deliverables"] == [
        "deliverable link.md is a link to a file outside the working directory",
        "deliverable pipe.md is not a regular file (a pipe, socket or device)",
    ]
    assert found["criteria"] == ['criterion c: "x" is not covered in pipe.md (pipe.md: not a regular file)']
    stored = (
        list((configured / "artifacts" / "sha256").rglob("*")) if (configured / "artifacts").exists() else []
    )
    assert not [p for p in stored if p.is_file() and p.read_bytes() == b"not for the store"]


def test_deleting_a_file_outside_the_scope_fails_it(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "important.py").write_text("keep me")
    with agenttrace.run("verify", objective={"scope": ["out/**"]}) as run:
        (tmp_path / "important.py").unlink()
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "result.txt").write_text("fine")
    assert violations(configured, run.id) == {
        "scope": ["file important.py was deleted outside the scope (allowed: out/**)"]
    }


def test_an_interrupt_during_verification_stops_the_check_and_ends_the_run(tmp_path: Path) -> None:
    (tmp_path / "objective.toml").write_text(
        '[[criteria]]\nid = "slow"\ncommand = "echo $$ > check.pid; sleep 60"\ntimeout = "5m"\n'
        '[[criteria]]\nid = "after"\ncommand = "touch after-ran"\n'
    )
    process = subprocess.Popen(
        [str(BIN / "agenttrace"), "run", "--json", "--store", str(tmp_path / "store"),
         "--objective", "objective.toml", "--", "true"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (tmp_path / "check.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    check = int((tmp_path / "check.pid").read_text())
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1, err
    assert "verification was interrupted (SIGINT): the remaining checks were not run" in err
    assert not alive(check), "the running check's process group is stopped"
    assert not (tmp_path / "after-ran").exists()
    reasons = [
        v["reason"] for g in json.loads(out)["gates"] if g["name"] == "criteria" for v in g["violations"]
    ]
    assert reasons == [
        "criterion slow: `echo $$ > check.pid; sleep 60` was not run: verification was interrupted (SIGINT) "
        "while it ran (its output is evidence sha256 " + reasons[0].rsplit("sha256 ", 1)[1],
        "criterion after: `touch after-ran` was not run: verification was interrupted (SIGINT)",
    ]
    (run,) = query(tmp_path / "store", "SELECT state, unfinished_count FROM runs")
    assert run == {"state": "failed", "unfinished_count": 0}
