"""Artifact store throughput: hashing evidence and storing it content-addressed, durably
(`ArtifactStore.put`: one pass that hashes and copies, fsync, rename into
`artifacts/sha256/<aa>/<hash>`), against `sha256sum` + `cp` (+ `sync`) of the same files, in the
same run.

Three sets of files: many small (evidence: logs, JSON results), medium, and a few large
(datasets, build outputs). Each repetition stores into a fresh folder, so every copy is really
written; the sides alternate order; the source files are in the page cache for both.

Baselines:
  per file   `sha256sum F` then `cp F DEST/` then `sync DEST/F` for each file: what a script
             that stores evidence one file at a time does
  batched    one `sha256sum F...`, one `cp F... DEST/`, one `sync DEST/*`: the tools' own limit
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import clean_environment, final_json, fmt_bytes, fmt_s, header, median, parser, timed

from agenttrace.store.artifact_store import ArtifactStore
from agenttrace.store.layout import StoreLayout


def make_files(folder: Path, count: int, size: int, seed: int) -> list[Path]:
    folder.mkdir(parents=True)
    files = []
    for i in range(count):
        path = folder / f"f{i:05d}.bin"
        # Distinct content per file (a counter in every block), cheap to generate.
        block = (f"{seed}:{i}:".encode() * 64)[:4096]
        with open(path, "wb") as f:
            remaining = size
            while remaining > 0:
                chunk = block[: min(remaining, len(block))]
                f.write(chunk)
                remaining -= len(chunk)
        files.append(path)
    return files


def agenttrace_side(files: list[Path], dest: Path) -> int:
    store = ArtifactStore(StoreLayout(dest), max_bytes=1 << 40)
    stored = [store.put(f) for f in files]
    assert all(s.stored for s in stored)
    return len({s.sha256 for s in stored})


def per_file_side(files: list[Path], dest: Path) -> int:
    dest.mkdir(parents=True)
    for f in files:
        subprocess.run(["sha256sum", str(f)], check=True, capture_output=True)
        subprocess.run(["cp", str(f), str(dest)], check=True)
        subprocess.run(["sync", str(dest / f.name)], check=True)
    return len(files)


def batched_side(files: list[Path], dest: Path) -> int:
    dest.mkdir(parents=True)
    names = [str(f) for f in files]
    subprocess.run(["sha256sum", *names], check=True, capture_output=True)
    subprocess.run(["cp", *names, str(dest)], check=True)
    subprocess.run(["sync", *[str(dest / f.name) for f in files]], check=True)
    return len(files)


def main() -> None:
    ap = parser(__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    clean_environment()
    header("artifact store: hash + store evidence vs sha256sum + cp", args.quick)
    cases = [("small", 1000, 4 * 1024), ("medium", 64, 1 << 20), ("large", 4, 64 << 20)]
    reps = args.reps
    if args.quick:
        cases = [("small", 200, 4 * 1024), ("medium", 16, 1 << 20), ("large", 2, 16 << 20)]
        reps = 2
    tmp = Path(tempfile.mkdtemp(prefix="agenttrace-bench-artifacts-", dir=args.tmp))
    results = {}
    try:
        for case, count, size in cases:
            files = make_files(tmp / "src" / case, count, size, seed=len(results))
            total = count * size
            times: dict[str, list[float]] = {"agenttrace": [], "per file": [], "batched": []}
            sides = [("agenttrace", agenttrace_side), ("per file", per_file_side), ("batched", batched_side)]
            for rep in range(reps):
                order = sides if rep % 2 == 0 else list(reversed(sides))
                for label, side in order:
                    dest = tmp / "dest" / f"{case}-{label.replace(' ', '_')}-{rep}"
                    seconds, _ = timed(lambda side=side, dest=dest, files=files: side(files, dest))
                    times[label].append(seconds)
                    shutil.rmtree(dest)
            med = {k: median(v) for k, v in times.items()}
            results[case] = {
                "files": count,
                "bytes": total,
                "agenttrace_s": med["agenttrace"],
                "per_file_s": med["per file"],
                "batched_s": med["batched"],
                "agenttrace_mb_s": total / med["agenttrace"] / 1e6,
                "batched_mb_s": total / med["batched"] / 1e6,
                "ratio_vs_per_file": med["agenttrace"] / med["per file"],
                "ratio_vs_batched": med["agenttrace"] / med["batched"],
            }
            r = results[case]
            print(f"\n{case}: {count} files x {fmt_bytes(size)} = {fmt_bytes(total)}  (median of {reps})")
            print(f"  agenttrace put (hash + copy + fsync)  {fmt_s(r['agenttrace_s']):>10}  "
                  f"{r['agenttrace_mb_s']:8.1f} MB/s  {count / r['agenttrace_s']:9.0f} files/s")  # fmt: skip
            print(f"  sha256sum + cp + sync, per file       {fmt_s(r['per_file_s']):>10}")
            print(f"  sha256sum + cp + sync, batched        {fmt_s(r['batched_s']):>10}  "
                  f"{r['batched_mb_s']:8.1f} MB/s")  # fmt: skip
            print(f"  ratio (time): {r['ratio_vs_per_file']:.3f}x per-file baseline, "
                  f"{r['ratio_vs_batched']:.2f}x batched (below 1: agenttrace is faster)")  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    final_json({"benchmark": "artifact_store", "quick": args.quick, "results": results})


if __name__ == "__main__":
    main()
