"""`agenttrace report` on runs of 1k, 10k and 100k spans: the time to write the page, its size, and
headless Chromium's time to render it (`body[data-ready=true]`), each against a baseline measured in
the same run: `agenttrace audit` of the same run (a command that reads the run and computes every
gate, as the report does), and Chromium's load of an empty HTML page.

The runs are recorded in-process through ParquetSpanExporter (tests/browser.py `big_run`: per turn a
chat span, a tool span and a process span), with their derived tables written as `agenttrace run`
writes them; `--parts` leaves them out (the views computed from the parts, as for in-process runs).
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import clean_environment, final_json, fmt_bytes, fmt_s, header, median, parser

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from browser import big_run, chromium, open_report, recorded_page  # noqa: E402  (the tests' own helpers)

AGENTTRACE = str(Path(sys.executable).parent / "agenttrace")
EMPTY_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>empty</title></head>"
    "<body data-ready='true'></body></html>"
)


def cli_time(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run([AGENTTRACE, *args], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"bench: agenttrace {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return elapsed


def load_time(browser: Any, path: Path, timeout_ms: float) -> float:
    """Navigation start to `data-ready`, in a fresh context; fails if the page asked for anything
    beyond itself."""
    with recorded_page(browser) as (page, recorder):
        start = time.perf_counter()
        open_report(page, path, timeout_ms=timeout_ms)
        elapsed = time.perf_counter() - start
        if recorder.remote() or recorder.errors:
            sys.exit(f"bench: {path.name}: requests {recorder.remote()}, errors {recorder.errors}")
    return elapsed


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=None, help="span counts, comma-separated (default 1000,10000,100000)")
    ap.add_argument(
        "--reps", type=int, default=None, help="repetitions of each timing (default 3, --quick 1)"
    )
    ap.add_argument("--parts", action="store_true", help="no derived tables (views from the parts)")
    args = ap.parse_args()
    clean_environment()
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")]
    reps = args.reps or (1 if args.quick else 3)
    header("agenttrace report: write and open a run's page", args.quick)
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-", dir=args.tmp))
    results: dict[str, Any] = {"sizes": {}, "derived_tables": not args.parts}
    try:
        empty = tmp / "empty.html"
        empty.write_text(EMPTY_PAGE)
        with chromium() as browser:
            load_time(browser, empty, 30_000)  # the first page of a browser pays for its start
            for spans in sizes:
                store, run_id = tmp / f"store-{spans}", f"run{spans}"
                recorded = big_run(store, spans, run_id, derive=not args.parts)
                html = tmp / f"report-{spans}.html"
                write, audit, load, baseline = [], [], [], []
                for rep in range(reps):  # the sides alternate order
                    pairs = [
                        (
                            write,
                            functools.partial(
                                cli_time, "report", run_id, "--store", str(store), "-o", str(html)
                            ),
                        ),
                        (audit, functools.partial(cli_time, "audit", run_id, "--store", str(store))),
                    ]
                    for target, fn in pairs if rep % 2 == 0 else pairs[::-1]:
                        target.append(fn())
                    views = [(load, html), (baseline, empty)]
                    for target, page in views if rep % 2 == 0 else views[::-1]:
                        target.append(load_time(browser, page, 600_000))
                info = json.loads(
                    subprocess.run(
                        [AGENTTRACE, "report", run_id, "--store", str(store), "-o", str(html), "--json"],
                        capture_output=True, text=True, check=True,
                    ).stdout
                )  # fmt: skip
                row = {
                    "spans": info["spans"],
                    "record_s": recorded,
                    "report_s": median(write),
                    "audit_s": median(audit),
                    "report_vs_audit": median(write) / median(audit),
                    "bytes": html.stat().st_size,
                    "bytes_per_span": html.stat().st_size / info["spans"],
                    "load_s": median(load),
                    "empty_load_s": median(baseline),
                    "load_vs_empty": median(load) / median(baseline),
                    "limits_applied": sorted(k for k, v in info["limits"]["applied"].items() if v),
                }
                results["sizes"][str(spans)] = row
                print(
                    f"{info['spans']:>7} spans  recorded in {fmt_s(recorded)}\n"
                    f"  agenttrace report  {fmt_s(row['report_s']):>10}  "
                    f"vs audit {fmt_s(row['audit_s'])}: {row['report_vs_audit']:.2f}x\n"
                    f"  page               {fmt_bytes(row['bytes']):>10}  "
                    f"({row['bytes_per_span']:.0f} B/span)\n"
                    f"  Chromium to ready  {fmt_s(row['load_s']):>10}  "
                    f"vs an empty page {fmt_s(row['empty_load_s'])}: {row['load_vs_empty']:.1f}x\n"
                    f"  limits applied: {', '.join(row['limits_applied']) or 'none'}",
                    flush=True,
                )
                shutil.rmtree(store, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    final_json({"bench": "report", **results})


if __name__ == "__main__":
    main()
