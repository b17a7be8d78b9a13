"""`agenttrace report`: one run as one self-contained HTML file (no server, no network), and an
index page of runs.

    write_report(store, run, out) -> ReportInfo
    write_index(store, out, since=None, states=None) -> IndexInfo
"""

from __future__ import annotations

from .limits import DEFAULT_LIMITS, Limits
from .write import IndexInfo, ReportInfo, write_index, write_report

__all__ = ["DEFAULT_LIMITS", "IndexInfo", "Limits", "ReportInfo", "write_index", "write_report"]
