"""GPU leases (agenttrace.gpu.lease): host-wide flock leases, contended by real processes.

Every test has a lock dir of its own (tmp_path). The devices are plain `Device`s: leases need no NVML.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agenttrace.errors import ConfigError, GpuError
from agenttrace.gpu.lease import Request, acquire, holders, parse_request
from agenttrace.gpu.nvml import Device

GIB = 1 << 30
DEVICES = [Device(i, f"GPU-{i:08x}-aaaa-bbbb-cccc-{i:012x}", "NVIDIA H200", 141 * GIB) for i in range(4)]

# A process that leases GPUs and says what it sees as JSON lines; stdin drives it:
#   hold mode: after acquiring, each stdin line `check` prints the lease's check(), `release`
#   releases it and exits; end of input exits without releasing (the kernel lets go).
#   loop mode (ROUNDS > 0): acquire, hold HOLD_S, release, ROUNDS times, printing each interval.
HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from agenttrace.errors import GpuError
    from agenttrace.gpu.lease import acquire
    from agenttrace.gpu.nvml import Device

    lock_dir, spec, run_id, wait_s, n, rounds, hold_s = sys.argv[1:8]
    devices = [Device(i, f"GPU-{i:08x}-aaaa-bbbb-cccc-{i:012x}", "NVIDIA H200", 141 << 30)
               for i in range(int(n))]

    def say(**event):
        print(json.dumps(event), flush=True)

    def waiting(holders):
        say(event="waiting", holders=[
            {"index": h.index, "run_id": h.run_id, "pid": h.pid} for h in holders])

    def take():
        return acquire(spec, devices, run_id=run_id, store="/some/store", wait_s=float(wait_s),
                       on_wait=waiting, lock_dir=lock_dir)

    try:
        if int(rounds):
            for _ in range(int(rounds)):
                lease = take()
                time.sleep(float(hold_s))
                lease.release()
                say(event="interval", acquired=lease.acquired_at, released=lease.released_at,
                    devices=[d.index for d in lease.devices], lost=lease.lost)
            sys.exit(0)
        lease = take()
    except GpuError as e:
        say(event="error", message=str(e))
        sys.exit(3)
    say(event="acquired", at=lease.acquired_at, devices=[d.index for d in lease.devices],
        env=lease.env())
    for line in sys.stdin:
        if line.strip() == "check":
            say(event="check", lost=lease.check())
        elif line.strip() == "release":
            say(event="released", lost=lease.release(), at=lease.released_at)
            break
    """
)


class Holder:
    """One HOLDER process."""

    def __init__(
        self,
        lock_dir: Path,
        spec: str,
        run_id: str,
        wait_s: float = 0,
        n: int = 4,
        rounds: int = 0,
        hold_s: float = 0,
    ) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HOLDER,
                *(str(a) for a in (lock_dir, spec, run_id, wait_s, n, rounds, hold_s)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def next_event(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"holder {self.pid} ended (exit {self.proc.wait()}) without a word"
        return json.loads(line)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def finish(self) -> int:
        """Close its stdin and wait for it to end."""
        assert self.proc.stdin is not None
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self.proc.wait(timeout=120)

    def events(self) -> list[dict[str, Any]]:
        """Every event until it ends."""
        out: list[dict[str, Any]] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            out.append(json.loads(line))
        self.finish()
        return out


@pytest.fixture
def lock_dir(tmp_path: Path) -> Path:
    return tmp_path / "leases"


@pytest.fixture
def spawned() -> Iterator[list[Holder]]:
    made: list[Holder] = []
    yield made
    for holder in made:
        if holder.proc.poll() is None:
            holder.proc.kill()
        holder.proc.wait()
        for stream in (holder.proc.stdin, holder.proc.stdout):
            if stream is not None:
                stream.close()


@pytest.fixture
def holder(lock_dir: Path, spawned: list[Holder]) -> Any:
    def start(spec: str, run_id: str, **kw: Any) -> Holder:
        made = Holder(lock_dir, spec, run_id, **kw)
        spawned.append(made)
        return made

    return start


# -- requests --------------------------------------------------------------------------------------


def test_parse_request_reads_indices_uuids_and_any() -> None:
    assert parse_request("0") == Request(devices=(0,))
    assert parse_request(" 0, 1 ") == Request(devices=(0, 1))
    assert parse_request(f"1,{DEVICES[0].uuid}") == Request(devices=(1, DEVICES[0].uuid))
    assert parse_request("any:2") == Request(count=2)
    assert parse_request("ANY:1") == Request(count=1)
    assert str(parse_request("any:3")) == "any:3"
    assert str(parse_request("2,0")) == "2,0"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "  ",
        "any:0",
        "any:",
        "any:-1",
        "any:x",
        "0,,1",
        "0,",
        "-1",
        "1.5",
        "cuda:0",
        "0,0",
        "all",
        "GPU-a/b",
        "GPU-abc,gpu-ABC",
    ],
)
def test_parse_request_refuses_bad_values(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_request(spec)


def test_unknown_devices_are_named_with_those_that_exist(lock_dir: Path) -> None:
    with pytest.raises(GpuError) as caught:
        acquire("7", DEVICES[:2], run_id="r1", store=None, wait_s=0, lock_dir=lock_dir)
    message = str(caught.value)
    assert "no GPU 7" in message and DEVICES[0].uuid in message and DEVICES[1].uuid in message
    with pytest.raises(GpuError, match="asks for 3 GPUs; this host has 2"):
        acquire("any:3", DEVICES[:2], run_id="r1", store=None, wait_s=0, lock_dir=lock_dir)
    with pytest.raises(GpuError, match="no GPU GPU-ffff"):
        acquire("GPU-ffff", DEVICES, run_id="r1", store=None, wait_s=0, lock_dir=lock_dir)


def test_a_device_named_by_index_and_by_uuid_is_named_twice(lock_dir: Path) -> None:
    with pytest.raises(ConfigError, match="twice"):
        acquire(f"1,{DEVICES[1].uuid.upper()}", DEVICES, run_id="r", store=None, wait_s=0, lock_dir=lock_dir)


def test_uuid_matches_any_case_and_a_unique_prefix(lock_dir: Path) -> None:
    with acquire(DEVICES[2].uuid.upper(), DEVICES, run_id="r", store=None, wait_s=0, lock_dir=lock_dir) as a:
        assert [d.index for d in a.devices] == [2]
    with acquire(DEVICES[3].uuid[:12], DEVICES, run_id="r", store=None, wait_s=0, lock_dir=lock_dir) as b:
        assert [d.index for d in b.devices] == [3]


# -- one process -----------------------------------------------------------------------------------


def test_a_lease_gives_the_agent_its_devices_only_and_records_its_holder(lock_dir: Path) -> None:
    lease = acquire(
        "2,0",
        DEVICES,
        run_id="20261201T101010-abcd",
        store="/s",
        supervisor_pid=4242,
        wait_s=0,
        lock_dir=lock_dir,
    )
    try:
        assert [d.index for d in lease.devices] == [2, 0]  # as asked: CUDA numbers them in this order
        assert lease.env() == {
            "CUDA_VISIBLE_DEVICES": f"{DEVICES[2].uuid},{DEVICES[0].uuid}",
            "NVIDIA_VISIBLE_DEVICES": f"{DEVICES[2].uuid},{DEVICES[0].uuid}",
            "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        }
        record = json.loads((lock_dir / f"{DEVICES[0].uuid}.lock").read_text())
        assert record == {
            "run_id": "20261201T101010-abcd",
            "pid": 4242,
            "since": lease.acquired_at,
            "store": "/s",
            "devices": [DEVICES[2].uuid, DEVICES[0].uuid],
        }
        assert lease.waited_s >= 0
        assert lease.check() is None
        # the lock dir is everyone's, like /tmp; its files are everyone's to lock
        assert oct(lock_dir.stat().st_mode & 0o7777) == "0o1777"
        assert oct((lock_dir / f"{DEVICES[0].uuid}.lock").stat().st_mode & 0o777) == "0o666"
    finally:
        assert lease.release() is None
    assert lease.release() is None  # idempotent
    assert lease.released_at is not None and lease.released_at >= lease.acquired_at
    assert holders(DEVICES, lock_dir) == dict.fromkeys((d.uuid for d in DEVICES), None)


def test_the_lock_dir_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTRACE_GPU_LOCK_DIR", str(tmp_path / "from-env"))
    with acquire("1", DEVICES, run_id="r", store=None, wait_s=0):
        assert (tmp_path / "from-env" / f"{DEVICES[1].uuid}.lock").exists()
        assert holders(DEVICES)[DEVICES[1].uuid] is not None


def test_a_lock_dir_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "leases").write_text("")
    with pytest.raises(GpuError, match="not a directory"):
        acquire("0", DEVICES, run_id="r", store=None, wait_s=0, lock_dir=tmp_path / "leases")


def test_an_existing_lock_file_is_opened_not_recreated(lock_dir: Path) -> None:
    """An existing lock file (another user's, in a real host) is used as it is, never replaced."""
    lock_dir.mkdir()
    path = lock_dir / f"{DEVICES[0].uuid}.lock"
    path.write_text('{"run_id": "old", "pid": 1}')
    inode = path.stat().st_ino
    with acquire("0", DEVICES, run_id="new", store=None, wait_s=0, lock_dir=lock_dir):
        assert path.stat().st_ino == inode
        assert json.loads(path.read_text())["run_id"] == "new"


@pytest.mark.parametrize("how", ["unlink", "replace", "rewrite"])
def test_a_lease_whose_lock_file_was_tampered_with_is_lost(lock_dir: Path, how: str) -> None:
    """The agent runs as the same user: it can remove or replace a lock file, or rewrite its record."""
    lease = acquire("0,1", DEVICES, run_id="r-mine", store=None, wait_s=0, lock_dir=lock_dir)
    path = lock_dir / f"{DEVICES[1].uuid}.lock"
    if how == "unlink":
        path.unlink()
    elif how == "replace":
        (lock_dir / "new").write_text(path.read_text())  # the very same record, another file
        os.replace(lock_dir / "new", path)
    else:
        path.write_text(json.dumps({"run_id": "r-other", "pid": os.getpid()}))
    lost = lease.check()
    assert lost is not None and f"GPU 1 ({DEVICES[1].uuid})" in lost
    assert {"unlink": "was removed", "replace": "was replaced", "rewrite": "names run 'r-other'"}[how] in lost
    assert "GPU 0" not in lost
    if how != "rewrite":  # the device is free for anyone now: that is why the lease is lost
        with acquire("1", DEVICES, run_id="r-next", store=None, wait_s=0, lock_dir=lock_dir):
            pass
    final = lease.release()
    assert final is not None and f"GPU 1 ({DEVICES[1].uuid})" in final and "GPU 0" not in final
    assert lease.lost == final
    assert lease.check() == "the lease was released"


def test_a_request_that_cannot_have_every_device_takes_none(lock_dir: Path) -> None:
    first = acquire("1", DEVICES, run_id="r-one", store=None, wait_s=0, lock_dir=lock_dir)
    with pytest.raises(GpuError, match=r"GPU 1 .* is leased by run r-one"):
        acquire("0,1,2", DEVICES, run_id="r-three", store=None, wait_s=0, lock_dir=lock_dir)
    found = holders(DEVICES, lock_dir)
    assert found[DEVICES[0].uuid] is None and found[DEVICES[2].uuid] is None  # let go again
    first.release()


# -- real processes --------------------------------------------------------------------------------


def test_a_second_process_is_refused_at_once_then_gets_the_device_by_waiting(
    lock_dir: Path, holder: Any
) -> None:
    first = holder("0", "run-first")
    assert first.next_event()["event"] == "acquired"

    refused = holder("0", "run-second", wait_s=0)
    event = refused.next_event()
    assert event["event"] == "error"
    assert event["message"].startswith(
        f"GPU 0 ({DEVICES[0].uuid}) is leased by run run-first (agenttrace pid "
    )
    assert f"agenttrace pid {first.pid}, since " in event["message"]
    assert event["message"].endswith("wait with --gpu-wait DUR, or pick another device (agenttrace gpus)")
    assert refused.finish() == 3

    waiter = holder("0", "run-third", wait_s=600)
    event = waiter.next_event()
    assert event == {"event": "waiting", "holders": [{"index": 0, "run_id": "run-first", "pid": first.pid}]}
    first.send("release")
    released = first.next_event()
    assert (released["event"], released["lost"]) == ("released", None)
    assert first.finish() == 0
    event = waiter.next_event()
    assert event["event"] == "acquired" and event["devices"] == [0]
    assert event["env"]["CUDA_VISIBLE_DEVICES"] == DEVICES[0].uuid
    assert event["at"] >= released["at"]
    waiter.send("check")
    assert waiter.next_event() == {"event": "check", "lost": None}
    waiter.send("release")
    assert waiter.next_event()["lost"] is None


def test_a_wait_that_runs_out_names_the_holder_and_the_wait(lock_dir: Path, holder: Any) -> None:
    first = holder("1", "run-first")
    assert first.next_event()["event"] == "acquired"
    waiter = holder("1", "run-second", wait_s=0.5)
    events = waiter.events()
    assert events[0]["event"] == "waiting"
    assert events[-1]["event"] == "error"
    assert "is leased by run run-first" in events[-1]["message"] and "(waited 0.5 s)" in events[-1]["message"]


def test_leases_of_one_device_never_overlap(lock_dir: Path, holder: Any) -> None:
    """Four processes take device 0 in turn, ten times each; their recorded intervals are disjoint."""
    workers = [holder("0", f"run-{n}", wait_s=600, rounds=10, hold_s=0.005) for n in range(4)]
    intervals = []
    for worker in workers:
        events = worker.events()
        assert worker.proc.returncode == 0, events
        assert all(e["event"] in ("interval", "waiting") for e in events)
        intervals += [(e["acquired"], e["released"]) for e in events if e["event"] == "interval"]
        assert all(e["lost"] is None for e in events if e["event"] == "interval")
    assert len(intervals) == 40
    intervals.sort()
    for (a_start, a_end), (b_start, b_end) in itertools.pairwise(intervals):
        assert a_start <= a_end < b_start <= b_end


def test_a_killed_holder_leaves_the_device_free_without_clean_up(lock_dir: Path, holder: Any) -> None:
    victim = holder("0,2", "run-killed")
    assert victim.next_event()["event"] == "acquired"
    found = holders(DEVICES, lock_dir)
    assert found[DEVICES[0].uuid] is not None and found[DEVICES[0].uuid].run_id == "run-killed"
    assert found[DEVICES[0].uuid].pid == victim.pid

    victim.proc.send_signal(signal.SIGKILL)
    assert victim.proc.wait() == -signal.SIGKILL
    # its record is still in the file; the kernel let the lock go, and that is what counts
    assert json.loads((lock_dir / f"{DEVICES[0].uuid}.lock").read_text())["run_id"] == "run-killed"
    assert holders(DEVICES, lock_dir) == dict.fromkeys((d.uuid for d in DEVICES), None)

    nxt = holder("2,0", "run-next", wait_s=0)
    event = nxt.next_event()
    assert event["event"] == "acquired" and event["devices"] == [2, 0]


def test_the_lock_is_not_inherited_by_the_agent(lock_dir: Path, holder: Any, tmp_path: Path) -> None:
    """A supervisor's child (the agent) outliving it must not keep the lease: the fd is close-on-exec."""
    script = textwrap.dedent(
        f"""
        import subprocess, sys, os
        from agenttrace.gpu.lease import acquire
        from agenttrace.gpu.nvml import Device
        devices = [Device(0, {DEVICES[0].uuid!r}, "x", 1)]
        lease = acquire("0", devices, run_id="run-parent", store=None, wait_s=0, lock_dir={str(lock_dir)!r})
        quiet = subprocess.DEVNULL
        child = subprocess.Popen(["sleep", "600"], close_fds=False, stdout=quiet, stderr=quiet)
        print(child.pid, flush=True)
        os._exit(0)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    orphan = int(out.stdout)
    try:
        assert holders(DEVICES, lock_dir)[DEVICES[0].uuid] is None
        with acquire("0", DEVICES, run_id="run-next", store=None, wait_s=0, lock_dir=lock_dir):
            pass
    finally:
        os.kill(orphan, signal.SIGKILL)


def test_any_takes_the_first_free_devices_in_index_order(lock_dir: Path, holder: Any) -> None:
    first = holder("1", "run-one", n=3)
    assert first.next_event()["event"] == "acquired"
    two = holder("any:2", "run-any", n=3)
    event = two.next_event()
    assert event["event"] == "acquired" and event["devices"] == [0, 2]

    refused = holder("any:1", "run-late", n=3, wait_s=0)
    event = refused.next_event()
    assert event["event"] == "error"
    assert event["message"].startswith("--gpu any:1: only 0 of 3 GPUs are free: GPU 0 ")
    assert "is leased by run run-any" in event["message"] and "is leased by run run-one" in event["message"]

    waiter = holder("any:2", "run-waits", n=3, wait_s=600)
    event = waiter.next_event()
    assert event["event"] == "waiting"
    assert sorted(h["run_id"] for h in event["holders"]) == ["run-any", "run-any", "run-one"]
    first.send("release")  # one free: still fewer than two, so it waits on
    assert first.next_event()["event"] == "released"
    two.send("release")
    assert two.next_event()["event"] == "released"
    event = waiter.next_event()
    assert event["event"] == "acquired" and event["devices"] == [0, 1]


def test_crossed_multi_device_requests_do_not_deadlock(lock_dir: Path, holder: Any) -> None:
    """`0,1` against `1,0`, twenty times each: nobody holds one device while waiting for the other."""
    a = holder("0,1", "run-a", wait_s=600, rounds=20, hold_s=0.002)
    b = holder("1,0", "run-b", wait_s=600, rounds=20, hold_s=0.002)
    intervals = []
    for worker in (a, b):
        events = worker.events()
        assert worker.proc.returncode == 0, events
        intervals += [(e["acquired"], e["released"]) for e in events if e["event"] == "interval"]
    assert len(intervals) == 40
    intervals.sort()
    for (_, a_end), (b_start, _) in itertools.pairwise(intervals):
        assert a_end < b_start


def test_holders_reports_a_live_holder_and_ignores_a_stale_record(lock_dir: Path, holder: Any) -> None:
    live = holder("3", "run-live")
    assert live.next_event()["event"] == "acquired"
    # a record left by a dead run, in a file nobody holds
    (lock_dir / f"{DEVICES[2].uuid}.lock").write_text(
        json.dumps({"run_id": "run-dead", "pid": live.pid, "since": 1.0, "store": None, "devices": []})
    )
    found = holders(DEVICES, lock_dir)
    assert found[DEVICES[2].uuid] is None
    held = found[DEVICES[3].uuid]
    assert held is not None
    assert (held.index, held.uuid, held.run_id, held.pid, held.store) == (
        3,
        DEVICES[3].uuid,
        "run-live",
        live.pid,
        "/some/store",
    )
    assert held.devices == (DEVICES[3].uuid,)
    assert held.describe().startswith(f"run run-live (agenttrace pid {live.pid}, since ")
