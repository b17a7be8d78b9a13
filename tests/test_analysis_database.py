"""The store's DuckDB connection is a sandbox for the SQL users and gates bring: it reads the
store and nothing else, writes no file, loads no extension, and cannot be reconfigured. Tried as an
attacker would, through the real `agenttrace query` and `agenttrace audit --gates`."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from conftest import run_cli

import agenttrace
from agenttrace.analysis import Database
from agenttrace.errors import QueryError

SECRET = "root-only secret 5e3f"


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "shadow"
    path.parent.mkdir()
    path.write_text(SECRET + "\n")
    return path


@pytest.fixture
def recorded(configured: Path) -> Path:
    with agenttrace.run("ok"):
        agenttrace.llm("gpt-4o", finish_reason="stop")
    return configured


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT content FROM read_text('{secret}')",
        "SELECT * FROM read_csv('{secret}', header=false)",
        "SELECT file FROM glob('{outside}/*')",
        "SELECT * FROM sniff_csv('{secret}')",
        "SELECT * FROM read_parquet('https://example.invalid/x.parquet')",
        "SELECT * FROM read_text('{store}/../outside/shadow')",
    ],
)
def test_query_cannot_read_outside_the_store(recorded: Path, secret: Path, sql: str) -> None:
    text = sql.format(secret=secret, outside=secret.parent, store=recorded)
    result = run_cli("query", text, "--store", str(recorded))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ") and "disabled by configuration" in line
    assert SECRET not in result.stdout + result.stderr


def test_query_reads_the_store_itself(recorded: Path) -> None:
    result = run_cli("query", f"SELECT count(*) AS n FROM glob('{recorded}/spans/*/*.parquet')", "--json",
                     "--store", str(recorded))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"n": 1' in result.stdout


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("COPY (SELECT 42) TO '{target}'", "COPY statements are refused"),
        ("SELECT 1; COPY (SELECT 42) TO '{target}'", "one statement at a time"),
        ("INSTALL httpfs", "refused"),
        ("LOAD httpfs", "refused"),
        ("ATTACH '{target}' AS x", "refused"),
        ("SET enable_external_access = true", "refused"),
    ],
)
def test_query_writes_nothing(recorded: Path, tmp_path: Path, sql: str, problem: str) -> None:
    target = tmp_path / "written.csv"
    result = run_cli("query", sql.format(target=target), "--store", str(recorded),
                     env={"HOME": str(tmp_path / "home")})  # fmt: skip
    assert result.returncode == 2
    assert problem in result.stderr
    assert not target.exists()
    assert not (tmp_path / "home" / ".duckdb").exists(), "no extension was installed or looked for"


def test_the_connection_itself_refuses_what_the_statement_check_might_miss(
    recorded: Path, secret: Path
) -> None:
    """Defence in depth: the DuckDB settings hold even for SQL that reaches the connection."""
    with Database(recorded) as db:
        for sql in (
            f"SELECT * FROM read_text('{secret}')",
            "SET enable_external_access = true",
            "SET allowed_directories = ['/']",
            "LOAD httpfs",
            f"COPY (SELECT 1) TO '{secret.parent / 'x.csv'}'",
        ):
            with pytest.raises(QueryError):
                db.execute(sql)
        assert db.records("SELECT count(*) AS n FROM runs") == [{"n": 1}]
    assert not (secret.parent / "x.csv").exists()


def gate_dir(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "gates"
    folder.mkdir()
    (folder / "sneaky.sql").write_text(textwrap.dedent(body))
    return folder


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            """\
            -- description: leaks a file into its reasons
            SELECT content AS reason, NULL AS span_id FROM read_text('{secret}')
            """,
            "disabled by configuration",
        ),
        (
            """\
            -- description: writes a file
            COPY (SELECT 42) TO '{target}'
            """,
            "its SQL: query is read-only",
        ),
        (
            """\
            -- description: two statements
            SELECT 1 AS reason, NULL AS span_id; COPY (SELECT 42) TO '{target}'
            """,
            "its SQL: one statement at a time",
        ),
        (
            """\
            -- description: the applies line writes
            -- applies: COPY (SELECT true) TO '{target}'
            SELECT 'x' AS reason, NULL AS span_id WHERE false
            """,
            "its `applies:` query: query is read-only",
        ),
        (
            """\
            -- description: the applies line reads a secret
            -- applies: SELECT content <> '' FROM read_text('{secret}')
            SELECT 'x' AS reason, NULL AS span_id WHERE false
            """,
            "disabled by configuration",
        ),
    ],
)
def test_gate_sql_is_sandboxed_and_named_with_exit_2(
    recorded: Path, tmp_path: Path, secret: Path, body: str, problem: str
) -> None:
    target = tmp_path / "written.csv"
    folder = gate_dir(tmp_path, body.format(secret=secret, target=target))
    result = run_cli("audit", "last", "--gates", str(folder), "--store", str(recorded))
    assert result.returncode == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith(f"Error: gate {folder / 'sneaky.sql'}: ") and problem in line
    assert SECRET not in result.stdout + result.stderr
    assert not target.exists()


def test_a_supervised_runs_part_cut_short_is_skipped_not_an_internal_error(tmp_path: Path) -> None:
    """A part whose footer is gone fails DuckDB's bind when the views are made, before any query:
    it was `Error: internal error: InvalidInputException` for `audit last`, `report`, `export`.
    It is skipped as a query skips it, and the run's integrity gate names it."""
    store = tmp_path / "store"
    done = run_cli("run", "--store", str(store), "--", "true", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(store / "derived", ignore_errors=True)  # no cached tables: the parts are read
    (part, *_) = sorted((store / "spans").rglob("*.parquet"))
    part.write_bytes(part.read_bytes()[:-100])
    audited = run_cli("audit", "last", "--json", "--store", str(store), cwd=tmp_path)
    assert audited.returncode == 1, audited.stderr
    assert "internal error" not in audited.stderr and f"skipped corrupt part {part}" in audited.stderr
    gates = {g["name"]: g for g in json.loads(audited.stdout)["gates"]}
    assert gates["integrity"]["status"] == "fail"
