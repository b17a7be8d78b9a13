"""agenttrace on ClickHouse, end to end, with real processes over real HTTP.

No ClickHouse server installs here, so ClickHouse's engine (chdb) sits behind a ClickHouse
HTTP-interface shim (`tests/fakes/clickhouse_http.py`, a test fixture, not a server): every
statement is run by ClickHouse's own engine, every byte between the clients and it is what they
send a server. Around it, all real:

    OTLP/HTTP exporter ──► rotel-agent (collector-config/rotel-clickhouse.env) ──RowBinary──► shim
                      └──► agenttrace serve (the same spans in a local store, to compare with)
    agenttrace clickhouse init / runs / query / audit / push --engine clickhouse://... ──► shim

Each verdict, run list and count read on ClickHouse is compared with what the local store gives for
the same spans.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
import rotel
from conftest import REPO, free_port, query, run_cli, start_serve, wait_listening
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from agenttrace.audit.gates import builtin_gates

pytestmark = pytest.mark.xdist_group("clickhouse")

SHIM = Path(__file__).parent / "fakes" / "clickhouse_http.py"
ROTEL_AGENT = Path(rotel.__file__).parent / "rotel-agent"
ROTEL_ENV = REPO / "collector-config" / "rotel-clickhouse.env"
WRITER, WRITER_PASSWORD = "otel_writer", "w-s3cret"
"""The user rotel-clickhouse.env names, its password from $CLICKHOUSE_PASSWORD."""

FIXING = "20261201T120000-f1f1"
"""A run whose tool call fails and whose model works around it."""
QUICK = "20261201T120500-c0c0"
"""A run of one LLM call."""


@dataclass
class Shim:
    process: subprocess.Popen[str]
    port: int
    journal: Path

    def engine(self, user: str = "default", database: str = "otel") -> str:
        return f"clickhouse://{user}@127.0.0.1:{self.port}/{database}"

    def client(self, user: str = "default", password: str = "", database: str = "otel") -> Any:
        return clickhouse_connect.get_client(
            host="127.0.0.1", port=self.port, username=user, password=password, database=database
        )

    def requests(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.journal.read_text().splitlines()]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def start_shim(directory: Path, *users: str) -> Shim:
    """The shim as a child process on a free port; fails the test loudly when it does not come up."""
    directory.mkdir(parents=True, exist_ok=True)
    journal = directory / "shim-requests.jsonl"
    journal.touch()
    process = subprocess.Popen(
        [
            sys.executable,
            str(SHIM),
            "--data",
            str(directory / "chdb"),
            "--port",
            "0",
            "--journal",
            str(journal),
            *(arg for user in users for arg in ("--user", user)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    line = process.stdout.readline() if selector.select(timeout=60) else ""
    selector.close()
    if "listening on http://127.0.0.1:" not in line:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the ClickHouse HTTP shim did not start: {line}{out}{err}")
    port = int(line.split("http://127.0.0.1:", 1)[1].split()[0])
    return Shim(process, port, journal)


def start_rotel(directory: Path, http_port: int, shim_port: int) -> subprocess.Popen[str]:
    """Rotel with rotel-clickhouse.env sourced as its header says, pointed at the shim."""
    script = (
        'set -a; . "$1"; set +a; '
        'export ROTEL_OTLP_HTTP_ENDPOINT="$2" ROTEL_OTLP_GRPC_ENDPOINT="$3" '
        'ROTEL_CLICKHOUSE_EXPORTER_ENDPOINT="$4" '
        'ROTEL_PID_FILE="$5/rotel.pid" ROTEL_LOG_FILE="$5/rotel.log" ROTEL_BATCH_TIMEOUT=100ms; '
        'exec "$6" start'
    )
    process = subprocess.Popen(
        [
            "bash",
            "-c",
            script,
            "rotel",
            str(ROTEL_ENV),
            f"127.0.0.1:{http_port}",
            f"127.0.0.1:{free_port()}",
            f"http://127.0.0.1:{shim_port}",
            str(directory),
            str(ROTEL_AGENT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "CLICKHOUSE_PASSWORD": WRITER_PASSWORD},
    )
    return wait_listening(process, http_port, "rotel")


def span_id(span: Any) -> str:
    return format(span.get_span_context().span_id, "016x")


@dataclass
class Agent:
    """One run's OpenTelemetry providers (traces, logs, metrics), each exporting over OTLP/HTTP."""

    tracer: Any
    logger: Any
    tokens: Any
    duration: Any
    sent: set[str]

    def llm(self, finish: str, tokens: tuple[int, int]) -> None:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.usage.input_tokens": tokens[0],
            "gen_ai.usage.output_tokens": tokens[1],
            "gen_ai.response.finish_reasons": [finish],
        }
        with self.tracer.start_as_current_span("chat gpt-4o", attributes=attributes) as span:
            self.sent.add(span_id(span))
        metric = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
        self.tokens.add(tokens[0], {**metric, "gen_ai.token.type": "input"})
        self.tokens.add(tokens[1], {**metric, "gen_ai.token.type": "output"})
        self.duration.record(1.25, metric)


LOGS_SENT, METRIC_POINTS_SENT = 3, 6
"""Log records and metric data points the two runs send (below): per run, a token counter point per
token type and one duration histogram point."""


def send_runs(*bases: str) -> set[str]:
    """Two runs as an instrumented agent reports them (gen_ai semantic conventions: spans, a log
    record per tool decision and result, token and duration metrics), through the official OTLP/HTTP
    exporters to each base URL; returns the span ids sent."""
    sent: set[str] = set()
    providers: list[Any] = []
    for run_id, build in ((FIXING, _fixing_run), (QUICK, _quick_run)):
        resource = Resource.create({"service.name": "fixer-agent", "agenttrace.run.id": run_id})
        traces = TracerProvider(resource=resource)
        logs = LoggerProvider(resource=resource)
        readers = []
        for base in bases:
            traces.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
            logs.add_log_record_processor(
                BatchLogRecordProcessor(OTLPLogExporter(endpoint=f"{base}/v1/logs"))
            )
            exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics")
            readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000))
        metrics = MeterProvider(resource=resource, metric_readers=readers)  # exported once, at shutdown
        meter = metrics.get_meter("fixer-agent", "1.4.0")
        agent = Agent(
            traces.get_tracer("fixer-agent", "1.4.0"),
            logs.get_logger("fixer-agent", "1.4.0"),
            meter.create_counter("gen_ai.client.token.usage", unit="{token}"),
            meter.create_histogram("gen_ai.client.operation.duration", unit="s"),
            sent,
        )
        build(agent)
        providers += [traces, logs, metrics]
    for provider in providers:
        provider.shutdown()
    return sent


def _fixing_run(agent: Agent) -> None:
    attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "fixer"}
    with agent.tracer.start_as_current_span("invoke_agent fixer", attributes=attributes) as root:
        agent.sent.add(span_id(root))
        agent.llm("tool_calls", (1200, 80))
        agent.logger.emit(
            body="run_tests accepted",
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes={"event.name": "tool_decision", "tool_name": "run_tests", "decision": "accept"},
        )
        tool = {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "run_tests",
            "gen_ai.tool.call.id": "call_0001",
            "gen_ai.tool.call.arguments": '{"path": "tests/"}',
        }
        with agent.tracer.start_as_current_span("execute_tool run_tests", attributes=tool) as span:
            agent.sent.add(span_id(span))
            span.record_exception(RuntimeError("2 tests failed"))
            span.set_status(Status(StatusCode.ERROR, "2 tests failed"))
            agent.logger.emit(
                body="2 tests failed",
                severity_number=SeverityNumber.ERROR,
                severity_text="ERROR",
                attributes={"event.name": "tool_result", "tool_name": "run_tests", "success": False},
            )
        agent.llm("stop", (1500, 200))


def _quick_run(agent: Agent) -> None:
    attributes = {"gen_ai.operation.name": "invoke_agent"}
    with agent.tracer.start_as_current_span("invoke_agent fixer", attributes=attributes) as root:
        agent.sent.add(span_id(root))
        agent.llm("stop", (300, 20))
        agent.logger.emit(body="done", severity_number=SeverityNumber.INFO, severity_text="INFO")


def cli_json(*args: str, env: dict[str, str] | None = None, codes: tuple[int, ...] = (0,)) -> Any:
    result = run_cli(*args, "--json", env=env, timeout=180)
    assert result.returncode in codes, f"{args}: exit {result.returncode}\n{result.stderr}{result.stdout}"
    return json.loads(result.stdout)


@dataclass
class Fleet:
    """Two runs sent once through Rotel into ClickHouse (the shim), and into a local store."""

    shim: Shim
    store: Path
    sent: set[str]
    init: dict[str, Any]
    rotel_output: str = ""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    with pytest.MonkeyPatch.context() as environment:  # as conftest's clean_environment, for the module
        for name in list(os.environ):
            if name.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT")):
                environment.delenv(name)
        yield from _fleet(tmp_path_factory.mktemp("clickhouse"))


def _fleet(directory: Path) -> Iterator[Fleet]:
    shim = start_shim(directory / "shim", "default:", f"{WRITER}:{WRITER_PASSWORD}")
    processes: list[subprocess.Popen[str]] = []
    try:
        init = cli_json("clickhouse", "init", "--to", shim.engine())
        store, serve_port, rotel_port = directory / "store", free_port(), free_port()
        processes.append(start_serve(store, serve_port))
        collector = start_rotel(directory, rotel_port, shim.port)
        processes.append(collector)
        sent = send_runs(f"http://127.0.0.1:{rotel_port}", f"http://127.0.0.1:{serve_port}")
        client = shim.client(WRITER, WRITER_PASSWORD)
        arrived = (
            "SELECT (SELECT groupArray(SpanId) FROM otel_traces),"
            " (SELECT count() FROM otel_logs),"
            " (SELECT count() FROM otel_metrics_sum) + (SELECT count() FROM otel_metrics_histogram)"
        )
        expected = (sent, LOGS_SENT, METRIC_POINTS_SENT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            spans, logs, points = client.query(arrived).result_rows[0]
            local = (
                {r["span_id"] for r in query(store, "SELECT span_id FROM spans WHERE ended")},
                query(store, "SELECT count(*) AS n FROM logs")[0]["n"],
                query(store, "SELECT count(*) AS n FROM metrics")[0]["n"],
            )
            if (set(spans), logs, points) == expected and local == expected:
                break
            time.sleep(0.2)
        client.close()
        collector.send_signal(signal.SIGTERM)
        rotel_output = collector.communicate(timeout=30)[0]
        yield Fleet(shim, store, sent, init, rotel_output)
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=30)
        shim.stop()


def test_init_creates_the_exporter_and_agenttrace_tables_and_can_run_again(fleet: Fleet) -> None:
    assert fleet.init["database"] == "otel"
    assert {"otel_traces", "otel_logs", "agenttrace_spans", "agenttrace_runs"} <= set(fleet.init["tables"])
    client = fleet.shim.client()
    try:
        tables = {r[0] for r in client.query("SHOW TABLES FROM otel").result_rows}
    finally:
        client.close()
    assert set(fleet.init["tables"]) <= tables
    again = cli_json("clickhouse", "init", "--to", fleet.shim.engine())
    assert again["tables"] == fleet.init["tables"], "a second init finds them and changes nothing"


def test_rotel_writes_every_span_through_the_clickhouse_http_interface(fleet: Fleet) -> None:
    client = fleet.shim.client()
    try:
        stored = {r[0] for r in client.query("SELECT SpanId FROM otel_traces").result_rows}
        runs = client.query(
            "SELECT ResourceAttributes['agenttrace.run.id'] AS run, count() FROM otel_traces"
            " GROUP BY run ORDER BY run"
        ).result_rows
    finally:
        client.close()
    assert stored == fleet.sent, f"every span reached ClickHouse through Rotel\n{fleet.rotel_output[-3000:]}"
    assert runs == [(FIXING, 4), (QUICK, 2)]
    inserts = [
        r for r in fleet.shim.requests() if r.get("statement", "").startswith("INSERT INTO otel_traces")
    ]
    assert inserts and all(r["status"] == 200 and r["user"] == WRITER for r in inserts)
    assert "FORMAT RowBinary" in inserts[0]["statement"]
    assert "decompress" in inserts[0]["params"], "the env file's lz4: ClickHouse's compressed blocks"
    written = {
        r["statement"].split()[2]
        for r in fleet.shim.requests()
        if r.get("statement", "").startswith("INSERT")
    }
    assert {"otel_logs", "otel_metrics_sum", "otel_metrics_histogram"} <= written, "logs and metrics too"


def test_runs_on_clickhouse_lists_the_runs_as_the_local_store_does(fleet: Fleet) -> None:
    listed = cli_json("runs", "--engine", fleet.shim.engine())
    local = cli_json("runs", "--store", str(fleet.store))
    assert [r["run_id"] for r in listed] == [FIXING, QUICK]
    keys = ("run_id", "name", "state", "exit_code", "span_count", "unfinished_count", "error_count")
    assert [{k: r[k] for k in keys} for r in listed] == [{k: r[k] for k in keys} for r in local]
    fixing = listed[0]
    assert fixing["span_count"] == 4 and fixing["error_count"] == 1


def test_query_on_clickhouse_counts_the_spans_sent(fleet: Fleet) -> None:
    engine = fleet.shim.engine()
    (row,) = cli_json("query", "SELECT count(*) FROM spans", "--engine", engine)
    assert list(row.values()) == [len(fleet.sent)]
    per_run = "SELECT run_id, count(*) AS n FROM spans GROUP BY run_id ORDER BY run_id"
    counted = cli_json("query", per_run, "--engine", engine)
    assert counted == [{"run_id": FIXING, "n": 4}, {"run_id": QUICK, "n": 2}]
    assert counted == cli_json("query", per_run, "--store", str(fleet.store))


def test_logs_and_metrics_read_on_clickhouse_as_in_the_local_store(fleet: Fleet) -> None:
    engine = fleet.shim.engine()
    logs = (
        "SELECT run_id, severity_number, severity_text, body, event_name, attributes['tool_name'] AS tool,"
        " trace_id IS NOT NULL AS in_trace, span_id IS NOT NULL AS in_span FROM logs ORDER BY run_id, body"
    )
    remote = cli_json("query", logs, "--engine", engine)
    assert [(r["run_id"], r["body"], r["event_name"]) for r in remote] == [
        (FIXING, "2 tests failed", "tool_result"),
        (FIXING, "run_tests accepted", "tool_decision"),
        (QUICK, "done", None),
    ]
    assert remote == cli_json("query", logs, "--store", str(fleet.store))
    metrics = (
        "SELECT run_id, name, kind, unit, value, count, sum, attributes['gen_ai.token.type'] AS token_type"
        " FROM metrics ORDER BY run_id, name, token_type"
    )
    remote = cli_json("query", metrics, "--engine", engine)
    assert [(r["run_id"], r["name"], r["value"] or r["sum"]) for r in remote] == [
        (FIXING, "gen_ai.client.operation.duration", 2.5),
        (FIXING, "gen_ai.client.token.usage", 2700),
        (FIXING, "gen_ai.client.token.usage", 280),
        (QUICK, "gen_ai.client.operation.duration", 1.25),
        (QUICK, "gen_ai.client.token.usage", 300),
        (QUICK, "gen_ai.client.token.usage", 20),
    ]
    assert remote == cli_json("query", metrics, "--store", str(fleet.store))


def audit(*args: str) -> tuple[int, dict[str, Any]]:
    """`agenttrace audit ... --json`: its exit code (0 succeeded, 1 failed; 2, an error, fails the
    test) and its verdict."""
    result = run_cli("audit", *args, "--json", timeout=180)
    assert result.returncode in (0, 1), f"audit {args}: exit {result.returncode}\n{result.stderr}"
    return result.returncode, json.loads(result.stdout)


@pytest.fixture(scope="module")
def verdicts(fleet: Fleet) -> dict[str, tuple[tuple[int, dict[str, Any]], tuple[int, dict[str, Any]]]]:
    """Each run's audit on ClickHouse and in the local store: {run: ((code, verdict), (code, verdict))}."""
    return {
        run_id: (audit(run_id, "--engine", fleet.shim.engine()), audit(run_id, "--store", str(fleet.store)))
        for run_id in (FIXING, QUICK)
    }


def test_audit_on_clickhouse_gives_the_verdict_of_the_builtin_gates(verdicts: dict[str, Any]) -> None:
    builtin = sorted(g.name for g in builtin_gates())
    for run_id, ((_, verdict), _) in verdicts.items():
        assert verdict["run_id"] == run_id
        assert [g["name"] for g in verdict["gates"]] == builtin, "no recorded gates: the built-in ones"
        assert verdict["gates_recorded"] is False
    (code, fixing), _ = verdicts[FIXING]
    statuses = {g["name"]: g["status"] for g in fixing["gates"]}
    assert (code, fixing["state"], statuses["unrecovered_errors"]) == (1, "failed", "fail")
    assert (statuses["tool_calls_returned"], statuses["completion_signal"]) == ("pass", "pass")
    assert any("run_tests" in reason for reason in fixing["reasons"])
    (code, quick), _ = verdicts[QUICK]
    assert (code, quick["state"], quick["reasons"]) == (0, "succeeded", [])


def test_audit_on_clickhouse_agrees_with_the_local_audit_of_the_same_spans(verdicts: dict[str, Any]) -> None:
    for run_id, ((code, remote), (local_code, local)) in verdicts.items():
        assert {g["name"]: g["status"] for g in remote["gates"]} == {
            g["name"]: g["status"] for g in local["gates"]
        }, run_id
        assert (code, remote["state"], remote["reasons"]) == (local_code, local["state"], local["reasons"])
        assert remote["gates"] == local["gates"], f"{run_id}: the same violations, row for row"


def test_audit_last_on_clickhouse_picks_the_newest_run(fleet: Fleet) -> None:
    _, verdict = audit("last", "--engine", fleet.shim.engine())
    assert verdict["run_id"] == QUICK


PUSHED_AGENT = """
import subprocess, sys
from pathlib import Path
import agenttrace

@agenttrace.tool
def run_tests(attempt: int) -> str:
    if attempt == 0:
        raise RuntimeError("1 test failed")
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return "all passed"

with agenttrace.step("fix", kind="agent"):
    agenttrace.llm("gpt-4o", finish_reason="tool_calls", input_tokens=900, output_tokens=40)
    try:
        run_tests(0)
    except RuntimeError:
        pass
    Path("notes.md").write_text("fixed the failing test")
    run_tests(1)
    agenttrace.llm("gpt-4o", finish_reason="stop", input_tokens=1100, output_tokens=120)
"""
"""A supervised agent: an LLM call, a tool call that fails then succeeds, a child process, a file."""


def test_a_local_run_pushed_to_clickhouse_is_audited_there_as_here(tmp_path: Path) -> None:
    shim = start_shim(tmp_path / "shim")
    try:
        cli_json("clickhouse", "init", "--to", shim.engine())
        (tmp_path / "agent.py").write_text(PUSHED_AGENT)
        store = tmp_path / "store"
        ran = run_cli(
            "run", "--store", str(store), "--", sys.executable, "agent.py", cwd=tmp_path, timeout=120
        )
        assert ran.returncode == 0, ran.stderr
        _, local = audit("last", "--store", str(store))
        run_id = local["run_id"]

        pushed = cli_json("push", run_id, "--to", shim.engine(), "--store", str(store))
        (only,) = pushed["runs"]
        assert only["run_id"] == run_id and only["supervised"] is True and only["spans"] > 0

        _, remote = audit(run_id, "--engine", shim.engine())
        assert local["state"] == "succeeded" and local["gates_recorded"] is True
        assert remote == local, "the same verdict, gate for gate, from the pushed records"

        read = {}
        for name, sql in {
            "steps": "SELECT step, kind, name, status_code, tool_name, finish_reason FROM steps ORDER BY 1",
            "processes": "SELECT executable, exit_code FROM processes ORDER BY start_time",
            "artifacts": "SELECT path, role, size, sha256 FROM artifacts ORDER BY path, role",
        }.items():
            read[name] = cli_json("query", sql, "--engine", shim.engine())
            assert read[name] == cli_json("query", sql, "--store", str(store)), name
        assert [(s["kind"], s["status_code"]) for s in read["steps"]] == [
            ("llm", "Unset"),
            ("tool", "Error"),
            ("tool", "Unset"),
            ("llm", "Unset"),
        ]
        assert len(read["processes"]) == 2 and {p["exit_code"] for p in read["processes"]} == {0}
        assert [(a["path"], a["role"]) for a in read["artifacts"]] == [("notes.md", "written")]
        count = "SELECT count(*) AS n FROM spans"
        before = cli_json("query", count, "--engine", shim.engine())
        assert before == cli_json("query", count, "--store", str(store))
        cli_json("push", run_id, "--to", shim.engine(), "--store", str(store))
        assert cli_json("query", count, "--engine", shim.engine()) == before, (
            "a second push replaces the first"
        )
        assert [r["run_id"] for r in cli_json("runs", "--engine", shim.engine())] == [run_id]
    finally:
        shim.stop()


def test_the_password_comes_from_the_environment_never_the_url(tmp_path: Path) -> None:
    shim = start_shim(tmp_path / "shim", "agenttrace:r-s3cret")
    try:
        engine = shim.engine("agenttrace")
        refused = run_cli("clickhouse", "init", "--to", engine, timeout=60)
        assert refused.returncode == 2
        assert "Authentication failed" in refused.stderr
        assert "r-s3cret" not in refused.stderr
        env = {"AGENTTRACE_CLICKHOUSE_PASSWORD": "r-s3cret"}
        assert cli_json("clickhouse", "init", "--to", engine, env=env)["database"] == "otel"
        assert cli_json("runs", "--engine", engine, env=env) == []
        in_url = run_cli("runs", "--engine", f"clickhouse://agenttrace:r-s3cret@127.0.0.1:{shim.port}/otel")
        assert in_url.returncode == 2 and "AGENTTRACE_CLICKHOUSE_PASSWORD" in in_url.stderr
    finally:
        shim.stop()


def test_the_shim_answers_as_clickhouse_does(tmp_path: Path) -> None:
    """What the tests above lean on: errors, parameters, sessions and their temporary tables."""
    shim = start_shim(tmp_path / "shim")
    try:
        client = shim.client(database="default")
        with pytest.raises(
            clickhouse_connect.driver.exceptions.DatabaseError, match="UNKNOWN_TABLE"
        ) as caught:
            client.query("SELECT * FROM nowhere")
        assert "Code: 60. DB::Exception" in str(caught.value)
        rows = client.query(
            "SELECT {n:UInt32} + 1, {names:Array(String)}", parameters={"n": 41, "names": ["a"]}
        )
        assert rows.result_rows == [(42, ["a"])]
        client.command("CREATE TEMPORARY TABLE mine ENGINE = Memory AS SELECT 1 AS x")
        assert client.query("SELECT count() FROM mine").result_rows == [(1,)]
        other = shim.client(database="default")
        with pytest.raises(clickhouse_connect.driver.exceptions.DatabaseError, match="UNKNOWN_TABLE"):
            other.query("SELECT count() FROM mine")
        with pytest.raises(clickhouse_connect.driver.exceptions.DatabaseError, match="UNKNOWN_DATABASE"):
            shim.client(database="not_there")
        client.close()
        other.close()
    finally:
        shim.stop()
