"""The crash-safe store: an append-only spool and immutable Parquet parts, laid out by run.

`StoreWriter` (pyarrow) is imported when first used, so that code needing only the layout (every
CLI command's `--store`) does not pay for pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .layout import StoreLayout

if TYPE_CHECKING:
    from .writer import StoreWriter

__all__ = ["StoreLayout", "StoreWriter"]


def __getattr__(name: str) -> Any:
    if name == "StoreWriter":
        from .writer import StoreWriter

        return StoreWriter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
