"""Derived tables (store.derived, analysis.derive, analysis.derived): a sealed run's views computed
once. They are a cache: every answer read from them equals the answer computed from the parts
(proved on the labelled corpus of issue 9), and a forged one is never used."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import BIN

from agenttrace.analysis import Database
from agenttrace.analysis.derive import derive_run
from agenttrace.analysis.derived import DerivedDatabase, run_database
from agenttrace.analysis.resolve import resolve_run
from agenttrace.analysis.run_list import list_runs
from agenttrace.analysis.step import explain_step
from agenttrace.audit.gates import audit_gates
from agenttrace.audit.verdict import audit
from agenttrace.errors import QueryError
from agenttrace.store.derived import table_path, usable, why_not
from agenttrace.store.layout import StoreLayout
from agenttrace.store.manifest import read_manifest, write_manifest

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "label.json").exists() and (p / "store").is_dir())


def seal_derived(layout: StoreLayout, run_id: str) -> bool:
    """What `agenttrace run`'s supervisor does at the end of a run: derive the run's tables from
    its verified parts and list them in its manifest. False when they were not written."""
    manifest = read_manifest(layout, run_id)
    entry = derive_run(layout, run_id, manifest)
    if entry is None:
        return False
    if manifest is not None:
        manifest.derived = entry.as_json()
        write_manifest(layout, manifest)
    return True


def corpus_store(case: str, tmp_path: Path) -> tuple[StoreLayout, str]:
    store = tmp_path / "store"
    shutil.copytree(CORPUS / case / "store", store, symlinks=True)
    run_id = json.loads((CORPUS / case / "label.json").read_text())["run_id"]
    return StoreLayout(store), run_id


def answers(db: Any, run_id: str) -> dict[str, Any]:
    """Everything the read commands ask of one run."""
    rows = db.report("recorded_gates", run_id=run_id)
    gates = audit_gates(rows[0]["recorded_gates"] if rows else None, None)
    found: dict[str, Any] = {
        "verdict": audit(db, run_id, gates).as_json(),
        "summary": db.report("run_summary", run_id=run_id),
        "spans": db.report("run_spans", run_id=run_id),
        "claims": db.report("claims", run_id=run_id, step=None),
        "orphans": db.report("orphans", run_id=run_id),
        "evidence_urls": db.report("evidence_urls", run_id=run_id),
    }
    total = db.report("step_next", run_id=run_id, step=0)[0]["steps"] or 0
    for n in range(1, total + 2):
        try:
            found[f"step {n}"] = explain_step(db, run_id, n)
        except QueryError as exc:
            found[f"step {n}"] = str(exc)
    return found


class Corpus:
    """Each corpus run, copied once for the module: what the views answer, then the run sealed as
    the supervisor seals it (both tests below ask about the same sealed copy)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sealed: dict[str, tuple[StoreLayout, str, dict[str, Any], list[dict[str, Any]], bool]] = {}

    def __call__(self, case: str) -> tuple[StoreLayout, str, dict[str, Any], list[dict[str, Any]], bool]:
        if case not in self.sealed:
            layout, run_id = corpus_store(case, self.root / case)
            with Database(layout, runs=[run_id], verify=True) as db:
                computed = answers(db, run_id)
                listed = db.report("run_list", state=None)
            if layout.run_ids() != [run_id]:  # a case with more runs (a replay's original, say)
                with Database(layout) as db:
                    listed = db.report("run_list", state=None)
            self.sealed[case] = (layout, run_id, computed, listed, seal_derived(layout, run_id))
        return self.sealed[case]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("case", CASES)
def test_derived_tables_answer_as_the_views_on_the_corpus(case: str, corpus: Corpus) -> None:
    layout, run_id, computed, listed, derived = corpus(case)
    fast = DerivedDatabase.open(layout, run_id, verify=True)
    if fast is None:  # only a run whose records differ from its manifest is not derived
        assert not derived or why_not(layout, run_id, verify_parts=True)
        assert computed["verdict"]["state"] == "failed"
        assert "integrity" in " ".join(computed["verdict"]["reasons"]), why_not(layout, run_id)
        return
    with fast:
        cached = answers(fast, run_id)
    assert cached == computed
    assert list_runs(layout) == (listed, [])
    assert resolve_run(layout, "last") == run_id


def test_most_of_the_corpus_is_derived(corpus: Corpus) -> None:
    derived = 0
    for case in CASES:
        layout, run_id, _, _, sealed = corpus(case)
        derived += sealed and usable(layout, run_id, verify_parts=True) is not None
    assert derived >= len(CASES) - 3, derived


def failed_run(tmp_path: Path) -> tuple[StoreLayout, str]:
    layout, run_id = corpus_store("py-openai-cutoff", tmp_path)
    assert seal_derived(layout, run_id)
    return layout, run_id


def cli(layout: StoreLayout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "agenttrace"), *args, "--store", str(layout.root)], capture_output=True, text=True
    )


def forge(layout: StoreLayout, run_id: str, name: str, sql: str) -> None:
    """What an agent running as the same user can do: write a derived table of its own."""
    con = duckdb.connect()
    path = table_path(layout, run_id, name)
    con.execute(f"COPY ({sql}) TO '{path}' (FORMAT parquet)")
    con.close()


def test_forged_derived_tables_do_not_change_a_failed_runs_verdict(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    assert json.loads(cli(layout, "audit", run_id, "--json").stdout)["state"] == "failed"
    runs = layout.derived_run_dir(run_id) / "runs.parquet"
    # Every table says all is well: the run succeeded, it took no steps, nothing was cut short.
    forge(layout, run_id, "runs", f"SELECT * REPLACE ('succeeded' AS state) FROM read_parquet('{runs}')")
    for path in layout.derived_run_dir(run_id).glob("*.parquet"):
        if path.stem != "runs":
            forge(layout, run_id, path.stem, f"SELECT * FROM read_parquet('{path}') LIMIT 0")
    assert why_not(layout, run_id) is not None  # the hashes in the manifest do not match
    result = cli(layout, "audit", run_id, "--json")
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["state"] == "failed"
    assert [g["name"] for g in verdict["gates"] if g["status"] == "fail"] == ["completion_signal"]
    listed = json.loads(cli(layout, "runs", "--json").stdout)
    assert [r["state"] for r in listed] == ["failed"]


def test_a_forged_stamp_does_not_stand_for_a_supervised_runs_manifest(tmp_path: Path) -> None:
    """The agent cannot make a supervised run's derived tables count by writing the stamp an
    unsupervised run's tables are checked with: the manifest's record of them decides."""
    layout, run_id = failed_run(tmp_path)
    manifest = read_manifest(layout, run_id)
    assert manifest is not None and manifest.derived is not None
    runs = table_path(layout, run_id, "runs")
    forge(layout, run_id, "runs", f"SELECT * REPLACE ('succeeded' AS state) FROM read_parquet('{runs}')")
    forged = dict(manifest.derived)
    forged["tables"] = [dict(t, sha256="0" * 64) if t["name"] == "runs" else t for t in forged["tables"]]
    (layout.derived_run_dir(run_id) / "stamp.json").write_text(json.dumps(forged))
    manifest.derived = None  # as if the supervisor had written none
    write_manifest(layout, manifest)
    assert usable(layout, run_id) is None
    assert json.loads(cli(layout, "audit", run_id, "--json").stdout)["state"] == "failed"
    assert [r["state"] for r in json.loads(cli(layout, "runs", "--json").stdout)] == ["failed"]


def test_a_changed_part_is_seen_by_the_integrity_gate_not_hidden_by_derived_tables(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    part = next((layout.root / "spans" / f"run_id={run_id}").glob("*.parquet"))
    part.write_bytes(part.read_bytes()[:-100] + b"\0" * 100)
    assert usable(layout, run_id, verify_parts=True) is None
    verdict = json.loads(cli(layout, "audit", run_id, "--json").stdout)
    failing = [g["name"] for g in verdict["gates"] if g["status"] == "fail"]
    assert verdict["state"] == "failed" and "integrity" in failing, verdict


def test_tables_of_other_view_sql_are_not_used(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    assert usable(layout, run_id) is not None
    manifest = read_manifest(layout, run_id)
    assert manifest is not None and manifest.derived is not None
    manifest.derived["views"] = "0" * 64  # computed by another version's views
    write_manifest(layout, manifest)
    assert why_not(layout, run_id) == "its derived tables were computed by other view SQL"


def test_deleting_derived_tables_changes_nothing_but_speed(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    before = [cli(layout, *args).stdout for args in (["audit", "last", "--json"], ["runs", "--json"])]
    shutil.rmtree(layout.derived_dir)
    assert why_not(layout, run_id) is not None
    after = [cli(layout, *args).stdout for args in (["audit", "last", "--json"], ["runs", "--json"])]
    assert after == before


def test_a_gate_over_what_derived_tables_lack_is_answered_from_the_views(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    gates = tmp_path / "gates"
    gates.mkdir()
    (gates / "raw_count.sql").write_text(
        "-- description: reads the raw records\n"
        "SELECT 'raw' AS reason, NULL AS span_id FROM raw_spans WHERE RunId = $run_id AND false\n"
    )
    verdict = run_database(
        layout,
        run_id,
        lambda db: audit(db, run_id, audit_gates(None, gates)),
        verify=True,
    )
    assert {g.gate.name: g.status for g in verdict.gates}["raw_count"] == "pass"


def test_an_open_run_is_computed_from_its_records(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    spool = layout.spool_run_dir(run_id)
    spool.mkdir(parents=True, exist_ok=True)
    (spool / "w-1.arrows").write_bytes(b"")
    assert why_not(layout, run_id) == "the run has records in the spool"


def test_a_run_without_a_manifest_uses_its_tables_while_its_parts_are_the_same(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    (layout.root / "manifests" / f"{run_id}.json").unlink()
    assert usable(layout, run_id) is None  # the supervisor's tables count only through its manifest
    assert seal_derived(layout, run_id)
    assert usable(layout, run_id) is not None
    part = next((layout.root / "spans" / f"run_id={run_id}").glob("*.parquet"))
    shutil.copy(part, part.with_name("part-9-copy.parquet"))
    assert why_not(layout, run_id) == "its parts changed since its derived tables were written"


def test_runs_with_summaries_import_no_pandas_or_pyarrow(tmp_path: Path) -> None:
    layout, run_id = failed_run(tmp_path)
    code = (
        "import sys\nfrom agenttrace.cli import main\n"
        "sys.argv = ['agenttrace', *sys.argv[1:]]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('MODULES', *sorted(sys.modules))\n"
    )
    for args in (["runs"], ["audit", "last"], ["show", "last"], ["step", "last", "1"]):
        result = subprocess.run(
            [sys.executable, "-c", code, *args, "--store", str(layout.root)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert run_id in result.stdout or args != ["runs"], result.stdout
        modules = result.stdout.rsplit("MODULES", 1)[1].split()
        heavy = sorted(m for m in modules if m.split(".")[0] in ("pandas", "pyarrow", "numpy"))
        assert not heavy, (args, heavy)
