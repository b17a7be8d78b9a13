"""Shaping appended records: into a kind's schema, and split by run."""

from __future__ import annotations

import pyarrow as pa


def conform(data: pa.RecordBatch | pa.Table, schema: pa.Schema) -> pa.Table:
    """`data` in `schema`: its columns in the schema's order and types, missing ones null."""
    table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
    if table.schema.names != schema.names:
        have = set(table.schema.names)
        table = pa.Table.from_arrays(
            [table.column(f.name) if f.name in have else pa.nulls(table.num_rows, f.type) for f in schema],
            names=schema.names,
        )
    return table.cast(schema)


def split_by_run(data: pa.RecordBatch | pa.Table) -> list[tuple[str, pa.RecordBatch | pa.Table]]:
    """Rows by run, as zero-copy slices where rows of a run are contiguous (the usual case).

    Done in Python rather than with Arrow compute kernels: each kernel call gives up the GIL and
    then waits to get it back, which is slow while the traced program keeps the GIL busy.
    """
    run_ids = data.column("RunId").to_pylist()
    first = run_ids[0]
    if all(r == first for r in run_ids):
        return [(first or "", data)]
    bounds = [i for i in range(1, len(run_ids)) if run_ids[i] != run_ids[i - 1]]
    if len(bounds) + 1 > 4 * len(set(run_ids)):  # interleaved runs: group them once
        order = sorted(range(len(run_ids)), key=run_ids.__getitem__)
        data = data.take(pa.array(order, pa.int64()))
        run_ids = [run_ids[i] for i in order]
        bounds = [i for i in range(1, len(run_ids)) if run_ids[i] != run_ids[i - 1]]
    starts = [0, *bounds]
    ends = [*bounds, len(run_ids)]
    return [(run_ids[a] or "", data.slice(a, b - a)) for a, b in zip(starts, ends, strict=True)]
