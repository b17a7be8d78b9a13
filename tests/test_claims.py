"""`agenttrace.claim()` in a Python agent: evidence resolved when claimed, re-checked when the run
ends, judged by the `evidence` gate."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import query

import agenttrace
from agenttrace.analysis import Database
from agenttrace.audit.gates import load_gates
from agenttrace.audit.verdict import audit
from agenttrace.errors import ConfigError


def evidence_violations(store: Path, run_id: str) -> list[str]:
    with Database(store, runs=[run_id]) as db:
        verdict = audit(db, run_id, [g for g in load_gates() if g.name == "evidence"])
    (result,) = verdict.gates
    return [v["reason"] for v in result.violations]


def test_evidence_of_each_kind_is_resolved_when_claimed(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("notes.txt").write_text("checked\n")
    Path("folder").mkdir()
    with agenttrace.run("claims") as run:
        with agenttrace.tool_call("run_tests") as tests:
            pass
        claim_id = agenttrace.claim(
            "the tests pass",
            evidence=[
                "notes.txt",
                "https://ci.example/run/7",
                tests,
                f"span:{'ab' * 8}",
                "missing.txt",
                "folder",
            ],
        )
    (claim,) = query(configured, "SELECT * FROM claims")
    assert claim["span_id"] == claim_id and claim["text"] == "the tests pass"
    rows = query(configured, "SELECT * FROM claim_evidence ORDER BY position")
    assert [(r["kind"], r["ref"]) for r in rows] == [
        ("file", "notes.txt"),
        ("url", "https://ci.example/run/7"),
        ("span", f"{tests.span.get_span_context().span_id:016x}"),
        ("span", "ab" * 8),
        ("file", "missing.txt"),
        ("file", "folder"),
    ]
    notes = rows[0]
    assert (notes["path"], notes["size"], notes["content_type"], notes["stored"]) == (
        str(tmp_path / "notes.txt"), 8, "text/plain", True,
    )  # fmt: skip
    assert [r["problem"] is None for r in rows] == [True, False, True, False, False, False]
    assert evidence_violations(configured, run.id) == [
        'claim "the tests pass": URL https://ci.example/run/7 was never fetched with a 2xx response '
        "during the run",
        f'claim "the tests pass": evidence span {"ab" * 8} is not in the run',
        'claim "the tests pass": evidence file missing.txt no such file when the claim was made',
        'claim "the tests pass": evidence file folder is a directory, not a file when the claim was made',
    ]
    (artifact,) = query(configured, "SELECT * FROM artifacts WHERE role = 'evidence'")
    assert (artifact["path"], artifact["span_id"]) == (str(tmp_path / "notes.txt"), claim_id)


def test_a_file_changed_after_the_claim_and_a_failed_span_do_not_back_it(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("result.json").write_text('{"passed": 3}')
    with agenttrace.run("claims") as run:
        with pytest.raises(RuntimeError), agenttrace.tool_call("deploy") as deploy:
            raise RuntimeError("connection refused")
        agenttrace.claim("deployed", evidence=[deploy])
        agenttrace.claim("all passed", evidence="result.json")
        Path("result.json").write_text('{"passed": 2, "failed": 1}')
        agenttrace.claim("nothing to see")
    reasons = evidence_violations(configured, run.id)  # in the order the claims were made
    assert reasons[0].startswith('claim "deployed": evidence span ')
    assert reasons[0].endswith("(execute_tool deploy) failed: RuntimeError: connection refused")
    assert reasons[2] == 'claim "nothing to see" has no evidence'
    assert reasons[1].startswith(
        'claim "all passed": evidence file result.json changed after the claim (sha256 '
    )
    assert len(reasons) == 3
    (check,) = query(configured, "SELECT * FROM verifications WHERE type = 'evidence'")
    assert check["path"] == str(tmp_path / "result.json") and check["found"] is True


def test_a_file_deleted_after_the_claim_still_backs_it_with_its_stored_copy(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("scratch.log").write_text("ok\n")
    with agenttrace.run("claims") as run:
        agenttrace.claim("the build printed ok", evidence="scratch.log")
        Path("scratch.log").unlink()
    assert evidence_violations(configured, run.id) == []
    (check,) = query(configured, "SELECT found FROM verifications WHERE type = 'evidence'")
    assert check["found"] is False


def test_a_claim_needs_text_and_known_kinds_of_evidence(configured: Path) -> None:
    with agenttrace.run("claims"):
        with pytest.raises(ConfigError, match="a claim needs its text"):
            agenttrace.claim("  ")
        with pytest.raises(ConfigError, match="evidence must be a path, a URL or a span id, got int"):
            agenttrace.claim("x", evidence=[42])
        with pytest.raises(ConfigError, match="a span id is 16 hex digits"):
            agenttrace.claim("x", evidence=["span:xyz"])


def test_the_run_itself_a_later_span_a_device_or_a_broken_record_do_not_back_a_claim(
    configured: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opentelemetry import trace

    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "pipe")  # a device outside the working directory is refused for that alone
    started = time.monotonic()
    with agenttrace.run("claims") as run:
        root = f"span:{run.span.get_span_context().span_id:016x}"
        with agenttrace.tool_call("long_job") as job:
            agenttrace.claim("the job is done", evidence=[job])  # made before the job ended
        agenttrace.claim("the run says so", evidence=[root])
        agenttrace.claim("random is random", evidence=["pipe"])
        with trace.get_tracer("other-producer").start_as_current_span(
            "claim", attributes={"agenttrace.span.type": "claim", "agenttrace.claim.text": "mine",
                                 "agenttrace.claim.evidence": "report.md"},
        ):  # fmt: skip
            pass
    assert time.monotonic() - started < 20, "a device must not be read"
    reasons = evidence_violations(configured, run.id)
    assert reasons[0].startswith('claim "the job is done": evidence span ')
    assert reasons[0].endswith("(execute_tool long_job) ended after the claim was made")
    assert reasons[1] == (
        f'claim "the run says so": evidence span {root[5:]} is the run\'s own run span, '
        "not work that backs a claim"
    )
    assert reasons[2] == (
        'claim "random is random": evidence file pipe is not a regular file (a pipe, socket or device) '
        "when the claim was made"
    )
    assert (
        reasons[3]
        == 'claim "mine": its evidence record is not a JSON list of evidence, so it cannot be checked'
    )
    assert len(reasons) == 4
