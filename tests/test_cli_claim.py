"""`agenttrace claim TEXT --evidence X`: any process inside a run records a claim; outside a run,
or with evidence it cannot read, one Error: line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import BIN, free_port, query, run_cli


def test_outside_a_run_it_says_so_and_records_nothing(tmp_path: Path) -> None:
    result = run_cli(
        "claim", "it works", "--evidence", "x.txt", "--store", str(tmp_path / "store"), cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: not inside a run: `agenttrace claim` records into the run of the `agenttrace run` that "
        "started this process (AGENTTRACE_RUN_ID and AGENTTRACE_ENDPOINT are not set)"
    ]
    assert not (tmp_path / "store").exists()


def test_a_run_whose_receiver_is_gone_is_an_error(tmp_path: Path) -> None:
    env = {
        "AGENTTRACE_RUN_ID": "20261125T120000-dead",
        "AGENTTRACE_ENDPOINT": f"http://127.0.0.1:{free_port()}",
    }
    result = run_cli("claim", "it works", env=env, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: the claim could not be sent to the run's supervisor at http://127.0.0.1:")


def test_unreadable_evidence_is_recorded_and_reported_inside_a_run(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine\n")
    claim = str(BIN / "agenttrace")
    script = f"{claim} claim 'half backed' --json --evidence ok.txt --evidence gone.txt; echo exit=$?"
    result = run_cli("run", "--store", str(tmp_path / "store"), "--", "sh", "-c", script, cwd=tmp_path)
    assert "exit=2" in result.stdout
    assert (
        "Error: evidence gone.txt: no such file (the claim is recorded; the evidence gate will fail it)"
        in result.stderr
    )
    recorded = json.loads(result.stdout[: result.stdout.index("exit=")])
    assert [(e["ref"], "sha256" in e, e.get("error")) for e in recorded["evidence"]] == [
        ("ok.txt", True, None),
        ("gone.txt", False, "no such file"),
    ]
    assert result.returncode == 1, "the evidence gate fails the run"
    assert "evidence file gone.txt no such file when the claim was made" in result.stderr
    (row,) = query(tmp_path / "store", "SELECT span_id, text, evidence FROM claims")
    assert (row["span_id"], row["text"], row["evidence"]) == (
        recorded["span_id"],
        "half backed",
        ["ok.txt", "gone.txt"],
    )
    # `agenttrace step` shows the claims made during the step.
    step = json.loads(run_cli("step", "last", "1", "--json", "--store", str(tmp_path / "store")).stdout)
    assert [c["text"] for c in step["claims"]] == ["half backed"]
    assert [(e["ref"], e["resolved"]) for e in step["claims"][0]["evidence"]] == [
        ("ok.txt", True),
        ("gone.txt", False),
    ]
