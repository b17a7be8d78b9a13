"""Gates: one SQL file each, returning one row per violation (DESIGN.md, "Gates").

A gate file starts with `-- key: value` lines:

    -- description: What passing means, in one sentence.
    -- severity: error            (or warn; default error)
    -- applies: SELECT ...        (optional: a query returning one boolean; false or no row: n/a)

then a single SELECT over the views, with the run bound as `$run_id`, returning the columns
`reason` and `span_id` (plus any evidence columns; columns named `_...` only order the rows and
are not reported). Zero rows: the gate passes.

Gates come from the package (`queries/gates/`), then `<store>/gates/`, then `--gates DIR`; a later
file with the same name replaces an earlier one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..queries import queries_dir

SEVERITIES = ("error", "warn")
_HEADER = re.compile(r"^--\s*([A-Za-z_]+)\s*:\s*(.*?)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Gate:
    name: str
    path: Path
    sql: str
    description: str
    severity: str
    applies: str | None
    source: str
    """builtin | store | --gates"""


def parse_gate(path: Path, source: str) -> Gate:
    """A gate from its file. Raises ConfigError naming the file for a bad header."""
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
    if not text.strip().rstrip(";").strip():
        raise ConfigError(f"gate {path}: no SQL")
    return Gate(
        name=path.stem,
        path=path,
        sql=text,
        description=header["description"],
        severity=severity,
        applies=header.get("applies") or None,
        source=source,
    )


def load_gates(store: Path | None = None, extra: Path | None = None) -> list[Gate]:
    """Every gate, by name: built-in, then the store's, then `extra`'s. Raises ConfigError."""
    gates: dict[str, Gate] = {}
    sources = [(queries_dir() / "gates", "builtin")]
    if store is not None:
        sources.append((store / "gates", "store"))
    if extra is not None:
        if not extra.is_dir():
            raise ConfigError(f"--gates {extra}: not a directory")
        sources.append((extra, "--gates"))
    for directory, source in sources:
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.sql")):
            if not _NAME.match(path.stem):
                raise ConfigError(f"gate {path}: a gate's name is letters, digits, '_', '.' or '-'")
            gates[path.stem] = parse_gate(path, source)
    return sorted(gates.values(), key=lambda g: (g.source != "builtin", g.name))


def sql_for_query(gate: Gate, run_id: str) -> str:
    """The gate's SQL, without its header and with the run written in, to paste into
    `agenttrace query` (a leading `--` would read as an option)."""
    lines = gate.sql.splitlines()
    while lines and (_HEADER.match(lines[0]) or not lines[0].strip()):
        lines.pop(0)
    literal = "'" + run_id.replace("'", "''") + "'"
    return re.sub(r"\$run_id\b", literal, "\n".join(lines))
