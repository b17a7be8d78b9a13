"""The objective file: parsed into what the gates need, rejected with file, key and reason."""

# ruff: noqa: E501  (the table of mistakes reads best one case per line)

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from agenttrace.errors import ConfigError
from agenttrace.objective.spec import glob_regex, load_objective, parse_objective

DESIGN_EXAMPLE = """
goal = "Audit the ten API endpoints for authorization bypass"
scope = ["report.md", "src/**"]      # where the agent may write (globs, relative to the workdir)

[[deliverables]]
path = "report.md"
min_bytes = 200                      # optional

[[criteria]]
id = "all-endpoints"
covers = ["/users", "/orders", "/payments"]   # every item must appear in the file named by `in`
in = "report.md"
match = "substring"                  # or "regex"

[[criteria]]
id = "tests-pass"
command = "pytest -q"                # run in the agent's working directory after it exits; exit 0 passes
timeout = "5m"

[limits]
wall_time = "30m"
tokens = 200000
cost_usd = 5.0
"""


def test_the_design_example_parses_into_what_the_gates_read(tmp_path: Path) -> None:
    path = tmp_path / "objective.toml"
    path.write_text(DESIGN_EXAMPLE)
    objective = load_objective(path)
    stored = json.loads(objective.as_json())
    assert stored["goal"] == "Audit the ten API endpoints for authorization bypass"
    assert stored["deliverables"] == [{"path": "report.md", "min_bytes": 200}]
    covers, command = stored["criteria"]
    assert (covers["kind"], covers["covers"], covers["in"], covers["match"]) == (
        "covers",
        ["/users", "/orders", "/payments"],
        "report.md",
        "substring",
    )
    assert (command["kind"], command["command"], command["timeout_s"]) == ("command", "pytest -q", 300.0)
    assert stored["scope"] == ["report.md", "src/**"]
    assert stored["limits"] == {"wall_time_s": 1800.0, "tokens": 200000, "cost_usd": 5.0}
    assert stored["source"] == str(path.absolute()) and len(stored["sha256"]) == 64


def test_scope_after_a_table_header_is_explained(tmp_path: Path) -> None:
    """In TOML a key after [[criteria]] belongs to that criterion: the error says so."""
    path = tmp_path / "objective.toml"
    path.write_text('[[deliverables]]\npath = "a.md"\nscope = ["a.md"]\n')
    with pytest.raises(ConfigError) as error:
        load_objective(path)
    message = str(error.value)
    assert message.startswith(f"objective {path}: deliverables[0].scope: unknown key")
    assert "`scope` is a top-level key" in message and "before the first [table]" in message


@pytest.mark.parametrize(
    ("data", "key", "problem"),
    [
        ({"goal": 3}, "goal", "must be a string, got an integer (3)"),
        ({"deliverables": {"path": "a"}}, "deliverables", "must be an array of tables"),
        ({"deliverables": [{}]}, "deliverables[0].path", "is required"),
        ({"deliverables": [{"path": "/etc/passwd"}]}, "deliverables[0].path", "must be a path relative"),
        ({"deliverables": [{"path": "../up.md"}]}, "deliverables[0].path", "must be a path relative"),
        ({"deliverables": [{"path": "a", "min_bytes": -1}]}, "deliverables[0].min_bytes", "must not be negative"),
        ({"deliverables": [{"path": "a", "min_bytes": True}]}, "deliverables[0].min_bytes", "must be an integer, got a boolean"),
        ({"deliverables": [{"path": "a"}, {"path": "a"}]}, "deliverables[1].path", "'a' is named twice"),
        ({"criteria": [{"id": "c"}]}, "criteria[0]", "needs exactly one of `covers`"),
        ({"criteria": [{"id": "c", "command": "x", "covers": ["a"]}]}, "criteria[0]", "needs exactly one of"),
        ({"criteria": [{"id": "c", "command": "x", "in": "a"}]}, "criteria[0].in", "belongs to a `covers` criterion"),
        ({"criteria": [{"id": "c", "command": "x", "timeout": "soon"}]}, "criteria[0].timeout", "not a positive duration"),
        ({"criteria": [{"id": "c", "command": ""}]}, "criteria[0].command", "must not be empty"),
        ({"criteria": [{"command": "x"}]}, "criteria[0].id", "is required"),
        ({"criteria": [{"id": "c", "command": "x"}, {"id": "c", "command": "y"}]}, "criteria[1].id", "'c' is used by another"),
        ({"criteria": [{"id": "c", "covers": ["a"]}]}, "criteria[0].in", "is required"),
        ({"criteria": [{"id": "c", "covers": [], "in": "r"}], "deliverables": [{"path": "r"}]}, "criteria[0].covers", "at least one"),
        ({"criteria": [{"id": "c", "covers": [1], "in": "r"}], "deliverables": [{"path": "r"}]}, "criteria[0].covers[0]", "must be a string"),
        ({"criteria": [{"id": "c", "covers": ["a"], "in": "r", "match": "glob"}], "deliverables": [{"path": "r"}]}, "criteria[0].match", "must be one of substring, regex"),
        ({"criteria": [{"id": "c", "covers": ["(a"], "in": "r", "match": "regex"}], "deliverables": [{"path": "r"}]}, "criteria[0].covers[0]", "is not a valid regex"),
        ({"criteria": [{"id": "c", "covers": ["a"], "in": "r.md"}]}, "criteria[0].in", "'r.md' names no deliverable (the deliverables are: none)"),
        ({"scope": "src/**"}, "scope", "must be an array of strings, got a string"),
        ({"limits": {"tokens": 0}}, "limits.tokens", "must be a positive number of tokens"),
        ({"limits": {"tokens": 1.5}}, "limits.tokens", "must be an integer"),
        ({"limits": {"cost_usd": "5"}}, "limits.cost_usd", "must be a number of US dollars"),
        ({"limits": {"wall_time": "forever"}}, "limits.wall_time", "not a positive duration"),
        ({"limits": {"walltime": "1h"}}, "limits.walltime", "unknown key (known here: cost_usd, tokens, wall_time)"),
        ({"limits": 5}, "limits", "must be a table"),
        ({"deadline": "soon"}, "deadline", "unknown key"),
        ({"scope": ["data/[z-a].csv"]}, "scope[0]", "is not a valid glob: bad character range z-a"),
        ({"deliverables": [{"path": "./"}]}, "deliverables[0].path", "names the working directory itself"),
        ({"limits": {"cost_usd": float("nan")}}, "limits.cost_usd", "must be a finite amount"),
        ({"limits": {"wall_time": "inf"}}, "limits.wall_time", "not a positive duration"),
    ],
)  # fmt: skip
def test_each_mistake_is_named_by_its_key(data: dict, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_objective(data, where="objective o.toml")
    assert str(error.value).startswith(f"objective o.toml: {key}: "), str(error.value)
    assert problem in str(error.value)


def test_a_file_that_is_not_toml_utf8_or_a_file_at_all(tmp_path: Path) -> None:
    cases = {
        "syntax.toml": (b'goal = "open\n', "not valid TOML: "),
        "latin1.toml": (b'goal = "caf\xe9"\n', "not UTF-8 text"),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ConfigError, match=re.escape(f"objective {tmp_path / name}: {expected}")):
            load_objective(tmp_path / name)
    with pytest.raises(ConfigError, match="is a directory"):
        load_objective(tmp_path)
    with pytest.raises(ConfigError, match="no such file"):
        load_objective(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("glob", "inside", "outside"),
    [
        ("report.md", ["report.md"], ["report.md.bak", "docs/report.md", "xreport.md"]),
        ("src/**", ["src/a.py", "src/deep/er/b.py"], ["srcs/a.py", "tests/src/a.py"]),
        ("src", ["src/a.py", "src"], ["src2/a.py"]),
        ("*.md", ["a.md", "notes.md"], ["docs/a.md", "a.mdx"]),
        ("**/*.md", ["a.md", "docs/a.md", "a/b/c.md"], ["a.txt"]),
        ("out/run-?.log", ["out/run-1.log"], ["out/run-12.log"]),
        ("data/[ab].csv", ["data/a.csv"], ["data/c.csv"]),
        ("data/[!ab].csv", ["data/c.csv"], ["data/a.csv"]),
        ("[]x]", ["]", "x"], ["]x"]),
        ("a[-b].txt", ["a-.txt", "ab.txt"], ["ac.txt"]),
    ],
)
def test_scope_globs_match_paths_as_git_does(glob: str, inside: list[str], outside: list[str]) -> None:
    """Checked with DuckDB's RE2, which the `scope` gate uses."""
    import duckdb

    regex = glob_regex(glob)
    con = duckdb.connect()
    matches = {
        p: con.execute("SELECT regexp_full_match(?, ?)", [p, regex]).fetchall()[0][0]
        for p in inside + outside
    }
    assert [p for p in inside if not matches[p]] == []
    assert [p for p in outside if matches[p]] == []


def test_in_is_normalised_and_dot_scope_means_everything() -> None:
    objective = parse_objective({
        "deliverables": [{"path": "r.md"}],
        "criteria": [{"id": "c", "covers": ["x"], "in": "./r.md"}],
        "scope": ["./", "src/"],
    })  # fmt: skip
    assert objective.criteria[0].in_ == "r.md"
    assert objective.scope == ("**", "src")
