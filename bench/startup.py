"""Start-up of everyday commands: wall time of `agenttrace --help`, a usage error, and `runs`,
`show last`, `audit last`, `step last 4` on a demo-like store (the two runs of `make demo`: the
sample research agent under `agenttrace run --objective`, once done and once cut off), against a
bare `python -c pass` measured in the same run (the interpreter's own start, which no command can
go below). The read commands are measured twice: over the runs' derived tables (written by
`agenttrace run` at the end of each run) and with them moved away (the views computed from the
parts, as before derived tables existed). Ratios, medians of alternating reps.

Goals (issue 13): `--help` under 0.15 s; `runs`, `show last`, `audit last`, `step last 4` under
0.3 s each.

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


REPO = Path(__file__).resolve().parents[1]
READS = {
    "runs": ["runs"],
    "show last": ["show", "last"],
    "audit last": ["audit", "last"],
    "step last 4": ["step", "last", "4"],
}


def demo_store(work: Path) -> None:
    """The runs `make demo` records, into `work/.agenttrace`."""
    objective = REPO / "examples" / "objective.toml"
    agent = [sys.executable, str(REPO / "examples" / "research_agent.py"), "--report", "demo-answer.md"]
    for extra in ([], ["--model", "fake-truncating"]):
        subprocess.run(
            [str(BIN / "agenttrace"), "run", "--objective", str(objective), "--", *agent, *extra],
            cwd=work,
            capture_output=True,
            check=False,
        )


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
        demo_store(work)
        cases = {
            "python -c pass (baseline)": [sys.executable, "-c", "pass"],
            "agenttrace --help": [agenttrace, "--help"],
            "agenttrace step (usage error)": [agenttrace, "step"],
        }
        for name, argv in READS.items():
            cases[f"agenttrace {name}"] = [agenttrace, *argv]
        times: dict[str, list[float]] = {name: [] for name in cases}
        for rep in range(reps):
            order = list(cases.items()) if rep % 2 == 0 else list(reversed(cases.items()))
            for name, argv in order:
                times[name].append(wall(argv, work))
        derived = work / ".agenttrace" / "derived"
        derived.rename(work / "derived.off")  # the views computed from the parts
        for name, argv in READS.items():
            key = f"agenttrace {name} (views, no derived tables)"
            times[key] = [wall([agenttrace, *argv], work) for _ in range(max(3, reps // 3))]
    base = median(times["python -c pass (baseline)"])
    result: dict[str, float] = {"baseline_s": round(base, 4)}
    for name, values in times.items():
        m = median(values)
        print(f"{name:<32} {fmt_s(m):>10}   {m / base:5.2f}x the bare interpreter")
        result[name] = round(m, 4)
    final_json({"bench": "startup", **result})


if __name__ == "__main__":
    main()
