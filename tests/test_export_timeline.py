"""`export.timeline`: laying slices out on lanes that trace viewers accept (strictly nested), and
the begin/end order a viewer needs. The timeline of real runs is checked through the exports
(tests/test_export_perfetto.py, tests/test_export_chrome_trace.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agenttrace.export.timeline import MAX_PID, Slice, lanes, nesting_events, track_pids


def _slice(name: str, start: int, end: int) -> Slice:
    return Slice(name, start, end, "tool")


def _strictly_nested(lane: list[Slice]) -> bool:
    for i, a in enumerate(lane):
        for b in lane[i + 1 :]:
            disjoint = a.end_ns <= b.start_ns or b.end_ns <= a.start_ns
            nested = (a.start_ns <= b.start_ns and b.end_ns <= a.end_ns) or (
                b.start_ns <= a.start_ns and a.end_ns <= b.end_ns
            )
            if not (disjoint or nested):
                return False
    return True


def test_a_partial_overlap_takes_a_second_lane_and_nesting_stays_on_one() -> None:
    outer, first, second, later = (
        _slice("outer", 0, 100),
        _slice("first", 10, 50),
        _slice("second", 40, 80),  # overlaps `first` partially
        _slice("later", 100, 120),  # starts where `outer` ends
    )
    placed = lanes([later, second, first, outer])
    assert [[s.name for s in lane] for lane in placed] == [["outer", "first", "later"], ["second"]]


def test_events_close_inner_slices_first_and_ends_come_before_a_begin_at_the_same_time() -> None:
    lane = lanes([_slice("a", 0, 10), _slice("b", 0, 10), _slice("c", 10, 10), _slice("d", 10, 20)])
    assert len(lane) == 1
    order = [(ts, "B" if begin else "E", s.name) for ts, begin, s in nesting_events(lane[0])]
    assert order == [
        (0, "B", "a"),
        (0, "B", "b"),
        (10, "E", "b"),
        (10, "E", "a"),
        (10, "B", "d"),
        (10, "B", "c"),
        (10, "E", "c"),
        (20, "E", "d"),
    ]


intervals = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 20)).map(lambda t: (t[0], t[0] + t[1])), max_size=40
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(intervals)
def test_every_slice_is_placed_once_on_a_strictly_nested_lane_with_balanced_time_ordered_events(
    spans: list[tuple[int, int]],
) -> None:
    slices = [_slice(str(i), start, end) for i, (start, end) in enumerate(spans)]
    placed = lanes(slices)
    assert sorted(s.name for lane in placed for s in lane) == sorted(s.name for s in slices)
    for lane in placed:
        assert lane and _strictly_nested(lane)
        events = nesting_events(lane)
        assert [ts for ts, _, _ in events] == sorted(ts for ts, _, _ in events)
        stack: list[Slice] = []
        for _, begin, item in events:
            if begin:
                assert not stack or item.end_ns <= stack[-1].end_ns  # inside what is open
                stack.append(item)
            else:
                assert stack.pop() is item  # the innermost open slice ends first
        assert not stack
    # a new lane only when the slice overlaps partially a slice open on every earlier lane
    if slices:
        most_open = max(sum(1 for s in slices if s.start_ns <= t < s.end_ns) for t in range(0, 71))
        assert len(placed) <= max(1, most_open)


def test_track_pids_go_to_the_supervisors_processes_first_and_only_in_range() -> None:
    rows = [
        {"span_id": "a1", "pid": 100, "origin": "agent"},  # starts first, but only the agent says so
        {"span_id": "s1", "pid": 100, "origin": "supervisor"},
        {"span_id": "a2", "pid": 2**62, "origin": "agent"},
        {"span_id": "a3", "pid": 0, "origin": "agent"},
        {"span_id": "a4", "pid": MAX_PID + 1, "origin": "agent"},
        {"span_id": "a5", "pid": None, "origin": "agent"},
        {"span_id": "a6", "pid": MAX_PID, "origin": "agent"},
    ]
    assert track_pids(rows) == {"s1": 100, "a6": MAX_PID}
