"""Judge the corpus: audit every labelled run with `agenttrace audit --json` and compare the verdict
with the label a person gave it. Used by tests/test_corpus.py and bench/verdicts.py.

Each run is audited by the `audit` command, either as the installed console script (one process
a run, as a user runs it) or invoked in this process (typer's CliRunner: the same command code,
without paying Python's start-up and imports once a run), from a copy of its store (an audit must
not change what it reads, and the forged-store case must not get to run a gate it wrote), in a
directory of its own (where such a gate would write). Outcomes:

    right            state and failing error gates as labelled
    false succeeded  labelled failed, audited succeeded: the worst bug this project can have
    false failed     labelled succeeded, audited failed
    wrong gates      the state is right, the failing gates are not

`known.json` lists runs known to be misjudged ({"case": {"outcome": ..., "why": ...}}): a false
"failed" or wrong gates the project has decided to explain rather than fix. A false "succeeded"
can never be listed there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent
OUTCOMES = ("right", "false succeeded", "false failed", "wrong gates")


@dataclass(frozen=True)
class Judgement:
    case: str
    label_state: str
    label_gates: tuple[str, ...]
    state: str
    gates: tuple[str, ...]
    why: str
    ran_a_stored_gate: bool = False

    @property
    def outcome(self) -> str:
        if self.state == self.label_state:
            return "right" if self.gates == self.label_gates else "wrong gates"
        return "false succeeded" if self.state == "succeeded" else "false failed"


def cases() -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if (p / "label.json").exists() and (p / "store").is_dir())


def known() -> dict[str, dict[str, str]]:
    path = CORPUS / "known.json"
    return json.loads(path.read_text()) if path.exists() else {}


def judge(case: str, agenttrace: Path | None = None) -> Judgement:
    """Audit one labelled run: with the console script `agenttrace` when given, else in-process."""
    label = json.loads((CORPUS / case / "label.json").read_text())
    with tempfile.TemporaryDirectory(prefix=f"judge-{case}-") as tmp:
        store = Path(tmp) / "store"
        shutil.copytree(CORPUS / case / "store", store, symlinks=True)
        args = ["audit", label["run_id"], "--json", "--store", str(store)]
        if agenttrace is not None:
            code, out, err = audit_with_script(agenttrace, args, Path(tmp))
        else:
            code, out, err = audit_in_process(args, Path(tmp))
        if code not in (0, 1):
            raise RuntimeError(f"{case}: agenttrace audit exited {code}: {err}")
        verdict = json.loads(out)
        ran = bool(list(Path(tmp).rglob("copied.csv")))
    failing = sorted(
        g["name"] for g in verdict["gates"] if g["status"] == "fail" and g["severity"] == "error"
    )
    return Judgement(
        case,
        label["state"],
        tuple(sorted(label["failing_gates"])),
        verdict["state"],
        tuple(failing),
        label["why"],
        ran,
    )


def audit_with_script(agenttrace: Path, args: list[str], cwd: Path) -> tuple[int, str, str]:
    result = subprocess.run(
        [str(agenttrace), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def audit_in_process(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """The `audit` command run in this process, from `cwd` (where a gate that ran would write)."""
    from typer.testing import CliRunner

    from agenttrace.cli import app

    with working_directory(cwd):
        result: Any = CliRunner().invoke(app, args, env={"NO_COLOR": "1"}, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def judge_all(agenttrace: Path | None = None, workers: int = 2) -> list[Judgement]:
    """Every labelled run judged: by the console script, `workers` at a time, when `agenttrace` is
    given; else in-process, one after the other (the working directory is the process's)."""
    if agenttrace is None:
        return [judge(c) for c in cases()]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda c: judge(c, agenttrace), cases()))


def table(judgements: list[Judgement]) -> str:
    """The confusion matrix (label × verdict) and the count of each outcome, then every run not
    judged right."""
    matrix = Counter((j.label_state, j.state) for j in judgements)
    counts = Counter(j.outcome for j in judgements)
    states = ("succeeded", "failed")
    lines = [
        f"{len(judgements)} labelled runs",
        "label \\ verdict".ljust(18) + "".join(f"{s:>12}" for s in states),
        *(f"{label:<18}" + "".join(f"{matrix[(label, s)]:>12}" for s in states) for label in states),
        "  ".join(f"{o}: {counts[o]}" for o in OUTCOMES),
    ]
    for j in judgements:
        if j.outcome != "right":
            lines.append(
                f"  {j.outcome:<16} {j.case}: labelled {j.label_state} {list(j.label_gates)}, "
                f"audited {j.state} {list(j.gates)}"
            )
    return "\n".join(lines)
