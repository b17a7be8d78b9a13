"""Zero-code Python: a model called over plain HTTP (urllib, http.client, requests; no SDK, so no
GenAI instrumentor sees it) is recorded as a `POST <path>` client span with
`agenttrace.http.model_api`, and a run whose only trace of a model is such a call fails
`completion_signal`: nothing recorded says whether the answer was complete (issue 12). A run with
neither an LLM step nor a model-API call (a command that is no agent) leaves the gate n/a.

The agents are real Python programs under `agenttrace run`, calling the scripted OpenAI-compatible
fake model (examples/fake_model_server.py) on loopback.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, query, run_cli
from opentelemetry.trace import SpanKind

from agenttrace.analysis import Database
from agenttrace.audit.gates import builtin_gates
from agenttrace.audit.verdict import evaluate
from agenttrace.supervise import http_hook

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
from fake_model_server import FakeModelServer, start_in_thread  # noqa: E402

HAS_REQUESTS = importlib.util.find_spec("requests") is not None
UNSEEN = "the agent called a model API over HTTP ("

AGENT = """\
import http.client
import json
import os
import sys
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from opentelemetry import trace

BASE = os.environ["OPENAI_BASE_URL"]  # http://127.0.0.1:PORT/v1
BODY = json.dumps({"model": "fake-gpt", "messages": [{"role": "user", "content": "Hi"}]}).encode()
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-not-a-real-key"}


def post(url):
    request = urllib.request.Request(url, data=BODY, headers=HEADERS)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, None


for step in sys.argv[1:]:
    if step == "urllib":  # inside a span of the agent's own: the call is its child
        with trace.get_tracer("agent").start_as_current_span("turn"):
            status, reply = post(BASE + "/chat/completions")
        print("urllib", status, reply["choices"][0]["finish_reason"])
    elif step == "query":  # a query string (Azure's api-version, Gemini's key) is not recorded
        print("query", post(BASE + "/chat/completions?api-version=2024-01-01&key=SECRET")[0])
    elif step == "keep-alive":  # two requests on one connection: two calls
        parts = urlsplit(BASE)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        for _ in range(2):
            conn.request("POST", parts.path + "/chat/completions", BODY, HEADERS)
            response = conn.getresponse()
            print("keep-alive", response.status, json.loads(response.read())["object"])
        conn.close()
    elif step == "requests":
        import requests

        response = requests.post(BASE + "/chat/completions", data=BODY, headers=HEADERS, timeout=30)
        print("requests", response.status_code, response.json()["choices"][0]["finish_reason"])
    elif step == "not-a-model":  # other requests: no span
        print("not-a-model", post(BASE + "/files/upload")[0])
        try:
            urllib.request.urlopen(BASE + "/chat/completions", timeout=30)  # a GET is no call
        except urllib.error.HTTPError as exc:
            print("get", exc.code)
    elif step == "closed-port":  # the program's own error, as it would be without agenttrace
        try:
            post("http://127.0.0.1:" + os.environ["CLOSED_PORT"] + "/v1/chat/completions")
        except urllib.error.URLError as exc:
            print("closed-port", type(exc).__name__, type(exc.reason).__name__)
    elif step == "llm-step":  # the agent records the call as an LLM step (README): that step rules
        import agenttrace

        status, reply = post(BASE + "/chat/completions")
        agenttrace.llm("fake-gpt", finish_reason=reply["choices"][0]["finish_reason"])
        print("llm-step", status)
    elif step == "llm-step-cut":  # the same with the answer cut off: the gate reads the step
        import agenttrace

        agenttrace.llm("fake-gpt", finish_reason="length")
        print("llm-step-cut")
"""


@pytest.fixture
def model_server() -> Iterator[FakeModelServer]:
    server, _ = start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def run_agent(tmp_path: Path, server: FakeModelServer, *steps: str) -> tuple[Any, Path]:
    """`agenttrace run --json -- python agent.py STEPS...`; the result and the store."""
    (tmp_path / "agent.py").write_text(AGENT)
    store = tmp_path / "store"
    result = run_cli(
        "run", "--json", "--store", str(store), "--", sys.executable, "agent.py", *steps,
        cwd=tmp_path,
        timeout=120,
        env={"OPENAI_BASE_URL": server.base_url, "CLOSED_PORT": str(free_port())},
    )  # fmt: skip
    return result, store


def verdict(result: Any) -> dict[str, Any]:
    """The `--json` verdict, printed after what the agent printed."""
    lines = result.stdout.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads("\n".join(lines[start:]))
    raise AssertionError(f"no verdict in {result.stdout!r}\n{result.stderr}")


def gate(result: Any, name: str) -> dict[str, Any]:
    return next(g for g in verdict(result)["gates"] if g["name"] == name)


def printed(result: Any) -> list[str]:
    return [line for line in result.stdout.splitlines() if not line.startswith(("{", " ", "}"))]


def model_api_spans(store: Path) -> list[dict[str, Any]]:
    return query(
        store,
        "SELECT s.name, s.kind, s.status_code, s.status_message, s.attributes, s.ended, "
        "p.name AS parent FROM spans s LEFT JOIN spans p ON p.span_id = s.parent_span_id "
        "WHERE s.attributes['agenttrace.http.model_api'] = 'true' ORDER BY s.start_time",
    )


# -- which requests are model calls ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target", "path"),
    [
        ("POST", "/v1/chat/completions", "/v1/chat/completions"),
        ("post", "/openai/deployments/g/chat/completions?v=1", "/openai/deployments/g/chat/completions"),
        ("POST", "/v1/messages/", "/v1/messages"),
        ("POST", "/v1beta/models/gemini:generateContent?key=SECRET", "/v1beta/models/gemini:generateContent"),
        ("POST", "/v1beta/models/g:streamGenerateContent?alt=sse", "/v1beta/models/g:streamGenerateContent"),
        ("POST", "/api/chat", "/api/chat"),
        ("POST", "http://proxy.example/v1/responses", "/v1/responses"),
        ("POST", "/v1/embeddings", "/v1/embeddings"),
        ("GET", "/v1/chat/completions", None),
        ("POST", "/v1/files", None),
        ("POST", "/channels/1/messages", None),
        ("POST", "/v1/traces", None),
    ],
)  # fmt: skip
def test_model_api_paths(method: str, target: str, path: str | None) -> None:
    assert http_hook.model_api_path(method, target) == path


def test_the_hook_and_the_gate_read_the_same_paths(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    rows = query(tmp_path / "empty", "SELECT path_suffix, answers FROM model_api_paths")
    assert sorted(r["path_suffix"] for r in rows) == sorted(http_hook.MODEL_API_PATHS)
    assert [r["path_suffix"] for r in rows if not r["answers"]] == ["/embeddings"]


# -- real agents under `agenttrace run` ------------------------------------------------------------


def test_model_calls_over_urllib_and_http_client_are_spans_and_fail_completion_signal(
    tmp_path: Path, model_server: FakeModelServer
) -> None:
    result, store = run_agent(tmp_path, model_server, "urllib", "query", "keep-alive")
    assert printed(result)[:4] == [
        "urllib 200 stop",
        "query 404",
        "keep-alive 200 chat.completion",
        "keep-alive 200 chat.completion",
    ], result.stderr
    spans = model_api_spans(store)
    port = str(model_server.server_address[1])
    assert [(s["name"], s["kind"], s["parent"], s["ended"]) for s in spans] == [
        ("POST /v1/chat/completions", "Client", "turn", True),
        ("POST /v1/chat/completions", "Client", "python", True),
        ("POST /v1/chat/completions", "Client", "python", True),
        ("POST /v1/chat/completions", "Client", "python", True),
    ]
    first = spans[0]["attributes"]
    assert {k: first[k] for k in first if k != "agenttrace.run.id"} == {
        "http.request.method": "POST",
        "url.path": "/v1/chat/completions",
        "server.address": "127.0.0.1",
        "server.port": port,
        "http.response.status_code": "200",
        "agenttrace.http.model_api": "true",
    }
    assert spans[0]["status_code"] == "Unset"
    assert spans[1]["attributes"]["http.response.status_code"] == "404"  # the query string is not a path
    assert (spans[1]["status_code"], spans[1]["status_message"]) == ("Error", "HTTP 404")
    assert "SECRET" not in json.dumps(spans, default=str)
    assert query(store, "SELECT count(*) AS n FROM steps WHERE kind = 'llm'") == [{"n": 0}]

    signal = gate(result, "completion_signal")
    assert signal["status"] == "fail"
    (violation,) = signal["violations"]
    assert violation["reason"] == (
        "the agent called a model API over HTTP (4 calls: POST /v1/chat/completions) and no LLM step "
        "describes them: whether its last answer was complete cannot be checked; instrument the client "
        '(see README, "Python with no code change")'
    )
    assert verdict(result)["state"] == "failed"


@pytest.mark.skipif(not HAS_REQUESTS, reason="requests is not installed")
def test_a_model_call_over_requests_is_a_span(tmp_path: Path, model_server: FakeModelServer) -> None:
    result, store = run_agent(tmp_path, model_server, "requests")
    assert printed(result)[:1] == ["requests 200 stop"], result.stderr
    spans = model_api_spans(store)
    assert [(s["name"], s["attributes"]["http.response.status_code"]) for s in spans] == [
        ("POST /v1/chat/completions", "200")
    ]
    assert gate(result, "completion_signal")["violations"][0]["reason"].startswith(
        UNSEEN + "1 call: POST /v1/chat/completions) and no LLM step describes it:"
    )


def test_other_requests_make_no_span_and_a_command_with_no_model_is_not_judged(
    tmp_path: Path, model_server: FakeModelServer
) -> None:
    result, store = run_agent(tmp_path, model_server, "not-a-model")
    assert printed(result)[:2] == ["not-a-model 404", "get 404"], result.stderr
    assert model_api_spans(store) == []
    assert gate(result, "completion_signal")["status"] == "n/a"


def test_a_failed_request_raises_only_the_programs_own_error(
    tmp_path: Path, model_server: FakeModelServer
) -> None:
    result, store = run_agent(tmp_path, model_server, "closed-port", "urllib")
    assert printed(result)[:2] == ["closed-port URLError ConnectionRefusedError", "urllib 200 stop"]
    assert "Traceback" not in result.stderr
    refused, answered = model_api_spans(store)
    assert refused["ended"] and refused["status_code"] == "Error"
    assert refused["attributes"]["error.type"] == "ConnectionRefusedError"
    assert "http.response.status_code" not in refused["attributes"]
    assert answered["attributes"]["http.response.status_code"] == "200"
    assert verdict(result)["exit"]["code"] == 0


def test_with_an_llm_step_the_gate_reads_the_step(tmp_path: Path, model_server: FakeModelServer) -> None:
    """A model-API call that an LLM step describes changes nothing: the step's finish reason rules."""
    result, store = run_agent(tmp_path, model_server, "llm-step")
    assert printed(result)[:1] == ["llm-step 200"], result.stderr
    assert len(model_api_spans(store)) == 1
    assert gate(result, "completion_signal")["status"] == "pass"
    result, store = run_agent(tmp_path, model_server, "urllib", "llm-step-cut")
    (violation,) = gate(result, "completion_signal")["violations"]
    assert violation["reason"].startswith("the last LLM response was cut short (finish reason `length`)")


# -- the gate, on spans of any HTTP instrumentation -------------------------------------------------


def test_the_gate_reads_http_spans_of_other_instrumentations(tmp_path: Path, make_provider: Any) -> None:
    """An OpenTelemetry HTTP client span (url.full, or the old http.url / http.method) of a call
    to a model API counts as one, marker or not; an embedding is no answer."""
    store = tmp_path / "store"
    provider = make_provider(store)
    tracer = provider.get_tracer("opentelemetry.instrumentation.requests")
    calls = {
        "embeddings-only": [
            {"http.request.method": "POST", "url.full": "https://api.openai.com/v1/embeddings"}
        ],
        "anthropic": [
            {"http.request.method": "POST", "url.full": "https://api.anthropic.com/v1/messages?beta=true"},
            {"http.method": "POST", "http.url": "http://localhost:11434/api/generate"},
        ],
        "no-model": [{"http.request.method": "POST", "url.full": "https://example.com/v1/files"}],
    }
    for run_id, spans in calls.items():
        for attributes in spans:
            tracer.start_span(
                "POST", kind=SpanKind.CLIENT, attributes={"agenttrace.run.id": run_id, **attributes}
            ).end()
    provider.force_flush()
    provider.shutdown()
    (completion_signal,) = [g for g in builtin_gates() if g.name == "completion_signal"]
    with Database(store) as db:
        results = {run_id: evaluate(db, completion_signal, run_id) for run_id in calls}
    assert {run_id: r.status for run_id, r in results.items()} == {
        "embeddings-only": "n/a",
        "anthropic": "fail",
        "no-model": "n/a",
    }
    assert (
        results["anthropic"]
        .violations[0]["reason"]
        .startswith(
            UNSEEN + "2 calls: POST /api/generate, POST /v1/messages) and no LLM step describes them:"
        )
    )
