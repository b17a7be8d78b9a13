"""Shared fixtures: an isolated environment, a fresh store per test, real SDK providers, the real CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from typer.testing import CliRunner

import agenttrace
from agenttrace.analysis import Database
from agenttrace.capture.exporter import ParquetSpanExporter, PendingSpanProcessor
from agenttrace.cli import app

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AGENTTRACE_* or OTEL_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT")):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def configured(store: Path) -> Path:
    """The process-wide provider sends spans to this test's store (agenttrace.run() uses it)."""
    agenttrace.configure(store, flush_interval=0.2)
    return store


@pytest.fixture
def make_provider() -> Iterator[Callable[[Path], TracerProvider]]:
    """A private SDK TracerProvider wired the way users wire it: pending processor + batch exporter."""
    providers: list[TracerProvider] = []

    def make(store: Path, service: str = "test-agent") -> TracerProvider:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(PendingSpanProcessor(store, flush_interval=0.2))
        provider.add_span_processor(
            BatchSpanProcessor(ParquetSpanExporter(store, flush_interval=0.2), schedule_delay_millis=200)
        )
        providers.append(provider)
        return provider

    yield make
    for provider in providers:
        provider.shutdown()


def query(store: Path, sql: str, params: dict | None = None, runs: list[str] | None = None) -> list[dict]:
    """Rows of a query over the store's views, as dicts."""
    with Database(store, runs=runs) as db:
        return db.records(sql, params)


@pytest.fixture
def cli() -> Callable[..., object]:
    """Invoke the CLI in-process (typer's CliRunner), returning the Result."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 60):
    """Run the installed `agenttrace` console script as a user would."""
    return subprocess.run(
        [str(BIN / "agenttrace"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(
    store: Path, port: int, *extra: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`agenttrace serve` as a child process, returned once it listens on `port`."""
    process = subprocess.Popen(
        [str(BIN / "agenttrace"), "serve", "--store", str(store), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AGENTTRACE_FLUSH_INTERVAL": "0.2", **(env or {})},
    )
    return wait_listening(process, port, "serve")


def wait_listening(process: subprocess.Popen[str], port: int, what: str) -> subprocess.Popen[str]:
    """Return `process` once something accepts connections on loopback `port`; fail if it exits."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process
        except OSError:
            if process.poll() is not None:
                out, err = process.communicate()
                raise AssertionError(f"{what} exited: {err or out}") from None
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"{what} did not start listening on {port}: {process.communicate()}")
