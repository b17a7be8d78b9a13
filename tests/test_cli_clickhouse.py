"""The read commands with `--engine` on ClickHouse, `agenttrace clickhouse init` and `agenttrace push`,
as a user runs them: the installed CLI, real ClickHouse in-process (chdb, on a data folder), real
corpus runs, and bad input (a bad URL, a server that is not there, SQL that reaches outside)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

CORPUS = Path(__file__).parent / "corpus"
CASES = ("py-pydantic-clean", "py-openai-cutoff", "sh-exits-1")
RUN = {case: json.loads((CORPUS / case / "label.json").read_text())["run_id"] for case in CASES}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    found = tmp_path_factory.mktemp("local") / "store"
    for case in CASES:
        shutil.copytree(CORPUS / case / "store", found, dirs_exist_ok=True)
    return found


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, store: Path) -> str:
    """A chdb database with the tables made by `clickhouse init` and the corpus runs pushed."""
    url = f"chdb://{tmp_path_factory.mktemp('chdb')}/data?database=fleet"
    for _ in range(2):  # again: nothing changes, nothing fails
        result = run_cli("clickhouse", "init", "--to", url, "--json")
        assert result.returncode == 0, result.stderr
    tables = json.loads(result.stdout)["tables"]
    assert {"otel_traces", "otel_logs", "otel_metrics_sum", "agenttrace_spans", "agenttrace_runs"} <= set(
        tables
    )
    result = run_cli("push", *RUN.values(), "--to", url, "--store", str(store), "--json")
    assert result.returncode == 0, result.stderr
    pushed = {r["run_id"]: r for r in json.loads(result.stdout)["runs"]}
    assert set(pushed) == set(RUN.values())
    assert all(r["supervised"] and r["spans"] > 0 for r in pushed.values())
    return url


def test_runs_lists_the_same_runs_as_the_local_store(store: Path, engine: str) -> None:
    local = run_cli("runs", "--json", "--store", str(store))
    remote = run_cli("runs", "--json", "--engine", engine)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    failed = run_cli("runs", "--state", "failed", "--since", "3650d", "--json", "--engine", engine)
    assert {r["run_id"] for r in json.loads(failed.stdout)} == {RUN["py-openai-cutoff"], RUN["sh-exits-1"]}
    recent = run_cli("runs", "--since", "1m", "--json", "--engine", engine)
    assert json.loads(recent.stdout) == []  # the corpus runs are older than a minute


@pytest.mark.parametrize("case", CASES)
def test_audit_gives_the_local_verdict_and_exit_status(store: Path, engine: str, case: str) -> None:
    local = run_cli("audit", RUN[case], "--json", "--store", str(store))
    remote = run_cli("audit", RUN[case][:-2], "--json", "--engine", engine)  # a prefix resolves there too
    assert remote.returncode == local.returncode, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)


def test_audit_all_gives_a_verdict_per_run(store: Path, engine: str) -> None:
    remote = run_cli("audit", "--all", "--since", "3650d", "--json", "--engine", engine)
    assert remote.returncode == 1, remote.stderr  # two of the three runs failed
    answer = json.loads(remote.stdout)
    states = {r["run_id"]: r["state"] for r in answer["runs"]}
    assert states == {
        RUN["py-pydantic-clean"]: "succeeded",
        RUN["py-openai-cutoff"]: "failed",
        RUN["sh-exits-1"]: "failed",
    }
    assert (answer["succeeded"], answer["failed"], answer["errors"]) == (1, 2, 0)
    for run in answer["runs"]:  # the same verdict as auditing the run alone
        alone = json.loads(run_cli("audit", run["run_id"], "--json", "--store", str(store)).stdout)
        assert run == alone
    local = run_cli("audit", "--all", "--json", "--store", str(store))
    assert json.loads(local.stdout) == answer
    table = run_cli("audit", "--all", "--engine", engine)
    assert "3 runs: 1 succeeded, 2 not" in table.stdout
    none = run_cli("audit", "--all", "--since", "1m", "--json", "--engine", engine)
    assert none.returncode == 0 and json.loads(none.stdout)["runs"] == []


def test_step_and_show_read_the_same_run(store: Path, engine: str) -> None:
    run_id = RUN["py-pydantic-clean"]
    for n in (1, 2):
        local = run_cli("step", run_id, str(n), "--json", "--store", str(store))
        remote = run_cli("step", run_id, str(n), "--json", "--engine", engine)
        assert remote.returncode == 0, remote.stderr
        assert json.loads(remote.stdout) == json.loads(local.stdout)
    local = run_cli("show", run_id, "--store", str(store))
    remote = run_cli("show", run_id, "--engine", engine)
    assert remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout


def test_report_of_a_run_on_clickhouse(tmp_path: Path, store: Path, engine: str) -> None:
    run_id = RUN["py-openai-cutoff"]
    remote = run_cli("report", run_id, "-o", str(tmp_path / "r.html"), "--json", "--engine", engine)
    assert remote.returncode == 0, remote.stderr
    local = run_cli("report", run_id, "-o", str(tmp_path / "l.html"), "--json", "--store", str(store))
    ours, theirs = json.loads(local.stdout), json.loads(remote.stdout)
    assert (theirs["state"], theirs["spans"]) == (ours["state"], ours["spans"]) == ("failed", ours["spans"])
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_query_runs_on_clickhouse_and_refuses_what_reaches_outside(
    store: Path, engine: str, tmp_path: Path
) -> None:
    sql = "SELECT run_id, count(*) AS n FROM spans GROUP BY run_id ORDER BY run_id"
    local = run_cli("query", sql, "--json", "--store", str(store))
    remote = run_cli("query", sql, "--json", "--engine", engine)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    secret = tmp_path / "secret.txt"
    secret.write_text("password\n")
    for bad in (
        f"SELECT * FROM file('{secret}', 'LineAsString')",
        f"SELECT file('{secret}')",
        "SELECT * FROM url('http://127.0.0.1:1/x', 'CSV', 'a String')",
        "SELECT name FROM system.tables",
        "SELECT * FROM executable('cat /etc/passwd', 'LineAsString', 'x String')",
    ):
        result = run_cli("query", bad, "--engine", engine)
        assert result.returncode == 2, (bad, result.stdout)
        assert result.stderr.startswith("Error: "), result.stderr
        assert "password" not in result.stdout
    written = run_cli("query", "INSERT INTO agenttrace_runs VALUES ('x')", "--engine", engine)
    assert written.returncode == 2 and "only SELECT" in written.stderr


def test_a_user_gate_that_reaches_outside_is_refused(tmp_path: Path, engine: str) -> None:
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "leak.sql").write_text(
        "-- description: reads a file\n-- severity: error\n"
        "SELECT file('/etc/hostname') AS reason, NULL AS span_id FROM runs WHERE run_id = $run_id\n"
    )
    result = run_cli("audit", RUN["sh-exits-1"], "--gates", str(gates), "--engine", engine)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: gate ") and "leak.sql" in result.stderr, result.stderr
    (gates / "leak.sql").write_text(
        "-- description: reaches a server\n-- severity: error\n"
        "SELECT url AS reason, NULL AS span_id FROM url('http://127.0.0.1:1/x', 'CSV', 'url String')\n"
    )
    result = run_cli("audit", RUN["sh-exits-1"], "--gates", str(gates), "--engine", engine)
    assert result.returncode == 2
    assert "url() is refused on ClickHouse" in result.stderr, result.stderr


@pytest.mark.parametrize(
    "url, message",
    [
        ("mysql://db/x", "unknown engine"),
        ("clickhouse://user:secret@127.0.0.1:8123/otel", "AGENTTRACE_CLICKHOUSE_PASSWORD"),
        ("clickhouse:///otel", "names no host"),
        ("clickhouse://default@127.0.0.1:8123/otel`; DROP", "not a database name"),
        ("chdb:///tmp/x?database=a%60b", "not a database name"),
        ("clickhouse://default@127.0.0.1:1/otel", "cannot reach ClickHouse"),
    ],
)
def test_a_bad_engine_is_one_error_line(url: str, message: str) -> None:
    result = run_cli("runs", "--engine", url)
    assert result.returncode == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_engine_comes_from_the_environment_too(engine: str) -> None:
    result = run_cli("runs", "--json", env={"AGENTTRACE_ENGINE": engine})
    assert result.returncode == 0, result.stderr
    assert {r["run_id"] for r in json.loads(result.stdout)} == set(RUN.values())


def test_unknown_runs_and_pushes_without_tables(tmp_path: Path, store: Path, engine: str) -> None:
    missing = run_cli("audit", "no-such-run", "--engine", engine)
    assert missing.returncode == 2 and "no run matches 'no-such-run'" in missing.stderr
    bare = f"chdb://{tmp_path}/bare"
    result = run_cli("push", RUN["sh-exits-1"], "--to", bare, "--store", str(store))
    assert result.returncode == 2
    assert "agenttrace clickhouse init" in result.stderr
    unknown = run_cli("push", "nope", "--to", bare, "--store", str(store))
    assert unknown.returncode == 2 and "no run matches" in unknown.stderr
