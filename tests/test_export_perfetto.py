"""`agenttrace export --format perfetto`: the demo run, a GPU run under the fake NVML, and an SDK run
with overlapping and unfinished steps, exported by the real CLI and loaded back with the `perfetto`
package's own protos.

The trace processor itself (`perfetto.trace_processor`) downloads its binary at run time, which
tests may not do; `load` checks the file the way the trace processor imports it instead: every
event on a declared track, one packet sequence that starts by clearing its incremental state,
begin and end balanced per track, slices on one track strictly nested and in time order, counter
values on counter tracks only.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import BIN, query, run_cli
from fakes.nvml.state import make_state
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Status, StatusCode
from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

from agenttrace.export.timeline import MAX_LANES

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
FAKES = Path(__file__).parent / "fakes" / "nvml"


@dataclass
class Loaded:
    """A .pftrace as the trace processor would see it."""

    tracks: dict[int, pb.TrackDescriptor] = field(default_factory=dict)
    slices: dict[int, list[tuple[int, int, str, dict[str, object]]]] = field(default_factory=dict)
    counters: dict[int, list[tuple[int, float]]] = field(default_factory=dict)

    def named(self, uuid: int) -> str:
        track = self.tracks[uuid]
        return track.process.process_name if track.HasField("process") else track.name

    @property
    def all_slices(self) -> list[tuple[int, int, str, dict[str, object]]]:
        return [s for found in self.slices.values() for s in found]

    def tracks_of(self, name: str) -> list[int]:
        return [u for u in self.slices if self.named(u).startswith(name)]


def _value(note: pb.DebugAnnotation) -> object:
    return getattr(note, note.WhichOneof("value"))


def load(data: bytes) -> Loaded:
    trace = pb.Trace()
    trace.ParseFromString(data)
    found = Loaded()
    open_slices: dict[int, list[tuple[int, str, dict[str, object]]]] = {}
    last: dict[int, int] = {}
    assert trace.packet[0].sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
    for packet in trace.packet:
        assert packet.trusted_packet_sequence_id == 1
        assert not packet.HasField("interned_data")
        if packet.HasField("track_descriptor"):
            track = packet.track_descriptor
            assert track.uuid and track.uuid not in found.tracks
            assert not track.HasField("parent_uuid") or track.parent_uuid in found.tracks
            found.tracks[track.uuid] = track
            continue
        if not packet.HasField("track_event"):
            continue
        event = packet.track_event
        assert event.track_uuid in found.tracks, "an event on a track never declared"
        uuid, ts = event.track_uuid, packet.timestamp
        assert ts >= last.get(uuid, 0), "events of a track out of time order"
        last[uuid] = ts
        is_counter = found.tracks[uuid].HasField("counter")
        if event.type == pb.TrackEvent.TYPE_COUNTER:
            assert is_counter
            value = (
                event.double_counter_value if event.HasField("double_counter_value") else event.counter_value
            )
            found.counters.setdefault(uuid, []).append((ts, value))
            continue
        assert not is_counter
        stack = open_slices.setdefault(uuid, [])
        if event.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
            stack.append((ts, event.name, {n.name: _value(n) for n in event.debug_annotations}))
        else:
            assert event.type == pb.TrackEvent.TYPE_SLICE_END and stack, "an end without a begin"
            start, name, args = stack.pop()
            found.slices.setdefault(uuid, []).append((start, ts, name, args))
    assert not any(open_slices.values()), "a begin without an end"
    for uuid, slices in found.slices.items():
        assert_nested(slices, found.named(uuid))
    return found


def assert_nested(slices: list[tuple[int, int, str, dict[str, object]]], track: str) -> None:
    """On one track, any two slices are disjoint or one holds the other."""
    for i, (s1, e1, n1, _) in enumerate(slices):
        assert s1 <= e1
        for s2, e2, n2, _ in slices[i + 1 :]:
            disjoint = e1 <= s2 or e2 <= s1
            nested = (s1 <= s2 and e2 <= e1) or (s2 <= s1 and e1 <= e2)
            assert disjoint or nested, f"{n1!r} and {n2!r} overlap partially on track {track!r}"


def export(store: Path, run: str, out: Path) -> Loaded:
    done = run_cli("export", run, "--format", "perfetto", "-o", str(out), "--store", str(store))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}" in done.stderr
    return load(out.read_bytes())


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The failing demo run (its model cuts the answer short), with the demo's objective."""
    work = tmp_path_factory.mktemp("demo")
    store = work / "store"
    done = subprocess.run(
        [str(BIN / "agenttrace"), "run", "--store", str(store), "--run-id", "demo",
         "--objective", str(EXAMPLES / "objective.toml"), "--",
         sys.executable, str(EXAMPLES / "research_agent.py"), "--report", "demo-answer.md",
         "--model", "fake-truncating"],
        capture_output=True, text=True, env=_env(), cwd=work, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return store


def test_the_demo_run_loads_with_a_process_track_per_process_and_a_slice_per_step_process_and_check(
    demo: Path, tmp_path: Path
) -> None:
    trace = export(demo, "demo", tmp_path / "demo.pftrace")
    (seen,) = query(
        demo,
        "SELECT (SELECT list(pid ORDER BY pid) FROM processes WHERE run_id = 'demo') AS pids, "
        "(SELECT count(*) FROM steps WHERE run_id = 'demo' AND kind <> 'verify') AS steps, "
        "(SELECT count(*) FROM verifications WHERE run_id = 'demo') AS checks, "
        "(SELECT count(*) FROM spans WHERE run_id = 'demo' AND name = 'agenttrace audit') AS audits",
    )
    processes, steps, checks, audits = seen["pids"], seen["steps"], seen["checks"], seen["audits"]
    assert len(processes) >= 2 and steps == 7 and checks == 4 and audits == 1

    process_tracks = [t for t in trace.tracks.values() if t.HasField("process")]
    assert sorted(t.process.pid for t in process_tracks) == processes
    agent = next(t for t in process_tracks if "research_agent.py" in t.process.process_name)
    (lifetime,) = trace.slices[agent.uuid]
    assert lifetime[3]["exit_code"] == 0 and lifetime[2].endswith("exit 0")
    # every step, process and verification check once, plus the run itself and its audit
    assert len(trace.all_slices) == steps + len(processes) + checks + 1 + audits
    step_slices = [s for u in trace.tracks_of("agent steps") for s in trace.slices[u]]
    assert sorted(s[3]["step"] for s in step_slices) == list(range(1, 8))
    last = max(step_slices, key=lambda s: s[3]["step"])
    assert last[3]["kind"] == "llm" and last[3]["finish_reason"] == "length"
    assert last[3]["model"] == "fake-truncating" and last[3]["output_tokens"] > 0
    # the steps hang under the agent's root process
    assert all(trace.tracks[u].parent_uuid == agent.uuid for u in trace.tracks_of("agent steps"))
    (verification,) = trace.tracks_of("verification")
    names = sorted(s[2] for s in trace.slices[verification])
    assert names == [
        "verify criterion answers-the-question: fail",
        "verify criterion the-agent-still-compiles: fail",
        "verify deliverable demo-answer.md: pass",
        "verify evidence demo-answer.md: pass",
    ]
    (run_track,) = trace.tracks_of("agenttrace run demo")
    assert [s[2] for s in trace.slices[run_track]] == ["run demo: failed", "audit: failed"]
    assert not trace.counters  # no GPU


def sdk_run(store: Path, make_provider: Callable[[Path], TracerProvider]) -> dict[str, int]:
    """A run written by the OTel SDK with fixed times: an LLM call holding two tool calls that
    overlap partially, a tool call that never ends and one that fails."""
    provider = make_provider(store)
    tracer = provider.get_tracer("test")
    t0 = 1_790_000_000_000_000_000
    ms = 1_000_000
    root = tracer.start_span("agent", start_time=t0)
    from opentelemetry.trace import set_span_in_context

    inside = set_span_in_context(root)

    def span(name: str, start: int, end: int | None, **attributes: str) -> None:
        item = tracer.start_span(name, context=inside, start_time=t0 + start * ms, attributes=attributes)
        if name.endswith("fails"):
            item.set_status(Status(StatusCode.ERROR, "boom"))
        if end is not None:
            item.end(end_time=t0 + end * ms)

    llm = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    span("chat m", 50, 500, **llm)
    span(
        "execute_tool grep", 100, 300, **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "grep"}
    )
    span("execute_tool ls", 200, 400, **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "ls"})
    span(
        "execute_tool hang",
        600,
        None,
        **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "hang"},
    )
    span("execute_tool fails", 700, 800, **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "x"})
    root.end(end_time=t0 + 1000 * ms)
    provider.force_flush()
    return {"t0": t0, "ms": ms}


def test_overlapping_steps_go_on_separate_tracks_and_unfinished_and_failed_ones_are_marked(
    store: Path, make_provider: Callable[[Path], TracerProvider], tmp_path: Path
) -> None:
    times = sdk_run(store, make_provider)
    trace = export(store, "last", tmp_path / "sdk.pftrace")
    lanes = trace.tracks_of("agent steps")
    assert len(lanes) == 2  # the two tool calls overlap partially: one of them moves to a second lane
    by_name = {s[2]: (uuid, s) for uuid in lanes for s in trace.slices[uuid]}
    assert by_name["2. execute_tool grep"][0] != by_name["3. execute_tool ls"][0]
    assert by_name["1. chat m"][0] == by_name["2. execute_tool grep"][0]  # nested: the same lane
    _, hang = by_name["4. execute_tool hang (unfinished)"]
    assert hang[3]["unfinished"] is True
    assert hang[1] == times["t0"] + 1000 * times["ms"]  # drawn up to the run's end
    _, failed = by_name["5. execute_tool fails"]
    assert failed[3]["status"] == "Error"
    assert failed[0] == times["t0"] + 700 * times["ms"] and failed[1] == times["t0"] + 800 * times["ms"]
    assert len(trace.all_slices) == 5 + 1  # the steps and the run


def test_a_gpu_run_has_a_utilization_and_a_memory_counter_track_per_device(tmp_path: Path) -> None:
    state = make_state(tmp_path, n_devices=2)
    env = {**_env(), "FAKE_NVML_STATE": str(state), "AGENTTRACE_GPU_LOCK_DIR": str(tmp_path / "locks")}
    store = tmp_path / "store"
    cuda = f"{sys.executable} {FAKES / 'fake_cuda.py'} --device 0 --mem 512MiB --util 60 --seconds 0.6"
    done = subprocess.run(
        [sys.executable, str(FAKES / "agenttrace_with_fake_nvml.py"), "run", "--store", str(store),
         "--gpu", "0", "--gpu-interval", "200ms", "--", "sh", "-c", cuda],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    trace = export(store, "last", tmp_path / "gpu.pftrace")
    samples = query(store, "SELECT device, time, utilization, memory_used FROM gpu_samples WHERE pid IS NULL")
    devices = {s["device"] for s in samples}
    assert devices == {0, 1}
    names = sorted(trace.tracks[u].name for u in trace.counters)
    assert names == [f"GPU {d} {m}" for d in (0, 1) for m in ("memory used (bytes)", "utilization (%)")]
    assert len(trace.counters) == len(devices) * 2
    for uuid, points in trace.counters.items():
        assert len(points) == len(
            {s["time"] for s in samples if f"GPU {s['device']} " in trace.tracks[uuid].name}
        )
    (busy,) = [u for u in trace.counters if trace.tracks[u].name == "GPU 0 utilization (%)"]
    assert max(v for _, v in trace.counters[busy]) == pytest.approx(60)
    (memory,) = [u for u in trace.counters if trace.tracks[u].name == "GPU 0 memory used (bytes)"]
    assert trace.tracks[memory].counter.unit == pb.CounterDescriptor.UNIT_SIZE_BYTES
    assert max(v for _, v in trace.counters[memory]) == max(
        s["memory_used"] for s in samples if s["device"] == 0
    )
    process_tracks = [t for t in trace.tracks.values() if t.HasField("process")]
    assert any("fake_cuda.py" in t.process.process_name for t in process_tracks)


FORGER = """
import os, time
from opentelemetry import trace
tracer = trace.get_tracer("forger")
now = time.time_ns()
def proc(name, pid):
    s = tracer.start_span(name, start_time=now, attributes={"agenttrace.span.type": "process",
        "process.pid": pid, "process.command_line": name, "process.executable.name": name})
    s.end(end_time=now + 10**6)
proc("huge-pid", 2**62)
proc("neg-pid", -5)
proc("own-pid", 4242)
proc("own-pid-again", 4242)
trace.get_tracer_provider().force_flush()
"""


def test_forged_pids_out_of_range_or_taken_are_drawn_on_tracks_without_one(tmp_path: Path) -> None:
    """An agent reports processes with pids Perfetto cannot hold (2**62, -5) and one pid twice: the
    export still loads, every pid drawn is in range and drawn once, the supervisor's process keeps
    its pid; the forged numbers stay in the slices' arguments."""
    store = tmp_path / "store"
    agent = tmp_path / "forger.py"
    agent.write_text(FORGER)
    done = subprocess.run(
        [str(BIN / "agenttrace"), "run", "--store", str(store), "--run-id", "forged", "--",
         sys.executable, str(agent)],
        capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    trace = export(store, "forged", tmp_path / "forged.pftrace")
    drawn = [t.process for t in trace.tracks.values() if t.HasField("process")]
    process_tracks = {p.pid: p.process_name for p in drawn}
    assert len(process_tracks) == len(drawn) == 2 and all(1 <= pid <= 1 << 22 for pid in process_tracks)
    (root,) = [name for name in process_tracks.values() if "forger.py" in name]
    assert "reported by the agent" not in root  # the supervisor's process, drawn with its pid
    assert process_tracks[4242].startswith("own-pid")  # in range and free: the first report has it
    forged = sorted(s[3]["pid"] for s in trace.all_slices if s[3].get("origin") == "agent")
    assert forged == [-5, 4242, 4242, 2**62]
    others = {trace.named(u) for u in trace.slices if not trace.tracks[u].HasField("process")}
    assert "huge-pid [reported by the agent]" in others and "neg-pid [reported by the agent]" in others
    assert sum(name.startswith("own-pid") for name in others) == 1  # the second report of 4242
    done = run_cli(
        "export", "forged", "-f", "chrome-trace", "-o", str(tmp_path / "f.json"), "--store", str(store)
    )
    assert done.returncode == 0, done.stderr
    import json

    events = json.loads((tmp_path / "f.json").read_text())["traceEvents"]
    assert all(0 < e["pid"] < 1 << 31 and 0 < e["tid"] < 1 << 31 for e in events)
    names = [e["args"]["name"] for e in events if e["name"] == "process_name"]
    assert sum("forger.py" in n for n in names) == 1 and sum("own-pid" in n for n in names) == 2


def test_a_staircase_of_overlapping_steps_stays_a_bounded_number_of_strictly_nested_tracks(
    store: Path, make_provider: Callable[[Path], TracerProvider], tmp_path: Path
) -> None:
    """Each step starts 1 µs after the last and ends after it: every pair overlaps partially, so
    each would need a lane of its own. The first MAX_LANES get one; the rest are merged into
    `N more` slices on one overflow lane, and every step is counted once."""
    n = 5000
    provider = make_provider(store)
    tracer = provider.get_tracer("stair")
    t0 = 1_790_000_000_000_000_000
    from opentelemetry.trace import set_span_in_context

    root = tracer.start_span("agent", start_time=t0)
    inside = set_span_in_context(root)
    for i in range(n):
        step = tracer.start_span(
            f"execute_tool s{i}",
            context=inside,
            start_time=t0 + i * 1000,
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "s"},
        )
        step.end(end_time=t0 + (n + i) * 1000 + 1)
        if i % 1000 == 999:  # the batch processor's queue holds 2048 spans
            provider.force_flush()
    root.end(end_time=t0 + 2 * n * 1000 + 1)
    provider.force_flush()
    trace = export(store, "last", tmp_path / "stair.pftrace")  # `load` checks every track's nesting
    lanes = trace.tracks_of("agent steps")
    assert len(lanes) == MAX_LANES + 1
    slices = [s for u in lanes for s in trace.slices[u]]
    merged = [s for s in slices if "count" in s[3]]
    assert len(slices) - len(merged) == MAX_LANES
    assert sum(s[3]["count"] for s in merged) == n - MAX_LANES
    (overflow,) = {u for u in lanes for s in trace.slices[u] if "count" in s[3]}
    assert trace.slices[overflow][0][2] == f"{n - MAX_LANES} more (over {MAX_LANES} lanes)"
    assert len(trace.tracks) <= MAX_LANES + 2  # the steps' lanes and the run's track
