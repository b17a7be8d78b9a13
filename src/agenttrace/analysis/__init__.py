"""Reading a store with DuckDB: views, run resolution, and the reports behind the commands."""

from .database import Database
from .resolve import resolve_run

__all__ = ["Database", "resolve_run"]
