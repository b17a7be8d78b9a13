"""Start-up of everyday commands: wall time of `agenttrace --help`, a usage error and
`agenttrace runs` on a small store, against a bare `python -c pass` measured in the same run (the
interpreter's own start, which no command can go below). Ratios, medians of alternating reps.

Goals (issue 13): `--help` under 0.15 s; `runs` under 0.3 s.

    python bench/startup.py [--quick] [--reps N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import final_json, fmt_s, header, median, parser

BIN = Path(sys.executable).parent


def wall(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    ap = parser(__doc__.split("\n", 1)[0])
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    reps = 5 if args.quick else args.reps
    header("start-up of everyday commands", args.quick)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        work = Path(tmp)
        agenttrace = str(BIN / "agenttrace")
        subprocess.run([agenttrace, "run", "--", "true"], cwd=work, capture_output=True, check=True)
        cases = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "agenttrace --help": [str(BIN / "agenttrace"), "--help"],
            "agenttrace step (usage error)": [str(BIN / "agenttrace"), "step"],
            "agenttrace runs (1 run)": [str(BIN / "agenttrace"), "runs"],
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for rep in range(reps):
            order = list(cases.items()) if rep % 2 == 0 else list(reversed(cases.items()))
            for name, argv in order:
                times[name].append(wall(argv, work))
    base = median(times["python -c pass (baseline)"])
    result: dict[str, float] = {"baseline_s": round(base, 4)}
    for name, values in times.items():
        m = median(values)
        print(f"{name:<32} {fmt_s(m):>10}   {m / base:5.2f}x the bare interpreter")
        result[name] = round(m, 4)
    final_json({"bench": "startup", **result})


if __name__ == "__main__":
    main()
