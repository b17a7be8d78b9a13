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
import gzip
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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


def test_model_calls_over_urllib_and_http_client_are_spans(
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
    # the three answers the agent read (not the 404's) are LLM steps, each under its POST span
    steps = query(
        store,
        "SELECT st.finish_reason, p.name AS parent FROM steps st JOIN spans s ON s.span_id = st.span_id "
        "JOIN spans p ON p.span_id = s.parent_span_id WHERE st.kind = 'llm' ORDER BY st.start_time",
    )
    assert steps == [{"finish_reason": "stop", "parent": "POST /v1/chat/completions"}] * 3
    assert gate(result, "completion_signal")["status"] == "pass"


def test_a_model_call_over_requests_is_a_span(tmp_path: Path, model_server: FakeModelServer) -> None:
    result, store = run_agent(tmp_path, model_server, "requests")
    assert printed(result)[:1] == ["requests 200 stop"], result.stderr
    spans = model_api_spans(store)
    assert [(s["name"], s["attributes"]["http.response.status_code"]) for s in spans] == [
        ("POST /v1/chat/completions", "200")
    ]
    assert query(store, "SELECT finish_reason FROM steps WHERE kind = 'llm'") == [{"finish_reason": "stop"}]
    assert gate(result, "completion_signal")["status"] == "pass"


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


# -- the model's answer, as the program reads it ---------------------------------------------------


def _sse(*events: dict[str, Any], done: bool = False) -> bytes:
    lines = [f"data: {json.dumps(e)}\n\n" for e in events] + (["data: [DONE]\n\n"] if done else [])
    return "".join(lines).encode()


def _chat(finish: str, content: str = "In stock: screws.", **message: Any) -> bytes:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": content, **message},
        "finish_reason": finish,
    }
    usage = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    return json.dumps(
        {"object": "chat.completion", "model": "fake-gpt-1", "choices": [choice], "usage": usage}
    ).encode()


CANNED: dict[str, tuple[str, bytes]] = {
    "stop": ("application/json", _chat("stop")),
    "length": ("application/json", _chat("length", "In stock: three boxes of screws, two ham")),
    "tools": ("application/json", _chat("tool_calls", None, tool_calls=[
        {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}])),
    "sse": ("text/event-stream", _sse(
        {"object": "chat.completion.chunk", "model": "fake-gpt-1", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "In stock"}, "finish_reason": None}]},
        {"object": "chat.completion.chunk", "model": "fake-gpt-1", "choices": [
            {"index": 0, "delta": {}, "finish_reason": "length"}]},
        {"object": "chat.completion.chunk", "model": "fake-gpt-1", "choices": [],
         "usage": {"prompt_tokens": 11, "completion_tokens": 2}},
        done=True)),
    "anthropic": ("application/json", json.dumps({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "fake-claude",
        "content": [{"type": "text", "text": "In stock: screws."}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 5}}).encode()),
    "anthropic-sse": ("text/event-stream", _sse(
        {"type": "message_start", "message": {"model": "fake-claude", "usage": {"input_tokens": 12}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "t1", "name": "ls"}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        {"type": "message_stop"})),
    "responses-cut": ("application/json", json.dumps({
        "object": "response", "model": "fake-gpt-1", "status": "incomplete",
        "incomplete_details": {"reason": "max_output_tokens"}, "output": [],
        "usage": {"input_tokens": 11, "output_tokens": 16}}).encode()),
    "big": ("application/json", _chat("stop", "x" * (5 * 1024 * 1024))),
}  # fmt: skip
PATHS = {"anthropic": "/v1/messages", "anthropic-sse": "/v1/messages", "responses-cut": "/v1/responses"}


class _Canned(BaseHTTPRequestHandler):
    """A model that answers with CANNED[?case=] (gzipped on ?gzip=1, chunked when streamed)."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        query = dict(parse_qsl(urlsplit(self.path).query))
        content_type, body = CANNED[query["case"]]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if query.get("gzip"):
            body = gzip.compress(body)
            self.send_header("Content-Encoding", "gzip")
        if content_type == "text/event-stream":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 40):
                piece = body[start : start + 40]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


READER = """\
import hashlib
import http.client
import json
import os
import sys
import urllib.request
from urllib.parse import urlsplit

from opentelemetry import trace

BASE = os.environ["CANNED_URL"]
PATHS = json.loads(os.environ["CANNED_PATHS"])
BODY = json.dumps({"model": "fake-gpt", "messages": [{"role": "user", "content": "Hi"}]}).encode()


def url(case, extra=""):
    return BASE + PATHS.get(case, "/v1/chat/completions") + "?case=" + case + extra


def digest(data):
    return hashlib.sha256(data).hexdigest()[:16]


def urlopen(case):
    request = urllib.request.Request(url(case), data=BODY, headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=30)


for step in sys.argv[1:]:
    mode, case = step.split(":")
    if mode == "json-load":
        with urlopen(case) as response:
            got = json.dumps(json.load(response)).encode()
        print(step, "parsed", len(got))
        continue
    if mode == "read-amt":
        with urlopen(case) as response:
            data = b"".join(iter(lambda: response.read(1000), b""))
    elif mode == "readinto":
        with urlopen(case) as response:
            data, buf = b"", bytearray(777)
            while n := response.readinto(buf):
                data += bytes(buf[:n])
    elif mode == "read1":
        with urlopen(case) as response:
            data = b"".join(iter(lambda: response.read1(500), b""))
    elif mode == "readline":  # SSE, line by line
        with urlopen(case) as response:
            data = b"".join(line for line in response)
    elif mode == "requests":
        import requests

        response = requests.post(url(case, "&gzip=1"), data=BODY, timeout=30)
        data = response.content
    elif mode == "requests-lines":
        import requests

        with requests.post(url(case), data=BODY, timeout=30, stream=True) as response:
            data = b"".join(line + b"\\n" for line in response.iter_lines(delimiter=b"\\n"))
    elif mode == "never-read":
        parts = urlsplit(url(case))
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.request("POST", parts.path + "?" + parts.query, BODY)
        print(step, conn.getresponse().status)
        conn.close()
        continue
    elif mode == "instrumented":  # an SDK's instrumentor describing the same request
        with trace.get_tracer("sdk").start_as_current_span(
            "chat fake-gpt", attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "fake-gpt"}
        ):
            with urlopen(case) as response:
                data = response.read()
    print(step, digest(data))
"""


@pytest.fixture
def canned() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def read_answers(tmp_path: Path, base: str, *steps: str) -> tuple[Any, Path, list[str]]:
    """READER under `agenttrace run --json`, and what it prints run bare (no hook) for comparison."""
    (tmp_path / "reader.py").write_text(READER)
    env = {"CANNED_URL": base, "CANNED_PATHS": json.dumps(PATHS)}
    store = tmp_path / "store"
    result = run_cli(
        "run", "--json", "--store", str(store), "--", sys.executable, "reader.py", *steps,
        cwd=tmp_path, timeout=120, env=env,
    )  # fmt: skip
    bare = subprocess.run(
        [sys.executable, "reader.py", *steps], cwd=tmp_path, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return result, store, bare.stdout.splitlines()


def llm_steps(store: Path) -> list[dict[str, Any]]:
    return query(
        store,
        "SELECT st.name, st.model, st.finish_reason, st.finish_reason_raw, st.input_tokens, "
        "st.output_tokens, st.provider, p.name AS parent, "
        "s.attributes['agenttrace.http.described'] AS described "
        "FROM steps st JOIN spans s ON s.span_id = st.span_id "
        "LEFT JOIN spans p ON p.span_id = s.parent_span_id "
        "WHERE st.kind = 'llm' ORDER BY st.start_time",
    )


def test_a_complete_answer_read_with_urllib_is_an_llm_step_and_the_run_succeeds(
    tmp_path: Path, canned: str
) -> None:
    result, store, bare = read_answers(tmp_path, canned, "json-load:stop")
    assert printed(result)[:1] == bare, result.stderr
    assert bare[0].startswith("json-load:stop parsed ")
    assert llm_steps(store) == [{
        "name": "chat fake-gpt-1", "model": "fake-gpt-1", "finish_reason": "stop",
        "finish_reason_raw": "stop", "input_tokens": 11, "output_tokens": 7, "provider": "openai",
        "parent": "POST /v1/chat/completions",
        "described": "true",
    }]  # fmt: skip
    (span,) = query(store, "SELECT attributes FROM spans WHERE name = 'chat fake-gpt-1'")
    assert span["attributes"]["gen_ai.request.model"] == "fake-gpt"  # from the request's body
    assert (span["attributes"]["gen_ai.operation.name"], span["attributes"]["gen_ai.response.model"]) == (
        "chat",
        "fake-gpt-1",
    )
    assert [s["ended"] for s in model_api_spans(store)] == [True]
    assert gate(result, "completion_signal")["status"] == "pass"
    assert verdict(result)["state"] == "succeeded"


def test_an_answer_cut_off_fails_completion_signal(tmp_path: Path, canned: str) -> None:
    result, store, _ = read_answers(tmp_path, canned, "json-load:length")
    assert [s["finish_reason"] for s in llm_steps(store)] == ["length"]
    (violation,) = gate(result, "completion_signal")["violations"]
    assert violation["reason"].startswith("the last LLM response was cut short (finish reason `length`)")
    assert verdict(result)["state"] == "failed"


READS = [
    ("read-amt:stop", "stop", "stop"),
    ("readinto:tools", "tool_calls", "tool_call"),
    ("read1:sse", "length", "length"),
    ("readline:sse", "length", "length"),
    ("read-amt:anthropic", "end_turn", "stop"),
    ("readline:anthropic-sse", "tool_use", "tool_call"),
    ("read-amt:responses-cut", "max_output_tokens", "length"),
]
READS += [("requests:stop", "stop", "stop"), ("requests-lines:sse", "length", "length")]


def test_every_way_of_reading_the_body_is_described_and_reads_the_same_bytes(
    tmp_path: Path, canned: str
) -> None:
    result, store, bare = read_answers(tmp_path, canned, *(step for step, _, _ in READS))
    assert printed(result)[: len(READS)] == bare, result.stderr
    for (step, _, _), line in zip(READS, bare, strict=True):
        if step != "requests-lines:sse":  # iter_lines drops the blank lines
            assert line == f"{step} {hashlib.sha256(CANNED[step.split(':')[1]][1]).hexdigest()[:16]}"
    steps = llm_steps(store)
    assert [(s["finish_reason_raw"], s["finish_reason"]) for s in steps] == [(raw, n) for _, raw, n in READS]
    assert {s["parent"] for s in steps} == {
        "POST /v1/chat/completions",
        "POST /v1/messages",
        "POST /v1/responses",
    }
    by_step = dict(zip((step for step, _, _ in READS), steps, strict=True))
    assert (by_step["read1:sse"]["input_tokens"], by_step["read1:sse"]["output_tokens"]) == (11, 2)
    anthropic = by_step["readline:anthropic-sse"]
    assert (
        anthropic["provider"],
        anthropic["model"],
        anthropic["input_tokens"],
        anthropic["output_tokens"],
    ) == ("anthropic", "fake-claude", 12, 9)
    assert by_step["read-amt:responses-cut"]["output_tokens"] == 16
    (tools,) = query(
        store, "SELECT output FROM steps WHERE kind = 'llm' AND finish_reason_raw = 'tool_calls'"
    )
    assert json.loads(tools["output"])[0]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "read_file"}
    ]


def test_a_body_never_read_or_too_large_is_not_described_and_the_gate_fails_closed(
    tmp_path: Path, canned: str
) -> None:
    result, store, bare = read_answers(tmp_path, canned, "never-read:stop", "read-amt:big")
    big = hashlib.sha256(CANNED["big"][1]).hexdigest()[:16]
    assert printed(result)[:2] == bare == ["never-read:stop 200", f"read-amt:big {big}"], result.stderr
    assert llm_steps(store) == []
    assert [(s["ended"], s["attributes"]["http.response.status_code"]) for s in model_api_spans(store)] == [
        (True, "200"),
        (True, "200"),
    ]
    (violation,) = gate(result, "completion_signal")["violations"]
    assert violation["reason"].startswith(UNSEEN + "2 calls: POST /v1/chat/completions) and no LLM step")


def test_an_answer_an_instrumentor_also_describes_is_one_step(tmp_path: Path, canned: str) -> None:
    """No SDK in this environment calls its model over http.client with an instrumentor on it (the
    openai, anthropic and litellm clients use httpx): an agent's own GenAI span around the call
    stands for one. The LLM span below it (under the POST span, no step) is the same request."""
    result, store, _ = read_answers(tmp_path, canned, "instrumented:length")
    assert query(
        store, "SELECT count(*) AS n FROM spans WHERE attributes['gen_ai.operation.name'] = 'chat'"
    ) == [{"n": 2}]
    (step,) = llm_steps(store)
    assert (step["name"], step["finish_reason"], step["output_tokens"]) == ("chat fake-gpt-1", "length", 7)
    assert gate(result, "completion_signal")["status"] == "fail"
