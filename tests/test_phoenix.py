"""A real OTLP backend behind agenttrace's tee: Arize Phoenix, started on loopback for this module.

Phoenix stands in for "the backend a team already uses". Spans go through agenttrace's forwarding
(the receiver's `--forward`, and the in-process exporter's OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and
the tests read them back from Phoenix's own REST API. Phoenix is installed by `make test` (the
`test-phoenix` extra); if it cannot start, the tests fail and say why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, REPO, free_port, query, run_cli, start_serve
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PROJECT = "openinference.project.name"  # the resource attribute Phoenix files spans under


def get_json(url: str) -> Any:
    with NO_PROXY.open(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
    }
    log = (workdir / "phoenix.log").open("w")
    server = subprocess.Popen([str(BIN / "phoenix"), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            get_json(f"{url}/v1/projects")
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                tail = (workdir / "phoenix.log").read_text()[-2000:]
                raise AssertionError(f"Phoenix did not start on {url}:\n{tail}") from None
            time.sleep(0.5)
    yield url
    server.send_signal(signal.SIGINT)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


def phoenix_spans(url: str, project: str, expected: int, timeout: float = 90) -> dict[str, dict[str, Any]]:
    """The spans Phoenix holds for `project`, by span id, once it holds `expected` of them (it
    stores asynchronously after answering the export)."""
    deadline = time.monotonic() + timeout
    found: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline:
        found, cursor = {}, None
        try:
            while True:
                params = {"limit": "1000", **({"cursor": cursor} if cursor else {})}
                page = get_json(
                    f"{url}/v1/projects/{urllib.parse.quote(project)}/spans?{urllib.parse.urlencode(params)}"
                )
                found.update({span["context"]["span_id"]: span for span in page["data"]})
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404: the project does not exist yet
                raise
        if len(found) >= expected:
            return found
        time.sleep(0.5)
    return found


def test_serve_forwards_every_span_unchanged_to_phoenix(phoenix: str, tmp_path: Path) -> None:
    store, port = tmp_path / "store", free_port()
    serve = start_serve(store, port, "--forward", f"{phoenix}/v1/traces")
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "ts-agent", PROJECT: "tee"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
        )
        tracer = provider.get_tracer("agent")
        sent: dict[str, str] = {}
        for run in range(3):
            with tracer.start_as_current_span(f"invoke_agent run-{run}") as root:
                sent[format(root.get_span_context().span_id, "016x")] = root.name
                for step in range(40):
                    with tracer.start_as_current_span(
                        "chat gpt-4o",
                        attributes={"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": step},
                    ) as span:
                        sent[format(span.get_span_context().span_id, "016x")] = span.name
        provider.shutdown()

        stored = phoenix_spans(phoenix, "tee", len(sent))
        assert set(stored) == set(sent), f"Phoenix holds {len(stored)} of {len(sent)} spans"
        assert {sid: s["name"] for sid, s in stored.items()} == sent
        chats = [s for s in stored.values() if s["name"] == "chat gpt-4o"]
        assert sorted(s["attributes"]["gen_ai.usage.input_tokens"] for s in chats) == sorted(
            list(range(40)) * 3
        ), "attributes arrive unchanged"
        local = query(store, "SELECT span_id FROM spans")
        assert {r["span_id"] for r in local} == set(sent), "and agenttrace stored them too"
    finally:
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=30)
    assert "failed 0, dropped 0" in err, err


def test_in_process_exporter_tees_to_phoenix_from_otel_env(phoenix: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    agent = textwrap.dedent(
        """
        import agenttrace

        with agenttrace.run("tee-agent"):
            for i in range(5):
                with agenttrace.step(f"step {i}"):
                    agenttrace.llm(model="gpt-4o", finish_reason="stop", input_tokens=10, output_tokens=i)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", agent],
        env={
            **os.environ,
            "AGENTTRACE_STORE": str(store),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{phoenix}/v1/traces",
            "OTEL_RESOURCE_ATTRIBUTES": f"{PROJECT}=in-process",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    local = {r["span_id"]: r["name"] for r in query(store, "SELECT span_id, name FROM spans")}
    assert len(local) == 11, "the run, five steps, five LLM calls"
    stored = phoenix_spans(phoenix, "in-process", len(local))
    assert {sid: s["name"] for sid, s in stored.items()} == local


def test_phoenix_shows_the_audits_evaluations_on_the_runs_trace(phoenix: str, tmp_path: Path) -> None:
    """Issue 16: `agenttrace run` of the failing demo (the answer cut short) forwards to `agenttrace
    serve --forward <Phoenix>`; Phoenix's API then holds, in the run's trace, the `agenttrace verdict`
    span under the run's root with one `gen_ai.evaluation.result` event per gate, labelled as
    `agenttrace audit --json` says, and the failing gates' reasons."""
    work = tmp_path / "work"
    (work / "examples").mkdir(parents=True)
    for name in ("research_agent.py", "fake_model_server.py", "objective.toml"):
        shutil.copy(REPO / "examples" / name, work / "examples" / name)
    store, port = tmp_path / "store", free_port()
    serve = start_serve(tmp_path / "backend", port, "--forward", f"{phoenix}/v1/traces")
    try:
        agent = [sys.executable, "examples/research_agent.py", "--report", "demo-answer.md"]
        result = run_cli(
            "run", "--store", str(store), "--objective", "examples/objective.toml", "--json", "--",
            *agent, "--model", "fake-truncating",
            env={
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "OTEL_RESOURCE_ATTRIBUTES": f"{PROJECT}=verdicts",
            },
            cwd=work,
            timeout=120,
        )  # fmt: skip
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=30)
    assert result.returncode == 1, result.stderr
    assert "the verdict was not sent" not in result.stderr
    audit = json.loads(run_cli("audit", "--store", str(store), "last", "--json").stdout)
    assert audit["state"] == "failed" and "completion_signal" in {
        g["name"] for g in audit["gates"] if g["status"] == "fail"
    }
    (root,) = query(store, "SELECT trace_id, root_span_id, span_count FROM runs")

    stored = phoenix_spans(phoenix, "verdicts", root["span_count"] + 1)
    (verdict,) = [s for s in stored.values() if s["name"] == "agenttrace verdict"]
    assert verdict["context"]["trace_id"] == root["trace_id"]
    assert verdict["parent_id"] == root["root_span_id"] and root["root_span_id"] in stored
    assert verdict["span_kind"] == "EVALUATOR" and verdict["status_code"] == "ERROR"
    events = [e["attributes"] for e in verdict["events"] if e["name"] == "gen_ai.evaluation.result"]
    assert {e["gen_ai.evaluation.name"]: e["gen_ai.evaluation.score.label"] for e in events} == {
        **{g["name"]: g["status"] for g in audit["gates"]},
        "agenttrace.verdict": "failed",
    }
    assert len(events) == len(audit["gates"]) + 1
    by_name = {e["gen_ai.evaluation.name"]: e for e in events}
    for gate in audit["gates"]:
        if gate["status"] == "fail":
            reasons = "; ".join(v["reason"] for v in gate["violations"])
            assert by_name[gate["name"]]["gen_ai.evaluation.explanation"] == reasons
            assert by_name[gate["name"]]["gen_ai.evaluation.score.value"] == 0
    assert by_name["agenttrace.verdict"]["gen_ai.evaluation.explanation"] == "; ".join(audit["reasons"])
    assert {e["agenttrace.origin"] for e in events} == {"supervisor"}
