"""Engines: the same audits on DuckDB (the local store) and on ClickHouse (chdb, in-process).

The store: 1,000 runs of ~2,000 spans each (gen_otlp's agent runs, as bench/audit_latency.py
writes them: one sealed part per run), pushed into chdb with `agenttrace push` (its time is
printed). Then, in the same process, each measured on both engines, the engines alternating:

- one run's audit: open the engine for one run (its views computed for that run only) and
  evaluate every built-in gate;
- the all-runs audit (`agenttrace audit --all`): one database over every run, every gate asked for
  all runs (DuckDB: a query per run; ClickHouse: UNION ALL batches, `execute_per_run`);
- the heaviest gates on ClickHouse (each over every run): the hand-written variant against sqlglot's
  transpilation of the DuckDB file, for the two heaviest that have both forms that run;
- a fleet: `agenttrace audit --all --since 1d --engine chdb://...` (the CLI, as a user runs it) over
  10,000 small runs (10 pushed with `agenttrace push --all`, copied under new ids by ClickHouse): its
  wall time and that it answers with a verdict per run.

Ratios are ClickHouse / DuckDB (below 1: ClickHouse faster), or transpiled / hand-written.

    python bench/engines.py [--quick] [--runs R] [--reps N] [--fleet N]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import clean_environment, final_json, fmt_s, header, load_gen_otlp, median, parser
from audit_latency import run_table, write_runs

from agenttrace import queries
from agenttrace.analysis import Database
from agenttrace.audit.fleet import audit_many, per_run
from agenttrace.audit.gates import load_gates
from agenttrace.audit.verdict import audit
from agenttrace.clickhouse.database import ClickHouseDatabase
from agenttrace.clickhouse.engine import Engine, connect
from agenttrace.clickhouse.push import push_runs
from agenttrace.clickhouse.tables import init_tables
from agenttrace.clickhouse.translate import bind_types, transpile, variant_path
from agenttrace.store.layout import StoreLayout


def one_run(engine: str, store: Path, client: Any, run_id: str) -> tuple[float, str]:
    gates = load_gates()
    started = time.perf_counter()
    if engine == "duckdb":
        with Database(store, runs=[run_id], verify=True) as db:
            verdict = audit(db, run_id, gates)
    else:
        with ClickHouseDatabase(client, [run_id]) as db:
            verdict = audit(db, run_id, gates)
    return time.perf_counter() - started, verdict.state


def all_runs(engine: str, store: Path, client: Any, ids: list[str]) -> tuple[float, dict[str, str], Any]:
    started = time.perf_counter()
    if engine == "duckdb":
        with Database(store, verify=True) as db:
            verdicts, errors = audit_many(db, ids, None)
    else:
        db = ClickHouseDatabase(client, ids)
        verdicts, errors = audit_many(db, ids, None)
    assert not errors, errors[:3]
    return time.perf_counter() - started, {v.run_id: v.state for v in verdicts}, db


def gate_costs(db: ClickHouseDatabase, ids: list[str]) -> list[tuple[float, str]]:
    """Each built-in gate over every run, on ClickHouse (views already computed): (seconds, name)."""
    costs = []
    for gate in load_gates():
        started = time.perf_counter()
        per_run(db, gate.sql, ids)
        costs.append((time.perf_counter() - started, gate.name))
    return sorted(costs, reverse=True)


def both_forms(db: ClickHouseDatabase, name: str, ids: list[str], reps: int) -> dict[str, Any] | None:
    """A gate's hand-written ClickHouse variant against sqlglot's transpilation of its DuckDB SQL,
    over every run; None when one of the two does not exist or does not run."""
    duckdb_sql = queries.load(f"gates/{name}.sql")
    variant = variant_path(f"gates/{name}.sql")
    if variant is None:
        return None
    try:
        transpiled = bind_types(transpile(duckdb_sql), {"run_id": ""})
    except Exception as exc:  # sqlglot cannot write it: the reason it has a variant
        print(f"  {name}: no transpiled form ({str(exc).splitlines()[0]})")
        return None
    forms = {"variant": queries.load(variant), "transpiled": transpiled}
    times: dict[str, list[float]] = {k: [] for k in forms}
    answers: dict[str, Any] = {}
    for rep in range(reps):
        for form in forms if rep % 2 == 0 else list(reversed(forms)):
            started = time.perf_counter()
            try:
                answers[form] = db.execute_per_run_text(forms[form], ids)
            except Exception as exc:
                print(f"  {name} [{form}]: does not run on ClickHouse ({str(exc).splitlines()[0][:200]})")
                return None
            times[form].append(time.perf_counter() - started)
    return {
        "variant_s": median(times["variant"]),
        "transpiled_s": median(times["transpiled"]),
        "same_rows": answers["variant"] == answers["transpiled"],
    }


AGENTTRACE = str(Path(sys.executable).parent / "agenttrace")


def cli(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    done = subprocess.run([AGENTTRACE, *args], capture_output=True, text=True, check=False, timeout=3600)
    if done.returncode not in (0, 1):
        sys.exit(f"agenttrace {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return time.perf_counter() - started, done


GROW = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1])
client.command("USE fleet")
for table in ("agenttrace_spans", "agenttrace_runs"):
    cols = [r[0] for r in client.query(f"DESCRIBE TABLE {table}").result_rows]
    select = ", ".join("concat(RunId, '-', toString(n))" if c == "RunId" else c for c in cols)
    client.command(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {select} FROM {table} "
                   f"ARRAY JOIN range(1, {sys.argv[2]}) AS n")
"""
"""Copies of every pushed run under new run ids, written by ClickHouse itself (pushing 10,000 runs one
store batch at a time takes longer than the audit being measured)."""


def fleet(tmp: Path, gen: Any, runs: int) -> dict[str, Any]:
    """`audit --all --since 1d` over `runs` small runs on chdb, through the CLI: 10 runs pushed with
    `agenttrace push --all`, then copied by ClickHouse under new ids up to `runs`."""
    store = tmp / "fleet-store"
    seeds = 10
    write_runs(store, run_table(gen, 3), seeds, "small")
    url = f"chdb://{tmp}/fleet-db?database=fleet"
    cli("clickhouse", "init", "--to", url)
    push_s, _ = cli("push", "--all", "--to", url, "--store", str(store), "--json")
    copies = max(1, runs // seeds)
    subprocess.run([sys.executable, "-c", GROW, f"chdb://{tmp}/fleet-db", str(copies)], check=True)
    audit_s, done = cli("audit", "--all", "--since", "1d", "--engine", url, "--json")
    answer = json.loads(done.stdout)
    verdicts = len(answer["runs"])
    assert verdicts == seeds * copies, f"{verdicts} verdicts for {seeds * copies} runs"
    print(
        f"fleet: {verdicts:,} runs ({seeds} pushed in {fmt_s(push_s)}, copied by ClickHouse); "
        f"`audit --all --since 1d` answered {verdicts:,} verdicts ({answer['succeeded']} succeeded, "
        f"{answer['failed']} not) in {fmt_s(audit_s)} ({audit_s / verdicts * 1e3:.1f} ms a run)"
    )
    return {"fleet_runs": verdicts, "fleet_audit_all_s": round(audit_s, 1)}


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--fleet", type=int, default=10_000, help="runs in the fleet audit (0: skip it)")
    args = ap.parse_args()
    steps = 888  # ~2,000 spans a run (gen_otlp: ~2.25 spans a step)
    if args.quick:
        args.runs, args.reps, steps, args.fleet = 20, 1, 66, min(args.fleet, 100)
    clean_environment()
    header("engines: DuckDB vs ClickHouse (chdb)", args.quick)
    gen = load_gen_otlp()
    result: dict[str, Any] = {"bench": "engines"}
    with tempfile.TemporaryDirectory(prefix="agenttrace-bench-", dir=args.tmp) as tmp_dir:
        store = Path(tmp_dir) / "store"
        template = run_table(gen, steps)
        ids = write_runs(store, template, args.runs, "fleet")
        print(
            f"store: {args.runs} runs x {template.num_rows} spans = {template.num_rows * args.runs:,} spans"
        )
        database = f"bench_{uuid.uuid4().hex[:8]}"
        client = connect(Engine("chdb", path=":memory:", database=database))
        init_tables(client, database)
        started = time.perf_counter()
        push_runs(StoreLayout(store), ids, client)
        push_s = time.perf_counter() - started
        print(f"push into chdb: {fmt_s(push_s)} ({args.runs / push_s:.0f} runs/s)")
        result |= {"runs": args.runs, "spans_per_run": template.num_rows, "push_s": round(push_s, 3)}

        one: dict[str, list[float]] = {"duckdb": [], "clickhouse": []}
        states: dict[str, str] = {}
        for rep in range(args.reps):
            run_id = ids[(rep * 7919) % len(ids)]
            for engine in ("duckdb", "clickhouse") if rep % 2 == 0 else ("clickhouse", "duckdb"):
                seconds, state = one_run(engine, store, client, run_id)
                one[engine].append(seconds)
                states.setdefault(run_id, state)
                assert states[run_id] == state, (run_id, engine, state)
        ratio = median(one["clickhouse"]) / median(one["duckdb"])
        print(
            f"one run's audit: duckdb {fmt_s(median(one['duckdb']))}, "
            f"clickhouse {fmt_s(median(one['clickhouse']))} = {ratio:.2f}x"
        )
        result |= {
            "one_run_duckdb_s": round(median(one["duckdb"]), 3),
            "one_run_clickhouse_s": round(median(one["clickhouse"]), 3),
            "one_run_ratio": round(ratio, 2),
        }

        duck_s, duck_states, _ = all_runs("duckdb", store, client, ids)
        house_s, house_states, house = all_runs("clickhouse", store, client, ids)
        assert house_states == duck_states, "the engines disagree on a verdict"
        ratio = house_s / duck_s
        print(
            f"all-runs audit ({len(ids)} runs, same verdicts: {house_states == duck_states}): "
            f"duckdb {fmt_s(duck_s)}, clickhouse {fmt_s(house_s)} = {ratio:.2f}x"
        )
        result |= {"all_runs_duckdb_s": round(duck_s, 3), "all_runs_clickhouse_s": round(house_s, 3)}
        result["all_runs_ratio"] = round(ratio, 2)

        costs = gate_costs(house, ids)
        print("heaviest gates on ClickHouse, all runs: " + ", ".join(f"{n} {fmt_s(s)}" for s, n in costs[:4]))
        compared = 0
        for _, name in costs:
            forms = both_forms(house, name, ids, args.reps)
            if forms is None:
                continue
            ratio = forms["transpiled_s"] / forms["variant_s"]
            print(
                f"gate {name}: hand-written {fmt_s(forms['variant_s'])}, "
                f"transpiled {fmt_s(forms['transpiled_s'])} = {ratio:.2f}x (same rows: {forms['same_rows']})"
            )
            result[f"gate_{name}_transpiled_over_variant"] = round(ratio, 2)
            compared += 1
            if compared == 2:
                break
        house.close()
        client.close()
        if args.fleet:
            result |= fleet(Path(tmp_dir), gen, args.fleet)
    final_json(result)


if __name__ == "__main__":
    main()
