"""The table of `agenttrace runs`."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text

from .values import duration, moment

STATE_STYLES = {
    "succeeded": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "verifying": "cyan",
    "pending": "cyan",
    "unknown": "yellow",
}


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def spans_text(spans: int, errors: int) -> Text:
    text = Text(str(spans))
    if errors:
        text.append(f" ({errors} err)", style="red")
    return text


def runs_table(rows: list[dict[str, Any]], whole_names: bool = False) -> Table:
    """One line per run. A terminal gets names cut at 32 columns; `whole_names` (a pipe, where
    `grep` should find a run by its name) gets them whole."""
    table = Table(box=None, pad_edge=False, collapse_padding=True, header_style="bold")
    table.add_column("RUN", no_wrap=True)
    if whole_names:
        table.add_column("NAME", no_wrap=True)
    else:
        table.add_column("NAME", overflow="ellipsis", no_wrap=True, min_width=6, max_width=32)
    table.add_column("STATE", no_wrap=True)
    table.add_column("STARTED (UTC)", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    table.add_column("SPANS", justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row["run_id"],
            row["name"] or "",
            state_text(row["state"]),
            moment(row["started"], utc_suffix=False),
            duration(row["duration_s"]),
            spans_text(row["span_count"], row["error_count"]),
        )
    return table
