"""The commands as a user runs them: runs, show, query; and every bad input from issue 2."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from conftest import BIN, run_cli

import agenttrace


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under root with its content hash: proof that nothing stored changed."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def two_runs(configured: Path) -> Path:
    """A store holding one run that succeeded and one that failed."""
    with agenttrace.run("good-agent", run_id="20261124T100000-aaaa"):
        with agenttrace.tool_call("grep", call_id="call_1", arguments={"pattern": "foo"}) as call:
            call.set_result("a.py:1: foo")
        agenttrace.llm("gpt-4o", finish_reason="stop", input_tokens=10, output_tokens=5)
    with (
        pytest.raises(RuntimeError),
        agenttrace.run("bad-agent", run_id="20261124T110000-bbbb"),
        agenttrace.step("fetch"),
    ):
        raise RuntimeError("upstream returned 502")
    return configured


def test_runs_lists_runs_with_states(two_runs: Path, cli) -> None:
    result = cli("runs", "--store", str(two_runs))
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["RUN", "NAME", "STATE"]
    assert "20261124T100000-aaaa" in lines[1] and "good-agent" in lines[1] and "succeeded" in lines[1]
    assert "20261124T110000-bbbb" in lines[2] and "failed" in lines[2]


def test_runs_json_has_the_runs_view_columns(two_runs: Path, cli) -> None:
    result = cli("runs", "--json", "--store", str(two_runs))
    rows = json.loads(result.output)
    assert [(r["run_id"], r["name"], r["state"]) for r in rows] == [
        ("20261124T100000-aaaa", "good-agent", "succeeded"),
        ("20261124T110000-bbbb", "bad-agent", "failed"),
    ]
    for column in ("started", "ended", "duration_s", "exit_code", "signal", "command", "objective"):
        assert column in rows[0]
    assert rows[0]["started"].endswith("Z")


def test_runs_filters_by_state_and_rejects_unknown_states(two_runs: Path, cli) -> None:
    rows = json.loads(cli("runs", "--state", "failed", "--json", "--store", str(two_runs)).output)
    assert [r["run_id"] for r in rows] == ["20261124T110000-bbbb"]
    bad = run_cli("runs", "--state", "exploded", "--store", str(two_runs))
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "Error: unknown state 'exploded'; choose one of: pending, "
        "running, verifying, succeeded, failed, timed_out, cancelled, unknown"
    ]


def test_show_draws_the_tree_with_steps_status_and_errors(two_runs: Path, cli) -> None:
    good = cli("show", "20261124T100000", "--store", str(two_runs)).output
    assert "Run 20261124T100000-aaaa" in good and "succeeded" in good
    assert "#1 tool execute_tool grep" in good
    assert "#2 llm chat gpt-4o" in good and "finish: stop" in good
    bad = cli("show", "last", "--store", str(two_runs)).output
    assert "Run 20261124T110000-bbbb" in bad and "failed" in bad
    fetch = next(line for line in bad.splitlines() if "fetch" in line)
    assert "error: RuntimeError: upstream returned 502" in fetch


def test_show_limits_how_many_spans_it_draws(two_runs: Path, cli) -> None:
    out = cli("show", "20261124T100000-aaaa", "--limit", "1", "--store", str(two_runs)).output
    assert "2 more spans not drawn" in out


def test_query_prints_table_json_and_csv(two_runs: Path, cli) -> None:
    sql = "SELECT step, kind, tool_name FROM steps WHERE run_id = '20261124T100000-aaaa' ORDER BY step"
    table = cli("query", sql, "--store", str(two_runs)).output
    assert "tool" in table and "grep" in table and "(2 rows)" in table
    assert json.loads(cli("query", sql, "--json", "--store", str(two_runs)).output) == [
        {"step": 1, "kind": "tool", "tool_name": "grep"},
        {"step": 2, "kind": "llm", "tool_name": None},
    ]
    assert (
        cli("query", sql, "--csv", "--store", str(two_runs)).output
        == "step,kind,tool_name\n1,tool,grep\n2,llm,\n"
    )


def test_query_reads_sql_from_stdin(two_runs: Path, cli) -> None:
    result = cli("query", "-", "--json", "--store", str(two_runs), input="SELECT count(*) AS n FROM runs")
    assert json.loads(result.output) == [{"n": 2}]


def test_store_from_environment(two_runs: Path) -> None:
    result = run_cli("runs", "--json", env={"AGENTTRACE_STORE": str(two_runs)})
    assert result.returncode == 0
    assert len(json.loads(result.stdout)) == 2


def test_help_explains_every_command(cli) -> None:
    top = run_cli("--help")  # the installed console script
    assert top.returncode == 0
    commands = ("runs", "show", "query", "serve", "run", "orphans", "audit", "gates", "step", "claim")
    for command in commands:
        assert command in top.stdout
        sub = cli(command, "--help")  # in-process: the same app, without a Python start-up each
        assert sub.exit_code == 0 and "Example:" in sub.stdout and "--store" in sub.stdout, command


# -- bad input: one clear Error: line, exit 2, nothing stored changes --------------------------


def assert_one_error(result, expected: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


def test_store_path_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "store"
    not_a_dir.write_text("precious")
    for args in (["runs"], ["show", "last"], ["query", "SELECT 1"]):
        assert_one_error(run_cli(*args, "--store", str(not_a_dir)), "is a file, not a directory")
    assert not_a_dir.read_text() == "precious"


def test_missing_store(tmp_path: Path) -> None:
    assert_one_error(run_cli("runs", "--store", str(tmp_path / "nope")), "no agenttrace store at")
    assert not (tmp_path / "nope").exists()


def test_unknown_run(two_runs: Path) -> None:
    before = tree_digest(two_runs)
    assert_one_error(run_cli("show", "19990101", "--store", str(two_runs)), "no run matches '19990101'")
    assert tree_digest(two_runs) == before


def test_ambiguous_prefix(two_runs: Path) -> None:
    before = tree_digest(two_runs)
    result = run_cli("show", "20261124T1", "--store", str(two_runs))
    assert_one_error(result, "run prefix '20261124T1' matches 2 runs")
    assert "20261124T100000-aaaa" in result.stderr and "20261124T110000-bbbb" in result.stderr
    assert tree_digest(two_runs) == before


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM spans",
        "INSERT INTO spans SELECT * FROM spans",
        "COPY spans TO 'out.csv'",
        "ATTACH 'other.db'",
        "CREATE TABLE t AS SELECT 1",
        "SELECT 1; DROP VIEW spans",
    ],
)
def test_write_statements_are_refused(two_runs: Path, tmp_path: Path, sql: str) -> None:
    before = tree_digest(two_runs)
    result = run_cli("query", sql, "--store", str(two_runs), cwd=tmp_path)
    assert_one_error(result, "")
    assert "read-only" in result.stderr or "one statement at a time" in result.stderr
    assert tree_digest(two_runs) == before
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "other.db").exists()


def test_bad_sql_is_one_error_line(two_runs: Path) -> None:
    assert_one_error(run_cli("query", "SELECT nope FROM spans", "--store", str(two_runs)), "nope")


def test_truncated_part_is_skipped_with_a_warning(two_runs: Path) -> None:
    part = next((two_runs / "spans" / "run_id=20261124T110000-bbbb").glob("*.parquet"))
    part.write_bytes(part.read_bytes()[:-100])
    before = tree_digest(two_runs)

    result = run_cli("runs", "--json", "--store", str(two_runs))

    assert result.returncode == 0
    assert [r["run_id"] for r in json.loads(result.stdout)] == ["20261124T100000-aaaa"]
    assert f"Warning: skipped corrupt part {part}" in result.stderr
    assert tree_digest(two_runs) == before  # the corrupt part is kept for a person to inspect


def test_tmp_leftover_is_ignored(two_runs: Path) -> None:
    partition = two_runs / "spans" / "run_id=20261124T100000-aaaa"
    leftover = partition / "part-00000000000000000001-deadbeef.parquet.tmp"
    leftover.write_bytes(b"PAR1 half written")
    before = tree_digest(two_runs)

    result = run_cli("query", "SELECT count(*) AS n FROM spans", "--json", "--store", str(two_runs))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"n": 5}]
    assert result.stderr == ""
    assert tree_digest(two_runs) == before


HEAVY = ("duckdb", "pyarrow", "pandas", "numpy", "grpc", "opentelemetry.sdk")
"""What `--help` and a usage error must not import (issue 13): they answer at once."""

IMPORTED_AFTER = """
import sys
from agenttrace.cli import main
sys.argv = ["agenttrace", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("--- modules ---")
print("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "args", [["--help"], ["step", "--help"], ["run", "--help"], ["serve", "--help"], ["step"], ["nope"]]
)
def test_help_and_usage_errors_import_no_duckdb_pyarrow_or_otel_sdk(args: list[str]) -> None:
    result = subprocess.run(
        [str(BIN / "python"), "-c", IMPORTED_AFTER, *args], capture_output=True, text=True, check=True
    )
    modules = result.stdout.split("--- modules ---\n")[-1].split()  # not the help text's words
    assert "agenttrace.cli" in modules
    heavy = sorted({m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)})
    assert not heavy, heavy


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["step", "last", "-1"], "Error: No such option: -1 (see `agenttrace step --help`)"),
        (["step"], "Error: Missing argument 'RUN'. (see `agenttrace step --help`)"),
        (["nope"], "Error: No such command 'nope'. (see `agenttrace --help`)"),
        (["serve", "--port", "70000"], "Error: Invalid value for '--port': "),
        (["serve", "--grpc-port", "-1"], "Error: Invalid value for '--grpc-port': "),
    ],
)
def test_a_usage_error_is_one_error_line_and_exit_2(args: list[str], said: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith(said), line


def test_output_to_a_pipe_keeps_lines_whole_with_no_trailing_spaces(configured: Path) -> None:
    name = "refactor the billing module and update every caller of the old invoice API " * 2
    with agenttrace.run(name.strip()) as run:
        agenttrace.llm("gpt-4o", finish_reason="length")
    for command in (["runs"], ["show", "last"], ["audit", "last"], ["gates"]):
        result = run_cli(*command, "--store", str(configured))
        assert result.returncode in (0, 1), result.stderr
        lines = result.stdout.splitlines()
        assert lines and not [line for line in lines if line != line.rstrip()], command
    listed = run_cli("runs", "--store", str(configured)).stdout.splitlines()
    (row,) = [line for line in listed if run.id in line]
    assert name.strip() in row  # one line per run: `grep` finds the run id and its whole name


def test_agenttrace_run_keeps_pandas_out(tmp_path: Path) -> None:
    """pyarrow and DuckDB import pandas only to ask whether a value is a DataFrame (issue 13)."""
    args = ["run", "--store", str(tmp_path / "store"), "--", "true"]
    done = subprocess.run(
        [str(BIN / "python"), "-c", IMPORTED_AFTER, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    imported = set(done.stdout.split())
    assert "Run " in done.stderr and "SUCCEEDED" in done.stderr, done.stderr
    assert "pyarrow" in imported and "duckdb" in imported  # it did read and write the store
    assert not {m for m in imported if m == "pandas" or m.startswith("pandas.")}
