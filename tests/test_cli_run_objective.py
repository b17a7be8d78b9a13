"""Objectives, claims and evidence through `agenttrace run`, with real agents: did the run do what
was asked, and can it prove it? (gates deliverables, criteria, evidence, scope, budget)"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, query, run_cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
ENDPOINTS = [f"/api/v1/{name}" for name in (
    "users", "orders", "payments", "refunds", "invoices", "carts", "sessions", "tokens", "admin", "exports",
)]  # fmt: skip


def agenttrace_run(tmp_path: Path, *args: str, timeout: float = 120) -> Any:
    return run_cli("run", "--store", str(tmp_path / "store"), *args, cwd=tmp_path, timeout=timeout)


def verdict(result: Any) -> dict[str, Any]:
    """The `--json` verdict `agenttrace run` printed."""
    return json.loads(result.stdout)


def gate(result: Any, name: str) -> dict[str, Any]:
    (found,) = [g for g in verdict(result)["gates"] if g["name"] == name]
    return found


def reasons(result: Any, name: str) -> list[str]:
    return [v["reason"] for v in gate(result, name)["violations"]]


def stored_copy(tmp_path: Path, sha256: str) -> Path:
    """Where the artifact store keeps the copy with this hash."""
    return tmp_path / "store" / "artifacts" / "sha256" / sha256[:2] / sha256


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# -- coverage --------------------------------------------------------------------------------------
COVERAGE_OBJECTIVE = f"""
goal = "Audit the ten API endpoints for authorization bypass"
scope = ["report.md"]

[[deliverables]]
path = "report.md"
min_bytes = 100

[[criteria]]
id = "all-endpoints"
covers = {json.dumps(ENDPOINTS)}
in = "report.md"
"""

AUDITOR = """
import sys
covered = int(sys.argv[1])
endpoints = {endpoints!r}
lines = ["# Authorization audit", ""]
lines += [f"- {{e}}: checked, no bypass found" for e in endpoints[:covered]]
open("report.md", "w").write("\\n".join(lines) + "\\n")
"""


def test_a_report_covering_7_of_10_endpoints_fails_criteria_naming_the_3_missing(tmp_path: Path) -> None:
    objective = write(tmp_path / "objective.toml", COVERAGE_OBJECTIVE)
    write(tmp_path / "auditor.py", AUDITOR.format(endpoints=ENDPOINTS))
    result = agenttrace_run(
        tmp_path, "--json", "--objective", str(objective), "--", sys.executable, "auditor.py", "7"
    )
    assert result.returncode == 1, result.stderr
    assert gate(result, "criteria")["status"] == "fail"
    assert reasons(result, "criteria") == [
        f'criterion all-endpoints: "{e}" is not covered in report.md' for e in ENDPOINTS[7:]
    ]
    assert [v["item"] for v in gate(result, "criteria")["violations"]] == ENDPOINTS[7:]
    assert gate(result, "deliverables")["status"] == "pass"
    assert gate(result, "scope")["status"] == "pass"
    assert "verifying: criterion all-endpoints: 7 of 10 items in report.md" in result.stderr
    assert [r for r in verdict(result)["reasons"] if r.startswith("criteria:")] == [
        f"criteria: criterion all-endpoints: {json.dumps(e)} is not covered in report.md"
        for e in ENDPOINTS[7:]
    ]


def test_a_report_covering_all_10_endpoints_passes(tmp_path: Path) -> None:
    objective = write(tmp_path / "objective.toml", COVERAGE_OBJECTIVE)
    write(tmp_path / "auditor.py", AUDITOR.format(endpoints=ENDPOINTS))
    result = agenttrace_run(
        tmp_path, "--json", "--objective", str(objective), "--", sys.executable, "auditor.py", "10"
    )
    assert result.returncode == 0, result.stderr
    assert verdict(result)["state"] == "succeeded"
    statuses = {g["name"]: g["status"] for g in verdict(result)["gates"]}
    assert {k: statuses[k] for k in ("deliverables", "criteria", "scope", "evidence", "budget")} == {
        "deliverables": "pass",
        "criteria": "pass",
        "scope": "pass",
        "evidence": "n/a",  # no claims
        "budget": "n/a",  # no limits
    }
    # The objective is stored with the run, and the deliverable is in the artifact store.
    (run,) = query(tmp_path / "store", "SELECT objective FROM runs")
    stored = json.loads(run["objective"])
    assert stored["criteria"][0]["covers"] == ENDPOINTS and stored["deliverables"][0]["min_bytes"] == 100
    (deliverable,) = query(tmp_path / "store", "SELECT * FROM artifacts WHERE role = 'deliverable'")
    content = (tmp_path / "report.md").read_bytes()
    assert deliverable["sha256"] == hashlib.sha256(content).hexdigest()
    copy = stored_copy(tmp_path, deliverable["sha256"])
    assert copy.read_bytes() == content


def test_the_audit_does_not_need_the_objective_file_any_more(tmp_path: Path) -> None:
    objective = write(tmp_path / "objective.toml", COVERAGE_OBJECTIVE)
    write(tmp_path / "auditor.py", AUDITOR.format(endpoints=ENDPOINTS))
    agenttrace_run(tmp_path, "--objective", str(objective), "--", sys.executable, "auditor.py", "9")
    objective.unlink()
    again = run_cli("audit", "last", "--json", "--store", str(tmp_path / "store"))
    assert again.returncode == 1
    assert reasons(again, "criteria") == [
        f'criterion all-endpoints: "{ENDPOINTS[9]}" is not covered in report.md'
    ]


# -- command criterion: pytest on the agent's change ----------------------------------------------
TESTS = """
from calc import add

def test_add():
    assert add(2, 3) == 5
"""

FIXER = """
import sys
body = "a + b" if sys.argv[1] == "right" else "a - b"
open("calc.py", "w").write(f"def add(a, b):\\n    return {body}\\n")
"""


def pytest_objective(tmp_path: Path) -> Path:
    # Plugin autoload off: this environment's Phoenix registers a plugin that takes ~15 s to import.
    command = (
        f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q -p no:cacheprovider test_calc.py"
    )
    return write(
        tmp_path / "objective.toml",
        f"""
        [[criteria]]
        id = "tests-pass"
        command = {json.dumps(command)}
        timeout = "2m"
        """,
    )


def run_fixer(tmp_path: Path, mode: str) -> Any:
    """The agent changes calc.py (`right` or `wrong`); the objective runs pytest on it."""
    write(tmp_path / "test_calc.py", TESTS)
    write(tmp_path / "fixer.py", FIXER)
    objective = str(pytest_objective(tmp_path))
    return agenttrace_run(
        tmp_path, "--json", "--objective", objective, "--", sys.executable, "fixer.py", mode
    )


def test_failing_tests_fail_the_run_with_pytest_output_as_evidence(tmp_path: Path) -> None:
    result = run_fixer(tmp_path, "wrong")
    assert result.returncode == 1, result.stderr
    (violation,) = gate(result, "criteria")["violations"]
    assert violation["reason"].startswith("criterion tests-pass: `")
    assert "exited with code 1 (its output is evidence sha256" in violation["reason"]
    output = stored_copy(tmp_path, violation["output_sha256"])
    text = output.read_text()
    assert "1 failed" in text and "assert -1 == 5" in text
    (check,) = query(tmp_path / "store", "SELECT * FROM verifications WHERE type = 'criterion'")
    assert (check["exit_code"], check["passed"], check["span_id"]) == (1, False, violation["span_id"])
    assert "1 failed" in check["output_tail"]
    (evidence,) = query(tmp_path / "store", "SELECT * FROM artifacts WHERE role = 'evidence'")
    assert evidence["sha256"] == violation["output_sha256"] and evidence["span_id"] == violation["span_id"]


def test_passing_tests_pass_the_run(tmp_path: Path) -> None:
    result = run_fixer(tmp_path, "right")
    assert result.returncode == 0, result.stderr
    assert gate(result, "criteria")["status"] == "pass"
    (check,) = query(tmp_path / "store", "SELECT * FROM verifications WHERE type = 'criterion'")
    assert check["exit_code"] == 0 and "1 passed" in check["output_tail"]


# -- claims ----------------------------------------------------------------------------------------
CLAIMING_AGENT = """
set -e
echo "all 10 endpoints audited" > findings.txt
{claim} "the endpoints were audited" --evidence findings.txt
echo "edited after the claim" >> findings.txt
{claim} "the fix is correct" || true
{claim} "the vendor confirms it" --evidence https://vendor.invalid/advisory/42
"""


def test_claims_without_evidence_with_changed_files_or_unfetched_urls_fail(tmp_path: Path) -> None:
    write(tmp_path / "agent.sh", CLAIMING_AGENT.format(claim=f"{BIN / 'agenttrace'} claim"))
    result = agenttrace_run(tmp_path, "--json", "--", "bash", "agent.sh")
    assert result.returncode == 1, result.stderr
    assert gate(result, "evidence")["status"] == "fail"
    found = reasons(result, "evidence")
    assert (
        found[0] == 'claim "the fix is correct" has no evidence'
        or 'claim "the fix is correct" has no evidence' in found
    )
    changed = [r for r in found if r.startswith('claim "the endpoints were audited"')]
    assert len(changed) == 1 and "evidence file findings.txt changed after the claim (sha256 " in changed[0]
    assert "at the end of the run" in changed[0]
    assert (
        'claim "the vendor confirms it": URL https://vendor.invalid/advisory/42 was never fetched with a 2xx '
        "response during the run" in found
    )
    assert len(found) == 3
    # The evidence file was copied, as it was when claimed, into the artifact store.
    (claimed,) = query(tmp_path / "store", "SELECT * FROM claim_evidence WHERE kind = 'file'")
    copy = stored_copy(tmp_path, claimed["sha256"])
    assert copy.read_text() == "all 10 endpoints audited\n"
    assert claimed["sha256_at_end"] == hashlib.sha256((tmp_path / "findings.txt").read_bytes()).hexdigest()
    # `show` lists the claims with their evidence; the claims are in the view with their step.
    shown = run_cli("show", "last", "--store", str(tmp_path / "store")).stdout
    assert '"the fix is correct"' in shown and "no evidence" in shown
    assert "NO  url https://vendor.invalid/advisory/42" in shown
    claims = query(tmp_path / "store", "SELECT text, evidence, step FROM claims ORDER BY claimed_at")
    assert [(c["text"], c["evidence"]) for c in claims] == [
        ("the endpoints were audited", ["findings.txt"]),
        ("the fix is correct", []),
        ("the vendor confirms it", ["https://vendor.invalid/advisory/42"]),
    ]
    # a shell agent's commands are its steps: each claim was made by its `agenttrace claim` step
    assert [c["step"] for c in claims] == [1, 2, 3]


BACKED_AGENT = """
import http.server, subprocess, sys, threading, urllib.request
from opentelemetry import trace

class Docs(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"advisory: fixed")
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Docs)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{{server.server_port}}/advisory/42"
# An HTTP client span as HTTP instrumentations record it (semantic conventions: url.full, status).
with trace.get_tracer("http-client").start_as_current_span("GET", kind=trace.SpanKind.CLIENT) as span:
    with urllib.request.urlopen(url) as response:
        span.set_attributes({{"http.request.method": "GET", "url.full": url,
                              "http.response.status_code": response.status}})
server.shutdown()
open("result.txt", "w").write("tests: 1 passed\\n")
with trace.get_tracer("agent").start_as_current_span("execute_tool run_tests") as tests:
    subprocess.run(["true"], check=True)
tests_span = f"span:{{tests.get_span_context().span_id:016x}}"
claim = {claim!r}
subprocess.run([claim, "claim", "the advisory says it is fixed", "--evidence", url], check=True)
evidence = ["--evidence", "result.txt", "--evidence", tests_span]
subprocess.run([claim, "claim", "the tests pass", *evidence], check=True)
"""


def test_claims_backed_by_a_fetched_url_an_unchanged_file_and_a_span_pass(tmp_path: Path) -> None:
    write(tmp_path / "agent.py", BACKED_AGENT.format(claim=str(BIN / "agenttrace")))
    result = agenttrace_run(tmp_path, "--json", "--", sys.executable, "agent.py")
    assert gate(result, "evidence") == {
        "name": "evidence",
        "status": "pass",
        "severity": "error",
        "violations": [],
        "recorded": True,
    }
    assert result.returncode == 0, result.stderr
    rows = query(
        tmp_path / "store", "SELECT kind, ref, problem FROM claim_evidence ORDER BY claim_span_id, position"
    )
    assert sorted((r["kind"], r["problem"]) for r in rows) == [("file", None), ("span", None), ("url", None)]
    (tool,) = query(tmp_path / "store", "SELECT span_id FROM spans WHERE name = 'execute_tool run_tests'")
    assert [r["ref"] for r in rows if r["kind"] == "span"] == [tool["span_id"]]


# -- deliverables, scope and budget --------------------------------------------------------------
BUDGET_AGENT = """
import sys
sys.path.insert(0, {examples!r})
import openai
from fake_model_server import start_in_thread

server, base_url = start_in_thread()
client = openai.OpenAI(base_url=base_url, api_key="not-a-real-key")
for question in ("what changed?", "is it safe?"):
    client.chat.completions.create(model="fake-gpt", messages=[{{"role": "user", "content": question}}])
server.shutdown()
mode = sys.argv[1]
if mode == "good":
    open("summary.md", "w").write("A summary long enough to count as one. " * 4)
else:
    open("summary.md", "w").write("too short")
    open("empty.md", "w").close()
    open("stray.txt", "w").write("written where it should not be")
"""

BUDGET_OBJECTIVE = """
scope = ["summary.md", "empty.md", "report.md", "out/**"]

[[deliverables]]
path = "report.md"

[[deliverables]]
path = "summary.md"
min_bytes = 100

[[deliverables]]
path = "empty.md"

[limits]
tokens = {tokens}
wall_time = "10m"
"""


def test_missing_small_and_empty_deliverables_writes_outside_scope_and_tokens_over_budget_fail(
    tmp_path: Path,
) -> None:
    write(tmp_path / "agent.py", BUDGET_AGENT.format(examples=str(EXAMPLES)))
    objective = write(tmp_path / "objective.toml", BUDGET_OBJECTIVE.format(tokens=20))
    result = agenttrace_run(
        tmp_path, "--json", "--objective", str(objective), "--", sys.executable, "agent.py", "bad"
    )
    assert result.returncode == 1, result.stderr
    assert reasons(result, "deliverables") == [
        "deliverable empty.md is empty (0 bytes)",
        "deliverable report.md does not exist",
        "deliverable summary.md has 9 bytes, fewer than the 100 the objective asks for",
    ]
    assert reasons(result, "scope") == [
        "file stray.txt was written outside the scope (allowed: summary.md, empty.md, report.md, out/**)"
    ]
    (over,) = gate(result, "budget")["violations"]
    tokens = query(
        tmp_path / "store",
        "SELECT sum(input_tokens + output_tokens) AS n, count(*) AS calls FROM steps WHERE kind = 'llm'",
    )[0]
    assert tokens["calls"] == 2 and tokens["n"] > 20
    assert over["reason"] == f"the run used {tokens['n']} tokens in 2 LLM call(s), over the limit of 20"
    assert (over["limit_name"], over["used"], over["limit_value"]) == ("tokens", tokens["n"], 20)


def test_deliverables_in_scope_and_within_budget_pass(tmp_path: Path) -> None:
    write(tmp_path / "agent.py", BUDGET_AGENT.format(examples=str(EXAMPLES)))
    objective = write(
        tmp_path / "objective.toml",
        BUDGET_OBJECTIVE.format(tokens=100_000)
        .replace('[[deliverables]]\npath = "report.md"\n\n', "")
        .replace('[[deliverables]]\npath = "empty.md"\n', ""),
    )
    result = agenttrace_run(
        tmp_path, "--json", "--objective", str(objective), "--", sys.executable, "agent.py", "good"
    )
    assert result.returncode == 0, result.stderr
    statuses = {g["name"]: g["status"] for g in verdict(result)["gates"]}
    assert (statuses["deliverables"], statuses["scope"], statuses["budget"]) == ("pass", "pass", "pass")


def test_a_timed_out_run_leaves_its_command_criteria_unrun(tmp_path: Path) -> None:
    objective = write(
        tmp_path / "objective.toml",
        """
        [[criteria]]
        id = "lint"
        command = "touch lint-ran"
        """,
    )
    result = agenttrace_run(
        tmp_path, "--json", "--timeout", "1s", "--objective", str(objective), "--", "sleep", "30"
    )
    assert result.returncode == 1
    assert reasons(result, "criteria") == ["criterion lint: `touch lint-ran` was not run: the run timed out"]
    assert not (tmp_path / "lint-ran").exists()


# -- bad objective files: rejected before the agent starts ----------------------------------------
BAD_OBJECTIVES = {
    "syntax": ('goal = "unterminated\n', "not valid TOML"),
    "unknown key": ('goal = "x"\ndeadline = "soon"\n', "deadline: unknown key"),
    "wrong type": (
        '[[deliverables]]\npath = "r.md"\nmin_bytes = "lots"\n',
        "deliverables[0].min_bytes: must be an integer",
    ),
    "dangling in": (
        '[[deliverables]]\npath = "report.md"\n\n[[criteria]]\nid = "c"\ncovers = ["/a"]\nin = "reprot.md"\n',
        "criteria[0].in: 'reprot.md' names no deliverable (the deliverables are: report.md)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", [*BAD_OBJECTIVES, "missing file"])
def test_a_bad_objective_is_rejected_before_the_agent_starts(tmp_path: Path, case: str) -> None:
    path = tmp_path / "objective.toml"
    if case == "missing file":
        expected = "objective.toml: no such file"
    else:
        text, expected = BAD_OBJECTIVES[case]
        path.write_text(text)
    result = agenttrace_run(tmp_path, "--objective", str(path), "--", "touch", "agent-started")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: objective {path}: "), result.stderr
    assert expected in lines[0]
    assert not (tmp_path / "agent-started").exists(), "the agent must not start"
    assert not (tmp_path / "store" / "spans").exists() or not any((tmp_path / "store" / "spans").iterdir())


def test_violations_carry_evidence_columns_but_not_ordering_helpers(tmp_path: Path) -> None:
    objective = write(tmp_path / "objective.toml", COVERAGE_OBJECTIVE)
    write(tmp_path / "auditor.py", AUDITOR.format(endpoints=ENDPOINTS))
    result = agenttrace_run(
        tmp_path, "--json", "--objective", str(objective), "--", sys.executable, "auditor.py", "9"
    )
    (violation,) = gate(result, "criteria")["violations"]
    assert set(violation) == {"reason", "span_id", "criterion", "item", "exit_code", "output_sha256"}
