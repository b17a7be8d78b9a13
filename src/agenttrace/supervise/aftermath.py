"""What `agenttrace run` does about the time after the agent: the code that audits the run is
imported before the agent starts (it could rewrite files of an editable install meanwhile), and the
run's derived tables (`analysis.derive`) are written by a detached process after the verdict.

`agenttrace run` prints its verdict and returns at once; a grandchild (double fork, new session,
standard streams on /dev/null) computes the run's views once, writes them as its derived tables
and writes the manifest again with them listed. Until then, or if that fails, a reader computes
the views, as for any run without derived tables: they are a cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from ..errors import AgentTraceError
from ..store.layout import StoreLayout
from ..store.manifest import Manifest, write_manifest

log = logging.getLogger(__name__)


def import_the_audit() -> None:
    """Import what audits the run and records its verdict, before the agent starts."""
    from ..analysis import derive  # noqa: F401
    from ..audit import record, verdict  # noqa: F401
    from ..objective import claims, verification  # noqa: F401
    from ..render import audit  # noqa: F401


def derive_later(store: Path, layout: StoreLayout, run_id: str, final: Manifest) -> None:
    """Fork a detached process that derives the run's tables from the parts `final` (the sealed
    manifest, verdict included) lists and writes `final` with them. Returns at once."""
    try:
        first = os.fork()
    except OSError as exc:
        log.debug("derived tables not written: %s", exc)
        return
    if first:  # the parent: the first child exits at once, the grandchild is no zombie of ours
        os.waitpid(first, 0)
        return
    try:  # the first child: a new session (no terminal's signals), then the grandchild works
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        derive(store, layout, run_id, final)
    finally:
        os._exit(0)


def derive(store: Path, layout: StoreLayout, run_id: str, final: Manifest) -> None:
    """Derive the run's tables and write `final` with them listed (in this process)."""
    from ..analysis.derive import derive_run

    derived = derive_run(store, run_id, final)
    if derived is not None:
        final.derived = derived.as_json()
        with contextlib.suppress(AgentTraceError):
            write_manifest(layout, final)
