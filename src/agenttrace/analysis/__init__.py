"""Reading a store with DuckDB: views, run resolution, and the reports behind the commands.

`Database` (DuckDB and pyarrow) is imported when first used: the read paths over derived tables
(`analysis.derived`) need neither pyarrow nor the views."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .resolve import resolve_run

if TYPE_CHECKING:
    from .database import Database

__all__ = ["Database", "resolve_run"]


def __getattr__(name: str) -> Any:
    if name == "Database":
        from .database import Database

        return Database
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
