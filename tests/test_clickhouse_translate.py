"""DuckDB SQL, translated for ClickHouse, means the same there: each pitfall run on both engines.

The ClickHouse side is real ClickHouse, in-process (chdb), with the collector exporter's column types
(`Map(LowCardinality(String), String)`, where a missing key reads ''), read through the engine's base
view cast, as the analyzer reads them.
"""

from __future__ import annotations

import uuid
from typing import Any

import duckdb
import pytest

from agenttrace.clickhouse.engine import Engine, connect
from agenttrace.clickhouse.translate import bind_types, to_clickhouse, transpile, variant_path
from agenttrace.errors import QueryError
from agenttrace.queries import load

ROWS = [
    ({"agenttrace.run.name": "nightly", "process.pid": "42"}, '{"n":5,"s":"x","z":null,"arr":["a",2]}'),
    ({}, "not json"),
]


@pytest.fixture(scope="module")
def chdb_client() -> Any:
    client = connect(Engine("chdb", path=":memory:", database=f"t_{uuid.uuid4().hex[:12]}"))
    client.command(
        "CREATE TABLE exported (SpanAttributes Map(LowCardinality(String), String), Body String, k UInt32) "
        "ENGINE = MergeTree ORDER BY k"
    )
    client.insert("exported", [[attrs, body, i] for i, (attrs, body) in enumerate(ROWS)])
    # the engine's base view: the exporter's maps cast once, so that a missing key reads NULL
    client.command(
        "CREATE VIEW t AS SELECT CAST(SpanAttributes, 'Map(String, Nullable(String))') AS SpanAttributes, "
        "Body, k FROM exported"
    )
    client.command("CREATE VIEW t_uncast AS SELECT SpanAttributes, Body, k FROM exported")
    return client


@pytest.fixture(scope="module")
def duck() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("CREATE TABLE t (SpanAttributes MAP(VARCHAR, VARCHAR), Body VARCHAR, k INTEGER)")
    for i, (attrs, body) in enumerate(ROWS):
        con.execute(
            "INSERT INTO t VALUES (MAP($k, $v), $b, $i)",
            {"k": list(attrs), "v": list(attrs.values()), "b": body, "i": i},
        )
    return con


def both(duck: duckdb.DuckDBPyConnection, client: Any, sql: str, **params: Any) -> tuple[list, list]:
    ours = duck.execute(sql, params).fetchall()
    theirs = client.query(bind_types(transpile(sql), params), parameters=params or None).result_rows
    return [tuple(r) for r in ours], [tuple(r) for r in theirs]


def test_a_missing_map_key_reads_null_on_both(duck: Any, chdb_client: Any) -> None:
    ours, theirs = both(
        duck,
        chdb_client,
        "SELECT coalesce(SpanAttributes['agenttrace.run.name'], 'fallback') FROM t ORDER BY k",
    )
    assert ours == theirs == [("nightly",), ("fallback",)]
    ours, theirs = both(
        duck, chdb_client, "SELECT SpanAttributes['process.pid'] IS NOT NULL FROM t ORDER BY k"
    )
    assert [bool(r[0]) for r in ours] == [bool(r[0]) for r in theirs] == [True, False]


def test_the_exporter_map_without_the_cast_would_differ(chdb_client: Any) -> None:
    """The check above can fail: the exporter's own map type gives '' for a missing key, so that
    without the base view's cast a run's every span would look like a process."""
    sql = transpile(
        "SELECT coalesce(SpanAttributes['agenttrace.run.name'], 'fallback') FROM t_uncast ORDER BY k"
    )
    assert chdb_client.query(sql).result_rows == [("nightly",), ("",)]


@pytest.mark.parametrize(
    "path, expected",
    [("$.n", "5"), ("$.s", "x"), ("$.z", None), ("$.nope", None), ("$.arr[0]", "a"), ("$.arr", '["a",2]')],
)
def test_json_text_extraction_keeps_null_for_what_is_not_there(
    duck: Any, chdb_client: Any, path: str, expected: Any
) -> None:
    sql = f"SELECT Body ->> '{path}' FROM t WHERE k = 0"
    ours, theirs = both(duck, chdb_client, sql)
    assert ours == theirs == [(expected,)]


JSON = '{"b":true,"o":{"k": 1},"f":1.5,"s":"x","n":null,"a":[1,"z"]}'


@pytest.mark.parametrize("operator", ["->>", "->"])
@pytest.mark.parametrize("path", ["$.b", "$.o", "$.f", "$.s", "$.n", "$.missing", "$.a", "$.a[1]"])
def test_json_operators_give_duckdbs_text_for_every_kind_of_value(
    duck: Any, chdb_client: Any, operator: str, path: str
) -> None:
    ours, theirs = both(duck, chdb_client, f"SELECT $j {operator} '{path}'", j=JSON)
    assert ours == theirs


@pytest.mark.parametrize("path", ["$.a", "$.n", "$.b", "$.missing"])
def test_json_array_length_is_duckdbs(duck: Any, chdb_client: Any, path: str) -> None:
    ours, theirs = both(duck, chdb_client, f"SELECT json_array_length($j, '{path}')", j=JSON)
    assert ours == theirs


@pytest.mark.parametrize("path", ["$.a", "$.n", "$.b", "$.o", "$.s", "$.f", "$.missing", "$.a[0]"])
def test_json_type_is_duckdbs(duck: Any, chdb_client: Any, path: str) -> None:
    ours, theirs = both(duck, chdb_client, f"SELECT json_type($j, '{path}'), json_type($j)", j=JSON)
    assert ours == theirs


@pytest.mark.parametrize("text", ["true", "T", " yes", "0", "no", "maybe", "12", None])
def test_try_cast_to_boolean_is_duckdbs(duck: Any, chdb_client: Any, text: str | None) -> None:
    ours, theirs = both(duck, chdb_client, "SELECT TRY_CAST($x AS BOOLEAN)", x=text)
    assert [(None if r[0] is None else bool(r[0]),) for r in theirs] == ours


def test_json_extraction_from_text_that_is_not_json_is_null(chdb_client: Any) -> None:
    # DuckDB raises on it; ClickHouse's plain JSONExtractString would give '' (a value)
    sql = transpile("SELECT Body ->> '$.n' FROM t WHERE k = 1")
    assert chdb_client.query(sql).result_rows == [(None,)]


def test_concat_ws_skips_nulls_as_duckdb_does(duck: Any, chdb_client: Any) -> None:
    ours, theirs = both(duck, chdb_client, "SELECT concat_ws('|', 'a', NULL, 'b')")
    assert ours == theirs == [("a|b",)]


@pytest.mark.parametrize(
    "value, digits",
    [
        (2.5, 0),
        (-2.5, 0),
        (1272.2975, 3),
        (0.125, 2),
        (0.285, 2),
        (7.0, 1),
        (1e20, 2),
        (2.00005, 4),
        (100.00005, 4),
    ],
)
def test_round_breaks_ties_as_duckdb_does(duck: Any, chdb_client: Any, value: float, digits: int) -> None:
    ours, theirs = both(duck, chdb_client, f"SELECT round({value!r}::DOUBLE, {digits})")
    assert float(ours[0][0]) == float(theirs[0][0])


def test_integer_division_and_long_durations(duck: Any, chdb_client: Any) -> None:
    # sqlglot writes `a // b` as a cast to Int32: 40 minutes in microseconds overflowed it
    sql = "SELECT 2400000000000 // 1000, -7 // 2"
    ours, theirs = both(duck, chdb_client, sql)
    assert ours == theirs == [(2400000000, -3)]  # truncated toward zero in both


def test_parameters_become_typed_clickhouse_parameters(duck: Any, chdb_client: Any) -> None:
    ours, theirs = both(
        duck, chdb_client, "SELECT k FROM t WHERE SpanAttributes['process.pid'] = $pid", pid="42"
    )
    assert ours == theirs == [(0,)]
    with pytest.raises(QueryError, match=r"\$pid"):
        bind_types(transpile("SELECT $pid"), {})


def test_a_shipped_file_with_a_variant_is_read_from_the_variant() -> None:
    assert variant_path("views/raw.sql") == "clickhouse/views/raw.sql"
    assert to_clickhouse(load("views/raw.sql")) == load("clickhouse/views/raw.sql").rstrip().rstrip(";")
    assert variant_path("gates/integrity.sql") is None or to_clickhouse(load("gates/integrity.sql"))


def test_sql_sqlglot_cannot_read_is_one_clear_error() -> None:
    with pytest.raises(QueryError, match="cannot read the SQL for ClickHouse"):
        transpile("SELECT FROM WHERE (")
