"""`agenttrace report RUN` opened in a real headless Chromium (Debian's, driven by Playwright; see
tests/browser.py): the runs of `make demo` (the research agent with the demo objective, once passing
and once cut short), an attacker that writes markup and a fake verdict everywhere it can, and a run
of 100k spans. Every page is checked to make no request beyond its own file."""

# ruff: noqa: E501  (the attacker agent is a program written out as text)
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import (  # two fixtures among them
    big_run_store,  # noqa: F401
    browser,  # noqa: F401
    csp_violations,
    open_report,
    recorded_page,
    shared_folder,
)
from conftest import BIN

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

PAYLOAD = "</script><img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
FAKE_VERDICT = '<section id="verdict" data-state="succeeded">SUCCEEDED: every gate passes</section>'
PAYLOAD_FILE = "<img src=x onerror=\"document.title='pwned'\">.md"
"""A file the attacker writes outside its scope: the `scope` gate's reason names it."""

ATTACKER = f"""\
import json, subprocess, sys, time
from pathlib import Path
from opentelemetry import trace
import agenttrace

P, F = {PAYLOAD!r}, {FAKE_VERDICT!r}
tracer = trace.get_tracer("attacker")
with tracer.start_as_current_span("execute_tool " + P + F, attributes={{
    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": P, "gen_ai.tool.call.id": "call_1",
    "gen_ai.tool.call.arguments": json.dumps({{"q": P}}), "gen_ai.tool.call.result": P + F}}):
    Path("answer.md").write_text(P + F)
    Path({PAYLOAD_FILE!r}).write_text(P)
with tracer.start_as_current_span("chat " + P, attributes={{
    "gen_ai.operation.name": "chat", "gen_ai.request.model": P + F,
    "gen_ai.response.finish_reasons": json.dumps(["stop"]),
    "gen_ai.output.messages": json.dumps([{{"role": "assistant", "content": P + F}}])}}):
    pass
agenttrace.claim(P + F, evidence=["answer.md"])
never = tracer.start_span("execute_tool never-returns " + P, attributes={{
    "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "never", "gen_ai.tool.call.id": "call_2"}})
subprocess.Popen(["sleep", "5"], start_new_session=True, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # left alive: an orphan
time.sleep(1.2)  # the tool call hangs: its start record goes out after a flush interval (0.5 s)
trace.get_tracer_provider().force_flush()
sys.exit(3)
"""
"""An agent under `agenttrace run` that puts markup, a script and a fake verdict in its span names,
tool arguments and results, model output, claim, answer file and a file name (OTel SDK spans sent to
the run's receiver by the bootstrap), leaves a tool call that never returns and an orphan, exits 3."""

ATTACKER_OBJECTIVE = """\
goal = "answer"
scope = ["answer.md"]

[[deliverables]]
path = "answer.md"

[[criteria]]
id = "real-answer"
covers = ["the real answer"]
in = "answer.md"
"""

TEXT_OUTSIDE_SCRIPTS = """() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!node.parentElement.closest('script, style')) out.push(node.data);
  }
  return out.join('\\n');
}"""
"""All the text the page shows (or holds in collapsed parts), not counting its scripts."""

IN_VIEW = """(id) => {
  const el = document.getElementById(id);
  if (!el) return false;
  const r = el.getBoundingClientRect();
  return r.width > 0 && r.height > 0 && r.bottom > 0 && r.top < window.innerHeight
      && r.right > 0 && r.left < window.innerWidth;
}"""

VERDICT_FIRST = """() => {
  const verdict = document.querySelector('#verdict');
  const others = [...document.querySelectorAll('body section, body h1, body h2, body svg')].filter((e) => !verdict.contains(e));
  return others.every((e) => verdict.compareDocumentPosition(e) & Node.DOCUMENT_POSITION_FOLLOWING);
}"""
"""Nothing the page shows comes before the verdict."""

LINK_TARGET = """(a) => {
  const raw = a.getAttribute('href').slice(1);
  return document.getElementById(raw) ? raw : (document.getElementById(decodeURIComponent(raw)) ? decodeURIComponent(raw) : null);
}"""


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}


def agenttrace(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "agenttrace"), *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def json_of(*args: str, cwd: Path, timeout: float = 120) -> Any:
    done = agenttrace(*args, "--json", cwd=cwd, timeout=timeout)
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def report(store: Path, run_id: str, out: Path, timeout: float = 120) -> dict[str, Any]:
    done = agenttrace(
        "report", run_id, "--store", str(store), "-o", str(out), "--json", cwd=out.parent, timeout=timeout
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert Path(info["path"]).resolve() == out.resolve() and out.is_file()
    return info


class Run:
    """A recorded run, its report, and what the CLI says about it (the page must agree). Kept as
    JSON next to the run, so that the pytest workers of a session share one recording."""

    def __init__(self, store: Path, facts: dict[str, Any]) -> None:
        self.store = store
        self.run_id: str = facts["run_id"]
        self.html = Path(facts["html"])
        self.info: dict[str, Any] = facts["info"]
        self.audit: dict[str, Any] = facts["audit"]
        self.steps: int = facts["steps"]
        self.step_spans: list[dict[str, Any]] = facts["step_spans"]
        self.processes: list[dict[str, Any]] = facts["processes"]
        self.unfinished: list[dict[str, Any]] = facts["unfinished"]
        self.claims: list[dict[str, Any]] = facts["claims"]

    @classmethod
    def recorded(cls, store: Path, run_id: str, html: Path) -> Run:
        """Write the run's report and ask the CLI what the page must show."""
        cwd = html.parent

        def query(sql: str) -> list[dict[str, Any]]:
            return json_of("query", sql, "--store", str(store), cwd=cwd)

        facts = {
            "run_id": run_id,
            "html": str(html),
            "info": report(store, run_id, html),
            "audit": json_of("audit", run_id, "--store", str(store), cwd=cwd),
            "steps": json_of("step", run_id, "1", "--store", str(store), cwd=cwd)["of"],
            "step_spans": query(f"SELECT span_id FROM steps WHERE run_id = '{run_id}'"),
            "processes": query(
                f"SELECT span_id, pid, exit_code, alive_at_exit FROM processes WHERE run_id = '{run_id}'"
            ),
            "unfinished": query(f"SELECT span_id FROM spans WHERE run_id = '{run_id}' AND NOT ended"),
            "claims": query(f"SELECT span_id FROM claims WHERE run_id = '{run_id}'"),
        }
        (cwd / f"{run_id}.json").write_text(json.dumps(facts))
        return cls(store, facts)

    @classmethod
    def load(cls, store: Path, run_id: str, folder: Path) -> Run:
        return cls(store, json.loads((folder / f"{run_id}.json").read_text()))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The two runs of `make demo`, in a copy of the examples: "succeeded" and "failed"."""
    with shared_folder(tmp_path_factory, "report-demo") as (root, made):
        store = root / "store"
        if not made:
            root.mkdir()
            shutil.copytree(EXAMPLES, root / "examples", ignore=shutil.ignore_patterns("__pycache__"))
            agent = [sys.executable, "examples/research_agent.py", "--report", "demo-answer.md"]
            for run_id, extra, code in (("good", [], 0), ("bad", ["--model", "fake-truncating"], 1)):
                (root / "demo-answer.md").unlink(missing_ok=True)
                done = agenttrace(
                    "run", "--store", str(store), "--run-id", run_id, "--objective", "examples/objective.toml",
                    "--", *agent, *extra, cwd=root,
                )  # fmt: skip
                assert done.returncode == code, done.stderr
                Run.recorded(store, run_id, root / f"{run_id}.html")
            (root / "done").touch()
        runs = {run.audit["state"]: run for run in (Run.load(store, r, root) for r in ("good", "bad"))}
    assert set(runs) == {"succeeded", "failed"}
    return runs


@pytest.fixture(scope="module")
def attack(tmp_path_factory: pytest.TempPathFactory) -> Run:
    with shared_folder(tmp_path_factory, "report-attack") as (root, made):
        store = root / "store"
        if not made:
            root.mkdir()
            (root / "agent.py").write_text(ATTACKER)
            (root / "objective.toml").write_text(ATTACKER_OBJECTIVE)
            done = agenttrace(
                "run", "--store", str(store), "--run-id", "attack", "--objective", "objective.toml",
                "--", sys.executable, "agent.py", cwd=root,
            )  # fmt: skip
            assert done.returncode == 1, done.stderr
            Run.recorded(store, "attack", root / "attack.html")
            (root / "done").touch()
        return Run.load(store, "attack", root)


@pytest.fixture
def page(browser: Any) -> Iterator[tuple[Any, Any]]:  # noqa: F811
    with recorded_page(browser, viewport={"width": 1280, "height": 600}) as opened:
        yield opened


def assert_nothing_left_the_page(page: Any, recorder: Any, html: Path) -> None:
    assert [url for url in recorder.requests if not url.startswith("data:")] == [html.resolve().as_uri()]
    assert recorder.blocked == [] and recorder.remote() == []
    assert recorder.errors == [] and recorder.console_errors == []
    assert csp_violations(page) == []


def assert_verdict_and_gates(page: Any, run: Run) -> None:
    """The page's verdict and every gate's status and reasons are the audit's."""
    verdict = run.audit["state"]
    assert page.locator("#verdict").count() == 1
    assert page.get_attribute("#verdict", "data-state") == verdict
    assert verdict in page.inner_text("#verdict").lower()
    assert page.evaluate(VERDICT_FIRST)
    for gate in run.audit["gates"]:
        element = page.locator(f'#gates .gate[data-gate="{gate["name"]}"]')
        assert element.count() == 1, gate["name"]
        assert element.get_attribute("data-status") == gate["status"], gate["name"]
        text = element.text_content()
        for violation in gate["violations"] if gate["status"] == "fail" else []:
            assert violation["reason"] in text, (gate["name"], violation["reason"])
            if violation.get("span_id"):
                link = element.locator(f'a.reason[href="#span-{violation["span_id"]}"]')
                assert violation["reason"] in link.all_text_contents(), violation


def test_the_verdict_the_gate_reasons_and_the_step_count_are_on_the_page(
    demo: dict[str, Run], page: Any
) -> None:
    tab, recorder = page
    for run in demo.values():
        open_report(tab, run.html)
        assert_verdict_and_gates(tab, run)
        assert str(run.steps) in tab.text_content("#step-count")
        assert_nothing_left_the_page(tab, recorder, run.html)
        recorder.requests.clear()
    failed = demo["failed"].audit
    assert {g["name"] for g in failed["gates"] if g["status"] == "fail"} == {"completion_signal", "criteria"}


def test_clicking_a_gate_reason_scrolls_to_its_span_and_highlights_it(
    demo: dict[str, Run], page: Any
) -> None:
    tab, recorder = page
    run = demo["failed"]
    open_report(tab, run.html)
    links = tab.locator("#gates a.reason")
    assert links.count() == sum(len(g["violations"]) for g in run.audit["gates"] if g["status"] == "fail")
    for i in range(links.count()):
        link = links.nth(i)
        target = link.evaluate(LINK_TARGET)
        assert target is not None and target.startswith("span-"), link.get_attribute("href")
        tab.evaluate("window.scrollTo(0, 0)")
        link.scroll_into_view_if_needed()
        assert not tab.evaluate(IN_VIEW, target), (
            f"{target} is in view before the click: the test proves nothing"
        )
        link.click()
        tab.wait_for_function(
            f"(id) => document.getElementById(id).classList.contains('highlight') && ({IN_VIEW})(id)",
            arg=target,
        )
        assert tab.locator(f'[id="{target}"]').is_visible()
    assert_nothing_left_the_page(tab, recorder, run.html)


def bars(tab: Any, kind: str) -> list[dict[str, str | None]]:
    return tab.evaluate(
        """(kind) => [...document.querySelectorAll(`svg#timeline rect.bar[data-kind="${kind}"]`)].map(
            (r) => ({span: r.dataset.spanId ?? null, exit: r.dataset.exitCode ?? null,
                     orphaned: r.dataset.orphaned ?? null, unfinished: r.dataset.unfinished ?? null}))""",
        kind,
    )


def test_the_timeline_has_a_bar_per_step_and_per_process(demo: dict[str, Run], page: Any) -> None:
    tab, recorder = page
    for run in demo.values():
        open_report(tab, run.html)
        steps = bars(tab, "step")
        assert len(steps) == run.steps
        assert sorted(b["span"] for b in steps) == sorted(s["span_id"] for s in run.step_spans)
        processes = {b["span"]: b for b in bars(tab, "process")}
        assert set(processes) == {p["span_id"] for p in run.processes} and len(run.processes) >= 1
        for process in run.processes:
            shown = processes[process["span_id"]]["exit"]
            assert shown == (None if process["exit_code"] is None else str(process["exit_code"])), process
        assert bars(tab, "aggregate") == []
        assert_nothing_left_the_page(tab, recorder, run.html)
        recorder.requests.clear()


SECTIONS = """() => {
  const q = (s) => [...document.querySelectorAll(s)];
  return {
    steps: q('#steps .step').map((s) => Number(s.dataset.step)),
    claims: q('#claims .claim').map((c) => c.dataset.status),
    criteria: q('#objective .criterion').map((c) => c.dataset.status),
    tree: document.querySelector('#process-tree').textContent,
    orphaned: q('#process-tree li').filter((li) => /orphan/i.test(li.textContent)).length,
    tokens: document.querySelector('#tokens').textContent,
    environment: document.querySelector('#environment').textContent,
    unlinked: q('svg#timeline rect.bar[data-span-id]').map((r) => r.dataset.spanId)
      .filter((id) => !document.getElementById('span-' + id)),
  };
}"""
"""What the page's sections hold, by the contract's hooks."""


def test_the_sections_hold_the_runs_steps_processes_claims_criteria_tokens_and_environment(
    demo: dict[str, Run], attack: Run, page: Any
) -> None:
    tab, recorder = page
    for run in [*demo.values(), attack]:
        open_report(tab, run.html)
        shown = tab.evaluate(SECTIONS)
        assert shown["steps"] == list(range(1, run.steps + 1))
        assert len(shown["claims"]) == len(run.claims) and "ok" in shown["claims"]
        for process in run.processes:
            assert str(process["pid"]) in shown["tree"]
        assert shown["orphaned"] >= sum(1 for p in run.processes if p["alive_at_exit"])
        assert "token" in shown["tokens"].lower() and "argv" in shown["environment"]
        assert shown["unlinked"] == []  # every bar with a span leads to it on the page
        recorder.requests.clear()
    failed = demo["failed"]
    open_report(tab, failed.html)
    statuses = tab.evaluate(SECTIONS)["criteria"]
    assert len(statuses) == 2 and len(set(statuses)) == 2  # answers-the-question failed, the compile passed
    assert_nothing_left_the_page(tab, recorder, failed.html)


BAR_GEOMETRY = """() => [...document.querySelectorAll('svg#timeline rect.bar')].map(
  (r) => [r.getAttribute('x'), r.getAttribute('width'), r.getAttribute('display')].join(' '))"""


def test_the_timeline_zooms_and_pans_with_its_buttons_the_wheel_and_a_drag(
    demo: dict[str, Run], page: Any
) -> None:
    tab, recorder = page
    run = demo["succeeded"]
    open_report(tab, run.html)
    tab.locator("svg#timeline").scroll_into_view_if_needed()
    whole = tab.evaluate(BAR_GEOMETRY)
    tab.click("#zoom-in")
    zoomed = tab.evaluate(BAR_GEOMETRY)
    assert zoomed != whole
    tab.click("#zoom-out")
    assert tab.evaluate(BAR_GEOMETRY) == whole
    tab.click("#zoom-in")
    tab.click("#zoom-reset")
    assert tab.evaluate(BAR_GEOMETRY) == whole
    box = tab.locator("svg#timeline").bounding_box()
    x, y = box["x"] + box["width"] * 0.6, box["y"] + min(box["height"] / 2, 60)
    tab.mouse.move(x, y)
    tab.mouse.wheel(0, -400)
    tab.wait_for_function(f"() => JSON.stringify(({BAR_GEOMETRY})()) !== {json.dumps(json.dumps(whole))}")
    wheeled = tab.evaluate(BAR_GEOMETRY)
    tab.mouse.down()
    tab.mouse.move(x - 200, y, steps=5)
    tab.mouse.up()
    assert tab.evaluate(BAR_GEOMETRY) not in (wheeled, whole)
    assert_nothing_left_the_page(tab, recorder, run.html)


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["with-csp", "csp-off"])
def test_what_the_agent_wrote_is_inert_text_and_its_fake_verdict_is_not_the_verdict(
    attack: Run,
    browser: Any,  # noqa: F811
    bypass_csp: bool,
) -> None:
    """The page is safe by how it builds the DOM, not only by its Content-Security-Policy: with the
    policy turned off the agent's markup still does nothing."""
    source = attack.html.read_text(encoding="utf-8")
    for written in (PAYLOAD, FAKE_VERDICT, "<img src=x", "<script>document.title"):
        assert written not in source
    with recorded_page(browser, bypass_csp=bypass_csp) as (tab, recorder):
        open_report(tab, attack.html)
        title = tab.title()
        assert attack.audit["state"] == "failed"
        assert_verdict_and_gates(tab, attack)
        assert "succeeded" not in tab.inner_text("#verdict").lower()
        assert "pwned" not in title
        policy = tab.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
        assert policy is not None and "default-src 'none'" in policy and "script-src 'sha256-" in policy
        shown = tab.evaluate(TEXT_OUTSIDE_SCRIPTS)
        assert PAYLOAD in shown and FAKE_VERDICT in shown and PAYLOAD_FILE in shown
        assert tab.evaluate("document.querySelectorAll('[onerror], img[src=\"x\"]').length") == 0
        scripts = tab.evaluate("[...document.scripts].map((s) => [s.type, s.id, s.src])")
        assert [s for s in scripts if s[0] not in ("application/json",)] == [["", "", ""]], scripts
        assert [s[1] for s in scripts if s[0] == "application/json"] == ["run-data"]
        for link in tab.locator(
            "a.reason"
        ).all():  # every reason, even a file named with markup, leads somewhere
            assert link.evaluate(LINK_TARGET) is not None, link.get_attribute("href")
            link.click()
        tab.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        assert tab.title() == title and "pwned" not in tab.title()
        assert tab.get_attribute("#verdict", "data-state") == "failed"
        assert_nothing_left_the_page(tab, recorder, attack.html)


def test_unfinished_and_orphaned_work_is_marked_on_the_timeline(attack: Run, page: Any) -> None:
    tab, _ = page
    open_report(tab, attack.html)
    unfinished = attack.unfinished
    orphans = [p["span_id"] for p in attack.processes if p["alive_at_exit"]]
    assert unfinished and orphans
    all_bars = [b for kind in ("step", "process", "verification") for b in bars(tab, kind)]
    marked = {b["span"] for b in all_bars if b["unfinished"] == "true"}
    assert {s["span_id"] for s in unfinished} & {s["span_id"] for s in attack.step_spans} <= marked
    assert marked
    assert {b["span"] for b in bars(tab, "process") if b["orphaned"] == "true"} == set(orphans)


def test_a_100k_span_run_opens_with_aggregated_bars_and_its_limits_stated(
    big_run_store: tuple[Path, str],  # noqa: F811
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The run's report opens in the browser; how long it takes is measured by bench/report.py."""
    store, run_id = big_run_store
    html = tmp_path / "big.html"
    info = report(store, run_id, html, timeout=600)
    assert info["spans"] >= 100_000
    limits = info["limits"]
    assert limits["applied"]["steps"] and limits["applied"]["bars"] and limits["applied"]["tree_nodes"]
    of = json_of("step", run_id, "1", "--store", str(store), cwd=tmp_path)["of"]
    with recorded_page(browser) as (tab, recorder):
        open_report(tab, html, timeout_ms=300_000)
        assert tab.get_attribute("#verdict", "data-state") == "succeeded"
        assert str(of) in tab.text_content("#step-count").replace(",", "")
        counts = tab.evaluate(
            """() => { const c = {}; document.querySelectorAll('svg#timeline rect.bar').forEach(
                (r) => { c[r.dataset.kind] = (c[r.dataset.kind] || 0) + 1; }); return c; }"""
        )
        assert counts.get("aggregate", 0) > 0 and sum(counts.values()) <= limits["bars"], counts
        stated = tab.text_content("#limits")
        assert f"{limits['bars']:,}" in stated and f"{limits['steps']:,}" in stated
        assert tab.locator("#steps .step").count() <= limits["steps"]
        assert tab.locator("#process-tree li").count() <= limits["tree_nodes"]
        assert_nothing_left_the_page(tab, recorder, html)


def test_the_recorder_sees_and_refuses_every_request_a_page_makes(browser: Any, tmp_path: Path) -> None:  # noqa: F811
    """What the checks above rely on: a page that reaches out is caught, however it does it."""
    page_file = tmp_path / "leaky.html"
    page_file.write_text(
        "<!doctype html><html><body><img src='http://192.0.2.1/pixel.png'><img src='local.png'>"
        "<script>try { new WebSocket('ws://192.0.2.1/ws'); } catch (e) {}"
        "fetch('https://192.0.2.1/beacon').catch(() => {}).finally(() => { document.body.dataset.ready = 'true'; });"
        "</script></body></html>"
    )
    with recorded_page(browser) as (tab, recorder):
        open_report(tab, page_file)
        assert (
            "http://192.0.2.1/pixel.png" in recorder.blocked
            and "https://192.0.2.1/beacon" in recorder.blocked
        )
        assert (tmp_path / "local.png").as_uri() in recorder.requests
        assert set(recorder.remote()) >= {
            "http://192.0.2.1/pixel.png",
            "https://192.0.2.1/beacon",
            "ws://192.0.2.1/ws",
        }
