"""agenttrace's DuckDB SQL, as ClickHouse runs it.

One source of truth: the `.sql` files under `queries/`. For a file with a hand-written ClickHouse
variant (`queries/clickhouse/<same path>`, kept where DuckDB has a construct ClickHouse lacks:
`UNION ALL BY NAME`, macros, `unnest`, JSON paths with `[*]`), the variant is used; every other
statement, user gates and `agenttrace query` included, is transpiled by sqlglot and then corrected
where sqlglot's ClickHouse output means something else than the DuckDB input:

- `->>` / `json_extract_string`: sqlglot writes `JSONExtractString`, which gives '' for a missing
  path, a JSON null or text that is not JSON, where DuckDB gives NULL. Rewritten to keep the NULL.
- `bool_or` / `bool_and` (sqlglot writes LOGICAL_OR/AND, which ClickHouse lacks): `max` / `min`.
- `concat_ws` skips NULLs in DuckDB; sqlglot makes them '' (`a||b` for `a|b`): NULLs filtered.
- `len(list)` becomes string length in sqlglot: `length()`, which is a list's length too.
- `round(x, n)`: DuckDB rounds a double's exact value half away from zero; ClickHouse does not.
- `a // b`: ClickHouse's `/` of integers is a float, and sqlglot casts it to Int32: `intDiv`.
- `epoch(t)`, `epoch_us(t)`: `toUnixTimestamp64Micro`.
- DuckDB's JSON type is text: a cast to JSON is the text, to JSON[] `JSONExtractArrayRaw`, TRY_CAST
  NULL when the text is not JSON.
- `$name` parameters become `{name:Type}`, the type from the value bound.
- A projection `t.col` gets the alias `col` (ClickHouse names it `t.col`).

Map access needs no rewrite: the engine's base view casts every attribute map to
`Map(String, Nullable(String))`, where a missing key reads NULL as in DuckDB.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Any

from .. import queries
from ..analysis.sandbox import first_line
from ..errors import QueryError

VARIANTS = "clickhouse"
"""Folder of `queries/` holding ClickHouse variants (and ClickHouse's own files: `tables/`)."""

_PARAM = re.compile(r"\{(\w+):\s*\}")


@cache
def _shipped() -> dict[str, str]:
    """Text of every shipped DuckDB `.sql` file -> its path under `queries/`."""
    root = queries.queries_dir()
    found: dict[str, str] = {}
    for path in sorted(root.rglob("*.sql")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(VARIANTS + "/"):
            continue
        found[path.read_text(encoding="utf-8")] = rel
    return found


def variant_path(relative: str) -> str | None:
    """`clickhouse/<relative>` when that variant exists."""
    candidate = f"{VARIANTS}/{relative}"
    return candidate if (queries.queries_dir() / candidate).is_file() else None


def shipped_path(sql: str) -> str | None:
    """The `queries/` path of a shipped DuckDB file whose text `sql` is, if any."""
    return _shipped().get(sql)


@lru_cache(maxsize=1024)
def to_clickhouse(sql: str) -> str:
    """ClickHouse SQL for one DuckDB statement: the shipped variant for a shipped file that has one,
    else sqlglot's transpilation with agenttrace's corrections. Raises QueryError when sqlglot
    cannot write it for ClickHouse. Parameters stay `{name: }` until `bind_types`."""
    rel = shipped_path(sql)
    if rel is not None:
        variant = variant_path(rel)
        if variant is not None:
            return without_trailing(queries.load(variant))
    return transpile(sql)


def without_trailing(sql: str) -> str:
    """A statement without its trailing `;` and comment lines (it is wrapped in other SQL)."""
    lines = sql.rstrip().splitlines()
    while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
        lines.pop()
    return "\n".join(lines).rstrip().rstrip(";").rstrip()


def transpile(sql: str) -> str:
    import sqlglot
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        trees = sqlglot.parse(sql, read="duckdb")
    except SqlglotError as exc:
        raise QueryError(f"cannot read the SQL for ClickHouse: {first_line(exc)}") from None
    out = []
    for tree in trees:
        if tree is None:
            continue
        tree = _rewrite_all(tree)
        _alias_qualified_columns(tree)
        try:
            out.append(tree.sql(dialect="clickhouse", unsupported_level=ErrorLevel.RAISE, comments=False))
        except SqlglotError as exc:
            raise QueryError(f"this SQL has no ClickHouse translation: {first_line(exc)}") from None
    return ";\n".join(out)


def bind_types(sql: str, params: dict[str, Any]) -> str:
    """`{name: }` (as sqlglot writes a `$name` parameter) -> `{name:Type}` for the value bound."""

    def typed(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise QueryError(f"the SQL uses the parameter ${name}, which is not set")
        return "{" + name + ":" + _type_of(params[name]) + "}"

    return _PARAM.sub(typed, sql)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "Bool"
    if isinstance(value, int):
        return "Int64"
    if isinstance(value, float):
        return "Float64"
    if isinstance(value, list | tuple):
        return "Array(String)"
    if value is None:
        return "Nullable(String)"
    return "String"


def _null_if_absent(json: Any, path: list[Any]) -> Any:
    """DuckDB's `j ->> path`: NULL when `j` is not JSON, the path is missing or holds a JSON null;
    a string unquoted; anything else as its JSON text (`5`, `true`, `{"k":1}`)."""
    from sqlglot import exp

    def call(name: str, *args: Any) -> Any:
        return exp.Anonymous(this=name, expressions=[a.copy() for a in args])

    kind = call("toString", call("JSONType", json, *path))
    return exp.Case(
        ifs=[
            exp.If(
                this=exp.EQ(this=kind, expression=exp.Literal.string("String")),
                true=call("JSONExtractString", json, *path),
            ),
            exp.If(
                this=exp.NEQ(this=kind.copy(), expression=exp.Literal.string("Null")),
                true=call("JSONExtractRaw", json, *path),
            ),
        ],
        default=exp.Null(),
    )


def _json_raw_or_null(json: Any, path: list[Any]) -> Any:
    """DuckDB's `j -> path`: the value as JSON text, NULL when not there (a JSON null is `null`)."""
    from sqlglot import exp

    def call(name: str, *args: Any) -> Any:
        return exp.Anonymous(this=name, expressions=[a.copy() for a in args])

    there = (
        exp.and_(call("isValidJSON", json), call("JSONHas", json, *path))
        if path
        else call("isValidJSON", json)
    )
    return exp.Case(ifs=[exp.If(this=there, true=call("JSONExtractRaw", json, *path))], default=exp.Null())


def _json_path_keys(path: Any) -> list[Any] | None:
    """`$.a.b[0]` -> ['a', 'b', 1] (ClickHouse's JSON key arguments: strings, 1-based indexes)."""
    from sqlglot import exp

    if not isinstance(path, exp.JSONPath):
        return None
    keys: list[Any] = []
    for part in path.expressions:
        if isinstance(part, exp.JSONPathRoot):
            continue
        if isinstance(part, exp.JSONPathKey):
            keys.append(exp.Literal.string(str(part.this)))
        elif isinstance(part, exp.JSONPathSubscript) and isinstance(part.this, int):
            keys.append(exp.Literal.number(part.this + 1))
        else:
            return None
    return keys


def _rewrite_all(tree: Any) -> Any:
    """`_rewrite` every node, children before their parent (a parent's rewrite copies them)."""
    for node in reversed(list(tree.dfs())):
        new = _rewrite(node)
        if new is not node:
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree


_ROUND = (
    "if(abs(__x) < 1e17, toFloat64(round(toDecimal128(least(greatest(__x, -1e17), 1e17), 20), __n)), "
    "round(__x, __n))"
)
"""DuckDB's `round(x, n)` of a double rounds its exact binary value half away from zero (1272.2975
is 1272.29749999...: 1272.297; 2.5: 3); ClickHouse's float `round` gives 1272.298 and 2. For an n
that is not a literal: the value as a Decimal with 20 places (close, not exact: `_round_exact`)."""


def _round_exact(digits: int) -> str:
    """DuckDB's round(x, n) of a double for a literal n: x * 10^n in floating point, and where that
    lands exactly on a half, the side of it the exact product is on, from Dekker's error-free
    product (x split in two 26/27-bit halves); checked against DuckDB on ~30,000 values, ties
    included. `x` is evaluated once (a lambda's argument)."""
    c = 10**digits
    hi = "(a * 134217729 - (a * 134217729 - a))"
    return (
        f"arrayMap((u, a, p) -> if(isFinite(p), sign(u) * (floor(p) + (p - floor(p) > 0.5 "
        f"OR (p - floor(p) = 0.5 AND ({hi} * {c} - p) + (a - {hi}) * {c} >= 0))) / {c}, u), "
        f"[toFloat64(__x)], [abs(toFloat64(__x))], [abs(toFloat64(__x)) * {c}])[1]"
    )


_JSON_TYPES = (
    "CASE toString(JSONType(__j)) WHEN 'Object' THEN 'OBJECT' WHEN 'Array' THEN 'ARRAY' "
    "WHEN 'String' THEN 'VARCHAR' WHEN 'UInt64' THEN 'UBIGINT' "
    "WHEN 'Int64' THEN if(startsWith(JSONExtractRaw(__j), '-'), 'BIGINT', 'UBIGINT') "
    "WHEN 'Double' THEN 'DOUBLE' WHEN 'Bool' THEN 'BOOLEAN' WHEN 'Null' THEN 'NULL' END"
)
"""DuckDB's `json_type` names (ClickHouse's `JSONType` has its own; DuckDB calls 0 and up UBIGINT)."""


@cache
def _parsed_template(text: str) -> Any:
    import sqlglot

    return sqlglot.parse_one(text, read="clickhouse")


def _template(text: str, **args: Any) -> Any:
    """A ClickHouse expression with `__name` columns replaced by the given expressions."""
    from sqlglot import exp

    def fill(node: Any) -> Any:
        if isinstance(node, exp.Column) and not node.table and node.name.startswith("__"):
            return args[node.name[2:]].copy()
        return node

    return _parsed_template(text).copy().transform(fill)


_ARRAY_LENGTH = (
    "multiIf(toString(JSONType(__j, __k)) = 'Array', JSONLength(__j, __k), JSONHas(__j, __k), 0, NULL)"
)
"""DuckDB's `json_array_length(j, path)`: 0 for what is there but not a list, NULL when absent."""

_TRY_BOOLEAN = (
    "multiIf(lower(toString(__x)) IN ('true', 't', 'yes', 'y', '1'), true, "
    "lower(toString(__x)) IN ('false', 'f', 'no', 'n', '0'), false, NULL)"
)
"""DuckDB's TRY_CAST(x AS BOOLEAN) (ClickHouse's cast to Bool throws on other text)."""


def _is_type(kind: Any, *names: str) -> bool:
    from sqlglot import exp

    return isinstance(kind, exp.DataType) and kind.this.name in names


def _as_path(node: Any) -> Any:
    """A JSON path given as a string literal, parsed as sqlglot parses `->` paths."""
    from sqlglot import exp

    if isinstance(node, exp.JSONPath):
        return node
    if isinstance(node, exp.Literal) and node.is_string:
        from sqlglot.jsonpath import parse

        try:
            return parse(node.this)
        except Exception:
            return None
    return None


def _is_json(kind: Any) -> bool:
    from sqlglot import exp

    return isinstance(kind, exp.DataType) and kind.this == exp.DataType.Type.JSON


def _is_json_list(kind: Any) -> bool:
    from sqlglot import exp

    return (
        isinstance(kind, exp.DataType)
        and kind.this == exp.DataType.Type.ARRAY
        and len(kind.expressions) == 1
        and _is_json(kind.expressions[0])
    )


def _rewrite(node: Any) -> Any:
    from sqlglot import exp

    if isinstance(node, exp.JSONExtractScalar):
        keys = _json_path_keys(node.expression)
        if keys is not None:
            return _null_if_absent(node.this, keys)
    if isinstance(node, exp.JSONExtract) and not isinstance(node, exp.JSONExtractScalar):
        keys = _json_path_keys(node.expression)
        if keys is not None:  # `j -> '$.a'`: the value as JSON text, NULL when absent
            return _json_raw_or_null(node.this, keys)
    if isinstance(node, exp.TryCast) and _is_type(node.args.get("to"), "BOOLEAN"):
        return _template(_TRY_BOOLEAN, x=node.this)
    if isinstance(node, exp.TryCast) and _is_type(
        node.args.get("to"), "TIMESTAMPTZ", "TIMESTAMP", "TIMESTAMPNTZ"
    ):
        return _template("parseDateTime64BestEffortOrNull(toString(__x), 6, 'UTC')", x=node.this)
    if isinstance(node, exp.TryCast) and _is_json(node.args.get("to")):
        return _template("if(isValidJSON(__x), __x, NULL)", x=node.this)
    if isinstance(node, exp.TryCast) and _is_json_list(node.args.get("to")):
        return _template("if(isValidJSON(__x), JSONExtractArrayRaw(__x), [])", x=node.this)
    if isinstance(node, exp.Cast) and _is_json(node.args.get("to")):  # DuckDB's JSON is text
        return node.this
    if isinstance(node, exp.Cast) and _is_json_list(node.args.get("to")):
        return _template("JSONExtractArrayRaw(__x)", x=node.this)
    if isinstance(node, exp.JSONType) and node.expression is None:
        return _template(_JSON_TYPES, j=node.this)
    if isinstance(node, exp.JSONType):
        keys = _json_path_keys(_as_path(node.expression))
        if keys is not None:  # NULL when the path is not there (a JSON null is 'NULL')
            names = ", ".join(f"__k{i}" for i in range(len(keys)))
            typed = _JSON_TYPES.replace("JSONType(__j)", f"JSONType(__j, {names})")
            typed = typed.replace("JSONExtractRaw(__j)", f"JSONExtractRaw(__j, {names})")
            text = f"if(JSONHas(__j, {names}), {typed}, NULL)"
            return _template(text, j=node.this, **{f"k{i}": k for i, k in enumerate(keys)})
    if isinstance(node, exp.IntDiv):  # ClickHouse's `a / b` of integers is a float, and Int32 overflows
        return exp.Anonymous(this="intDiv", expressions=[node.this, node.expression])
    if isinstance(node, exp.TimeToUnix):  # DuckDB `epoch(t)`: seconds, with microseconds
        return _template("toUnixTimestamp64Micro(CAST(__t AS DateTime64(6, 'UTC'))) / 1e6", t=node.this)
    if isinstance(node, exp.Round):
        digits = node.args.get("decimals") or exp.Literal.number(0)
        if isinstance(digits, exp.Literal) and not digits.is_string and str(digits.this).isdigit():
            return _template(_round_exact(int(digits.this)), x=node.this)
        return _template(_ROUND, x=node.this, n=digits)
    if isinstance(node, exp.LogicalOr | exp.LogicalAnd):  # a boolean, as DuckDB's (max() gives a UInt8)
        folded = exp.Max(this=node.this) if isinstance(node, exp.LogicalOr) else exp.Min(this=node.this)
        if isinstance(node.parent, exp.Window):  # `bool_or(x) OVER (...)`: the window is made a Bool
            folded.meta["boolean"] = True
            return folded
        return exp.Anonymous(this="toBool", expressions=[folded])
    if isinstance(node, exp.Window) and node.this.meta.get("boolean"):
        return exp.Anonymous(this="toBool", expressions=[node.copy()])
    if isinstance(node, exp.IgnoreNulls):
        return node.this
    if isinstance(node, exp.ConcatWs):
        sep, *parts = node.expressions
        return exp.Anonymous(
            this="arrayStringConcat",
            expressions=[
                exp.Anonymous(
                    this="arrayFilter",
                    expressions=[
                        exp.Lambda(
                            this=exp.Not(this=exp.Is(this=exp.to_identifier("x"), expression=exp.Null())),
                            expressions=[exp.to_identifier("x")],
                        ),
                        exp.Array(expressions=[exp.cast(p, "TEXT") for p in parts]),
                    ],
                ),
                sep,
            ],
        )
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        args = node.expressions
        if name == "json_array_length" and len(args) == 2:
            keys = _json_path_keys(_as_path(args[1]))
            if keys is not None:
                names = ", ".join(f"__k{i}" for i in range(len(keys)))
                return _template(
                    _ARRAY_LENGTH.replace("__k", names), j=args[0], **{f"k{i}": k for i, k in enumerate(keys)}
                )
        if name == "json_array_length" and len(args) == 1:
            return _template(
                "multiIf(toString(JSONType(__j)) = 'Array', JSONLength(__j), isValidJSON(__j), 0, NULL)",
                j=args[0],
            )
        if name == "epoch_ns":
            return _template("toUnixTimestamp64Nano(CAST(__t AS DateTime64(9, 'UTC')))", t=args[0])
        if name == "epoch_us":
            return _template("toUnixTimestamp64Micro(CAST(__t AS DateTime64(6, 'UTC')))", t=args[0])
        if name == "json_valid":
            return exp.Anonymous(this="isValidJSON", expressions=args)
        if name == "hash":
            return exp.Anonymous(this="cityHash64", expressions=args)
        if name == "to_microseconds":
            return exp.Anonymous(this="toIntervalMicrosecond", expressions=args)
        if name == "regexp_full_match" and len(args) == 2 and isinstance(args[1], exp.Literal):
            return exp.Anonymous(
                this="match", expressions=[args[0], exp.Literal.string(f"^(?:{args[1].this})$")]
            )
    if isinstance(node, exp.Length):
        return exp.Anonymous(this="length", expressions=[node.this])
    return node


def _alias_qualified_columns(tree: Any) -> None:
    """`SELECT r.run_id` is named `run_id` in DuckDB and `r.run_id` in ClickHouse: alias it. A
    condition named in a projection (`x IS NULL AS missing`) is a boolean in DuckDB and a UInt8
    (0/1) in ClickHouse: made a Bool, so that programs reading `--json` see true/false on both."""
    from sqlglot import exp

    conditions = (exp.Predicate, exp.Connector, exp.Not, exp.Exists)
    for select in tree.find_all(exp.Select):
        named = []
        taken = [e.alias_or_name for e in select.expressions]
        for e in select.expressions:
            if isinstance(e, exp.Column) and e.table and e.name != "*" and taken.count(e.name) == 1:
                e = exp.alias_(e, e.name)
            elif isinstance(e, exp.Alias) and isinstance(e.this, conditions):
                e = exp.alias_(exp.Anonymous(this="toBool", expressions=[e.this]), e.alias)
            named.append(e)
        select.set("expressions", named)
