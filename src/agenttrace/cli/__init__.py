"""The `agenttrace` command line: thin commands over the library."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import __version__
from .audit import audit, gates
from .claim import claim
from .clickhouse import app as clickhouse_app
from .clickhouse import push
from .common import USAGE_ERROR, State
from .diff import diff
from .export import export
from .gpus import gpus
from .orphans import orphans
from .query import query
from .report import report
from .run import replay_command, run
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
    # Plain help, as click writes it: typer's rich help imports rich.markdown and markdown-it,
    # 45 ms of every `--help` (issue 13), and plain text reads the same in a terminal and a pipe.
    rich_markup_mode=None,
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
app.command("gpus")(gpus)
app.command("diff")(diff)
app.command("replay")(replay_command)
app.command("export")(export)
app.command("report")(report)
app.command("push")(push)
app.add_typer(clickhouse_app)


class _WithoutPandas:
    """An import finder that says pandas is not installed (see `without_pandas`)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r} (kept out of agenttrace's CLI)", name=name)


def without_pandas() -> None:
    """Keep pandas out of this process. pyarrow (`pa.array`, `Schema.empty_table`) and DuckDB
    (an Arrow table registered) import it, when it is installed, only to ask whether a value is a
    DataFrame; agenttrace never hands them one, and the import costs 0.15-0.3 s of every command
    that reads or writes the store (issue 13). Both take a failed import as "not installed".
    Nothing is done where pandas is already imported."""
    if "pandas" not in sys.modules and not any(isinstance(f, _WithoutPandas) for f in sys.meta_path):
        sys.meta_path.insert(0, _WithoutPandas())


def main() -> None:
    """The console script. A usage error (an unknown option, a missing or bad argument) is one
    `Error:` line on stderr and exit 2, like every other error of agenttrace."""
    without_pandas()
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("Aborted.\n")
        sys.exit(130)
    except Exception as exc:
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        # click's UsageError and kin (typer ships its own copy of click: matched by shape)
        message = exc.format_message()
        if message:  # (none when the usage was printed already: `agenttrace` alone)
            ctx = getattr(exc, "ctx", None)
            where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            sys.stderr.write(f"Error: {message}{where}\n")
        sys.exit(USAGE_ERROR)
    sys.exit(code if isinstance(code, int) else 0)
