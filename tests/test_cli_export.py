"""`agenttrace export` as a user runs it: where the file goes, what is said about it, and every
error as one `Error:` line with exit status 2 and no file (or temporary file) left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import run_cli
from opentelemetry.sdk.trace import TracerProvider

from agenttrace.errors import ConfigError
from agenttrace.export import write_atomic


def one_run(store: Path, make_provider: Callable[[Path], TracerProvider]) -> str:
    """A run the OTel SDK wrote: an agent span holding one tool call."""
    provider = make_provider(store)
    tracer = provider.get_tracer("test")
    tool = {"gen_ai.operation.name": "execute_tool"}
    with (
        tracer.start_as_current_span("agent") as root,
        tracer.start_as_current_span("execute_tool grep", attributes=tool),
    ):
        pass
    provider.force_flush()
    return f"{root.get_span_context().trace_id:032x}"


def test_the_default_file_is_named_after_the_run_here_and_json_describes_it(
    store: Path, make_provider: Callable[[Path], TracerProvider], tmp_path: Path
) -> None:
    run_id = one_run(store, make_provider)
    here = tmp_path / "here"
    here.mkdir()
    done = run_cli("export", "last", "--format", "perfetto", "--json", "--store", str(store), cwd=here)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    written = here / f"{run_id}.pftrace"
    assert answer == {
        "run_id": run_id,
        "format": "perfetto",
        "path": f"{run_id}.pftrace",
        "bytes": written.stat().st_size,
        "tracks": 2,
        "process_tracks": 0,
        "slices": 2,
        "counter_tracks": 0,
        "counter_values": 0,
    }
    assert sorted(p.name for p in here.iterdir()) == [written.name]  # no temporary file left


def test_a_folder_as_output_gets_the_default_name_and_stderr_says_path_and_counts(
    store: Path, make_provider: Callable[[Path], TracerProvider], tmp_path: Path
) -> None:
    run_id = one_run(store, make_provider)
    done = run_cli("export", run_id[:8], "-f", "chrome-trace", "-o", str(tmp_path), "--store", str(store))
    assert done.returncode == 0, done.stderr
    written = tmp_path / f"{run_id}.trace.json"
    assert done.stdout == ""
    assert done.stderr.strip() == (
        f"wrote {written} ({written.stat().st_size} bytes): events 6, slices 2, counters 0, instants 0"
    )
    assert json.loads(written.read_text())["otherData"]["run_id"] == run_id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "-f", "perfetto"], "Error: no run matches 'nope'"),
        (["last", "-f", "svg"], "Error: unknown format 'svg': choose one of perfetto, chrome-trace"),
        (["last", "-f", "parquet"], "Error: --format parquet needs --view VIEW"),
        (["last", "-f", "perfetto", "--view", "spans"], "Error: --view is for --format parquet or csv"),
        (["last", "-f", "perfetto", "-o", "-"], "Error: --format perfetto is binary"),
        (["last", "-f", "otlp-json", "-o", "-", "--json"], "Error: --json describes a written file"),
        (["last", "-f", "otlp-json", "-o", "{tmp}/a-file/x"], "Error: cannot write {tmp}/a-file/x: Not a"),
        (["last", "-f", "csv", "--view", "steps", "-o", "{tmp}/no/x"], "Error: cannot write {tmp}/no/x: No"),
    ],
)  # fmt: skip
def test_each_error_is_one_line_exit_2_and_leaves_no_file(
    store: Path,
    make_provider: Callable[[Path], TracerProvider],
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    one_run(store, make_provider)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a-file").write_text("")
    args = [a.replace("{tmp}", str(out)) for a in args]
    done = run_cli("export", *args, "--store", str(store), cwd=out)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(message.replace("{tmp}", str(out))), line
    assert done.stdout == ""
    assert [p.name for p in out.iterdir()] == ["a-file"]


def test_a_part_that_is_not_parquet_is_skipped_with_a_warning_as_every_reader_does(
    store: Path, make_provider: Callable[[Path], TracerProvider], tmp_path: Path
) -> None:
    """A run without a supervisor's manifest (the SDK wrote it). A supervised run's part that is
    not Parquet is an error instead: tests/test_export_otlp_json.py."""
    run_id = one_run(store, make_provider)
    part = store / "spans" / f"run_id={run_id}" / "part-01796174613165754381-deadbeef0000.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(b"not parquet")
    out = tmp_path / "x.jsonl"
    done = run_cli("export", run_id, "-f", "otlp-json", "-o", str(out), "--store", str(store))
    assert done.returncode == 0, done.stderr
    warning, wrote = done.stderr.splitlines()
    assert warning.startswith(f"Warning: skipped corrupt part {part}")
    assert wrote.startswith(f"wrote {out}") and wrote.endswith("spans 2, log_records 0, data_points 0")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "run.pftrace"
    write_atomic(target, b"old")
    (tmp_path / "blocker").mkdir()
    (tmp_path / "blocker" / "inside").write_text("")
    with pytest.raises(ConfigError, match="cannot write"):
        write_atomic(tmp_path / "blocker", b"new")  # a non-empty folder cannot be replaced by a file
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "run.pftrace"]
