"""Where gates come from: the package and a `--gates DIR` the user names, never the store; a run's
gate set recorded at its start and read back intact; a built-in gate cannot be replaced."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import agenttrace
from agenttrace.analysis import Database
from agenttrace.audit.gates import audit_gates, builtin_gates, gates_from_record, load_gates, record_gates
from agenttrace.audit.verdict import evaluate
from agenttrace.capture.exporter import ParquetSpanExporter
from agenttrace.errors import ConfigError

MINE = """\
-- description: No single LLM call reads more than 4,000 tokens.
-- severity: warn
SELECT 'step ' || step || ' read ' || input_tokens || ' tokens' AS reason, span_id
FROM steps WHERE run_id = $run_id AND input_tokens > 4000
"""


def user_dir(tmp_path: Path, name: str = "token_cap", body: str = MINE) -> Path:
    folder = tmp_path / "my-gates"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.sql").write_text(body)
    return folder


def test_builtins_then_user_gates(tmp_path: Path) -> None:
    names = [g.name for g in load_gates(user_dir(tmp_path))]
    assert names == [*sorted(g.name for g in builtin_gates()), "token_cap"]
    assert "integrity" in names


def test_a_user_gate_cannot_take_a_builtin_name(tmp_path: Path) -> None:
    folder = user_dir(
        tmp_path,
        "exit_status",
        "-- description: always passes\nSELECT 1 AS reason, 2 AS span_id WHERE false\n",
    )
    with pytest.raises(ConfigError, match="'exit_status' is the name of a built-in gate"):
        load_gates(folder)


def test_the_recorded_set_round_trips_and_a_changed_record_is_refused(tmp_path: Path) -> None:
    gates = load_gates(user_dir(tmp_path))
    back = gates_from_record(record_gates(gates))
    assert [(g.name, g.sql, g.severity, g.source) for g in back] == [
        (g.name, g.sql, g.severity, g.source) for g in gates
    ]
    assert all(g.recorded for g in back)
    items = json.loads(record_gates(gates))
    items[0]["sql"] = items[0]["sql"].replace(
        "SELECT", "SELECT 'x' AS reason, NULL AS span_id WHERE false --", 1
    )
    with pytest.raises(ConfigError, match="does not match its recorded sha256"):
        gates_from_record(json.dumps(items))
    with pytest.raises(ConfigError, match="recorded gate set cannot be read"):
        gates_from_record("{not json")


def test_added_gates_are_marked_not_recorded(tmp_path: Path) -> None:
    recorded = record_gates(load_gates())
    gates = audit_gates(recorded, user_dir(tmp_path))
    assert [g.name for g in gates if not g.recorded] == ["token_cap"]
    assert all(g.recorded for g in gates if g.source == "builtin")
    assert [g.recorded for g in audit_gates(None, None)] == [False] * len(builtin_gates())


def test_a_builtin_gate_fixed_since_the_run_was_recorded_applies_to_it(tmp_path: Path) -> None:
    """Built-in gates ship with the code that audits: an old run is audited with this version's
    (marked not recorded), its `--gates` gates with what it recorded, and a built-in gate this
    version no longer has with what it recorded."""
    items = json.loads(record_gates(load_gates(user_dir(tmp_path))))
    old_sql = "-- description: the old rule\nSELECT 'old rule' AS reason, NULL AS span_id"
    for item in items:
        if item["name"] == "unfinished_spans":
            item["sql"] = old_sql
            item["sha256"] = hashlib.sha256(old_sql.encode()).hexdigest()
    retired = "-- description: retired\nSELECT 'retired' AS reason, NULL AS span_id WHERE false"
    items.append(
        {"name": "retired_gate", "source": "builtin", "sql": retired,
         "sha256": hashlib.sha256(retired.encode()).hexdigest()}
    )  # fmt: skip
    gates = {g.name: g for g in audit_gates(json.dumps(items), None)}
    current = {g.name: g for g in builtin_gates()}
    assert gates["unfinished_spans"].sql == current["unfinished_spans"].sql
    assert not gates["unfinished_spans"].recorded
    assert gates["exit_status"].recorded and gates["exit_status"].sql == current["exit_status"].sql
    assert gates["retired_gate"].sql == retired and gates["retired_gate"].recorded
    assert gates["token_cap"].sql == MINE and gates["token_cap"].recorded
    assert set(gates) == {*current, "retired_gate", "token_cap"}


def test_a_builtin_gate_added_since_the_run_was_recorded_applies_to_it_not_recorded() -> None:
    """A run recorded by a version without a gate (gpu_guard came in issue 14) is audited with
    it, marked not recorded; before, its audit failed with an internal KeyError."""
    items = [i for i in json.loads(record_gates(builtin_gates())) if i["name"] != "gpu_guard"]
    gates = {g.name: g for g in audit_gates(json.dumps(items), None)}
    assert "gpu_guard" in gates and not gates["gpu_guard"].recorded
    assert gates["exit_status"].recorded


def test_the_store_gates_folder_is_not_read_and_a_user_is_told(configured: Path) -> None:
    with agenttrace.run("spender"):
        agenttrace.llm("gpt-4o", finish_reason="stop", input_tokens=5000, output_tokens=10)
    (configured / "gates").mkdir()
    (configured / "gates" / "token_cap.sql").write_text(MINE)
    (configured / "gates" / "exit_status.sql").write_text(
        "-- description: forged\nSELECT 'forged' AS reason, NULL AS span_id\n"
    )
    result = run_cli("audit", "last", "--json", "--store", str(configured))
    assert result.returncode == 0, result.stderr
    verdict = json.loads(result.stdout)
    assert "token_cap" not in {g["name"] for g in verdict["gates"]}
    assert "is no longer read" in result.stderr and "--gates" in result.stderr
    listed = run_cli("gates", "--json", "--store", str(configured))
    assert "token_cap" not in listed.stdout and "is no longer read" in listed.stderr


def test_a_user_gate_passed_with_gates_runs(configured: Path, tmp_path: Path) -> None:
    with agenttrace.run("spender"):
        agenttrace.llm("gpt-4o", finish_reason="stop", input_tokens=5000, output_tokens=10)
    result = run_cli(
        "audit", "last", "--json", "--gates", str(user_dir(tmp_path)), "--store", str(configured)
    )
    assert result.returncode == 0, "a warning does not fail the run"
    (mine,) = [g for g in json.loads(result.stdout)["gates"] if g["name"] == "token_cap"]
    assert (mine["status"], mine["severity"], mine["recorded"]) == ("fail", "warn", False)
    assert mine["violations"][0]["reason"] == "step 1 read 5000 tokens"


def test_gates_text_lists_where_each_comes_from(tmp_path: Path) -> None:
    result = run_cli("gates", "--gates", str(user_dir(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert "token_cap" in result.stdout and "--gates" in result.stdout
    assert "integrity" in result.stdout


FRAGMENTS = [
    "SELECT", "'x' AS reason", "NULL AS span_id", "FROM steps", "FROM runs", "WHERE run_id = $run_id",
    "WHERE false", ";", "COPY (SELECT 1) TO '{target}'", "read_text('{secret}')", "FROM glob('/*')",
    "ATTACH '{target}'", "INSTALL httpfs", "LOAD httpfs", "SET enable_external_access = true", "--",
    "UNION ALL", "(", ")", ",", "PRAGMA version", "CREATE TABLE t AS SELECT 1", "$other", "'",
]  # fmt: skip
HEADERS = ["-- description: fuzzed", "-- severity: warn", "-- severity: fatal", "-- applies: "]


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(
    header=st.lists(st.sampled_from(HEADERS), max_size=4),
    applies=st.lists(st.sampled_from(FRAGMENTS), max_size=6),
    body=st.lists(st.sampled_from(FRAGMENTS), max_size=12),
)
def test_fuzz_gate_files_never_crash_or_escape(
    fuzz_store: tuple[Path, Path], header: list[str], applies: list[str], body: list[str]
) -> None:
    """A gate file is either refused with a ConfigError naming it, or evaluated in the sandbox:
    never another exception, never a file written or read outside the store."""
    store, outside = fuzz_store
    target, secret = outside / "written", outside / "secret"
    fill = {"target": target, "secret": secret}
    lines = [h + " ".join(applies).format(**fill) if h.endswith("applies: ") else h for h in header]
    folder = outside / "gates"
    folder.mkdir(exist_ok=True)
    path = folder / "fuzzed.sql"
    path.write_text("\n".join([*lines, " ".join(body).format(**fill)]) + "\n")
    try:
        gates = [g for g in load_gates(folder) if g.name == "fuzzed"]
        with Database(store) as db:
            (run_id,) = [r["run_id"] for r in db.records("SELECT run_id FROM runs")]
            for gate in gates:
                evaluate(db, gate, run_id)
    except ConfigError as exc:
        assert str(exc).startswith(f"gate {path}: ") or str(exc).startswith(f"gate {folder}")
    assert not target.exists()


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("gatefuzz")
    store, outside = base / "store", base / "outside"
    outside.mkdir()
    (outside / "secret").write_text("secret\n")
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ParquetSpanExporter(store, flush_interval=0.2)))
    with provider.get_tracer("t").start_as_current_span(
        "run", attributes={"agenttrace.run.id": "20261201T140000-f022", "agenttrace.span.type": "run"}
    ):
        pass
    provider.shutdown()
    return store, outside
