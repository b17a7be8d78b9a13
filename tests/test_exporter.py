"""ParquetSpanExporter and PendingSpanProcessor with the real SDK, real processes and real failures."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import BIN, query
from test_cli import tree_digest

import agenttrace
from agenttrace.analysis import Database


def test_finished_spans_land_with_their_attributes(store: Path, make_provider) -> None:
    provider = make_provider(store)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("root", attributes={"agenttrace.run.id": "r1"}) as root:
        with tracer.start_as_current_span("child", attributes={"n": 3, "ok": True, "tags": ["a", "b"]}):
            pass
        root.add_event("checkpoint", {"step": 1})
    provider.force_flush()

    rows = query(
        store, "SELECT name, parent_span_id IS NULL AS top, attributes, ended FROM spans ORDER BY name"
    )

    assert [(r["name"], r["top"], r["ended"]) for r in rows] == [("child", False, True), ("root", True, True)]
    child_attrs = dict(rows[0]["attributes"])
    assert child_attrs["n"] == "3" and child_attrs["ok"] == "true" and child_attrs["tags"] == '["a", "b"]'
    events = query(store, "SELECT events[1].Name AS e FROM spans WHERE name = 'root'")
    assert events == [{"e": "checkpoint"}]


def test_open_span_has_a_start_record_after_one_flush_interval(store: Path, make_provider) -> None:
    provider = make_provider(store)
    tracer = provider.get_tracer("test")
    span = tracer.start_span("long tool call", attributes={"agenttrace.run.id": "r2"})
    time.sleep(0.2 * 3)

    open_rows = query(store, "SELECT name, ended, end_time FROM spans WHERE run_id = 'r2'")
    assert open_rows == [{"name": "long tool call", "ended": False, "end_time": None}]

    span.end()
    provider.force_flush()
    closed = query(store, "SELECT count(*) AS n, bool_and(ended) AS ended FROM spans WHERE run_id = 'r2'")
    assert closed == [{"n": 1, "ended": True}]  # start and end records merge into one span


def test_spans_without_a_run_id_belong_to_the_run_named_by_their_trace(store: Path, make_provider) -> None:
    provider = make_provider(store)
    with provider.get_tracer("test").start_as_current_span("lonely") as span:
        trace_id = f"{span.get_span_context().trace_id:032x}"
    provider.force_flush()
    assert query(store, "SELECT run_id FROM spans") == [{"run_id": trace_id}]


def test_unwritable_store_never_raises_and_logs_once(tmp_path: Path, make_provider, caplog) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("precious")
    provider = make_provider(not_a_dir)
    tracer = provider.get_tracer("test")
    caplog.set_level(logging.WARNING, logger="agenttrace")
    for i in range(3):
        with tracer.start_as_current_span(f"work {i}"):
            pass
        provider.force_flush()  # three separate failing exports

    messages = [r.getMessage() for r in caplog.records if r.name == "agenttrace"]
    assert len(messages) == 1
    assert "cannot store spans" in messages[0] and "is a file, not a directory" in messages[0]
    assert not_a_dir.read_text() == "precious"
    provider.shutdown()  # and at the end, once, how many batches were lost
    ended = [r.getMessage() for r in caplog.records if r.name == "agenttrace"][1:]
    assert len(ended) == 1 and "3 span batch(es) could not be stored" in ended[0], ended


FULL_DISK_AGENT = textwrap.dedent(
    """
    import resource, signal, sys
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)         # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
    import agenttrace
    agenttrace.configure(flush_interval=0.05)
    with agenttrace.run("filling-the-disk"):
        for i in range(200):
            with agenttrace.step(f"step {i}", attributes={"blob": "x" * 2000}):
                pass
    print("agent finished its work")
    """
)


def test_a_full_disk_never_breaks_the_agent_or_what_is_stored(configured: Path) -> None:
    with agenttrace.run("stored-before", run_id="20261124T090000-0001"):
        pass
    before = tree_digest(configured / "spans")

    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK_AGENT],
        env={**os.environ, "AGENTTRACE_STORE": str(configured)},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "agent finished its work" in result.stdout
    assert result.stderr.count("agenttrace: cannot store spans") == 1
    after = tree_digest(configured / "spans")
    assert {k: v for k, v in after.items() if k in before} == before
    with Database(configured) as db:  # whatever did get stored is readable
        assert db.records("SELECT state FROM runs WHERE run_id = '20261124T090000-0001'") == [
            {"state": "succeeded"}
        ]


PLAIN_OTEL_PROGRAM = textwrap.dedent(
    """
    from opentelemetry import trace
    tracer = trace.get_tracer("plain-app")
    with tracer.start_as_current_span("handle request") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        with tracer.start_as_current_span("execute_tool search") as tool:
            tool.set_attribute("gen_ai.operation.name", "execute_tool")
            tool.set_attribute("gen_ai.tool.name", "search")
    print(format(span.get_span_context().trace_id, "032x"))
    """
)


def test_plain_otel_program_lands_through_the_entry_point(store: Path, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(PLAIN_OTEL_PROGRAM)
    env = {
        **os.environ,
        "OTEL_TRACES_EXPORTER": "agenttrace",
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_SERVICE_NAME": "plain-app",
        "AGENTTRACE_STORE": str(store),
    }
    result = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.strip().splitlines()[-1]

    rows = query(store, "SELECT run_id, name, service_name, ended FROM spans ORDER BY name")
    assert rows == [
        {"run_id": trace_id, "name": "execute_tool search", "service_name": "plain-app", "ended": True},
        {"run_id": trace_id, "name": "handle request", "service_name": "plain-app", "ended": True},
    ]
    assert query(store, "SELECT kind, tool_name FROM steps ORDER BY step") == [
        {"kind": "llm", "tool_name": None},
        {"kind": "tool", "tool_name": "search"},
    ]


FORKING_AGENT = textwrap.dedent(
    """
    import os
    import agenttrace
    from opentelemetry import trace
    agenttrace.configure(flush_interval=0.05)
    tracer = trace.get_tracer("forker")
    with tracer.start_as_current_span("before fork", attributes={"agenttrace.run.id": "forked"}):
        pass
    pid = os.fork()
    who = "child" if pid == 0 else "parent"
    for i in range(50):
        with tracer.start_as_current_span(f"{who} {i}", attributes={"agenttrace.run.id": "forked"}):
            pass
    if pid == 0:
        trace.get_tracer_provider().shutdown()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    """
)


def test_forked_children_write_their_own_records(store: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORKING_AGENT],
        env={**os.environ, "AGENTTRACE_STORE": str(store)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = query(
        store, "SELECT split_part(name, ' ', 1) AS who, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1"
    )
    assert rows == [{"who": "before", "n": 1}, {"who": "child", "n": 50}, {"who": "parent", "n": 50}]
    with Database(store) as db:
        assert db.warnings == []


def test_bad_flush_interval_fails_early_with_a_precise_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTRACE_FLUSH_INTERVAL", "soon")
    with pytest.raises(agenttrace.ConfigError, match="AGENTTRACE_FLUSH_INTERVAL must be a number of seconds"):
        agenttrace.ParquetSpanExporter()


def test_spans_a_full_queue_drops_are_counted_and_recorded_on_the_run(store: Path) -> None:
    # A store slower than the program: the batch processor's queue overflows. Every span is either
    # stored or counted as dropped, and the run's root span says how many it lost.
    script = textwrap.dedent(
        """
        import sys, threading
        import agenttrace
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from agenttrace.capture.exporter import ParquetSpanExporter
        from agenttrace.capture.tracing import batch_processor

        store = sys.argv[1]
        gate = threading.Event()

        class SlowStore(ParquetSpanExporter):
            def export(self, spans):
                gate.wait()
                return super().export(spans)

        exporter = SlowStore(store, flush_interval=0.2)
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider.add_span_processor(batch_processor(exporter, 0.2, max_queue_size=16))
        with agenttrace.run("burst", run_id="burst-1"):
            tracer = trace.get_tracer("burst")
            for i in range(100):
                with tracer.start_as_current_span(f"s{i}"):
                    pass
            gate.set()
        print(exporter.sink.dropped_spans)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(store)],
        env={**os.environ, "AGENTTRACE_STORE": str(store)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    dropped = int(done.stdout.strip())

    stored = query(store, "SELECT count(*) AS n FROM spans WHERE name LIKE 's%' AND ended")[0]["n"]
    root = query(store, "SELECT attributes FROM spans WHERE parent_span_id IS NULL")[0]

    assert dropped > 0
    assert stored + dropped == 100
    assert dict(root["attributes"])["agenttrace.spans.dropped"] == str(dropped)
    assert f"{dropped} span(s) were dropped" in done.stderr
