"""Forwarding (tee): every span goes on, unchanged, to another OTLP endpoint; failures never hurt
local storage."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import query
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from test_otlp_receiver import FLUSH, emit, stored_names

from agenttrace.errors import ConfigError
from agenttrace.otlp.forward import export_timeout, forwarding_exporter, target_from
from agenttrace.otlp.server import OtlpServer


def wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def span_rows(store: Path, run_id: str) -> list[tuple]:
    rows = query(
        store,
        "SELECT trace_id, span_id, parent_span_id, name, attributes FROM spans "
        "WHERE run_id = $r ORDER BY name",
        {"r": run_id},
    )
    return [
        (r["trace_id"], r["span_id"], r["parent_span_id"], r["name"], sorted(r["attributes"])) for r in rows
    ]


def test_receiver_forwards_every_span_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTRACE_FLUSH_INTERVAL", str(FLUSH))
    local, backend_store = tmp_path / "local", tmp_path / "backend"
    with (
        OtlpServer(backend_store, port=0) as backend,
        OtlpServer(local, port=0, forward=backend.endpoint) as tee,
    ):
        emit(OTLPSpanExporter(endpoint=f"{tee.endpoint}/v1/traces"), "tee-run", n=5)
        forwarder = tee.receiver.forwarder
        assert forwarder is not None
        wait_for(lambda: forwarder.forwarded == 6 and forwarder.pending == 0)
        time.sleep(FLUSH)
        assert span_rows(backend_store, "tee-run") == span_rows(local, "tee-run")
        assert len(span_rows(local, "tee-run")) == 6
        assert forwarder.failed == 0 and forwarder.dropped == 0


def test_a_dead_backend_is_retried_counted_and_shown_but_storage_goes_on(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENTTRACE_FLUSH_INTERVAL", str(FLUSH))
    with OtlpServer(store, port=0, forward="http://127.0.0.1:9") as tee:  # port 9: nothing listens
        started = time.monotonic()
        emit(OTLPSpanExporter(endpoint=f"{tee.endpoint}/v1/traces"), "offline-run", n=2)
        assert time.monotonic() - started < 2, "a dead backend must not slow the client down"
        time.sleep(FLUSH)
        assert stored_names(store, "offline-run") == ["agent", "tool 0", "tool 1"]
        forwarder = tee.receiver.forwarder
        assert forwarder is not None
        wait_for(lambda: forwarder.failed == 3)
        assert forwarder.retries >= 3 * 4
        assert "cannot reach http://127.0.0.1:9/v1/traces" in (forwarder.last_error or "")
        assert "failed 3" in tee.receiver.status_line()


def test_in_process_exporter_forwards_with_the_standard_variables(tmp_path: Path) -> None:
    local, backend_store = tmp_path / "local", tmp_path / "backend"
    with OtlpServer(backend_store, port=0) as backend:
        script = textwrap.dedent(
            """
            import agenttrace
            with agenttrace.run("forwarded", run_id="inproc-1"):
                with agenttrace.step("plan"):
                    pass
            """
        )
        env = {
            **os.environ,
            "AGENTTRACE_STORE": str(local),
            "OTEL_EXPORTER_OTLP_ENDPOINT": backend.endpoint,
        }
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        time.sleep(FLUSH)
        assert [r[3] for r in span_rows(local, "inproc-1")] == ["forwarded", "plan"]
        assert span_rows(backend_store, "inproc-1") == span_rows(local, "inproc-1")


@pytest.mark.parametrize(
    ("forward", "says"),
    [
        ("localhost:4318", "is not an http(s) URL with a host"),
        ("ftp://example.com", "is not an http(s) URL with a host"),
        ("http://", "is not an http(s) URL with a host"),
        ("http://host:99999", "invalid port"),
    ],
)
def test_bad_forward_urls_are_refused(forward: str, says: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(says)):
        target_from(forward, {})


def test_forward_target_comes_from_the_standard_variables() -> None:
    assert target_from(None, {}) is None
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-team=agents,a=b%20c",
    }
    target = target_from(None, env)
    assert target is not None
    assert target.url == "http://collector:4318/v1/traces"
    assert target.headers == {"x-team": "agents", "a": "b c"}
    env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "https://otel.example.com/custom/traces"
    assert target_from(None, env).url == "https://otel.example.com/custom/traces"  # type: ignore[union-attr]
    assert target_from("http://other:4318", env).url == "http://other:4318/v1/traces"  # type: ignore[union-attr]


def test_the_in_process_tee_gives_up_within_3_s_unless_the_user_set_a_timeout() -> None:
    """A program's exit waits for its last export: with the SDK's 10 s default and a backend down,
    a run's end waited 10-20 s. The user's own OTLP timeout (the SDK reads it) still wins."""
    assert export_timeout({}) == 3.0
    assert export_timeout({"OTEL_EXPORTER_OTLP_TIMEOUT": "7"}) is None
    assert export_timeout({"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "11"}) is None
    target = target_from(None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    assert target is not None
    assert isinstance(forwarding_exporter(target).inner, OTLPSpanExporter)
