"""The report's timeline: one bar per step, process, verification and GPU stretch, or, past the bar
limit, a lane's bars merged into `aggregate` bars per time bucket."""

from __future__ import annotations

from datetime import datetime
from typing import Any

LANES = ("step", "process", "verification", "gpu")


def epoch_ms(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp() * 1000.0


def _bar(row: dict[str, Any], t0: float, end: float) -> dict[str, Any]:
    start = epoch_ms(row["start_time"])
    stop = epoch_ms(row["end_time"])
    bar: dict[str, Any] = {
        "kind": row["kind"],
        "lane": row["kind"],
        "span_id": row["span_id"],
        "label": row["label"],
        "start": round((start if start is not None else t0) - t0, 3),
        "end": round((stop if stop is not None else end) - t0, 3),
        "unfinished": stop is None,
        "error": row.get("status_code") == "Error",
    }
    for key in ("step", "step_kind", "exit_code"):
        if row.get(key) is not None:
            bar[key] = row[key]
    if row.get("orphaned"):
        bar["orphaned"] = True
    return bar


def gpu_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`report_gpu.sql`'s stretches as bar rows."""
    return [
        {
            "kind": "gpu",
            "span_id": None,
            "label": f"GPU {r['device']}: up to {r['max_utilization'] or 0:.0f}% busy, "
            f"{(r['max_memory_used'] or 0) / 2**20:.0f} MiB, {r['samples']} samples",
            "start_time": r["start_time"],
            "end_time": r["end_time"],
            "status_code": None,
        }
        for r in rows
    ]


def build_timeline(
    rows: list[dict[str, Any]], t0: float, end: float, max_bars: int, keep: set[str]
) -> dict[str, Any]:
    """Bars relative to `t0` (ms). Past `max_bars`, each lane over its share is merged into as many
    time buckets as its share allows; the bars whose span is in `keep` (named by a gate's reason)
    stay whole."""
    end = max(end, t0)
    by_lane: dict[str, list[dict[str, Any]]] = {lane: [] for lane in LANES}
    for row in rows:
        by_lane.setdefault(row["kind"], []).append(row)
    total = sum(len(v) for v in by_lane.values())
    bars: list[dict[str, Any]] = []
    aggregated = False
    if total <= max_bars:
        for lane_rows in by_lane.values():
            bars += [_bar(r, t0, end) for r in lane_rows]
    else:
        kept = [r for r in rows if r["span_id"] is not None and r["span_id"] in keep][: max_bars // 10]
        kept_ids = {r["span_id"] for r in kept}
        bars += [_bar(r, t0, end) for r in kept]
        budget = max_bars - len(kept)
        lanes = [
            (lane, [r for r in lane_rows if r["span_id"] not in kept_ids])
            for lane, lane_rows in by_lane.items()
        ]
        small = [lr for lr in lanes if len(lr[1]) <= budget // len(lanes)]
        for _, lane_rows in small:
            bars += [_bar(r, t0, end) for r in lane_rows]
        big = [lr for lr in lanes if len(lr[1]) > budget // len(lanes)]
        left = budget - sum(len(r) for _, r in small)
        for lane, lane_rows in big:
            aggregated = True
            bars += _aggregate(lane, lane_rows, t0, end, max(1, left // len(big)))
    bars.sort(key=lambda b: (LANES.index(b["lane"]) if b["lane"] in LANES else 99, b["start"], b["end"]))
    return {
        "start": t0,
        "duration": round(end - t0, 3),
        "lanes": [lane for lane in LANES if any(b["lane"] == lane for b in bars)],
        "bars": bars,
        "aggregated": aggregated,
        "spans": total,
    }


def _aggregate(
    lane: str, rows: list[dict[str, Any]], t0: float, end: float, buckets: int
) -> list[dict[str, Any]]:
    """At most `buckets` bars for `rows`: each bucket of the run's time holds the spans starting in
    it, drawn from the earliest start to the latest end among them."""
    width = max((end - t0) / buckets, 1e-6)
    merged: dict[int, dict[str, Any]] = {}
    for row in rows:
        bar = _bar(row, t0, end)
        index = min(int(bar["start"] // width), buckets - 1)
        agg = merged.get(index)
        if agg is None:
            merged[index] = {
                "kind": "aggregate",
                "lane": lane,
                "span_id": bar["span_id"],
                "start": bar["start"],
                "end": bar["end"],
                "count": 1,
                "unfinished": bar["unfinished"],
                "errors": int(bar["error"]),
                "orphaned": bool(bar.get("orphaned")),
            }
            continue
        agg["start"] = min(agg["start"], bar["start"])
        agg["end"] = max(agg["end"], bar["end"])
        agg["count"] += 1
        agg["unfinished"] = agg["unfinished"] or bar["unfinished"]
        agg["errors"] += int(bar["error"])
        agg["orphaned"] = agg["orphaned"] or bool(bar.get("orphaned"))
    out = []
    for agg in merged.values():
        agg["label"] = f"{agg['count']} {lane} spans" + (
            f", {agg['errors']} with errors" if agg["errors"] else ""
        )
        agg["error"] = agg["errors"] > 0
        out.append(agg)
    return out
