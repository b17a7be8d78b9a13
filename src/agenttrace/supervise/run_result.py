"""What `agenttrace run` saw of the command it ran, and how it names signals and command lines."""

from __future__ import annotations

import shlex
import signal
from dataclasses import dataclass, field

from ..capture.redact import redact_argv
from . import artifacts
from .process_spans import Orphan


@dataclass
class RunResult:
    run_id: str
    state: str
    exit_code: int | None
    signal: int | None
    orphans: list[Orphan] = field(default_factory=list)
    processes: int = 0
    artifacts: list[artifacts.Artifact] = field(default_factory=list)
    error: str | None = None
    """Set when the run could not go as asked (command not found, interrupted twice)."""


def signal_name(number: int) -> str:
    """`9 (SIGKILL)`, or just the number for one Python does not name."""
    try:
        return f"{number} ({signal.Signals(number).name})"
    except ValueError:
        return str(number)


def command_line(argv: list[str]) -> str:
    return shlex.join(redact_argv(argv))
