"""The supervisor's manifest of a run: every part written for the run by `agenttrace run`'s own
process, with its sha256 and who reported its records.

    <store>/manifests/<run>.json
    {"version": 1, "run_id": "...", "supervisor_pid": 123, "complete": true,
     "parts": [{"path": "spans/run_id=<run>/part-....parquet", "sha256": "...", "rows": 12,
                "origin": "supervisor" | "agent"}],      (spans/, logs/ or samples/ parts)
     "problems": ["spool segment ... was changed while the run was being recorded: ..."],
     "derived": {"views": "<sha256 of the view SQL>", "started": "20261124T153012.123456Z",
                 "tables": [{"name": "steps", "path": "derived/run_id=<run>/steps.parquet",
                             "sha256": "..."}, ...], "parts": [...]}}

`derived` (optional; manifests without it are read as before) lists the run's derived tables
(`store.derived`): the views computed once the run was sealed. They are used instead of the views
only while their bytes match these hashes and the installed view SQL is the one they were
computed by; otherwise the views are computed from the parts, as for a run without them.

`origin` says who reported a part's records: `supervisor` for what the supervisor itself saw and
did (the run's root span, exit status, process tree, artifact manifest, verification, claims it
recorded, the verdict), `agent` for what the agent reported about itself over OTLP to the run's
receiver. The manifest makes the run's records tamper-evident: `check_run` lists every part of a
manifested run that is missing, changed, or not in the manifest (written by someone else), and
records of such a run left in the spool; for every kind of part (spans, log records, metric data
points), each kind's folder told apart by the part's path. The agent runs as the same user, so a
determined agent can rewrite the manifest too; `agenttrace run --protect-store` closes that hole
where the OS allows it (see the README, "The audited party has no pen").
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import StoreError
from .files import fsync_dir
from .files import sha256_file as sha256_of
from .layout import KINDS, SPANS, StoreLayout

MANIFESTS = "manifests"
VERSION = 1
ORIGINS = ("supervisor", "agent")


@dataclass(frozen=True)
class ManifestPart:
    path: str
    """Relative to the store's root."""
    sha256: str
    rows: int
    origin: str


@dataclass
class Manifest:
    run_id: str
    supervisor_pid: int
    parts: list[ManifestPart] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """What the supervisor itself saw go wrong with the run's records (a spool segment changed
    under it, say)."""
    complete: bool = False
    """False while the run is being recorded; True once its last record (the verdict) is in."""
    derived: dict[str, Any] | None = None
    """The run's derived tables and their hashes (`store.derived.DerivedEntry.as_json`), once
    written; None for a run without them (or a manifest of an earlier version)."""

    def add(self, layout: StoreLayout, path: Path, sha256: str, rows: int, origin: str) -> None:
        self.parts.append(ManifestPart(relative(layout, path), sha256, rows, origin))

    def as_json(self) -> dict[str, Any]:
        data = {
            "version": VERSION,
            "run_id": self.run_id,
            "supervisor_pid": self.supervisor_pid,
            "complete": self.complete,
            "parts": [vars(p) for p in self.parts],
            "problems": self.problems,
        }
        if self.derived is not None:
            data["derived"] = self.derived
        return data


@dataclass
class RunCheck:
    """What `check_run` found: the parts whose records count, by kind and origin, and the problems."""

    kind_parts: dict[str, dict[str, list[Path]]] = field(
        default_factory=lambda: {k: {o: [] for o in ORIGINS} for k in KINDS}
    )
    problems: list[tuple[str, str | None]] = field(default_factory=list)
    """(reason, the part or file it is about)."""
    verified: dict[Path, bytes] = field(default_factory=dict)
    """With `verify_hashes`: the bytes of each part that matched its sha256, read once. Readers
    use these, not the file: a file swapped after the check cannot be what is audited."""

    @property
    def parts(self) -> dict[str, list[Path]]:
        """The span parts whose records count, by origin."""
        return self.kind_parts[SPANS]


def part_kind(rel: str) -> str:
    """The kind of a part from its path relative to the store (`logs/run_id=.../part-...`)."""
    head = rel.split("/", 1)[0]
    return head if head in KINDS else SPANS


def manifest_path(layout: StoreLayout, run_id: str) -> Path:
    return layout.root / MANIFESTS / f"{run_id}.json"


def relative(layout: StoreLayout, path: Path) -> str:
    return os.path.relpath(path, layout.root)


def write_manifest(layout: StoreLayout, manifest: Manifest) -> Path:
    """Write (or replace) a run's manifest atomically, readable by the user only. Raises StoreError."""
    target = manifest_path(layout, manifest.run_id)
    tmp = target.with_name(target.name + ".tmp")
    data = json.dumps(manifest.as_json(), indent=1).encode()
    try:
        target.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if target.is_dir() and not target.is_symlink():  # put there to block the manifest
            shutil.rmtree(target)
        os.replace(tmp, target)
        fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreError(f"cannot write the run's manifest {target}: {exc.strerror or exc}") from exc
    return target


def manifested_runs(layout: StoreLayout) -> list[str]:
    """The runs that have a manifest."""
    folder = layout.root / MANIFESTS
    try:
        return sorted(p.name.removesuffix(".json") for p in folder.iterdir() if p.name.endswith(".json"))
    except OSError:
        return []


def read_manifest(layout: StoreLayout, run_id: str) -> Manifest | None:
    """The run's manifest; None if it has none. Raises StoreError if it is there but unreadable."""
    path = manifest_path(layout, run_id)
    try:
        raw = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise StoreError(f"manifest {path} cannot be read: {exc}") from None
    try:
        manifest = Manifest(
            run_id=str(raw["run_id"]),
            supervisor_pid=int(raw["supervisor_pid"]),
            parts=[
                ManifestPart(str(p["path"]), str(p["sha256"]), int(p["rows"]), str(p["origin"]))
                for p in raw["parts"]
            ],
            problems=[str(p) for p in raw.get("problems", [])],
            complete=bool(raw.get("complete", False)),
            derived=raw.get("derived") if isinstance(raw.get("derived"), dict) else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"manifest {path} is malformed ({type(exc).__name__}: {exc})") from None
    if manifest.run_id != run_id:
        raise StoreError(f"manifest {path} is for another run ({manifest.run_id!r})")
    return manifest


def check_run(
    layout: StoreLayout,
    manifest: Manifest,
    parts_on_disk: list[Path],
    *,
    verify_hashes: bool,
    keep_bytes: bool = True,
) -> RunCheck:
    """Compare a manifested run's parts (of every kind: spans, logs, samples) with its manifest.
    With `verify_hashes`, every listed part is read and hashed (an audit); without, only its
    presence is checked (listing runs). Pass every part of the run on disk, of every kind: a listed
    part not passed counts as deleted. `keep_bytes=False`: hash the parts without keeping their
    bytes (`RunCheck.verified` stays empty; a reader of derived tables does not decode parts)."""
    check = RunCheck()
    check.problems += [(p, None) for p in manifest.problems]
    listed = {p.path: p for p in manifest.parts}
    on_disk = {relative(layout, p): p for p in parts_on_disk}
    for rel, part in sorted(on_disk.items()):
        entry = listed.get(rel)
        if entry is None:
            check.problems.append(
                (
                    f"part {rel} was not written by the run's supervisor (added to the store by another "
                    "process): its records are not used",
                    rel,
                )
            )
            continue
        if verify_hashes:
            try:
                data = part.read_bytes() if keep_bytes else b""
                actual = hashlib.sha256(data).hexdigest() if keep_bytes else sha256_of(part)
            except OSError as exc:
                check.problems.append((f"part {rel} cannot be read to check it: {exc.strerror or exc}", rel))
                continue
            if actual != entry.sha256:
                check.problems.append(
                    (
                        f"part {rel} was changed after the supervisor wrote it (sha256 {actual[:12]}…, "
                        f"recorded {entry.sha256[:12]}…): its records are not used",
                        rel,
                    )
                )
                continue
            if keep_bytes:
                check.verified[part] = data
        check.kind_parts.setdefault(part_kind(rel), {}).setdefault(entry.origin, []).append(part)
    for rel in sorted(set(listed) - set(on_disk)):
        entry = listed[rel]
        check.problems.append(
            (
                f"part {rel} ({entry.rows} {entry.origin} record(s)) was deleted after the supervisor "
                "wrote it",
                rel,
            )
        )
    if not manifest.complete:
        check.problems.append(
            ("the supervisor did not finish recording the run (its manifest is not complete)", None)
        )
    return check


__all__ = [
    "Manifest",
    "ManifestPart",
    "RunCheck",
    "check_run",
    "manifest_path",
    "manifested_runs",
    "part_kind",
    "read_manifest",
    "sha256_of",
    "write_manifest",
]
