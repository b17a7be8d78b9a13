"""The kernel's exit records (taskstats) name the processes that are gone before /proc is read.

A `grep -q` or `[` lives for a millisecond: its exec event comes, but by then it has often been
reaped, and the watcher recorded it as `?`, so its exit 1 (an answer) read as a failure. The
kernel sends every exiting task's name and exit status over generic netlink; with it, every
process is named. Needs root (CAP_NET_ADMIN), as this project's machines and CI are.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import query, run_cli

from agenttrace.supervise import procfs, taskstats
from agenttrace.supervise.watcher import Proc, ProcessWatcher, become_subreaper

SCRIPT = "grep -q zzz /etc/hostname; /usr/bin/[ -e /nonexistent ]; true"

# A TASKSTATS_CMD_NEW message as a 6.x kernel (taskstats version 16) sent it for `grep -q zzz
# /etc/hostname` (pid 20175, parent 20173, exit 1), from its generic-netlink header on.
CAPTURED = bytes.fromhex(
    "020100004002040008000100cf4e000034020300100000000001000020000000000000000200000000000000ad8b0000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000cf3f0100"
    "000000006772657000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000cf4e0000cd4e0000f7010f6b00000000ac040000000000000000000000000000000000000000000063000000"
    "00000000000000000000000000000000000000000000000000000000a407000000000000340f000000000000003c0000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000f7010f6b00000000000000000000000000000000"
    "00000000cf4e000000000000ac0400000000000000fe00000000000010f9030000000000000000000000000000000000"
    "0000000000000000000000000000000000000000627d0000000000004b0e000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000"
)


@pytest.fixture(scope="module", autouse=True)
def subreaper() -> Iterator[None]:
    """The watcher reaps the command's orphans, as `agenttrace run` does (tests run in a worker)."""
    assert become_subreaper()
    yield


@pytest.fixture(scope="module")
def available() -> None:
    listener = taskstats.open_listener()
    assert listener is not None, (
        "taskstats needs root (CAP_NET_ADMIN), as this project's machines and CI have"
    )
    listener.close()


def watch(script: str) -> tuple[dict[int, Proc], str]:
    """Run `bash -c script` under a watcher until it exits; every process seen, and the mode. The
    script waits for a line on stdin (`read`, a builtin: no process) until the watcher listens."""
    child = subprocess.Popen(
        ["bash", "-c", f"read -r _; {script}"], env={"PATH": os.environ["PATH"]}, stdin=subprocess.PIPE
    )
    watcher = ProcessWatcher(child.pid, on_start=lambda p: None, on_end=lambda p: None)
    watcher.start()
    assert child.stdin is not None
    child.stdin.write(b"go\n")
    child.stdin.close()
    try:
        while not watcher.root_exited.wait(0.05):
            pass
        deadline = time.monotonic() + 10  # its children: ended and reaped
        while watcher.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watcher.stop()
        child.returncode = 0  # reaped by the watcher
    return watcher.procs, watcher.mode


def test_the_struct_parser_reads_a_captured_record() -> None:
    (record,) = taskstats.parse_message(CAPTURED)
    assert (record.pid, record.tgid, record.ppid, record.comm) == (20175, 20175, 20173, "grep")
    assert os.WEXITSTATUS(record.exit_status) == 1
    assert record.start_s == 0x6B0F01F7
    assert record.started_near(0x6B0F01F7 * 1_000_000_000 + 300_000_000)
    assert not record.started_near((0x6B0F01F7 - 60) * 1_000_000_000)


def test_the_parser_reads_older_versions_by_their_layout_and_refuses_short_ones() -> None:
    (record,) = taskstats.parse_message(CAPTURED)
    stats = bytearray(CAPTURED[20:])  # genl header 4, AGGR_PID 4, PID 8, STATS header 4
    stats[0:2] = (8).to_bytes(2, "little")  # version 8: no ac_btime64, no ac_tgid
    old = taskstats.parse_stats(bytes(stats[:264]), 20175)
    assert old is not None
    assert (old.pid, old.comm, old.exit_status, old.start_s, old.tgid) == (
        20175,
        "grep",
        256,
        record.start_s,
        None,
    )
    assert taskstats.parse_stats(bytes(stats[:100]), 20175) is None
    assert taskstats.parse_message(CAPTURED[:60]) == []  # cut off: no record, no error


def test_a_thread_that_is_not_its_leader_is_not_taken_for_its_process() -> None:
    message = bytearray(CAPTURED)
    message[12:16] = (20176).to_bytes(4, "little")  # TASKSTATS_TYPE_PID: the thread
    assert taskstats.parse_message(bytes(message)) == []  # ac_tgid 20175 names its leader


@pytest.mark.usefixtures("available")
def test_every_short_lived_process_is_named_with_its_exit_code_every_time() -> None:
    for attempt in range(20):
        procs, mode = watch(SCRIPT)
        assert mode == "events+poll+taskstats"
        children = [p for p in procs.values() if p.ppid != os.getpid()]
        names = sorted(p.name for p in children)
        assert "?" not in names and "" not in names, (attempt, names)
        by_name = {p.name: p for p in children}
        assert by_name["grep"].exit_code == 1, attempt
        assert by_name["["].exit_code == 1, attempt
        assert all(p.exit_known for p in children), attempt


@pytest.mark.usefixtures("available")
def test_a_command_reaped_before_its_events_are_read_keeps_its_children() -> None:
    """Under load a whole script can run between two polls: the command is reaped while the
    events of its children (fork, exec, exit) are still unread. They are read first, so every
    child is there and named; ended first, the command's children's fork events were refused
    (their parent no longer alive), and `grep` and its exit 1 were missing from the run."""
    child = subprocess.Popen(
        ["bash", "-c", f"read -r _; {SCRIPT}"], env={"PATH": os.environ["PATH"]}, stdin=subprocess.PIPE
    )
    watcher = ProcessWatcher(child.pid, on_start=lambda p: None, on_end=lambda p: None)
    root = procfs.stat(child.pid)
    assert root is not None
    watcher._add(root)  # no thread: this test polls when a busy watcher thread would
    try:
        watcher.poll_once()  # bash, waiting on stdin
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.close()
        deadline = time.monotonic() + 10
        while (st := procfs.stat(child.pid)) is not None and st.state != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        watcher._reap()  # the command ended since the last read of events
        while watcher.alive() and time.monotonic() < deadline:
            watcher.poll_once()
            time.sleep(0.01)
    finally:
        watcher.stop()
        child.returncode = 0
    # The command's own children: the worker is a subreaper, and a process some earlier test left
    # behind, reparented to it while this one ran, is adopted by the watcher too (as a run's would be)
    children = {p.name: p for p in watcher.procs.values() if p.ppid == child.pid}
    assert sorted(children) == ["[", "grep"], sorted(p.name for p in watcher.procs.values())
    assert children["grep"].exit_code == 1 and children["["].exit_code == 1
    assert watcher.root.exit_code == 0


def test_without_it_the_watcher_works_as_before() -> None:
    child = subprocess.Popen(["true"])
    watcher = ProcessWatcher(child.pid, lambda p: None, lambda p: None, use_taskstats=False)
    watcher.start()
    watcher.root_exited.wait(10)
    watcher.stop()
    child.returncode = 0
    assert "taskstats" not in watcher.mode
    assert watcher.root.exit_code == 0


@pytest.mark.usefixtures("available")
def test_agenttrace_run_names_grep_and_its_exit_1_is_an_answer(tmp_path: Path) -> None:
    script = tmp_path / "agent.sh"
    # `agenttrace run` starts watching once the command is started: a first command that ends at
    # once may be missed altogether (another matter than its name); the sleep gives it that time.
    script.write_text(f"#!/bin/bash\nsleep 0.2\n{SCRIPT}\n")
    script.chmod(0o755)
    store = str(tmp_path / "store")
    result = run_cli("run", "--store", store, "--", "./agent.sh", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stderr
    (mode,) = query(
        tmp_path / "store",
        "SELECT attributes['agenttrace.watcher.mode'] AS mode FROM spans "
        "WHERE attributes['agenttrace.span.type'] = 'run'",
    )
    assert mode["mode"] == "events+poll+taskstats"
    procs = query(tmp_path / "store", "SELECT executable, exit_code FROM processes ORDER BY start_time")
    assert ("grep", 1) in [(p["executable"], p["exit_code"]) for p in procs], procs
    assert ("[", 1) in [(p["executable"], p["exit_code"]) for p in procs], procs
    assert all(p["executable"] not in ("", "?", None) for p in procs), procs
    audited = run_cli("audit", "last", "--json", "--store", store)
    (gate,) = [g for g in json.loads(audited.stdout)["gates"] if g["name"] == "unrecovered_errors"]
    assert gate["status"] == "pass", gate
