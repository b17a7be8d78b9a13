"""`agenttrace run --record` and `agenttrace replay RUN -- CMD`, as a user runs them.

The agent is examples/research_agent.py (OpenAI chat completions over HTTP, tools that read the
files it is given) and the model is examples/fake_model_server.py on loopback: recorded once
while it runs, then replayed with it stopped.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, free_port, query, run_cli, wait_listening

AGENT = [sys.executable, str(REPO / "examples" / "research_agent.py"), "--report", "answer.md"]
KEY = "sk-test-0123456789abcdefghijklmnop"


@pytest.fixture
def model() -> Iterator[str]:
    """The fake model server; its base URL (ending in /v1). Stopped at the end of the test."""
    with model_server() as url:
        yield url


@contextlib.contextmanager
def model_server() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "fake_model_server.py"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    wait_listening(server, port, "fake model server")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def one_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run of the agent recorded with --record (run id `original`), for every test here to
    copy: its folder holds `store/` and the working directory `work/`."""
    folder = tmp_path_factory.mktemp("recorded")
    work, store = folder / "work", folder / "store"
    work.mkdir()
    with model_server() as model:
        result = run_cli(
            "run", "--store", str(store), "--run-id", "original", "--record", "--", *AGENT,
            env={"OPENAI_BASE_URL": model, "OPENAI_API_KEY": KEY}, cwd=work,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return folder


def recorded(tmp_path: Path, one_recording: Path) -> tuple[Path, Path]:
    """A copy of the recorded run for one test (which may add runs or change files): its store and
    its working directory (another path than the recording's: the normalised requests match all the same)."""
    copy = tmp_path / "recorded"
    shutil.copytree(one_recording, copy, symlinks=True)
    return copy / "store", copy / "work"


def replay(store: Path, work: Path, *args: str, run_id: str = "again", env: dict | None = None):
    return run_cli(
        "replay", "original", "--store", str(store), "--run-id", run_id, *args,
        env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", **(env or {})}, cwd=work,
    )  # fmt: skip


def exchanges(store: Path, run_id: str) -> list[dict]:
    return query(
        store,
        "SELECT attributes['agenttrace.exchange.mode'] AS mode, "
        "attributes['agenttrace.exchange.response_sha256'] AS answer FROM spans "
        "WHERE run_id = $r AND attributes['agenttrace.span.type'] = 'llm_exchange' AND origin = 'supervisor' "
        "ORDER BY TRY_CAST(attributes['agenttrace.exchange.seq'] AS INTEGER)",
        {"r": run_id},
    )


def gate(store: Path, run_id: str, name: str) -> dict:
    audited = run_cli("audit", run_id, "--json", "--store", str(store))
    (found,) = [g for g in json.loads(audited.stdout)["gates"] if g["name"] == name]
    return found


def test_a_replay_with_the_model_gone_makes_the_same_run(tmp_path: Path, one_recording: Path) -> None:
    store, work = recorded(tmp_path, one_recording)
    first_answer = (work / "answer.md").read_text()
    (work / "answer.md").unlink()
    result = replay(store, work, "--", *AGENT)  # the model is unreachable: only the recording answers
    assert result.returncode == 0, result.stderr
    assert (work / "answer.md").read_text() == first_answer
    original, again = exchanges(store, "original"), exchanges(store, "again")
    assert len(original) == 3 and [e["answer"] for e in again] == [e["answer"] for e in original]
    assert {e["mode"] for e in again} == {"replay"}
    (root,) = query(
        store,
        "SELECT attributes['agenttrace.replay_of'] AS of FROM spans "
        "WHERE run_id = 'again' AND parent_span_id IS NULL",
    )
    assert root["of"] == "original"
    assert gate(store, "again", "replay")["status"] == "pass"
    step = json.loads(run_cli("step", "again", "2", "--json", "--store", str(store)).stdout)
    assert step["kind"] == "llm" and step["exchange"]["seq"] == 1, step  # the LLM step's kept exchange
    assert step["exchange"]["response_sha256"] == original[0]["answer"]
    diff = run_cli("diff", "original", "again", "--json", "--store", str(store))
    assert diff.returncode == 0, diff.stdout
    assert json.loads(diff.stdout)["first_divergence"] is None


def test_a_changed_prompt_diverges_with_the_request_diff_and_fails(
    tmp_path: Path, one_recording: Path
) -> None:
    store, work = recorded(tmp_path, one_recording)
    result = replay(store, work, "--", *AGENT, "--task", "Count the lines of the README")
    assert result.returncode == 1, result.stderr
    said = "\n".join(line for line in result.stderr.splitlines() if line.startswith(("agenttrace:", "  ")))
    assert "replay diverged at request 1 (POST /openai/chat/completions)" in said, result.stderr
    assert '"Count the lines of the README"' in said, result.stderr
    found = gate(store, "again", "replay")
    assert found["status"] == "fail"
    (violation,) = found["violations"]
    assert violation["request"] == 1 and "messages[1].content" in violation["reason"], violation


def test_then_live_goes_on_upstream_after_the_divergence(
    tmp_path: Path, model: str, one_recording: Path
) -> None:
    store, work = recorded(tmp_path, one_recording)
    result = replay(
        store, work, "--then", "live", "--", *AGENT, "--task", "Count the words of the sample agent",
        env={"OPENAI_BASE_URL": model},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "going on upstream" in result.stderr
    assert {e["mode"] for e in exchanges(store, "again")} == {"live"}
    assert gate(store, "again", "replay")["status"] == "pass"


def test_from_step_answers_the_first_calls_from_the_recording_then_the_model(
    tmp_path: Path, model: str, one_recording: Path
) -> None:
    store, work = recorded(tmp_path, one_recording)
    result = replay(store, work, "--from-step", "2", "--", *AGENT, env={"OPENAI_BASE_URL": model})
    assert result.returncode == 0, result.stderr
    assert [e["mode"] for e in exchanges(store, "again")] == ["replay", "live", "live"]


def test_the_store_holds_no_api_key_or_bearer_token(tmp_path: Path, one_recording: Path) -> None:
    store, work = recorded(tmp_path, one_recording)
    assert replay(store, work, "--", *AGENT).returncode == 0
    for path in store.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert KEY.encode() not in data, path
            assert b"Bearer sk-" not in data, path


def test_a_recorded_answer_changed_in_the_store_is_refused(tmp_path: Path, one_recording: Path) -> None:
    """The agent runs as the same user and may write into the store: what a replay serves must
    be what was recorded."""
    store, work = recorded(tmp_path, one_recording)
    answer = exchanges(store, "original")[0]["answer"]
    (path,) = store.glob(f"artifacts/sha256/*/{answer}")
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"list_files", b"rm_rf_all_"))
    result = replay(store, work, "--", *AGENT)
    assert result.returncode == 2
    assert result.stderr.startswith("Error:") and answer[:12] in result.stderr, result.stderr
    assert not query(store, "SELECT run_id FROM runs WHERE run_id = 'again'")  # nothing started


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["replay", "nope", "--", "true"], "Error: no run matches 'nope'"),
        (["run", "--then", "live", "--", "true"], "Error: --then and --from-step need --replay RUN"),
        (["run", "--record", "--replay", "x", "--", "true"], "Error: --record and --replay together"),
        (["run", "--replay", "x", "--then", "later", "--", "true"], "Error: --then must be fail or live"),
        (["replay", "last", "--from-step", "0", "--", "true"], "Error: --from-step must be 1 or more"),
    ],
)
def test_bad_replay_requests_are_one_error_line(tmp_path: Path, args: list[str], says: str) -> None:
    store = tmp_path / "store"
    assert run_cli("run", "--store", str(store), "--", "true").returncode == 0
    result = run_cli(args[0], "--store", str(store), *args[1:])
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(says), result.stderr


def test_a_run_recorded_without_record_cannot_be_replayed(tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert run_cli("run", "--store", str(store), "--run-id", "plain", "--", "true").returncode == 0
    result = run_cli("replay", "plain", "--store", str(store), "--", "true")
    assert result.returncode == 2
    assert result.stderr.startswith("Error:") and "--record" in result.stderr, result.stderr
