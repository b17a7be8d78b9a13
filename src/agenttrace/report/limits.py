"""How much of a run one report page holds: what a browser opens quickly for a run of 100k spans."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """The limits a report applies; each is stated on the page (`#limits`) and in `--json`.

    - `steps`: steps embedded in full (inputs, outputs, the LLM step that asked for them);
    - `text_chars`: each input and output is cut to its first so many characters, marked as cut;
    - `bars`: timeline bars; past it, a lane's bars are merged into `aggregate` bars, one per time
      bucket, each saying how many spans it holds (the bars a gate's reason names stay whole);
    - `tree_nodes`: processes in the process tree;
    - `files`, `claims`: rows of those sections;
    - `other_chars`: every other string of the page (span, tool and model names, command lines,
      paths, claim texts: the agent's words) is cut to its first so many characters, marked as cut."""

    steps: int = 2000
    text_chars: int = 4096
    bars: int = 5000
    tree_nodes: int = 2000
    files: int = 2000
    claims: int = 2000
    other_chars: int = 2000

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_LIMITS = Limits()
