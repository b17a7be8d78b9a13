"""What every command shares: the --store option, consoles, and turning errors into `Error:` lines."""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from .. import config
from ..errors import AgentTraceError
from ..store.layout import StoreLayout

P = ParamSpec("P")
R = TypeVar("R")

USAGE_ERROR = 2

StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Store directory (default: $AGENTTRACE_STORE, else ./.agenttrace).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for programs instead of a table.")]
EngineOption = Annotated[
    str | None,
    typer.Option(
        "--engine",
        help="Where the runs are: duckdb (the local store, default), clickhouse://USER@HOST:8123/DB "
        "(password in $AGENTTRACE_CLICKHOUSE_PASSWORD) or chdb:///PATH; default $AGENTTRACE_ENGINE.",
        show_default=False,
    ),
]


class State:
    debug = False


PIPE_WIDTH = 1000
"""Output to a pipe or file is not wrapped at 80 columns: lines stay whole for grep and cut."""


class _Console(Console):
    """To a pipe or a file, lines end where their text does: a table pads its last column to the
    widest cell, and `grep`/`diff` should not see that padding."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if self.is_terminal:
            super().print(*objects, **kwargs)
            return
        with self.capture() as captured:
            super().print(*objects, **kwargs)
        self.file.write("\n".join(line.rstrip() for line in captured.get().split("\n")))
        self.file.flush()


def stdout() -> Console:
    width = None if sys.stdout.isatty() else PIPE_WIDTH
    return _Console(soft_wrap=False, highlight=False, width=width)


def stderr(wide: bool = False) -> Console:
    """Messages; `wide` for tables, which a pipe should get whole rather than wrapped at 80."""
    if wide:
        return _Console(
            stderr=True, highlight=False, soft_wrap=False, width=None if sys.stderr.isatty() else PIPE_WIDTH
        )
    return Console(stderr=True, highlight=False, soft_wrap=True)


def layout(store: Path | None) -> StoreLayout:
    return StoreLayout(config.store_path(store))


def warn(messages: list[str]) -> None:
    console = stderr()
    for message in messages:
        console.print(f"Warning: {message}", style="yellow", markup=False)


def fail(message: str) -> typer.Exit:
    stderr().print(f"Error: {message}", markup=False)
    return typer.Exit(USAGE_ERROR)


def debug_log() -> None:
    """With --debug: how the read paths chose (a run's derived tables, or the views and why) on
    stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(message)s"))
    for name in ("agenttrace.analysis", "agenttrace.store"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a command; report AgentTraceError (and any crash) as one `Error:` line, exit 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if State.debug:
            debug_log()
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except AgentTraceError as exc:
            if State.debug:
                traceback.print_exc()
            raise fail(str(exc)) from None
        except Exception as exc:
            if State.debug:
                traceback.print_exc()
            raise fail(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)"
            ) from None

    return wrapper


def echo(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def print_json(value: Any) -> None:
    from ..render.values import to_json

    echo(to_json(value))
