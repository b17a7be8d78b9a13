"""Gates: one SQL file each, returning one row per violation (DESIGN.md, "Gates").

A gate file starts with `-- key: value` lines:

    -- description: What passing means, in one sentence.
    -- severity: error            (or warn; default error)
    -- applies: SELECT ...        (optional: a query returning one boolean; false or no row: n/a)

then a single SELECT over the views, with the run bound as `$run_id`, returning the columns
`reason` and `span_id` (plus any evidence columns; columns named `_...` only order the rows and
are not reported). Zero rows: the gate passes. The gate and its `applies:` query are each one
read-only statement, run in the store's SQL sandbox (see `analysis.database`).

Where gates come from: the package (`queries/gates/`, the built-in gates) and, explicitly, a
`--gates DIR` the user names. Never the store: the agent under audit can write there. A gate's
name is its file's stem; a built-in name cannot be taken by a user gate.

`agenttrace run` fixes the gate set before the agent starts and records it in the run (name,
sha256 and SQL text of each gate, on the run's root span); the run's verdict comes from that
record (`gates_from_record`), so nothing the agent writes during the run can change its gates.
A later audit (`audit_gates`) takes the `--gates` gates from the record and the built-in gates
from the installed agenttrace: they ship with the code that audits, and a built-in gate fixed
since the run was recorded then applies to it (marked `recorded: false`); a built-in gate this
version no longer has is taken from the record.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import ConfigError, QueryError
from ..queries import queries_dir

SEVERITIES = ("error", "warn")
RECORD_ATTRIBUTE = "agenttrace.gates"
"""On a supervised run's root span: the JSON list of the gates fixed at run start."""
STORE_GATES = "gates"
"""`<store>/gates/`: read by earlier versions, ignored now (see `store_gates_notice`)."""
_HEADER = re.compile(r"^--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_SOURCES = ("builtin", "--gates", "recorded")


@dataclass(frozen=True)
class Gate:
    name: str
    path: Path
    sql: str
    description: str
    severity: str
    applies: str | None
    source: str
    """builtin | --gates (a directory the user named) | recorded (taken from the run's record)"""
    recorded: bool = False
    """Whether this gate, with this exact SQL, is in the gate set the run recorded at its start."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    def record(self) -> dict[str, str]:
        """What the run keeps of the gate: enough to evaluate it again without any file."""
        return {"name": self.name, "source": self.source, "sha256": self.sha256, "sql": self.sql}


def parse_gate(path: Path, source: str, text: str | None = None) -> Gate:
    """A gate from its file (or its recorded `text`). Raises ConfigError naming the file."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"gate {path}: cannot be read: {exc}") from None
    header: dict[str, str] = {}
    for line in text.splitlines():
        match = _HEADER.match(line)
        if not match:
            break
        header[match.group(1).lower()] = match.group(2)
    severity = header.get("severity", "error").lower()
    if severity not in SEVERITIES:
        raise ConfigError(f"gate {path}: severity must be error or warn, got {severity!r}")
    if not header.get("description"):
        raise ConfigError(f"gate {path}: the header needs a `-- description: ...` line")
    applies = header.get("applies") or None
    for what, sql in (("its SQL", text), ("its `applies:` query", applies)):
        if sql is None:
            continue
        if not _strip_header(sql).strip().rstrip(";").strip():
            raise ConfigError(f"gate {path}: no SQL")
        try:
            from ..analysis.readonly import ensure_read_only

            ensure_read_only(sql)
        except QueryError as exc:
            raise ConfigError(f"gate {path}: {what}: {exc}") from None
    return Gate(
        name=path.stem,
        path=path,
        sql=text,
        description=header["description"],
        severity=severity,
        applies=applies,
        source=source,
    )


def builtin_gates() -> list[Gate]:
    return list(_builtin_gates())


@cache
def _builtin_gates() -> tuple[Gate, ...]:
    return tuple(parse_gate(path, "builtin") for path in sorted((queries_dir() / "gates").glob("*.sql")))


def user_gates(directory: Path) -> list[Gate]:
    """The gates in a directory the user named (`--gates DIR`). Raises ConfigError."""
    if not directory.is_dir():
        raise ConfigError(f"--gates {directory}: not a directory")
    builtin = {g.name for g in builtin_gates()}
    found = []
    for path in sorted(directory.glob("*.sql")):
        if not _NAME.match(path.stem):
            raise ConfigError(f"gate {path}: a gate's name is letters, digits, '_', '.' or '-'")
        if path.stem in builtin:
            raise ConfigError(
                f"gate {path}: {path.stem!r} is the name of a built-in gate; give yours another name"
            )
        found.append(parse_gate(path, "--gates"))
    return found


def load_gates(extra: Path | None = None) -> list[Gate]:
    """The built-in gates, then those of `extra` (a `--gates DIR`). Raises ConfigError."""
    gates = builtin_gates() + (user_gates(extra) if extra is not None else [])
    return sorted(gates, key=lambda g: (g.source != "builtin", g.name))


def record_gates(gates: list[Gate]) -> str:
    """The gate set as it is recorded on a run (JSON)."""
    return json.dumps([g.record() for g in gates], ensure_ascii=False)


def gates_from_record(text: str) -> list[Gate]:
    """The gate set a run recorded at its start. Raises ConfigError if the record is unusable."""
    try:
        items = json.loads(text)
        if not isinstance(items, list):
            raise ValueError("not a list")
        gates = []
        for item in items:
            name, sql = str(item["name"]), str(item["sql"])
            if not _NAME.match(name):
                raise ValueError(f"bad gate name {name!r}")
            if hashlib.sha256(sql.encode("utf-8")).hexdigest() != item.get("sha256"):
                raise ValueError(f"gate {name}: its SQL does not match its recorded sha256")
            gate = parse_gate(Path("recorded") / f"{name}.sql", "recorded", sql)
            source = str(item.get("source", "builtin"))
            gates.append(replace(gate, source=source if source in _SOURCES else "recorded", recorded=True))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the run's recorded gate set cannot be read: {exc}") from None
    return sorted(gates, key=lambda g: (g.source != "builtin", g.name))


def audit_gates(recorded: str | None, extra: Path | None) -> list[Gate]:
    """The gates to audit a run with: this version's built-in gates (marked recorded when the run
    recorded the same SQL), the run's recorded `--gates` gates and any recorded built-in gate this
    version lacks, plus any `--gates DIR`, which are marked as not recorded and replace a recorded
    gate of the same name."""
    base = builtin_gates() if recorded is None else _current_builtins(gates_from_record(recorded))
    if extra is None:
        return base
    added = user_gates(extra)
    names = {g.name for g in added}
    recorded_sql = {g.name: g.sha256 for g in base if g.recorded}
    added = [replace(g, recorded=recorded_sql.get(g.name) == g.sha256) for g in added]
    return sorted(
        [g for g in base if g.name not in names] + added, key=lambda g: (g.source != "builtin", g.name)
    )


def _current_builtins(pinned: list[Gate]) -> list[Gate]:
    by_name = {g.name: g for g in pinned}
    current = [
        replace(g, recorded=g.name in by_name and by_name[g.name].sha256 == g.sha256)
        for g in builtin_gates()
        if g.name not in by_name or by_name[g.name].source == "builtin"
    ]
    names = {g.name for g in current}
    kept = [g for g in pinned if g.name not in names]
    return sorted(current + kept, key=lambda g: (g.source != "builtin", g.name))


def store_gates_notice(store: Path) -> str | None:
    """Earlier versions also read `<store>/gates/`; say so when that folder holds gates."""
    folder = store / STORE_GATES
    try:
        found = any(folder.glob("*.sql")) if folder.is_dir() else False
    except OSError:
        return None
    if not found:
        return None
    return (
        f"{folder} is no longer read: the agent under audit can write into the store. "
        "Move those gates to a directory the agent cannot reach and pass it with --gates"
    )


def _strip_header(sql: str) -> str:
    lines = sql.splitlines()
    while lines and (_HEADER.match(lines[0]) or not lines[0].strip() or lines[0].lstrip().startswith("--")):
        lines.pop(0)  # the header, and the comments between it and the query
    return "\n".join(lines)


def sql_for_query(gate: Gate, run_id: str) -> str:
    """The gate's SQL, without its header and with the run written in, to paste into
    `agenttrace query` (a leading `--` would read as an option)."""
    literal = "'" + run_id.replace("'", "''") + "'"
    return re.sub(r"\$run_id\b", literal, _strip_header(gate.sql))


def as_json(gate: Gate) -> dict[str, Any]:
    return {
        "name": gate.name,
        "description": gate.description,
        "severity": gate.severity,
        "source": gate.source,
        "path": str(gate.path),
        "sha256": gate.sha256,
    }
