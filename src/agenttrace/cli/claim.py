"""`agenttrace claim TEXT --evidence X ...`: record a claim from any process inside a run."""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from .common import JsonOption, StoreOption, handle_errors, print_json, stderr

RUN_ID_ENV = "AGENTTRACE_RUN_ID"


@handle_errors
def claim(
    text: Annotated[
        str, typer.Argument(metavar="TEXT", help="The claim, in one sentence.", show_default=False)
    ],
    evidence: Annotated[
        list[str] | None,
        typer.Option(
            "--evidence",
            "-e",
            help="What backs the claim (repeat it): a file inside the run's working directory "
            "(copied, content-addressed, into the store), an http(s) URL the run fetched, or "
            "span:<id> (a tool call, a test run, a process).",
            show_default=False,
        ),
    ] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Record a claim the agent makes, with its evidence, in the run this process belongs to.

    Meant for agents in any language: under `agenttrace run`, the environment says which run and
    where its supervisor listens (AGENTTRACE_RUN_ID, AGENTTRACE_ENDPOINT, TRACEPARENT). The
    supervisor resolves the evidence and records the claim: files must be inside the run's
    working directory. The `evidence` gate fails a claim without evidence, or whose evidence does
    not resolve.

    Exit status: 0 when the claim and all its evidence were recorded; 2 when a piece of evidence
    could not be used (the claim is still recorded, and the evidence gate will fail it) or the
    process is not inside a run.

    Example: agenttrace claim "all tests pass" --evidence test-report.xml --evidence span:5f1c0a9e2b7d4c11
    """
    from pathlib import Path

    from ..errors import ConfigError
    from ..ids import is_safe_run_id
    from ..supervise.claim_desk import ENDPOINT_ENV, send_claim

    del store  # the supervisor records the claim in its store; the agent never writes one
    run_id = os.environ.get(RUN_ID_ENV)
    endpoint = os.environ.get(ENDPOINT_ENV)
    if not run_id or not endpoint:
        raise ConfigError(
            "not inside a run: `agenttrace claim` records into the run of the `agenttrace run` that "
            f"started this process ({RUN_ID_ENV} and {ENDPOINT_ENV} are not set)"
        )
    if not is_safe_run_id(run_id):
        raise ConfigError(f"{RUN_ID_ENV}={run_id!r} is not a run id")
    if not text.strip():
        raise ConfigError("a claim needs its text")
    answer = send_claim(
        endpoint, run_id, text, list(evidence or []), Path.cwd(), os.environ.get("TRACEPARENT")
    )
    span_id, items = str(answer.get("span_id")), list(answer.get("evidence") or [])
    if json_:
        print_json({"run_id": run_id, "span_id": span_id, "text": text, "evidence": items})
    else:  # stderr: the agent's stdout is its own output
        stderr().print(f"agenttrace: claim {span_id} recorded in run {run_id} with {_summary(items)}")
    problems = [f"evidence {i['ref']}: {i['error']}" for i in items if "error" in i]
    if problems:
        raise ConfigError("; ".join(problems) + " (the claim is recorded; the evidence gate will fail it)")


def _summary(items: list[dict[str, Any]]) -> str:
    if not items:
        return "no evidence (the evidence gate will fail it)"
    parts = []
    for item in items:
        if item["kind"] == "file" and "sha256" in item:
            parts.append(f"file {item['ref']} (sha256 {item['sha256'][:12]}…, {item['size']:,} bytes)")
        elif item["kind"] == "file":
            parts.append(f"file {item['ref']} ({item['error']})")
        else:
            parts.append(f"{item['kind']} {item['ref']}")
    return "evidence: " + "; ".join(parts)
