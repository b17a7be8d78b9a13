"""One writer's hold on one run's spool of one kind: its lock, and the segments written under it."""

from __future__ import annotations

import threading
from pathlib import Path

from .layout import SPANS
from .schema import KIND_SCHEMAS
from .spool import DIR_MODE, LOCK_SUFFIX, SEGMENT_SUFFIX, SpoolSegment, WriterLock

_OPEN_RETRIES = 3


class RunSpool:
    """One owner of one run's spool of one kind: a held lock and the segments written under it."""

    def __init__(self, directory: Path, run_id: str, spool_id: str, digest: bool, kind: str = SPANS) -> None:
        self.directory = directory
        self.run_id = run_id
        self.kind = kind
        self.schema = KIND_SCHEMAS[kind]
        self.id = spool_id
        self.digest = digest
        self.lock = take_lock(directory, spool_id)
        self.seq = 0
        self.segment: SpoolSegment | None = None
        self.closed: list[SpoolSegment] = []
        """Finished segments not yet in a part (a seal that failed is retried with them)."""
        self.seal_mutex = threading.Lock()
        """Held while this spool's closed segments are sealed: one sealer at a time."""

    def current(self) -> SpoolSegment:
        if self.segment is None:
            self.seq += 1
            path = self.directory / f"{self.id}-{self.seq:06d}{SEGMENT_SUFFIX}"
            self.segment = SpoolSegment(path, self.schema, digest=self.digest)
        return self.segment

    def rotate(self) -> None:
        """Finish the current segment and queue it for sealing (under the writer's lock)."""
        segment, self.segment = self.segment, None
        if segment is None:
            return
        try:
            segment.close()
        except OSError:
            segment.abandon()  # its complete batches stay readable
        self.closed.append(segment)

    def discard(self, segment: SpoolSegment) -> None:
        """Stop writing a segment that failed; its complete batches are sealed later."""
        segment.abandon()
        if self.segment is segment:
            self.segment = None
            self.closed.append(segment)


def take_lock(directory: Path, spool_id: str) -> WriterLock:
    path = directory / f"{spool_id}{LOCK_SUFFIX}"
    for attempt in range(_OPEN_RETRIES):
        try:
            return WriterLock(path)
        except FileNotFoundError:  # no folder yet, or a reader removed it (empty) meanwhile
            if attempt == _OPEN_RETRIES - 1:
                raise
            # The run's folder, then the kind's sub-folder (other kinds than spans): both private.
            directory.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            directory.mkdir(mode=DIR_MODE, exist_ok=True)
    raise AssertionError("unreachable")
