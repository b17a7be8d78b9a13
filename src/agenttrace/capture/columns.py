"""Arrow arrays built from Python lists with few Python-level operations (`capture.records`).

Every string column goes into Arrow as raw buffers (UTF-8 bytes joined in one call, offsets packed
in one call), span ids become hex in one call per column, and a column holding one value is that
value repeated: no `pa.array`, which would also make pyarrow import pandas on its first use.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, chain, repeat
from operator import is_, itemgetter, sub
from typing import Any

import pyarrow as pa
from opentelemetry.trace import SpanContext

from ..store.schema import TIMESTAMP

_offsets_cache: dict[int, pa.Buffer] = {}


def fixed_offsets(width: int, n: int) -> pa.Buffer:
    """int32 offsets 0, width, 2 * width, ... (at least n + 1 of them), shared between batches."""
    buffer = _offsets_cache.get(width)
    if buffer is None or buffer.size < 4 * (n + 1):
        capacity = max(n, 4096)
        offsets = range(0, width * capacity + 1, width) if width else repeat(0, capacity + 1)
        if len(_offsets_cache) > 64:
            _offsets_cache.clear()
        buffer = _offsets_cache[width] = pa.py_buffer(array("i", offsets))
    return buffer


def offsets_of(lengths: Iterable[int]) -> pa.Buffer:
    """int32 offsets from lengths (struct.pack of the running sums: the fastest way in C)."""
    sums = list(accumulate(lengths, initial=0))
    return pa.py_buffer(struct.pack(f"{len(sums)}i", *sums))


def list_offsets(per_row: list[Sequence[Any]]) -> pa.Array:
    """int32 offsets of a list column with `per_row`'s lengths."""
    return pa.Array.from_buffers(pa.int32(), len(per_row) + 1, [None, offsets_of(map(len, per_row))])


def strings(values: list[str]) -> pa.Array:
    """A string array, built from its UTF-8 bytes and offsets rather than with `pa.array`, which
    imports pandas (a quarter of a second holding the GIL) the first time it is called."""
    try:
        joined = "".join(values)
        if joined.isascii():
            data = joined.encode("ascii")
            offsets = offsets_of(map(len, values))
        else:
            encoded = [v.encode() for v in values]
            data = b"".join(encoded)
            offsets = offsets_of(map(len, encoded))
    except (TypeError, struct.error):  # not all strings, or past 2 GiB: let Arrow say what is wrong
        return pa.array(values, pa.string())
    return pa.Array.from_buffers(pa.string(), len(values), [None, offsets, pa.py_buffer(data)])


def hex_strings(data: bytes, width: int, n: int) -> pa.Array:
    """n strings of `width` ASCII characters each, laid end to end in `data`."""
    return pa.Array.from_buffers(pa.string(), n, [None, fixed_offsets(width, n), pa.py_buffer(data)])


def repeated_string(value: str, n: int) -> pa.Array:
    encoded = value.encode()
    return pa.Array.from_buffers(
        pa.string(), n, [None, fixed_offsets(len(encoded), n), pa.py_buffer(encoded * n)]
    )


def repeated_strings(values: list[str], n: int) -> pa.Array:
    """`values`, n times over."""
    encoded = [v.encode() for v in values]
    offsets = offsets_of(chain.from_iterable(repeat(list(map(len, encoded)), n)))
    return pa.Array.from_buffers(
        pa.string(), len(values) * n, [None, offsets, pa.py_buffer(b"".join(encoded) * n)]
    )


def one_object(objects: list[Any]) -> bool:
    """Whether the list holds one object n times (checked in C)."""
    return bool(objects) and all(map(is_, repeat(objects[0]), objects))


def string_column(objects: list[Any], convert: Callable[[Any], str]) -> pa.Array:
    """A string column of `convert(o)` per object, calling `convert` once per distinct object."""
    if one_object(objects):
        return repeated_string(convert(objects[0]), len(objects))
    ids = list(map(id, objects))
    distinct = dict(zip(ids, objects, strict=True))
    converted = {key: convert(obj) for key, obj in distinct.items()}
    return strings(list(map(converted.__getitem__, ids)))


def span_id_hex(span_ids: Iterable[int]) -> bytes:
    """The ids' 16 hex digits each, end to end (OverflowError if one is not a 64-bit id)."""
    words = array("Q", span_ids)
    if sys.byteorder == "little":
        words.byteswap()
    return words.tobytes().hex().encode()


def span_id_column(span_ids: list[int]) -> pa.Array:
    try:
        return hex_strings(span_id_hex(span_ids), 16, len(span_ids))
    except (OverflowError, TypeError):  # not a 64-bit id: one at a time
        return strings([f"{s:016x}" for s in span_ids])


def parent_column(parents: list[SpanContext | None]) -> pa.Array:
    """Parent span ids in hex, "" for a span without a parent."""
    n = len(parents)
    try:
        if None not in parents:
            return hex_strings(span_id_hex(map(itemgetter(1), parents)), 16, n)
        data = span_id_hex([p[1] for p in parents if p is not None])
        offsets = array("i", [0])
        start = 0
        while start < n:  # one step per parentless span (few), the runs between them in C
            try:
                stop = parents.index(None, start)
            except ValueError:
                stop = n
            base = offsets[-1]
            offsets.extend(range(base + 16, base + 16 * (stop - start) + 1, 16))
            if stop < n:
                offsets.append(offsets[-1])
            start = stop + 1
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    except (OverflowError, TypeError):
        return strings([f"{p[1]:016x}" if p is not None else "" for p in parents])


def trace_id_column(trace_ids: list[int]) -> tuple[pa.Array, dict[int, str]]:
    """Trace ids in hex (a batch holds few traces: each is formatted once), and the hex by id."""
    hexes = {t: f"{t:032x}" for t in set(trace_ids)}
    if all(len(h) == 32 for h in hexes.values()):
        encoded = {t: h.encode() for t, h in hexes.items()}
        return hex_strings(b"".join(map(encoded.__getitem__, trace_ids)), 32, len(trace_ids)), hexes
    return strings(list(map(hexes.__getitem__, trace_ids))), hexes


def int64s(values: list[int], kind: pa.DataType) -> pa.Array:
    try:
        return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(array("q", values))])
    except OverflowError:
        return pa.array(values, kind)


def timestamps(starts: list[int | None]) -> pa.Array:
    if None in starts:
        starts = [s or 0 for s in starts]
    return int64s(starts, TIMESTAMP)  # type: ignore[arg-type]


def duration_column(starts: list[int | None], ends: list[int | None]) -> pa.Array:
    """end - start in ns, never negative; a span without an end lasted 0."""
    try:
        durations = list(map(sub, ends, starts))
    except TypeError:  # a missing start or end time
        durations = [(e or s or 0) - (s or 0) for s, e in zip(starts, ends, strict=True)]
    if durations and min(durations) < 0:
        durations = [max(0, d) for d in durations]
    return int64s(durations, pa.int64())
