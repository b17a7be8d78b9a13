"""The labelled corpus (tests/corpus/): every stored run audited, and the verdicts compared with the
labels people gave them. Fails on any false "succeeded", on more than 2% false "failed", and on any
misjudged run not explained in tests/corpus/known.json."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import BIN

sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from judge import cases, judge, judge_all, known, table

MAX_FALSE_FAILED = 0.02


def test_the_corpus_is_there() -> None:
    assert len(cases()) >= 40, cases()


def test_verdicts_on_the_labelled_runs() -> None:
    """Every run audited by the `audit` command in this process (a process a run cost 1.7 times the CPU:
    Python's start-up and imports); the console script's round trip is checked below."""
    judgements = judge_all()
    print(table(judgements))
    explained = known()
    assert not [j.case for j in judgements if j.ran_a_stored_gate], "a gate the agent wrote was run"
    false_succeeded = [j.case for j in judgements if j.outcome == "false succeeded"]
    assert not false_succeeded, table(judgements)
    false_failed = [j for j in judgements if j.outcome == "false failed"]
    assert len(false_failed) <= MAX_FALSE_FAILED * len(judgements), table(judgements)
    unexplained = [j.case for j in judgements if j.outcome != "right" and j.case not in explained]
    assert not unexplained, table(judgements)
    stale = [
        c for c, k in explained.items() if [j.outcome for j in judgements if j.case == c] != [k["outcome"]]
    ]
    assert not stale, f"known.json no longer matches these runs' verdicts: {stale}\n{table(judgements)}"


def test_the_console_script_judges_as_the_command_run_in_process() -> None:
    """The store whose agent wrote gates of its own (one that writes a file where it runs) and a
    plain failed run, audited by the installed `agenttrace` as a user runs it: the same verdicts,
    and the agent's gate never ran."""
    for case in ("forged-store-gates", "py-openai-cutoff"):
        by_script = judge(case, BIN / "agenttrace")
        assert by_script == judge(case), case
        assert not by_script.ran_a_stored_gate and by_script.outcome == "right", by_script
