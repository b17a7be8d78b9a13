"""The content-addressed artifact store: copies by sha256, read-only, once; a cap; a full disk."""

from __future__ import annotations

import hashlib
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agenttrace.store.artifact_store import ArtifactStore, content_type
from agenttrace.store.layout import StoreLayout


def test_a_file_is_copied_under_its_sha256_read_only_and_only_once(tmp_path: Path) -> None:
    store = ArtifactStore(StoreLayout(tmp_path / "store"), max_bytes=1 << 20)
    source = tmp_path / "report.md"
    source.write_text("# Findings\n\nnone\n")
    first = store.put(source)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert (first.sha256, first.size, first.content_type, first.stored) == (digest, 17, "text/markdown", True)
    copy = tmp_path / "store" / "artifacts" / "sha256" / digest[:2] / digest
    assert copy.read_bytes() == source.read_bytes()
    assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    before = copy.stat().st_mtime_ns
    twin = tmp_path / "same.md"
    twin.write_bytes(source.read_bytes())
    assert store.put(twin).sha256 == digest
    assert copy.stat().st_mtime_ns == before, "an existing copy is not written again"
    assert not list((tmp_path / "store" / "artifacts" / "tmp").iterdir()), "no temporary file left"


def test_a_file_over_the_cap_is_hashed_but_not_copied(tmp_path: Path) -> None:
    store = ArtifactStore(StoreLayout(tmp_path / "store"), max_bytes=1000)
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x00\x01" * 1000)
    stored = store.put(big)
    assert (stored.size, stored.stored, stored.content_type) == (2000, False, "application/octet-stream")
    assert stored.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert not store.has(stored.sha256)


def test_content_types_by_extension_then_by_content(tmp_path: Path) -> None:
    assert content_type(tmp_path / "a.json", b"{}") == "application/json"
    assert content_type(tmp_path / "LOG", "héllo wörld".encode()) == "text/plain"
    assert content_type(tmp_path / "blob", b"\x00\xff\xfe") == "application/octet-stream"
    assert content_type(tmp_path / "cut", "é".encode()[:1]) == "text/plain", "a character cut by the sniff"


def test_missing_and_directory_sources_raise_for_the_caller_to_report(tmp_path: Path) -> None:
    store = ArtifactStore(StoreLayout(tmp_path / "store"), max_bytes=1000)
    with pytest.raises(FileNotFoundError):
        store.put(tmp_path / "nope")
    with pytest.raises(IsADirectoryError):
        store.put(tmp_path)


def test_a_full_disk_is_one_store_error_and_loses_nothing_stored(tmp_path: Path) -> None:
    """The OS refuses the write (file size limit, as a full disk would): StoreError, no partial
    copy, and what was stored before is intact."""
    (tmp_path / "small.txt").write_text("kept\n")
    (tmp_path / "large.bin").write_bytes(b"x" * (2 << 20))
    script = textwrap.dedent(
        f"""
        import resource, signal
        from pathlib import Path
        from agenttrace.errors import StoreError
        from agenttrace.store.artifact_store import ArtifactStore
        from agenttrace.store.layout import StoreLayout
        store = ArtifactStore(StoreLayout(Path({str(tmp_path / "store")!r})), max_bytes=64 << 20)
        kept = store.put(Path({str(tmp_path / "small.txt")!r}))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        try:
            store.put(Path({str(tmp_path / "large.bin")!r}))
        except StoreError as exc:
            print("StoreError:", exc)
        print(kept.sha256)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    error, kept = result.stdout.strip().splitlines()
    assert error.startswith("StoreError: cannot store a copy of ") and "File too large" in error
    copies = sorted(p.name for p in (tmp_path / "store" / "artifacts" / "sha256").rglob("*") if p.is_file())
    assert copies == [kept]
    assert (tmp_path / "store" / "artifacts" / "sha256" / kept[:2] / kept).read_text() == "kept\n"
    assert not list((tmp_path / "store" / "artifacts" / "tmp").iterdir())


def test_a_file_is_stored_only_if_what_was_opened_is_inside_the_folder(tmp_path: Path) -> None:
    """The check is on the opened file, so a symlink swapped in after a path check is caught."""
    from agenttrace.store.artifact_store import OutsideError

    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("private\n")
    (work / "report.md").write_text("mine\n")
    (work / "report-link").symlink_to(outside / "secret")
    store = ArtifactStore(StoreLayout(tmp_path / "store"), 1 << 20)
    assert store.put(work / "report.md", within=work).stored
    with pytest.raises(OutsideError):
        store.put(work / "report-link", within=work)
    copies = [p for p in (tmp_path / "store").rglob("*") if p.is_file()]
    assert all(b"private" not in p.read_bytes() for p in copies)
