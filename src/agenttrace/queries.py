"""Locate the SQL that ships with agenttrace (views, reports, gates)."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def queries_dir() -> Path:
    """`agenttrace/queries` inside an installed wheel, else the repository's `queries/`."""
    packaged = Path(__file__).parent / "queries"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "queries"


@cache
def load(relative: str) -> str:
    """The text of `queries/<relative>`, e.g. `views/spans.sql`."""
    return (queries_dir() / relative).read_text(encoding="utf-8")
