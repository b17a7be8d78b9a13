"""The labelled corpus (tests/corpus/): every stored run gets the verdict a person gave it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "label.json").exists())


def test_the_corpus_is_there() -> None:
    assert len(CASES) >= 3, CASES


@pytest.mark.parametrize("case", CASES)
def test_each_run_gets_its_label(case: str, tmp_path: Path) -> None:
    label = json.loads((CORPUS / case / "label.json").read_text())
    store = tmp_path / "store"
    shutil.copytree(CORPUS / case / "store", store)  # audits never change what they read; be sure
    result = run_cli("audit", label["run_id"], "--json", "--store", str(store), cwd=tmp_path)
    assert result.returncode == (0 if label["state"] == "succeeded" else 1), result.stderr
    verdict = json.loads(result.stdout)
    failing = sorted(
        g["name"] for g in verdict["gates"] if g["status"] == "fail" and g["severity"] == "error"
    )
    assert (verdict["state"], failing) == (label["state"], sorted(label["failing_gates"])), label["why"]
    assert not list(tmp_path.rglob("copied.csv")), "a gate the agent wrote was run"
