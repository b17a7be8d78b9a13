"""The analyzer on ClickHouse gives the same answers as on DuckDB, run for run.

Every labelled corpus run (tests/corpus: the demo-style runs, every gate failing and passing, the
holdout-style scenarios, forged and tampered records) is loaded into both engines: DuckDB over the
store as recorded, and real ClickHouse in-process (chdb) through `agenttrace push`. For every run
the verdict, every gate's status and rows, the reasons and every `step N` answer must be identical;
the ClickHouse verdicts must also be the labels'. Runs that reach ClickHouse the collector's way
(the exporter's `otel_traces` table, its map types, no start records, no manifest) are compared with
the same records stored locally without a manifest.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agenttrace.analysis.database import USER_VIEWS, Database
from agenttrace.analysis.step import explain_step
from agenttrace.audit.fleet import audit_many
from agenttrace.audit.gates import Gate, audit_gates, load_gates
from agenttrace.audit.verdict import Verdict, applies, audit
from agenttrace.clickhouse.database import ClickHouseDatabase
from agenttrace.clickhouse.engine import Engine, connect
from agenttrace.clickhouse.push import push_runs
from agenttrace.clickhouse.tables import init_tables
from agenttrace.errors import QueryError
from agenttrace.store.layout import StoreLayout
from agenttrace.store.schema import SPAN_SCHEMA

CORPUS = Path(__file__).parent / "corpus"
ALL_LABELS = {p.parent.name: json.loads(p.read_text()) for p in sorted(CORPUS.glob("*/label.json"))}
LABELS: dict[str, dict[str, Any]] = {}
for _case, _label in ALL_LABELS.items():  # one case per run id: a database holds a run id once
    if all(other["run_id"] != _label["run_id"] for other in LABELS.values()):
        LABELS[_case] = _label
KNOWN = json.loads((CORPUS / "known.json").read_text())
SAME_RUN_ID = sorted(set(ALL_LABELS) - set(LABELS))
"""Cases recorded under a run id an earlier case has (left out here: tests/test_corpus.py audits them)."""
DATABASE = f"t_{uuid.uuid4().hex[:12]}"
"""This module's database (chdb's in-memory engine is one per process: other modules have their own)."""


def normal(value: Any) -> Any:
    """Values as both engines should agree on them: floats to 6 places, times to the microsecond
    in UTC, decimals as floats, a NULL list as an empty one (ClickHouse arrays are never NULL)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return "nan" if math.isnan(value) else round(value, 6)
    if isinstance(value, decimal.Decimal):
        return round(float(value), 6)
    if isinstance(value, dt.datetime):
        value = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dict):
        return {str(k): normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normal(v) for v in value]
    return value


def verdict_of(db: Any, run_id: str) -> dict[str, Any]:
    rows = db.report("recorded_gates", run_id=run_id)
    verdict: Verdict = audit(db, run_id, audit_gates(rows[0]["recorded_gates"] if rows else None, None))
    return normal(verdict.as_json())


@pytest.fixture(scope="module")
def merged_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every corpus run in one store, as recorded (their parts, spool, manifests, artifacts)."""
    store = tmp_path_factory.mktemp("corpus") / "store"
    for case in LABELS:
        shutil.copytree(CORPUS / case / "store", store, dirs_exist_ok=True)
    return store


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    client = connect(Engine("chdb", path=":memory:", database=DATABASE))
    init_tables(client, DATABASE)
    yield client
    client.command(f"DROP DATABASE IF EXISTS {DATABASE}")
    client.close()


@pytest.fixture(scope="module")
def engines(merged_store: Path, client: Any) -> Iterator[tuple[Database, ClickHouseDatabase]]:
    runs = StoreLayout(merged_store).run_ids()  # the labelled runs, and the originals of replays
    pushed = push_runs(StoreLayout(merged_store), runs, client)
    assert [p.run_id for p in pushed] == runs
    with Database(merged_store, verify=True) as duck, ClickHouseDatabase(client, runs) as house:
        duck.materialize()
        yield duck, house


RUNS = sorted(label["run_id"] for label in LABELS.values())


def _chosen() -> list[str]:
    """The cases audited run by run on ClickHouse (every run is audited by `audit --all`): for each
    gate the first case that fails it, and each family of agents' first succeeded and failed case."""
    chosen = set()
    for gate in sorted({g for label in LABELS.values() for g in label["failing_gates"]}):
        chosen.add(next(case for case, label in LABELS.items() if gate in label["failing_gates"]))
    families: dict[str, str] = {}
    for case, label in LABELS.items():
        families.setdefault(f"{case.split('-')[0]}-{label['state']}", case)
    return sorted(chosen | set(families.values()))


CHOSEN = _chosen()
_DUCK_VERDICTS: dict[str, dict[str, Any]] = {}


def duck_verdict(duck: Database, run_id: str) -> dict[str, Any]:
    """DuckDB's verdict of a run (the reference), computed once per module."""
    if run_id not in _DUCK_VERDICTS:
        _DUCK_VERDICTS[run_id] = verdict_of(duck, run_id)
    return _DUCK_VERDICTS[run_id]


def test_the_corpus_is_big_enough_to_mean_something() -> None:
    assert len(RUNS) >= 20 and len(CHOSEN) >= 20
    assert SAME_RUN_ID == ["sh-retry-then-success"], "a new case reuses a run id: give it its own"
    failing = {gate for label in LABELS.values() for gate in label["failing_gates"]}
    assert len(failing) >= 7, failing


@pytest.mark.parametrize("case", CHOSEN)
def test_the_verdict_is_the_same_on_both_engines(engines: tuple[Database, Any], case: str) -> None:
    """`agenttrace audit RUN --engine`: the run alone, each gate asked for it."""
    duck, house = engines
    run_id = LABELS[case]["run_id"]
    ours, theirs = duck_verdict(duck, run_id), verdict_of(house, run_id)
    assert theirs == ours
    known = KNOWN.get(case, {}).get("outcome")  # a misjudgment tests/corpus/known.json explains
    expected = {"false failed": "failed", "false succeeded": "succeeded"}.get(known, LABELS[case]["state"])
    assert theirs["state"] == expected, LABELS[case]["why"]


def test_every_step_answer_is_the_same_on_both_engines(engines: tuple[Database, Any]) -> None:
    duck, house = engines
    chosen = [LABELS[case]["run_id"] for case in CHOSEN]
    steps = duck.execute(
        "SELECT run_id, step FROM steps WHERE run_id IN $runs ORDER BY run_id, step", {"runs": chosen}
    )[1]
    assert len(steps) > 100
    different = []
    for run_id, n in steps:
        if normal(explain_step(house, run_id, n)) != normal(explain_step(duck, run_id, n)):
            different.append(f"{run_id} step {n}")
    assert not different, f"{len(different)} of {len(steps)} steps differ: {different[:10]}"


def test_a_step_the_run_does_not_have_is_the_same_error(engines: tuple[Database, Any]) -> None:
    duck, house = engines
    errors = []
    for db in (duck, house):
        with pytest.raises(QueryError) as caught:
            explain_step(db, RUNS[0], 999)
        errors.append(str(caught.value))
    assert errors[0] == errors[1]


def test_the_run_list_is_the_same_on_both_engines(engines: tuple[Database, Any]) -> None:
    duck, house = engines
    for state in (None, "failed", "succeeded"):
        ours = duck.report("run_list", state=state)
        theirs = house.report("run_list", state=state)
        assert normal(theirs) == normal(ours)
        assert theirs or state == "succeeded"


def test_supervised_runs_and_integrity_problems_travel_with_the_push(engines: tuple[Database, Any]) -> None:
    duck, house = engines
    assert all(house.is_supervised(r) == duck.is_supervised(r) for r in RUNS)
    ours = sorted((r, reason) for r, reason, _ in duck.problems)
    theirs = sorted((r, reason) for r, reason, _ in house.problems)
    assert theirs == ours
    assert any(r == "corpus-tampered-spool" for r, _ in theirs)


# -- runs that reach ClickHouse the collector's way --------------------------------------------------

COLLECTED = ("py-openai-cutoff", "sh-exits-1", "py-pydantic-clean", "node-otlp-tool-call-never-runs")


def _exporter_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Span records as the collector's `clickhouse` exporter writes them: ended spans only, ''
    for what is unset, the run id as a resource attribute, events and links as Nested columns."""
    rows = []
    for span in table.to_pylist():
        if span["RecordType"] != "end":
            continue
        events = span["Events"] or []
        links = span["Links"] or []
        resource = dict(span["ResourceAttributes"] or [])
        resource["agenttrace.run.id"] = span["RunId"]
        rows.append(
            {
                "Timestamp": span["Timestamp"],
                "TraceId": span["TraceId"] or "",
                "SpanId": span["SpanId"] or "",
                "ParentSpanId": span["ParentSpanId"] or "",
                "TraceState": span["TraceState"] or "",
                "SpanName": span["SpanName"] or "",
                "SpanKind": span["SpanKind"] or "",
                "ServiceName": span["ServiceName"] or "",
                "ResourceAttributes": resource,
                "ScopeName": span["ScopeName"] or "",
                "ScopeVersion": span["ScopeVersion"] or "",
                "SpanAttributes": {
                    k: span["RunId"] if k == "agenttrace.run.id" else v or ""
                    for k, v in (span["SpanAttributes"] or [])
                },
                "Duration": span["Duration"] or 0,
                "StatusCode": span["StatusCode"] or "",
                "StatusMessage": span["StatusMessage"] or "",
                "Events.Timestamp": [e["Timestamp"] for e in events],
                "Events.Name": [e["Name"] or "" for e in events],
                "Events.Attributes": [{k: v or "" for k, v in (e["Attributes"] or [])} for e in events],
                "Links.TraceId": [x["TraceId"] or "" for x in links],
                "Links.SpanId": [x["SpanId"] or "" for x in links],
                "Links.TraceState": [x["TraceState"] or "" for x in links],
                "Links.Attributes": [{k: v or "" for k, v in (x["Attributes"] or [])} for x in links],
            }
        )
    return rows


@pytest.fixture(scope="module")
def collected(
    tmp_path_factory: pytest.TempPathFactory, client: Any
) -> Iterator[tuple[Database, ClickHouseDatabase, list[str]]]:
    """A few corpus runs re-sent as a collector would (a new run id each, named by a resource
    attribute), into `otel_traces`, and the same ended spans in a local store without a manifest
    (as `agenttrace serve` stores them)."""
    other = connect(Engine("chdb", path=":memory:", database=DATABASE))  # the tables `client` made
    store = tmp_path_factory.mktemp("collected") / "store"
    ids = []
    for case in COLLECTED:
        run_id = f"collected-{case}"
        ids.append(run_id)
        with Database(CORPUS / case / "store") as db:
            records = db.arrow(
                "SELECT * EXCLUDE (_Origin) FROM raw_spans WHERE RecordType = 'end'"
            ).to_pylist()
        for record in records:
            record["RunId"] = run_id
            record["ResourceAttributes"] = {
                **dict(record["ResourceAttributes"] or []),
                "agenttrace.run.id": run_id,
            }
            attributes = dict(record["SpanAttributes"] or [])
            if "agenttrace.run.id" in attributes:
                attributes["agenttrace.run.id"] = run_id
            record["SpanAttributes"] = attributes
        spans = pa.Table.from_pylist(records, schema=SPAN_SCHEMA)
        rows = _exporter_rows(spans)
        other.insert("otel_traces", [list(r.values()) for r in rows], column_names=list(rows[0]))
        part = store / "spans" / f"run_id={run_id}" / "collected-0.parquet"
        part.parent.mkdir(parents=True)
        pq.write_table(spans, part)
    with Database(store) as duck, ClickHouseDatabase(other, ids) as house:
        duck.materialize()
        yield duck, house, ids
    other.close()


def test_runs_from_the_exporter_tables_get_the_same_verdict(
    collected: tuple[Database, Any, list[str]],
) -> None:
    duck, house, ids = collected
    for run_id in ids:
        ours, theirs = verdict_of(duck, run_id), verdict_of(house, run_id)
        assert theirs == ours, run_id
        # these runs name the supervisor that recorded them, but its manifest did not come with
        # them: on either engine they fail integrity, whatever their spans say
        assert theirs["state"] == "failed"
        assert any(r.startswith("integrity: ") for r in theirs["reasons"]), theirs["reasons"]


def test_runs_from_the_exporter_tables_have_the_same_views(
    collected: tuple[Database, Any, list[str]],
) -> None:
    duck, house, _ = collected
    for view in ("spans", "runs", "steps", "processes"):
        sql = f"SELECT * FROM {view}"
        columns, rows = duck.execute(sql)
        ours = sorted(json.dumps(r, sort_keys=True) for r in normal(rows))  # a map's keys: any order
        theirs = sorted(json.dumps(r, sort_keys=True) for r in normal(house.execute(sql)[1]))
        assert len(theirs) == len(ours), view
        for a, b in zip(ours, theirs, strict=True):
            fields = [c for c, x, y in zip(columns, json.loads(a), json.loads(b), strict=True) if x != y]
            at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            assert a == b, f"{view}: {fields} differ at {at}: {a[at - 80 : at + 80]} / {b[at - 80 : at + 80]}"


# -- the audited party has no pen ---------------------------------------------------------------------


def test_what_the_agent_sends_through_the_collector_cannot_change_a_pushed_runs_verdict(
    engines: tuple[Database, Any], client: Any
) -> None:
    """A run pushed by its supervisor is read from agenttrace's tables only: an agent that also sends
    spans for its run id through the collector (into `otel_traces`), here a forged clean root and a
    forged verdict, changes nothing."""
    duck, _ = engines
    case = "py-openai-cutoff"
    run_id = LABELS[case]["run_id"]
    forged = {
        "Timestamp": dt.datetime(2026, 12, 1, 16, 41, tzinfo=dt.UTC),
        "TraceId": "f" * 32,
        "SpanId": "f" * 16,
        "ParentSpanId": "",
        "SpanName": "agenttrace.run",
        "ServiceName": "agenttrace",
        "ResourceAttributes": {"agenttrace.run.id": run_id},
        "SpanAttributes": {
            "agenttrace.span.type": "run",
            "process.exit.code": "0",
            "agenttrace.audit.state": "succeeded",
        },
        "Duration": 1_000_000,
        "StatusCode": "Ok",
    }
    client.insert("otel_traces", [list(forged.values())], column_names=list(forged))
    other = connect(Engine("chdb", path=":memory:", database=DATABASE))
    try:
        with ClickHouseDatabase(other, [run_id]) as house:
            assert verdict_of(house, run_id) == verdict_of(duck, run_id)
            assert verdict_of(house, run_id)["state"] == "failed"
            assert house.execute("SELECT count(*) FROM spans WHERE span_id = $s", {"s": "f" * 16})[1] == [
                (0,)
            ]
    finally:
        other.close()


def test_every_view_has_the_same_columns_and_booleans_on_both_engines(engines: tuple[Database, Any]) -> None:
    """The views' columns are a contract (README, Views): the same names in the same order, and a
    DuckDB BOOLEAN is a Bool on ClickHouse, so that `query --json` gives true/false on both (a
    ClickHouse condition is a UInt8: 0/1)."""
    duck, house = engines
    for view in (*USER_VIEWS, "verifications", "claim_evidence"):
        ours = duck.con.execute(f"DESCRIBE SELECT * FROM {view}").fetchall()
        house.execute(f"SELECT * FROM {view} LIMIT 0")
        theirs = house.client.query(f"DESCRIBE TABLE {view}").result_rows
        assert [r[0] for r in theirs] == [r[0] for r in ours], view
        booleans = [r[0] for r in ours if r[1] == "BOOLEAN"]
        assert [r[0] for r in theirs if "Bool" in r[1]] == booleans, view


# -- the all-runs audit: each gate as one query over many runs -------------------------------------------


@pytest.mark.parametrize("gate", [g for g in load_gates() if g.source == "builtin"], ids=lambda g: g.name)
def test_a_gates_all_runs_form_gives_each_run_its_own_rows(engines: tuple[Database, Any], gate: Gate) -> None:
    """`audit --all` on ClickHouse asks each built-in gate once for every run (its form in
    queries/clickhouse/gates_all/): for every corpus run, exactly the rows, in the order, that the
    gate gives asked for that run alone (and the same for its `applies` query)."""
    duck, house = engines
    runs = house.runs
    found = house.execute_all_runs(gate.sql, runs)
    assert found is not None, f"{gate.name} has no all-runs form in queries/clickhouse/gates_all/"
    for run_id in runs:  # against DuckDB's answer for the run alone (ClickHouse's per-run forms:
        # test_the_verdict_is_the_same_on_both_engines)
        alone = duck.execute(gate.sql, {"run_id": run_id})
        assert (found[run_id][0], normal(found[run_id][1])) == (alone[0], normal(alone[1])), run_id
    if gate.applies is not None:
        asked = house.execute_all_runs(gate.sql, runs, applies=True)
        assert asked is not None, f"{gate.name} has no all-runs applies form"
        for run_id in runs:
            alone = duck.execute(gate.applies, {"run_id": run_id})[1]
            assert applies(asked[run_id][1]) == applies(alone), run_id


def test_audit_all_gives_every_run_the_verdict_of_its_own_audit(engines: tuple[Database, Any]) -> None:
    duck, house = engines
    verdicts, errors = audit_many(house, house.runs, None)
    assert not errors
    assert len(verdicts) == len(house.runs)
    for verdict in verdicts:
        ours, theirs = duck_verdict(duck, verdict.run_id), normal(verdict.as_json())
        for mine, yours in zip(ours["gates"], theirs["gates"], strict=True):
            assert yours == mine, (verdict.run_id, mine["name"])
        assert theirs == ours, verdict.run_id
