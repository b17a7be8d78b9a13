"""The supervisor's claim desk: claims the agent sends are validated, their evidence resolved by
the supervisor (files inside the working directory only), and recorded as the supervisor's spans.
Fuzzed with thousands of malformed requests: never a crash, never a 5xx, nothing stored lost."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace

import agenttrace
from agenttrace.capture.api import _finish
from agenttrace.config import load as load_settings
from agenttrace.supervise.claim_desk import ClaimDesk

RUN = "20261201T130000-c1a1"
REFUSALS = {400, 405, 409, 413}


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ClaimDesk, Path, Path]]:
    base = tmp_path_factory.mktemp("desk")
    store, work = base / "store", base / "work"
    work.mkdir()
    (work / "report.md").write_text("ten endpoints audited\n")
    agenttrace.configure(store, flush_interval=0.2)
    tracer = trace.get_tracer("test")
    root = tracer.start_span("run", attributes={"agenttrace.run.id": RUN, "agenttrace.span.type": "run"})
    desk = ClaimDesk(RUN, root, work, load_settings(store), tracer)
    status, answer = desk.handle("POST", request(["report.md"], cwd=str(work)))
    assert status == 200, answer
    yield desk, work, store
    root.end()
    _finish(RUN, str(store))
    rows = query(store, "SELECT text FROM claims WHERE run_id = $r ORDER BY claimed_at", {"r": RUN})
    assert rows and rows[0] == {"text": "it is done"}, "fuzzing must not lose the claim made first"


def request(evidence: list[Any], **fields: Any) -> bytes:
    return json.dumps(
        {"run_id": RUN, "text": "it is done", "evidence": evidence, "cwd": "/", **fields}
    ).encode()


def test_a_claim_is_recorded_with_evidence_the_supervisor_resolved(
    desk: tuple[ClaimDesk, Path, Path],
) -> None:
    claims, work, store = desk
    status, answer = claims.handle(
        "POST", request(["report.md", "https://ci/7", "span:00000000000000aa"], cwd=str(work))
    )
    assert status == 200
    assert [(e["kind"], e.get("error")) for e in answer["evidence"]] == [
        ("file", None),
        ("url", None),
        ("span", None),
    ]
    sha = answer["evidence"][0]["sha256"]
    assert (store / "artifacts" / "sha256" / sha[:2] / sha).read_bytes() == b"ten endpoints audited\n"
    assert str(work / "report.md") in claims.cited_files


@pytest.mark.parametrize(
    ("evidence", "problem"),
    [
        (["/etc/passwd"], "outside the run's working directory"),
        (["../outside.txt"], "outside the run's working directory"),
        (["gone.txt"], "no such file"),
    ],
)
def test_files_outside_the_working_directory_are_refused(
    desk: tuple[ClaimDesk, Path, Path], evidence: list[str], problem: str
) -> None:
    claims, work, _ = desk
    (work.parent / "outside.txt").write_text("private\n")
    status, answer = claims.handle("POST", request(evidence, cwd=str(work)))
    assert status == 200
    assert problem in answer["evidence"][0]["error"]
    assert "sha256" not in answer["evidence"][0]


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b"not json", 400, "a claim is a JSON object"),
        (b"[1, 2]", 400, "a claim is a JSON object"),
        (json.dumps({"run_id": RUN, "text": "", "cwd": "/"}).encode(), 400, "needs its `text`"),
        (
            json.dumps({"run_id": RUN, "text": "x", "evidence": [1], "cwd": "/"}).encode(),
            400,
            "list of strings",
        ),
        (
            json.dumps({"run_id": RUN, "text": "x", "cwd": "relative"}).encode(),
            400,
            "absolute working directory",
        ),
        (json.dumps({"run_id": "other-run", "text": "x", "cwd": "/"}).encode(), 409, "not 'other-run'"),
        (b"{" + b" " * (300 * 1024) + b"}", 413, "at most"),
    ],
)
def test_malformed_claims_are_refused_with_a_reason(
    desk: tuple[ClaimDesk, Path, Path], body: bytes, status: int, problem: str
) -> None:
    got, answer = desk[0].handle("POST", body)
    assert got == status and problem in answer["error"]


def test_only_post(desk: tuple[ClaimDesk, Path, Path]) -> None:
    assert desk[0].handle("GET", b"")[0] == 405


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@fuzz(1500)
@given(body=st.binary(max_size=2048))
def test_fuzz_random_bytes(desk: tuple[ClaimDesk, Path, Path], body: bytes) -> None:
    status, answer = desk[0].handle("POST", body)
    assert status in REFUSALS | {200}, answer


@fuzz(1500)
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "run_id": st.sampled_from([RUN, "", "x"]) | JSON_VALUES,
            "text": st.text(max_size=50) | JSON_VALUES,
            "evidence": st.lists(st.text(max_size=40), max_size=5) | JSON_VALUES,
            "cwd": st.sampled_from(["/", "/tmp", "rel"]) | st.text(max_size=20) | JSON_VALUES,
            "traceparent": st.text(max_size=60) | JSON_VALUES,
        },
    )
)
def test_fuzz_claim_fields(desk: tuple[ClaimDesk, Path, Path], fields: dict[str, Any]) -> None:
    status, answer = desk[0].handle("POST", json.dumps(fields).encode())
    assert status in REFUSALS | {200}, answer
    if status == 200:
        for item in answer["evidence"]:
            if item["kind"] == "file" and "sha256" in item:
                assert Path(item["path"]).resolve().is_relative_to(desk[1].resolve())
