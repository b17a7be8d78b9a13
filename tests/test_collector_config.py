"""collector-config/: the configs parse, name only real components and settings, and really carry spans.

The OpenTelemetry Collector binary is not installable here (its releases live on GitHub), so its
YAML is checked against the settings each component really has, taken by hand from the component
sources in opentelemetry-collector(-contrib): receiver/otlpreceiver, processor/batchprocessor,
processor/memorylimiterprocessor, exporter/otlpexporter, exporter/otlphttpexporter (with
confighttp / configgrpc / exporterhelper's retry_on_failure and sending_queue),
exporter/loadbalancingexporter/config.go, exporter/clickhouseexporter/config.go and
extension/healthcheckextension. Rotel is installed
(PyPI `rotel`), so its settings are checked against the real binary's own `--help`, and a real
Rotel process carries spans from the official OTLP exporter into `agenttrace serve`.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import rotel
import yaml
from conftest import REPO, free_port, query, start_serve, wait_listening
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

CONFIGS = REPO / "collector-config"
ROTEL_AGENT = Path(rotel.__file__).parent / "rotel-agent"

ANY = object()  # a map whose keys are the user's own (headers)
LEAF = None

RETRY = {"enabled": LEAF, "initial_interval": LEAF, "max_interval": LEAF, "max_elapsed_time": LEAF}
QUEUE = {"enabled": LEAF, "num_consumers": LEAF, "queue_size": LEAF, "storage": LEAF}
TLS = {"insecure": LEAF, "insecure_skip_verify": LEAF, "ca_file": LEAF, "cert_file": LEAF, "key_file": LEAF}
OTLP_GRPC_EXPORTER = {
    "endpoint": LEAF,
    "tls": TLS,
    "headers": ANY,
    "compression": LEAF,
    "timeout": LEAF,
    "retry_on_failure": RETRY,
    "sending_queue": QUEUE,
}
COMPONENTS: dict[str, dict[str, Any]] = {
    "extensions": {"health_check": {"endpoint": LEAF}},
    "receivers": {
        "otlp": {
            "protocols": {
                "grpc": {"endpoint": LEAF, "max_recv_msg_size_mib": LEAF},
                "http": {"endpoint": LEAF},
            }
        }
    },
    "processors": {
        "memory_limiter": {"check_interval": LEAF, "limit_mib": LEAF, "spike_limit_mib": LEAF},
        "batch": {"send_batch_size": LEAF, "send_batch_max_size": LEAF, "timeout": LEAF},
    },
    "exporters": {
        "otlp": OTLP_GRPC_EXPORTER,
        "otlphttp": {**OTLP_GRPC_EXPORTER, "traces_endpoint": LEAF},
        "clickhouse": {
            "endpoint": LEAF,
            "username": LEAF,
            "password": LEAF,
            "database": LEAF,
            "connection_params": ANY,
            "create_schema": LEAF,
            "ttl": LEAF,
            "logs_table_name": LEAF,
            "traces_table_name": LEAF,
            "metrics_table_name": LEAF,
            "metrics_tables": {
                kind: {"name": LEAF}
                for kind in ("gauge", "sum", "summary", "histogram", "exponential_histogram")
            },
            "timeout": LEAF,
            "sending_queue": QUEUE,
            "retry_on_failure": RETRY,
            "compress": LEAF,
            "async_insert": LEAF,
            "cluster_name": LEAF,
            "table_engine": {"name": LEAF, "params": LEAF},
        },
        "loadbalancing": {
            "routing_key": LEAF,
            "protocol": {"otlp": {k: v for k, v in OTLP_GRPC_EXPORTER.items() if k != "endpoint"}},
            "resolver": {
                "static": {"hostnames": LEAF},
                "dns": {"hostname": LEAF, "port": LEAF, "interval": LEAF, "timeout": LEAF},
                "k8s": {"service": LEAF, "ports": LEAF},
            },
        },
    },
}
ROUTING_KEYS = {"traceID", "service"}  # the two the loadbalancing exporter takes for traces


def unknown_settings(value: Any, allowed: Any, path: str) -> list[str]:
    if allowed is ANY or allowed is LEAF:
        return []
    if not isinstance(value, dict):
        return [f"{path} should be a map"]
    found = []
    for key, inner in value.items():
        if key not in allowed:
            found.append(f"{path}.{key}")
        else:
            found += unknown_settings(inner, allowed[key], f"{path}.{key}")
    return found


def collector_problems(config: dict[str, Any]) -> list[str]:
    """What in a collector config is not a real component, setting or pipeline reference."""
    problems = []
    defined: dict[str, set[str]] = {}
    for section, kinds in COMPONENTS.items():
        defined[section] = set(config.get(section) or {})
        for name, settings in (config.get(section) or {}).items():
            kind = name.split("/", 1)[0]
            if kind not in kinds:
                problems.append(f"{section}.{name}: no such component")
            else:
                problems += unknown_settings(settings or {}, kinds[kind], f"{section}.{name}")
    unknown_top = set(config) - {*COMPONENTS, "service"}
    problems += [f"{key}: not a collector section" for key in sorted(unknown_top)]

    service = config.get("service") or {}
    problems += [f"service.{key}" for key in set(service) - {"extensions", "pipelines", "telemetry"}]
    used: dict[str, set[str]] = {section: set() for section in COMPONENTS}
    for extension in service.get("extensions") or []:
        used["extensions"].add(extension)
    for pipeline, parts in (service.get("pipelines") or {}).items():
        if pipeline.split("/", 1)[0] not in {"traces", "metrics", "logs"}:
            problems.append(f"service.pipelines.{pipeline}: not a signal")
        extra = set(parts) - {"receivers", "processors", "exporters"}
        problems += [f"service.pipelines.{pipeline}.{key}" for key in extra]
        if not parts.get("receivers") or not parts.get("exporters"):
            problems.append(f"service.pipelines.{pipeline}: needs receivers and exporters")
        for section in ("receivers", "processors", "exporters"):
            used[section].update(parts.get(section) or [])
    for section in COMPONENTS:
        problems += [f"{section}.{name}: used but not defined" for name in used[section] - defined[section]]
        problems += [f"{section}.{name}: defined but never used" for name in defined[section] - used[section]]
    return problems


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIGS / name).read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_collector_yaml_names_only_real_components_and_settings(name: str) -> None:
    assert collector_problems(load(name)) == []


def test_the_checker_catches_a_misspelt_setting_and_a_dangling_pipeline() -> None:
    config = load("otelcol-gateway.yaml")
    config["exporters"]["otlphttp/agenttrace"]["retry_on_failur"] = {"enabled": True}
    config["service"]["pipelines"]["traces"]["exporters"].append("otlp/nowhere")
    config["processors"]["tail_sampling"] = {}
    assert sorted(collector_problems(config)) == [
        "exporters.otlp/nowhere: used but not defined",
        "exporters.otlphttp/agenttrace.retry_on_failur",
        "processors.tail_sampling: defined but never used",
        "processors.tail_sampling: no such component",
    ]


def test_gateway_sends_to_agenttrace_serve_over_otlp_http_with_the_token() -> None:
    exporter = load("otelcol-gateway.yaml")["exporters"]["otlphttp/agenttrace"]
    assert exporter["endpoint"].endswith(":4318"), "serve's default OTLP/HTTP port"
    assert exporter["headers"]["authorization"] == "Bearer ${env:AGENTTRACE_TOKEN}"
    assert exporter["retry_on_failure"]["enabled"] is True, "serve's 503 under backpressure is retried"
    traces = load("otelcol-gateway.yaml")["service"]["pipelines"]["traces"]
    assert len(traces["exporters"]) == 2, "agenttrace and a second backend"


def test_loadbalancing_keeps_a_run_on_one_grpc_receiver() -> None:
    exporter = load("otelcol-loadbalancing.yaml")["exporters"]["loadbalancing"]
    assert exporter["routing_key"] in ROUTING_KEYS
    assert exporter["routing_key"] == "traceID", "a run is one trace"
    hostnames = exporter["resolver"]["static"]["hostnames"]
    assert len(hostnames) >= 2
    assert all(h.endswith(":4317") for h in hostnames), "the exporter speaks OTLP/gRPC: serve --grpc-port"


def test_clickhouse_gateway_writes_every_signal_to_the_tables_agenttrace_reads() -> None:
    config = load("otelcol-clickhouse.yaml")
    exporter = config["exporters"]["clickhouse"]
    assert exporter["database"] == "otel", "the database in the --engine URL of the header"
    assert exporter["traces_table_name"] == "otel_traces" and exporter["logs_table_name"] == "otel_logs"
    assert exporter["ttl"] == 0, "no TTL: a run's rows must not expire under an audit"
    assert exporter["create_schema"] is True
    assert exporter["password"] == "${env:CLICKHOUSE_PASSWORD}", "no password in the file"
    assert exporter["retry_on_failure"]["enabled"] is True and exporter["sending_queue"]["enabled"] is True
    pipelines = config["service"]["pipelines"]
    assert {name: parts["exporters"] for name, parts in pipelines.items()} == {
        "traces": ["clickhouse"],
        "logs": ["clickhouse"],
        "metrics": ["clickhouse"],
    }
    header = (CONFIGS / "otelcol-clickhouse.yaml").read_text()
    assert "agenttrace clickhouse init --to clickhouse://" in header
    assert "--engine clickhouse://" in header


def rotel_settings(name: str = "rotel-gateway.env") -> dict[str, str]:
    """KEY=VALUE lines of the env file, as a shell would read them (quotes removed)."""
    settings = {}
    for line in (CONFIGS / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value.strip('"')
    return settings


def test_rotel_settings_are_ones_the_real_rotel_agent_takes() -> None:
    help_text = subprocess.run(
        [str(ROTEL_AGENT), "start", "--help"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    known = set(re.findall(r"\[env: (ROTEL_[A-Z0-9_]+)=", help_text))
    assert len(known) > 50, "the help text was read"
    settings = rotel_settings()
    assert settings, "the file holds settings"
    assert sorted(set(settings) - known) == []
    assert settings["ROTEL_OTLP_EXPORTER_PROTOCOL"] == "http"
    assert settings["ROTEL_OTLP_EXPORTER_ENDPOINT"].endswith(":4318")
    clickhouse = rotel_settings("rotel-clickhouse.env")
    assert sorted(set(clickhouse) - known) == []
    assert clickhouse["ROTEL_EXPORTER"] == "clickhouse"
    assert clickhouse["ROTEL_CLICKHOUSE_EXPORTER_DATABASE"] == "otel"
    assert clickhouse["ROTEL_CLICKHOUSE_TABLE_PREFIX"] == "otel", "otel_traces, otel_logs, ..."
    assert clickhouse["ROTEL_CLICKHOUSE_EXPORTER_PASSWORD"] == "${CLICKHOUSE_PASSWORD}", "not in the file"


def start_rotel(tmp_path: Path, http_port: int, agenttrace_port: int, token: str) -> subprocess.Popen[str]:
    """Rotel with rotel-gateway.env sourced as its header says, the endpoints moved to test ports."""
    script = (
        'set -a; . "$1"; set +a; '
        'export ROTEL_OTLP_HTTP_ENDPOINT="$2" ROTEL_OTLP_GRPC_ENDPOINT="$3" '
        'ROTEL_OTLP_EXPORTER_ENDPOINT="$4" '
        'ROTEL_PID_FILE="$5/rotel.pid" ROTEL_LOG_FILE="$5/rotel.log" ROTEL_BATCH_TIMEOUT=100ms; '
        'exec "$6" start'
    )
    process = subprocess.Popen(
        [
            "bash",
            "-c",
            script,
            "rotel",
            str(CONFIGS / "rotel-gateway.env"),
            f"127.0.0.1:{http_port}",
            f"127.0.0.1:{free_port()}",
            f"http://127.0.0.1:{agenttrace_port}",
            str(tmp_path),
            str(ROTEL_AGENT),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": "/usr/bin:/bin", "AGENTTRACE_TOKEN": token},
    )
    return wait_listening(process, http_port, "rotel")


def test_rotel_carries_every_span_from_the_official_exporter_into_serve_and_on(tmp_path: Path) -> None:
    token = "s3cret-for-this-test"
    backend_store, store = tmp_path / "backend", tmp_path / "store"
    backend_port, serve_port, rotel_port = free_port(), free_port(), free_port()
    backend = start_serve(backend_store, backend_port)
    serve = start_serve(
        store,
        serve_port,
        "--forward",
        f"http://127.0.0.1:{backend_port}/v1/traces",
        env={"AGENTTRACE_TOKEN": token},
    )
    collector = start_rotel(tmp_path, rotel_port, serve_port, token)
    try:
        provider = TracerProvider(resource=Resource.create({"service.name": "node-agent"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{rotel_port}/v1/traces"))
        )
        tracer = provider.get_tracer("agent")
        sent = set()
        for run in range(4):
            with tracer.start_as_current_span(f"run {run}") as root:
                sent.add(format(root.get_span_context().span_id, "016x"))
                for step in range(150):
                    with tracer.start_as_current_span(f"step {step}") as span:
                        span.set_attribute("gen_ai.operation.name", "chat")
                        sent.add(format(span.get_span_context().span_id, "016x"))
        provider.shutdown()

        def stored(where: Path) -> set[str]:
            return {r["span_id"] for r in query(where, "SELECT span_id FROM spans WHERE ended")}

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (stored(store) != sent or stored(backend_store) != sent):
            time.sleep(0.2)
        assert stored(store) == sent, "every span reached agenttrace through Rotel"
        assert stored(backend_store) == sent, "and agenttrace's tee passed every one on"
        runs = query(store, "SELECT count(*) AS n FROM runs")
        assert runs == [{"n": 4}]
    finally:
        collector.send_signal(signal.SIGTERM)
        collector.communicate(timeout=30)
        for process in (serve, backend):
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=30)
