"""Verdict accuracy on the labelled corpus (tests/corpus/): false "succeeded", false "failed" and
wrong gates, as counts and a confusion matrix (label × verdict). Not a timing: the figures are the
same on any machine.

    python bench/verdicts.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "corpus"))
from judge import OUTCOMES, judge_all, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--json", action="store_true", help="also print the counts as one JSON line")
    args = ap.parse_args()
    judgements = judge_all(Path(sys.executable).parent / "agenttrace")
    print(table(judgements))
    if args.json:
        counts = Counter(j.outcome for j in judgements)
        print(json.dumps({"runs": len(judgements), **{o: counts[o] for o in OUTCOMES}}))


if __name__ == "__main__":
    main()
