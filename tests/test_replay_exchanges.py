"""replay.exchanges: exchange spans written by a real supervisor for a real agent (the openai SDK
in a child process, through the proxy, to the fake model server), read back by `load_recording`,
which refuses a run not recorded, a run whose records fail integrity and a changed artifact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import query

from agenttrace.errors import ReplayError
from agenttrace.replay.exchanges import load_recording

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
from fake_model_server import start_in_thread  # noqa: E402

API_KEY = "sk-test-SECRET-exchanges-42"

AGENT = """
import sys
import openai
client = openai.OpenAI(base_url=sys.argv[1], api_key=sys.argv[2], max_retries=0)
for question in sys.argv[3:]:
    answer = client.chat.completions.create(model="fake", messages=[{"role": "user", "content": question}])
    print(answer.choices[0].message.content)
"""

# What the lead's supervisor integration does, in short: the proxy's exchanges become spans under
# the run's root, the root says the run is recorded, the proxy is drained before the root ends.
SUPERVISE = """
import json, sys
from pathlib import Path
from agenttrace.replay.exchanges import record_span, root_attributes
from agenttrace.replay.proxy import LLMProxy
from agenttrace.store.artifact_store import ArtifactStore
from agenttrace.store.layout import StoreLayout
from agenttrace.supervise.supervisor import Supervisor

store, run_id, upstream, record, agent, key, *questions = sys.argv[1:]
artifacts = ArtifactStore(StoreLayout(Path(store)), 1 << 30)

class Recorded(Supervisor):
    def _supervise(self, endpoint):
        if record == "1":
            self._root.set_attributes(root_attributes(str(self.cwd)))
        try:
            return super()._supervise(endpoint)
        finally:
            proxy.stop()

supervisor = None
def on_exchange(exchange):
    record_span(supervisor._tracer, supervisor._root, exchange, artifacts)

proxy = LLMProxy(upstreams={"openai": upstream}, artifacts=artifacts, on_exchange=on_exchange,
                 workdir=str(Path.cwd())).start()
command = [sys.executable, agent, proxy.base_url("openai"), key, *questions]
supervisor = Recorded(command, store=Path(store), run_id=run_id)
result = supervisor.run()
verdict = supervisor.audit(result)
print(json.dumps({"succeeded": verdict.succeeded, "exchanges": [e.to_json() for e in proxy.exchanges]}))
"""


@pytest.fixture
def fake_openai() -> Iterator[str]:
    server, base_url = start_in_thread()
    yield base_url
    server.shutdown()
    server.server_close()


def supervised_run(tmp_path: Path, store: Path, run_id: str, upstream: str, record: bool = True) -> dict:
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    script = tmp_path / "supervise.py"
    script.write_text(SUPERVISE)
    work = tmp_path / f"work-{run_id}"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_"))}
    flag = "1" if record else "0"
    argv = [sys.executable, str(script), str(store), run_id, upstream, flag, str(agent), API_KEY]
    done = subprocess.run(
        [*argv, "Say hello", "Say goodbye"], capture_output=True, text=True, timeout=120, cwd=work, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_recorded_run_loads_back_with_its_bodies(tmp_path: Path, store: Path, fake_openai: str) -> None:
    run = supervised_run(tmp_path, store, "rec-1", fake_openai)
    assert run["succeeded"]
    recording = load_recording(store, "rec-1")
    assert recording.run_id == "rec-1"
    assert recording.workdir == str(tmp_path / "work-rec-1")
    assert [e.seq for e in recording.exchanges] == [1, 2]
    for loaded, live in zip(recording.exchanges, run["exchanges"], strict=True):
        assert loaded.to_json() | {"start_ns": 0, "end_ns": 0} == live | {"start_ns": 0, "end_ns": 0}
        assert abs(loaded.start_ns - live["start_ns"]) < 1000  # microsecond precision in the store
    first = recording.exchanges[0]
    assert json.loads(first.request_body or b"")["messages"][0]["content"] == "Say hello"
    assert json.loads(first.response_body or b"")["choices"][0]["message"]["content"]
    # the exchanges are spans of the run, written by its supervisor, and not steps
    rows = query(
        store,
        "SELECT origin, attributes['agenttrace.exchange.status'] AS status FROM spans "
        "WHERE run_id = 'rec-1' AND attributes['agenttrace.span.type'] = 'llm_exchange'",
    )
    assert rows == [{"origin": "supervisor", "status": "200"}] * 2
    found = subprocess.run(["grep", "-r", "-l", API_KEY, str(store)], capture_output=True, text=True)
    assert found.returncode == 1, found.stdout


def test_a_run_not_recorded_is_refused(tmp_path: Path, store: Path, fake_openai: str) -> None:
    supervised_run(tmp_path, store, "plain-1", fake_openai, record=False)
    with pytest.raises(ReplayError, match="not recorded with `--record`"):
        load_recording(store, "plain-1")


def test_a_changed_artifact_is_refused(tmp_path: Path, store: Path, fake_openai: str) -> None:
    supervised_run(tmp_path, store, "rec-2", fake_openai)
    recording = load_recording(store, "rec-2")
    sha = recording.exchanges[1].response_sha256
    assert sha is not None
    path = store / "artifacts" / "sha256" / sha[:2] / sha
    path.chmod(0o600)
    path.write_bytes(path.read_bytes().replace(b"goodbye", b"GOODBYE"))
    with pytest.raises(ReplayError, match=f"exchange 2 .*{sha}.* changed since it was recorded"):
        load_recording(store, "rec-2")


def test_records_the_agent_forged_are_not_served(tmp_path: Path, store: Path, fake_openai: str) -> None:
    supervised_run(tmp_path, store, "rec-3", fake_openai)
    part = next((store / "spans" / "run_id=rec-3").glob("*.parquet"))
    part.chmod(0o600)
    part.write_bytes(part.read_bytes() + b"\0")
    with pytest.raises(ReplayError, match="fails its integrity check"):
        load_recording(store, "rec-3")


def test_a_run_without_a_manifest_is_refused(store: Path, configured: Path) -> None:
    import agenttrace

    with agenttrace.run("in-process", run_id="inproc-1"):
        agenttrace.llm("gpt-4o", finish_reason="stop")
    with pytest.raises(ReplayError, match="no manifest"):
        load_recording(store, "inproc-1")


def test_a_loaded_recording_replays_the_agent_with_the_upstream_gone(tmp_path: Path, store: Path) -> None:
    from agenttrace.replay.proxy import LLMProxy

    server, base_url = start_in_thread()
    try:
        supervised_run(tmp_path, store, "rec-4", base_url)
        agent = tmp_path / "agent.py"
        direct = subprocess.run(
            [sys.executable, str(agent), base_url, API_KEY, "Say hello", "Say goodbye"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    recording = load_recording(store, "rec-4")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proxy = LLMProxy(recording=recording, workdir=str(elsewhere)).start()
    try:
        replayed = subprocess.run(
            [sys.executable, str(agent), proxy.base_url("openai"), "sk-none", "Say hello", "Say goodbye"],
            capture_output=True, text=True, timeout=60, cwd=elsewhere,
        )  # fmt: skip
    finally:
        proxy.stop()
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == direct.stdout
    assert proxy.divergence is None
    assert sorted((e.replayed_from, e.mode) for e in proxy.exchanges) == [(1, "replay"), (2, "replay")]
