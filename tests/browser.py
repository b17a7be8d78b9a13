"""A real headless Chromium for the report's tests, driven by Playwright, and the big runs they open.

The browser is the system's Chromium (`/usr/bin/chromium`, which `make browser` installs from
Debian); Playwright only drives it: nothing is downloaded (no `playwright install`). One browser per
pytest(-xdist) worker, launched with a fresh profile (Playwright gives every launch a new temporary
user-data-dir, removed when the browser closes), and a fresh context and page for every test.

`open_report(browser, path)` loads a file in a page that records every request it makes: the
`request` events of its context and a route on `**/*` that aborts anything that is not `file:`,
`data:` or `about:` (so a request that would leave the page is both refused and recorded), plus
WebSockets, page errors, console errors and Content-Security-Policy violations.

Run as a program, this module records one big in-process run (see `big_run`):
`python tests/browser.py STORE SPANS RUN_ID`.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium: `make browser` installs it; the tests never download a browser."""

CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

LOCAL_SCHEMES = ("file:", "data:", "about:")
"""What a self-contained page may load: itself, inline data, blank frames."""

READY = 'body[data-ready="true"]'
"""The page's own sign that it has finished rendering (the report's contract)."""

CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || ''));
});
"""
"""Added to every page before its own scripts run: Chromium reports each CSP refusal here."""


@dataclass
class Recorder:
    """Everything a page tried to reach, and what went wrong while it ran."""

    requests: list[str] = field(default_factory=list)
    """Every request the page's context made (its `request` events), in order, local or not."""
    blocked: list[str] = field(default_factory=list)
    """Requests the route refused: anything not `file:`, `data:` or `about:`."""
    websockets: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions of the page's scripts."""
    console_errors: list[str] = field(default_factory=list)

    def remote(self) -> list[str]:
        """The requests that were not for a local resource."""
        return [url for url in self.requests if not url.startswith(LOCAL_SCHEMES)] + self.websockets


@contextmanager
def chromium(headless: bool = True) -> Iterator[Any]:
    """The system Chromium under Playwright, closed on exit. Fails with the command to run when
    Chromium is missing: a browser test must never pass without a browser."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.is_file():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=headless, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def recorded_page(
    browser: Any, *, bypass_csp: bool = False, viewport: dict[str, int] | None = None
) -> Iterator[tuple[Any, Recorder]]:
    """A fresh context and page whose every request, error and CSP violation is recorded.
    `bypass_csp` turns the page's Content-Security-Policy off, to check that what the page does is
    safe without it too."""
    context = browser.new_context(
        bypass_csp=bypass_csp, viewport=viewport or {"width": 1280, "height": 800}, service_workers="block"
    )
    recorder = Recorder()

    def route(route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL_SCHEMES):
            route.continue_()
        else:
            recorder.blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    context.on("request", lambda request: recorder.requests.append(request.url))
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    page.on("websocket", lambda ws: recorder.websockets.append(ws.url))
    page.on("pageerror", lambda error: recorder.errors.append(str(error)))
    page.on("console", lambda msg: recorder.console_errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page, recorder
    finally:
        context.close()


def open_report(page: Any, path: Path, timeout_ms: float = 30_000) -> None:
    """Load the report file and wait until the page says it has rendered (`body[data-ready=true]`)."""
    page.goto(path.resolve().as_uri(), wait_until="load", timeout=timeout_ms)
    page.wait_for_selector(READY, state="attached", timeout=timeout_ms)


def csp_violations(page: Any) -> list[str]:
    return page.evaluate("window.__cspViolations || []")


# --- A big run: many spans, recorded in-process by agenttrace's own exporter -----------------------


def big_run(store: Path, spans: int, run_id: str, *, derive: bool = True, timeout: float = 600) -> float:
    """Record the run `run_id` of about `spans` spans into `store` in a child process, through
    `agenttrace.run()` and the OTel SDK wired by `agenttrace.configure()` (the in-process path:
    ParquetSpanExporter, the pending-span processor); returns its wall time in seconds.

    The run is an agent loop: per turn a chat span (tokens, finish reason `tool_calls`, the last one
    `stop`), an `execute_tool` span answering it by call id, and under it an OS process span (pid,
    command line, exit code): a third of the spans are steps of each kind and a third processes.
    With `derive`, the run's derived tables are then written, as `agenttrace run` has them written
    for its runs (`analysis.derive`); without, readers compute the views from the parts."""
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}
    done = subprocess.run(
        [sys.executable, __file__, str(store), str(spans), run_id, "derive" if derive else "parts"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"recording the big run failed: {done.stderr[-2000:]}")
    return time.perf_counter() - start


def _record_big_run(store: Path, spans: int, run_id: str, derive: bool) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    import agenttrace

    provider = TracerProvider()
    exporter = agenttrace.ParquetSpanExporter(store, flush_interval=1.0)
    # A queue as big as the run: the point is a run that holds every span, not the drop policy.
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=spans + 16, max_export_batch_size=min(4096, spans + 16))
    )
    trace.set_tracer_provider(provider)
    agenttrace.configure(store, tracer_provider=provider)
    tracer = trace.get_tracer("bench.agent")
    turns = max(1, (spans + 3) // 3)  # a root span, then 3 spans a turn, the last turn 1
    with agenttrace.run("big agent", run_id=run_id):
        for turn in range(turns):
            call_id = f"call_{turn}"
            last = turn == turns - 1
            call = {"id": call_id, "type": "function", "function": {"name": "grep", "arguments": "{}"}}
            message = {"content": "done"} if last else {"tool_calls": [call]}
            output = [{"role": "assistant", **message}]
            with tracer.start_as_current_span(
                "chat gpt-4o",
                attributes={
                    "gen_ai.operation.name": "chat",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 1200,
                    "gen_ai.usage.output_tokens": 40,
                    "gen_ai.response.finish_reasons": json.dumps(["stop" if last else "tool_calls"]),
                    "gen_ai.output.messages": json.dumps(output),
                },
            ):
                pass
            if last:
                break
            with (
                tracer.start_as_current_span(
                    "execute_tool grep",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "grep",
                        "gen_ai.tool.call.id": call_id,
                        "gen_ai.tool.call.arguments": json.dumps({"pattern": f"TODO-{turn}"}),
                        "gen_ai.tool.call.result": f"src/a.py:{turn}: TODO-{turn}",
                    },
                ),
                tracer.start_as_current_span(
                    "process grep",
                    attributes={
                        "process.pid": 10_000 + turn,
                        "process.executable.name": "grep",
                        "process.command_line": f"grep -rn TODO-{turn} src/",
                        "process.exit.code": 0,
                    },
                ),
            ):
                pass
    provider.shutdown()
    if derive:
        from agenttrace.analysis.derive import derive_runs

        if run_id not in derive_runs(store, [run_id]):
            raise SystemExit(f"run {run_id}: derived tables not written")


if __name__ == "__main__":
    _record_big_run(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4] == "derive")


# --- Fixtures: import them into a test module (`from browser import browser, big_run_report`) -------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the test module (its tests run on one worker: `--dist loadscope`); every
    test opens its own context and page in it. Not for the session: a Chromium left running under
    the worker spawns and reparents processes while later modules watch process trees (the
    taskstats tests saw chromium among a command's children, and waited 10 s per attempt)."""
    with chromium() as launched:
        yield launched


@contextmanager
def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Path, bool]]:
    """A folder shared by this session's xdist workers, held under a lock: (folder, already made).
    Unless made, the folder is not there: the caller makes it, fills it and, once it is whole, adds
    the `done` marker; what a caller that failed left is removed for the next one."""
    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    folder = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = (folder / "done").is_file()
        if not made:  # what a caller that failed left behind
            shutil.rmtree(folder, ignore_errors=True)
        try:
            yield folder, made
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


BIG_SPANS = 100_000


@pytest.fixture(scope="session")
def big_run_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(store, run id) of one run of 100k spans (`big_run`), made once per test session and shared
    by its workers. Its recording time is in `bench/report.py`, not asserted here."""
    with shared_folder(tmp_path_factory, "big-run") as (folder, made):
        store = folder / "store"
        if not made:
            folder.mkdir()
            big_run(store, BIG_SPANS, "big")
            (folder / "done").touch()
    return store, "big"
