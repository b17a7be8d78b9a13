"""The labelled corpus (tests/corpus/): every stored run audited, and the verdicts compared with the
labels people gave them. Fails on any false "succeeded", on more than 2% false "failed", and on any
misjudged run not explained in tests/corpus/known.json."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import BIN

sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from judge import cases, judge_all, known, table

MAX_FALSE_FAILED = 0.02


def test_the_corpus_is_there() -> None:
    assert len(cases()) >= 40, cases()


def test_verdicts_on_the_labelled_runs() -> None:
    judgements = judge_all(BIN / "agenttrace")
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
