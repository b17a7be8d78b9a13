"""The supervisor's manifest: written atomically and privately, read back, and every difference
between a run's parts and its manifest named (a part added, changed or deleted)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pyarrow as pa
import pytest

from agenttrace.errors import StoreError
from agenttrace.store.layout import StoreLayout
from agenttrace.store.manifest import (
    Manifest,
    check_run,
    manifest_path,
    read_manifest,
    sha256_of,
    write_manifest,
)
from agenttrace.store.parts import write_part

RUN = "20261201T120000-abcd"


def part(layout: StoreLayout, rows: int = 3) -> Path:
    return write_part(pa.table({"x": list(range(rows))}), layout.partition_dir("spans", RUN))


@pytest.fixture
def layout(tmp_path: Path) -> StoreLayout:
    layout = StoreLayout(tmp_path / "store")
    layout.require_writable()
    return layout


def manifested(layout: StoreLayout, *parts: tuple[Path, str]) -> Manifest:
    manifest = Manifest(RUN, 4242, complete=True)
    for path, origin in parts:
        manifest.add(layout, path, sha256_of(path), 3, origin)
    return manifest


def test_written_private_and_read_back(layout: StoreLayout) -> None:
    first, second = part(layout), part(layout)
    manifest = manifested(layout, (first, "supervisor"), (second, "agent"))
    manifest.problems.append("spool segment x was changed")
    path = write_manifest(layout, manifest)
    assert path == manifest_path(layout, RUN)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    back = read_manifest(layout, RUN)
    assert back is not None and back.as_json() == manifest.as_json()
    assert not list(path.parent.glob("*.tmp"))


def test_a_run_without_a_manifest_has_none(layout: StoreLayout) -> None:
    assert read_manifest(layout, RUN) is None


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "cannot be read"),
        (b'{"run_id": "20261201T120000-abcd"}', "malformed"),
        (json.dumps({"run_id": "other", "supervisor_pid": 1, "parts": []}).encode(), "for another run"),
    ],
)
def test_a_broken_manifest_is_a_store_error(layout: StoreLayout, content: bytes, problem: str) -> None:
    target = manifest_path(layout, RUN)
    target.parent.mkdir()
    target.write_bytes(content)
    with pytest.raises(StoreError, match=problem):
        read_manifest(layout, RUN)


def test_untouched_parts_pass_by_origin(layout: StoreLayout) -> None:
    first, second = part(layout), part(layout)
    check = check_run(
        layout,
        manifested(layout, (first, "supervisor"), (second, "agent")),
        [first, second],
        verify_hashes=True,
    )
    assert check.problems == []
    assert check.parts == {"supervisor": [first], "agent": [second]}


def test_an_added_a_changed_and_a_deleted_part_are_each_named(layout: StoreLayout) -> None:
    kept, changed, deleted = part(layout), part(layout), part(layout)
    manifest = manifested(layout, (kept, "supervisor"), (changed, "supervisor"), (deleted, "agent"))
    data = bytearray(changed.read_bytes())
    data[10] ^= 0xFF
    changed.write_bytes(bytes(data))
    deleted.unlink()
    added = part(layout)
    check = check_run(layout, manifest, [kept, changed, added], verify_hashes=True)
    reasons = {part_name: reason for reason, part_name in check.problems}
    rel = lambda p: str(p.relative_to(layout.root))  # noqa: E731
    assert "was changed after the supervisor wrote it" in reasons[rel(changed)]
    assert "was not written by the run's supervisor" in reasons[rel(added)]
    assert "was deleted after the supervisor wrote it" in reasons[rel(deleted)]
    assert check.parts == {"supervisor": [kept], "agent": []}, "only untouched parts are read"


def test_without_hashing_a_change_goes_unseen_but_presence_is_checked(layout: StoreLayout) -> None:
    changed = part(layout)
    manifest = manifested(layout, (changed, "supervisor"))
    changed.write_bytes(changed.read_bytes()[:-1] + b"X")
    assert check_run(layout, manifest, [changed], verify_hashes=False).problems == []
    assert check_run(layout, manifest, [changed], verify_hashes=True).problems


def test_an_incomplete_manifest_and_the_supervisors_own_problems_are_reported(layout: StoreLayout) -> None:
    manifest = Manifest(RUN, 1, problems=["spool segment s was truncated"])
    reasons = [reason for reason, _ in check_run(layout, manifest, [], verify_hashes=True).problems]
    assert reasons == [
        "spool segment s was truncated",
        "the supervisor did not finish recording the run (its manifest is not complete)",
    ]


def test_the_derived_entry_is_kept_and_a_manifest_without_one_reads_as_before(layout: StoreLayout) -> None:
    manifest = manifested(layout, (part(layout), "supervisor"))
    write_manifest(layout, manifest)
    raw = json.loads(manifest_path(layout, RUN).read_text())
    assert "derived" not in raw  # what earlier versions wrote and read
    back = read_manifest(layout, RUN)
    assert back is not None and back.derived is None
    manifest.derived = {"views": "ab" * 32, "started": None, "tables": [], "parts": []}
    write_manifest(layout, manifest)
    back = read_manifest(layout, RUN)
    assert back is not None and back.derived == manifest.derived and back.as_json() == manifest.as_json()
    raw = json.loads(manifest_path(layout, RUN).read_text())
    raw["derived"] = "not an entry"
    manifest_path(layout, RUN).write_text(json.dumps(raw))
    back = read_manifest(layout, RUN)
    assert back is not None and back.derived is None  # a cache miss, not a broken manifest


def test_hashing_without_keeping_the_bytes(layout: StoreLayout) -> None:
    good, bad = part(layout), part(layout)
    manifest = manifested(layout, (good, "supervisor"), (bad, "agent"))
    bad.write_bytes(bad.read_bytes()[:-1] + b"!")
    check = check_run(layout, manifest, [good, bad], verify_hashes=True, keep_bytes=False)
    assert not check.verified
    assert [p for _, p in check.problems] == [str(bad.relative_to(layout.root))]
