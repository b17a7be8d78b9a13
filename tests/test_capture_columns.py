"""Arrow columns from raw buffers (capture.columns): the same values as `pa.array` would give."""

from __future__ import annotations

import pyarrow as pa
from opentelemetry.trace import SpanContext

from agenttrace.capture import columns


def test_strings_keep_every_value_ascii_or_not() -> None:
    values = ["plain", "", "naïve ✓", "x" * 1000]
    assert columns.strings(values).to_pylist() == values
    assert columns.strings(values).equals(pa.array(values, pa.string()))
    assert columns.repeated_string("é", 3).to_pylist() == ["é", "é", "é"]
    assert columns.repeated_strings(["a", "bc"], 2).to_pylist() == ["a", "bc", "a", "bc"]


def test_ids_are_lowercase_hex_of_fixed_width() -> None:
    ids = [1, 0xFFFFFFFFFFFFFFFF, 0xABCDEF]
    assert columns.span_id_column(ids).to_pylist() == [f"{i:016x}" for i in ids]
    parents = [None, SpanContext(1, 0x10, False), None, SpanContext(1, 0x20, False)]
    assert columns.parent_column(parents).to_pylist() == ["", f"{0x10:016x}", "", f"{0x20:016x}"]
    column, hexes = columns.trace_id_column([5, 5, 7])
    assert column.to_pylist() == [f"{5:032x}", f"{5:032x}", f"{7:032x}"] and hexes[7] == f"{7:032x}"


def test_durations_are_never_negative_and_missing_ends_last_zero() -> None:
    assert columns.duration_column([10, 20, 30], [15, 10, None]).to_pylist() == [5, 0, 0]


def test_string_column_converts_each_distinct_object_once() -> None:
    seen: list[object] = []
    a, b = object(), object()

    def convert(obj: object) -> str:
        seen.append(obj)
        return "a" if obj is a else "b"

    assert columns.string_column([a, b, a, a], convert).to_pylist() == ["a", "b", "a", "a"]
    assert len(seen) == 2
