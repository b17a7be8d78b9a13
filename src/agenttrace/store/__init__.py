"""The crash-safe store: an append-only spool and immutable Parquet parts, laid out by run."""

from .layout import StoreLayout
from .writer import StoreWriter

__all__ = ["StoreLayout", "StoreWriter"]
