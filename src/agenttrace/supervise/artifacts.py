"""The artifact manifest: files created, modified or deleted under the working directory during a
run (outside the folders in IGNORED_DIRS)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..store.artifact_store import sha256_file

IGNORED_DIRS = frozenset(
    {".git", ".hg", ".svn", ".venv", "venv", "__pycache__", "node_modules", ".agenttrace"}
)
"""Directories never walked: version control, virtual environments, caches."""
MAX_FILES = 200_000
"""A working directory with more files than this is not walked further (the manifest says so)."""


@dataclass(frozen=True)
class Artifact:
    path: str
    """Relative to the working directory, with `/` separators."""
    size: int
    sha256: str
    created: bool
    deleted: bool = False
    """The file was there when the run started and is gone (size and sha256 are empty)."""


def snapshot(root: Path, skip: list[Path]) -> dict[str, tuple[int, int]]:
    """relative path -> (size, mtime_ns) of every regular file under `root`, minus `skip` dirs."""
    skipped = {os.path.realpath(p) for p in skip}
    files: dict[str, tuple[int, int]] = {}
    stack = [str(root)]
    while stack and len(files) < MAX_FILES:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name not in IGNORED_DIRS and os.path.realpath(entry.path) not in skipped:
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    files[os.path.relpath(entry.path, root).replace(os.sep, "/")] = (
                        st.st_size,
                        st.st_mtime_ns,
                    )
            except OSError:
                continue
    return files


def sha256_of(path: Path) -> str | None:
    """The file's sha256, or None when it cannot be read (or is no longer a regular file)."""
    try:
        return sha256_file(path)
    except OSError:
        return None


def changes(root: Path, before: dict[str, tuple[int, int]], skip: list[Path]) -> list[Artifact]:
    """Files under `root` that are new, changed or deleted since `before`, with the hashes of
    the ones still there, by path."""
    after = snapshot(root, skip)
    found = [
        Artifact(rel, 0, "", created=False, deleted=True) for rel in sorted(before.keys() - after.keys())
    ]
    for rel, (size, mtime) in sorted(after.items()):
        old = before.get(rel)
        if old == (size, mtime):
            continue
        digest = sha256_of(root / rel)
        if digest is not None:
            found.append(Artifact(rel, size, digest, created=old is None))
    return sorted(found, key=lambda a: a.path)


def event(artifact: Artifact) -> dict[str, str | int | bool]:
    """The `agenttrace.artifact` event of a manifest entry (role written or deleted)."""
    if artifact.deleted:
        return {"file.path": artifact.path, "agenttrace.artifact.role": "deleted"}
    return event_attributes(
        artifact.path, artifact.sha256, artifact.size, "written", created=artifact.created
    )


def event_attributes(
    path: str, sha256: str, size: int, role: str, **extra: str | int | bool
) -> dict[str, str | int | bool]:
    """The attributes of an `agenttrace.artifact` span event (what the `artifacts` view reads);
    `extra` keys go under `agenttrace.artifact.`."""
    return {
        "file.path": path,
        "file.size": size,
        "agenttrace.artifact.sha256": sha256,
        "agenttrace.artifact.role": role,
        **{f"agenttrace.artifact.{key}": value for key, value in extra.items()},
    }
