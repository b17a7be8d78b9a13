"""A timeline as a Perfetto trace (`.pftrace`): Perfetto's native protobuf format, which
ui.perfetto.dev and the trace processor open.

One `Trace` of `TracePacket`s on one packet sequence (`SEQUENCE_ID`), written without interning:
the first packet clears the sequence's incremental state, and every event names its track by uuid.
- the run (its root span and audits): a track of its own;
- each OS process: a process track (pid, name = its command line) holding its lifetime slice, its
  exit code and signal as arguments;
- the agent's steps: tracks under the agent's root process, one per lane (`timeline.lanes`);
- the verification: a track of its own, laid out the same way;
- each GPU device: a counter track for its utilization (%) and one for its memory used (bytes).
Slices are `TYPE_SLICE_BEGIN` / `TYPE_SLICE_END` pairs, timestamps in ns since the Unix epoch (the
run's clock), arguments as debug annotations. Unfinished and orphaned work carries a name suffix and
an argument (`unfinished`, `orphaned`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from .timeline import Group, Timeline, Value, lanes, nesting_events

SEQUENCE_ID = 1
"""The one trusted packet sequence every packet is on."""


@dataclass
class PerfettoCounts:
    tracks: int
    process_tracks: int
    slices: int
    counter_tracks: int
    counter_values: int


def _annotate(event: Any, args: dict[str, Value]) -> None:
    for key, value in args.items():
        note = event.debug_annotations.add()
        note.name = key
        if isinstance(value, bool):
            note.bool_value = value
        elif isinstance(value, int) and -(1 << 63) <= value < 1 << 63:
            note.int_value = value
        elif isinstance(value, float):
            note.double_value = value
        else:
            note.string_value = str(value)


def to_perfetto(timeline: Timeline) -> tuple[bytes, PerfettoCounts]:
    """The trace's bytes, and what it holds."""
    from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb

    trace = pb.Trace()
    uuids = iter(range(1, 1 << 62))
    group_uuid: dict[str, int] = {}
    streams: list[list[tuple[int, int, Any]]] = []  # per track: (ts, order, packet-filling function)
    tracks = process_tracks = slices = 0

    def packet() -> Any:
        item = trace.packet.add()
        item.trusted_packet_sequence_id = SEQUENCE_ID
        return item

    first = packet()
    first.sequence_flags = pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
    first.incremental_state_cleared = True
    first.timestamp = timeline.start_ns

    def describe(group: Group, lane: int, parent: int | None) -> int:
        nonlocal tracks, process_tracks
        uuid = next(uuids)
        item = packet()
        item.timestamp = timeline.start_ns
        desc = item.track_descriptor
        desc.uuid = uuid
        if lane == 0 and group.is_process and group.pid is not None:
            desc.process.pid = group.pid
            desc.process.process_name = group.name
            process_tracks += 1
        else:
            desc.name = group.name if lane == 0 else f"{group.name} ({lane + 1})"
            if parent is not None:
                desc.parent_uuid = parent
        tracks += 1
        return uuid

    # Process tracks first: the steps are drawn under the agent's root process.
    ordered = sorted(timeline.groups, key=lambda g: (not g.is_process,))
    for group in ordered:
        if not group.slices:
            continue
        parent = group_uuid.get(group.parent) if group.parent else None
        placed = lanes(group.slices)
        for index, lane in enumerate(placed):
            if index > 0 and group.is_process:
                parent = group_uuid[group.key]
            uuid = describe(group, index, parent)
            if index == 0:
                group_uuid[group.key] = uuid
            stream = []
            for order, (ts, begin, item) in enumerate(nesting_events(lane)):
                stream.append((ts, order, (uuid, begin, item)))
                slices += begin
            streams.append(stream)

    counter_values = 0
    for counter in timeline.counters:
        uuid = next(uuids)
        item = packet()
        item.timestamp = timeline.start_ns
        desc = item.track_descriptor
        desc.uuid = uuid
        desc.name = counter.name
        if counter.unit == "bytes":
            desc.counter.unit = pb.CounterDescriptor.UNIT_SIZE_BYTES
        else:
            desc.counter.unit_name = "%"
        tracks += 1
        streams.append([(ts, order, (uuid, None, value)) for order, (ts, value) in enumerate(counter.points)])
        counter_values += len(counter.points)

    # Every event in time order; events of one track at the same time keep their nesting order.
    for ts, _, (uuid, begin, item) in heapq.merge(*streams, key=lambda e: e[0]):
        out = packet()
        out.timestamp = ts
        event = out.track_event
        event.track_uuid = uuid
        if begin is None:  # a counter value
            event.type = pb.TrackEvent.TYPE_COUNTER
            if float(item).is_integer():
                event.counter_value = int(item)
            else:
                event.double_counter_value = item
        elif begin:
            event.type = pb.TrackEvent.TYPE_SLICE_BEGIN
            event.name = item.name
            event.categories.append(item.category)
            _annotate(event, item.args)
        else:
            event.type = pb.TrackEvent.TYPE_SLICE_END
    counts = PerfettoCounts(tracks, process_tracks, slices, len(timeline.counters), counter_values)
    return trace.SerializeToString(), counts


__all__ = ["SEQUENCE_ID", "PerfettoCounts", "to_perfetto"]
