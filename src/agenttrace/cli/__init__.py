"""The `agenttrace` command line: thin commands over the library."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from .audit import audit, gates
from .claim import claim
from .common import State
from .orphans import orphans
from .query import query
from .run import run
from .runs import runs
from .serve import serve
from .show import show
from .step import step

app = typer.Typer(
    name="agenttrace",
    help="An agent run is not done when the model stops talking. Record agent runs as "
    "OpenTelemetry spans in a Parquet store, and look at them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agenttrace {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    State.debug = debug


app.command("runs")(runs)
app.command("show")(show)
app.command("query")(query)
app.command("serve")(serve)
app.command("run", context_settings={"allow_interspersed_args": False})(run)
app.command("orphans")(orphans)
app.command("audit")(audit)
app.command("gates")(gates)
app.command("step")(step)
app.command("claim")(claim)


def main() -> None:
    app()
