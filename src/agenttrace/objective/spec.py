"""The objective file: what "done" means for a run (DESIGN.md, "Objective file").

    objective = load_objective(Path("objective.toml"))    # ConfigError: file, key, what is wrong
    objective.as_json()                                    # stored with the run (root span)

Validation is strict: an unknown key, a wrong type, a criterion whose `in` names no deliverable,
a regex that does not compile or a path that leaves the working directory is an error naming
the file and the key, raised before the agent starts.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ConfigError
from ..supervise.durations import parse_duration

DEFAULT_COMMAND_TIMEOUT_S = 600.0
"""A `command` criterion without `timeout` gets ten minutes."""
MATCHES = ("substring", "regex")

_TOP = {"goal", "deliverables", "criteria", "scope", "limits"}
_DELIVERABLE = {"path", "min_bytes"}
_CRITERION = {"id", "covers", "in", "match", "command", "timeout", "description"}
_LIMITS = {"wall_time", "tokens", "cost_usd"}


@dataclass(frozen=True)
class Deliverable:
    path: str
    min_bytes: int | None = None


@dataclass(frozen=True)
class Criterion:
    id: str
    kind: str
    """covers | command"""
    covers: tuple[str, ...] = ()
    in_: str | None = None
    match: str = "substring"
    command: str | None = None
    timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S
    description: str | None = None


@dataclass(frozen=True)
class Limits:
    wall_time_s: float | None = None
    tokens: int | None = None
    cost_usd: float | None = None


@dataclass(frozen=True)
class Objective:
    goal: str | None = None
    deliverables: tuple[Deliverable, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    scope: tuple[str, ...] | None = None
    limits: Limits = field(default_factory=Limits)
    source: str | None = None
    """The file it was read from, if any."""
    sha256: str | None = None
    """Of the file's bytes."""

    def as_json(self) -> str:
        """The form stored with the run: everything the gates need, the file no longer needed."""
        return json.dumps(
            {
                "goal": self.goal,
                "deliverables": [{"path": d.path, "min_bytes": d.min_bytes} for d in self.deliverables],
                "criteria": [
                    {
                        "id": c.id,
                        "kind": c.kind,
                        "covers": list(c.covers),
                        "in": c.in_,
                        "match": c.match,
                        "command": c.command,
                        "timeout_s": c.timeout_s if c.kind == "command" else None,
                        "description": c.description,
                    }
                    for c in self.criteria
                ],
                "scope": list(self.scope) if self.scope is not None else None,
                "scope_regex": [glob_regex(g) for g in self.scope] if self.scope is not None else None,
                "limits": {
                    "wall_time_s": self.limits.wall_time_s,
                    "tokens": self.limits.tokens,
                    "cost_usd": self.limits.cost_usd,
                },
                "source": self.source,
                "sha256": self.sha256,
            },
            ensure_ascii=False,
        )


def load_objective(path: Path) -> Objective:
    """Read and validate an objective file. Raises ConfigError naming the file and the key."""
    where = f"objective {path}"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a directory, not a TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot be read: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    return parse_objective(
        data, where=where, source=str(path.absolute()), sha256=hashlib.sha256(raw).hexdigest()
    )


def parse_objective(
    data: Mapping[str, Any],
    *,
    where: str = "objective",
    source: str | None = None,
    sha256: str | None = None,
) -> Objective:
    """Validate an objective given as a mapping (a parsed TOML file). Raises ConfigError."""
    check = _Checker(where)
    check.table(data, "", _TOP)
    goal = check.optional(data, "goal", str)
    deliverables = tuple(
        _deliverable(check, item, f"deliverables[{i}]")
        for i, item in enumerate(check.array_of_tables(data, "deliverables"))
    )
    paths = check.unique([d.path for d in deliverables], "deliverables[{}].path", "is named twice")
    criteria = tuple(
        _criterion(check, item, f"criteria[{i}]", paths)
        for i, item in enumerate(check.array_of_tables(data, "criteria"))
    )
    check.unique([c.id for c in criteria], "criteria[{}].id", "is used by another criterion")
    scope = None
    if "scope" in data:
        scope = tuple(
            check.glob(g, f"scope[{i}]") for i, g in enumerate(check.list_of(data, "scope", str, ""))
        )
    limits = Limits()
    if "limits" in data:
        table = data["limits"]
        if not isinstance(table, Mapping):
            check.fail("limits", f"must be a table ([limits]), got {_type(table)}")
        check.table(table, "limits.", _LIMITS)
        wall = table.get("wall_time")
        tokens = check.optional(table, "tokens", int, "limits.")
        cost = table.get("cost_usd")
        if cost is not None and (isinstance(cost, bool) or not isinstance(cost, int | float)):
            check.fail("limits.cost_usd", f"must be a number of US dollars, got {_type(cost)}")
        if tokens is not None and tokens <= 0:
            check.fail("limits.tokens", f"must be a positive number of tokens, got {tokens}")
        if cost is not None and not (0 <= cost < math.inf):
            check.fail("limits.cost_usd", f"must be a finite amount, not negative, got {cost}")
        limits = Limits(
            wall_time_s=check.duration(wall, "limits.wall_time") if wall is not None else None,
            tokens=tokens,
            cost_usd=float(cost) if cost is not None else None,
        )
    return Objective(goal, deliverables, criteria, scope, limits, source, sha256)


def _deliverable(check: _Checker, item: Mapping[str, Any], key: str) -> Deliverable:
    check.table(item, f"{key}.", _DELIVERABLE)
    path = check.required(item, "path", str, f"{key}.")
    min_bytes = check.optional(item, "min_bytes", int, f"{key}.")
    if min_bytes is not None and min_bytes < 0:
        check.fail(f"{key}.min_bytes", f"must not be negative, got {min_bytes}")
    rel = check.relative_path(path, f"{key}.path")
    if rel == ".":
        check.fail(f"{key}.path", "names the working directory itself, not a file")
    return Deliverable(rel, min_bytes)


def _criterion(check: _Checker, item: Mapping[str, Any], key: str, deliverables: set[str]) -> Criterion:
    check.table(item, f"{key}.", _CRITERION)
    ident = check.required(item, "id", str, f"{key}.")
    if not ident.strip():
        check.fail(f"{key}.id", "must not be empty")
    description = check.optional(item, "description", str, f"{key}.")
    has_covers, has_command = "covers" in item, "command" in item
    if has_covers == has_command:
        check.fail(
            key,
            "needs exactly one of `covers` (items that must appear in the deliverable named by `in`) "
            "or `command` (a check to run after the agent exits)",
        )
    if has_command:
        for name in ("in", "match"):
            if name in item:
                check.fail(f"{key}.{name}", "belongs to a `covers` criterion, not a `command` one")
        command = check.required(item, "command", str, f"{key}.")
        if not command.strip():
            check.fail(f"{key}.command", "must not be empty")
        timeout = item.get("timeout")
        timeout_s = (
            check.duration(timeout, f"{key}.timeout") if timeout is not None else DEFAULT_COMMAND_TIMEOUT_S
        )
        return Criterion(ident, "command", command=command, timeout_s=timeout_s, description=description)
    if "timeout" in item:
        check.fail(f"{key}.timeout", "belongs to a `command` criterion, not a `covers` one")
    covers = tuple(check.list_of(item, "covers", str, f"{key}."))
    if not covers:
        check.fail(f"{key}.covers", "must list at least one item")
    target = check.relative_path(check.required(item, "in", str, f"{key}."), f"{key}.in")
    if target not in deliverables:
        named = ", ".join(sorted(deliverables)) or "none"
        check.fail(f"{key}.in", f"{target!r} names no deliverable (the deliverables are: {named})")
    match = check.optional(item, "match", str, f"{key}.") or "substring"
    if match not in MATCHES:
        check.fail(f"{key}.match", f"must be one of {', '.join(MATCHES)}, got {match!r}")
    if match == "regex":
        for i, pattern in enumerate(covers):
            try:
                re.compile(pattern)
            except re.error as exc:
                check.fail(f"{key}.covers[{i}]", f"{pattern!r} is not a valid regex: {exc}")
    return Criterion(ident, "covers", covers=covers, in_=target, match=match, description=description)


class _Checker:
    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, key: str, problem: str) -> None:
        raise ConfigError(f"{self.where}: {key}: {problem}" if key else f"{self.where}: {problem}")

    def unique(self, values: list[str], key: str, problem: str) -> set[str]:
        """The values as a set; the first repeat fails, its key formatted with its index."""
        seen: set[str] = set()
        for i, value in enumerate(values):
            if value in seen:
                self.fail(key.format(i), f"{value!r} {problem}")
            seen.add(value)
        return seen

    def table(self, data: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for key in data:
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                hint = ""
                if prefix and key in _TOP:
                    hint = (
                        f"; `{key}` is a top-level key, and in TOML a key written after a [table] "
                        "header belongs to that table: put it before the first [table]"
                    )
                self.fail(f"{prefix}{key}", f"unknown key (known here: {known}){hint}")

    def required(self, data: Mapping[str, Any], name: str, kind: type, prefix: str = "") -> Any:
        if name not in data:
            self.fail(f"{prefix}{name}", "is required")
        return self.optional(data, name, kind, prefix)

    def optional(self, data: Mapping[str, Any], name: str, kind: type, prefix: str = "") -> Any:
        value = data.get(name)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            self.fail(f"{prefix}{name}", f"must be {_NAMES[kind]}, got {_type(value)}")
        return value

    def list_of(self, data: Mapping[str, Any], name: str, kind: type, prefix: str) -> list[Any]:
        value = data.get(name, [])
        if not isinstance(value, list):
            self.fail(f"{prefix}{name}", f"must be an array of {_PLURALS[kind]}, got {_type(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, kind):
                self.fail(f"{prefix}{name}[{i}]", f"must be {_NAMES[kind]}, got {_type(item)}")
        return value

    def array_of_tables(self, data: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
            self.fail(name, f"must be an array of tables ([[{name}]]), got {_type(value)}")
        return value

    def duration(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(key, f'must be a duration such as "30m" or a number of seconds, got {_type(value)}')
        try:
            return parse_duration(str(value), "duration")
        except ConfigError as exc:
            self.fail(key, str(exc))
            raise  # unreachable

    def glob(self, value: str, key: str) -> str:
        """A scope glob, normalised (`.` and `./` mean everything), that compiles."""
        pattern = self.relative_path(value, key)
        pattern = "**" if pattern == "." else pattern
        try:
            re.compile(glob_regex(pattern))
        except re.error as exc:
            self.fail(key, f"{value!r} is not a valid glob: {exc}")
        return pattern

    def relative_path(self, value: str, key: str) -> str:
        text = value.strip()
        pure = PurePosixPath(text)
        if not text or pure.is_absolute() or ".." in pure.parts or "\\" in text:
            self.fail(key, f"{value!r} must be a path relative to the working directory, inside it")
        return str(pure)


_NAMES: dict[type, str] = {str: "a string", int: "an integer", float: "a number", list: "an array"}
_PLURALS: dict[type, str] = {str: "strings", int: "integers", float: "numbers", list: "arrays"}


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return type(value).__name__


def glob_regex(pattern: str) -> str:
    """A scope glob as a regex over `/`-separated relative paths: `*` and `?` stay inside one
    folder, `**` crosses folders, `[...]` is a set; a pattern also covers everything under it
    when it names a folder (`src` covers `src/app.py`)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            start = i + 1
            negate = pattern[start : start + 1] in ("!", "^")
            first = start + 1 if negate else start
            end = pattern.find("]", first + 1)  # a `]` first in the set is a member, as in fnmatch
            if end == -1:
                out.append(re.escape(char))
            else:
                members = "".join(re.escape(c) if c in "\\[]^" else c for c in pattern[first:end])
                out.append(f"[{'^' if negate else ''}{members}]")
                i = end + 1
                continue
        else:
            out.append(re.escape(char))
        i += 1
    return "(?:" + "".join(out).rstrip("/") + ")(?:/.*)?"


__all__ = [
    "Criterion", "Deliverable", "Limits", "Objective", "glob_regex", "load_objective", "parse_objective",
]  # fmt: skip
