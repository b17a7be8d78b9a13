"""`agenttrace report` as a user runs it: an agent under `agenttrace run` that writes markup into
its span names, outputs, claim and answer file (the page holds it only escaped inside its JSON
block, and the verdict is agenttrace's), and the errors (an unknown run, a corrupt part, an
output that cannot be written: one `Error:` line, exit 2, nothing half-written)."""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN

from agenttrace.report.html import script_hash

CORPUS = Path(__file__).resolve().parent / "corpus"

EVIL = '</script><img src=x onerror=alert(1)><!-- </SCRIPT > \u2028 & <a href="https://evil.example/">x</a>'

AGENT = f"""
import sys, agenttrace
EVIL = {EVIL!r}
with agenttrace.run("evil"):
    with agenttrace.step(EVIL, attributes={{"agenttrace.run.state": "succeeded"}}):
        pass
    agenttrace.llm("m", input_messages=[EVIL], output_messages=[EVIL], finish_reason="stop",
                   input_tokens=1, output_tokens=1)
    with agenttrace.tool_call(EVIL, call_id="c1") as call:
        call.set_result(EVIL)
    with agenttrace.tool_call("huge " + "A" * 1_000_000, call_id="c2") as call:
        call.set_result("ok")
    forged = {{"agenttrace.span.type": "process", "process.pid": 4242, "process.exit.code": 0,
              "process.command_line": "pytest -q  # 120 passed"}}
    with agenttrace.step("process pytest", attributes=forged):
        pass
    open("answer.md", "w").write(EVIL)
    agenttrace.claim("SUCCEEDED " + EVIL, evidence=["answer.md"])
print("Run evil: SUCCEEDED")
sys.exit(3)
"""


def agenttrace(*args: str, cwd: Path, limit_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}

    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return subprocess.run(
        [str(BIN / "agenttrace"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        preexec_fn=limit,
    )


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the run `evil`, and its report written to `evil.html` next to it."""
    root = tmp_path_factory.mktemp("report-cli")
    work = root / "work"
    work.mkdir()
    store = root / "store"
    done = agenttrace(
        "run", "--store", str(store), "--run-id", "evil", "--", sys.executable, "-c", AGENT, cwd=work
    )
    assert done.returncode == 1, done.stderr
    written = agenttrace("report", "evil", "--store", str(store), "-o", str(root / "evil.html"), cwd=root)
    assert written.returncode == 0, written.stderr
    assert written.stderr.strip() == f"Wrote {root / 'evil.html'}"
    return store


def data_block(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="run-data">(.*?)</script>', html, re.S)
    assert match
    return json.loads(match.group(1))


def test_agent_written_markup_is_only_escaped_data_and_the_verdict_is_agenttraces(evil: Path) -> None:
    html = (evil.parent / "evil.html").read_text(encoding="utf-8")
    assert len(re.findall(r"<script", html, re.I)) == 2 and len(re.findall(r"</script", html, re.I)) == 2
    assert "<img" not in html and "<!--" not in html and "<a " not in html and "onerror=alert(1)>" not in html
    assert "\u2028" not in html
    assert "://" not in html  # no URL at all: nothing external to load, in the page or its data
    document = data_block(html)
    names = {s["name"] for s in document["steps"]["items"]}
    assert EVIL in names and f"execute_tool {EVIL}" in names  # the text itself, shown as text
    assert document["claims"]["items"][0]["text"] == "SUCCEEDED " + EVIL
    audited = json.loads(agenttrace("audit", "evil", "--json", "--store", str(evil), cwd=evil.parent).stdout)
    assert document["verdict"]["state"] == audited["state"] == "failed"
    assert document["verdict"]["reasons"] == audited["reasons"]
    assert re.search(r"<title>agenttrace report: evil failed</title>", html)


def test_the_csp_allows_exactly_the_one_inline_script_and_nothing_external(evil: Path) -> None:
    html = (evil.parent / "evil.html").read_text(encoding="utf-8")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', html)
    assert csp
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    policy = csp.group(1).replace("&#x27;", "'")
    assert f"script-src '{script_hash(scripts[0])}'" in policy
    assert policy.startswith("default-src 'none';") and "img-src data:" in policy
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)


def test_json_and_stdout(evil: Path, tmp_path: Path) -> None:
    done = agenttrace(
        "report", "evil", "--store", str(evil), "--json", "-o", str(tmp_path / "r.html"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["run_id"] == "evil" and info["path"] == str(tmp_path / "r.html")
    assert info["bytes"] == (tmp_path / "r.html").stat().st_size and info["spans"] > 0
    assert info["limits"]["steps"] == 2000 and info["limits"]["bars"] == 5000
    piped = agenttrace("report", "evil", "--store", str(evil), "-o", "-", cwd=tmp_path)
    assert piped.returncode == 0 and piped.stdout.startswith("<!DOCTYPE html>")
    assert data_block(piped.stdout)["verdict"] == data_block((tmp_path / "r.html").read_text())["verdict"]
    default = agenttrace("report", "last", "--store", str(evil), cwd=tmp_path)
    assert default.returncode == 0 and (tmp_path / "agenttrace-report-evil.html").is_file()


def test_errors_are_one_line_and_leave_nothing_half_written(evil: Path, tmp_path: Path) -> None:
    unknown = agenttrace("report", "nope", "--store", str(evil), cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.startswith("Error: no run matches 'nope'")
    assert len(unknown.stderr.strip().splitlines()) == 1

    (tmp_path / "file").write_text("x")
    for target in (tmp_path / "file" / "r.html", tmp_path / "missing" / "r.html", tmp_path):
        done = agenttrace("report", "evil", "--store", str(evil), "-o", str(target), cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.startswith("Error: cannot write the report to"), (
            done.stderr
        )
        assert len(done.stderr.strip().splitlines()) == 1

    # a file size limit the store's files fit in and the page does not: the write fails midway
    largest = max(p.stat().st_size for p in evil.rglob("*") if p.is_file())
    page = (evil.parent / "evil.html").stat().st_size
    assert largest + 1024 < page
    old = tmp_path / "old.html"
    old.write_text("the previous report")
    full = agenttrace(
        "report", "evil", "--store", str(evil), "-o", str(old), cwd=tmp_path, limit_bytes=largest + 1024
    )
    assert full.returncode == 2 and full.stderr.startswith("Error: cannot write the report to"), full.stderr
    assert old.read_text() == "the previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "old.html"]


def test_a_corrupt_part_is_an_error(evil: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    subprocess.run(["cp", "-r", str(evil), str(store)], check=True)
    part = sorted((store / "spans" / "run_id=evil").glob("*.parquet"))[0]
    part.write_bytes(b"not parquet at all")
    done = agenttrace("report", "evil", "--store", str(store), "-o", str(tmp_path / "r.html"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "corrupt part" in errors[0] and part.name in errors[0]
    assert not (tmp_path / "r.html").exists()


def test_runs_index_links_each_runs_report_and_filters_by_since_and_state(evil: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    subprocess.run(["cp", "-r", str(evil), str(store)], check=True)
    made = agenttrace(
        "run", "--store", str(store), "--run-id", "ok", "--", "sh", "-c", "exit 0", cwd=tmp_path
    )
    assert made.returncode == 0, made.stderr

    def index(*args: str) -> tuple[dict[str, Any], dict[str, Any]]:
        out = tmp_path / "out" / f"index{len(list((tmp_path).glob('out/index*')))}.html"
        out.parent.mkdir(exist_ok=True)
        done = agenttrace(
            "report", "--runs", "--store", str(store), "-o", str(out), "--json", *args, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        html = out.read_text(encoding="utf-8")
        assert "://" not in html
        match = re.search(r'<script type="application/json" id="runs-data">(.*?)</script>', html, re.S)
        assert match
        return json.loads(done.stdout), json.loads(match.group(1))

    info, data = index()
    assert {(r["run_id"], r["state"], r["report"]) for r in data["runs"]} == {
        ("evil", "failed", "agenttrace-report-evil.html"),
        ("ok", "succeeded", "agenttrace-report-ok.html"),
    }
    assert {r["run_id"] for r in info["runs"]} == {"evil", "ok"}
    for run in info["runs"]:
        written = data_block(Path(run["path"]).read_text(encoding="utf-8"))
        assert written["verdict"]["state"] == run["state"]
        assert Path(run["path"]).parent == tmp_path / "out"
    evil_row = next(r for r in data["runs"] if r["run_id"] == "evil")
    assert "exit_status" in evil_row["failing_gates"] and evil_row["tokens"] == 2

    assert [r["run_id"] for r in index("--state", "failed")[1]["runs"]] == ["evil"]
    assert [r["run_id"] for r in index("--state", "succeeded", "--state", "failed")[1]["runs"]] != []
    assert index("--since", "1ms")[1]["runs"] == []
    assert {r["run_id"] for r in index("--since", "2h")[1]["runs"]} == {"evil", "ok"}

    for bad in (["evil", "--runs"], ["--runs", "--since", "soon"], ["evil", "--state", "failed"]):
        done = agenttrace("report", *bad, "--store", str(store), cwd=tmp_path)
        assert done.returncode == 2 and done.stderr.startswith("Error:"), done.stderr


def test_token_counts_past_2_63_are_shown_not_an_error(tmp_path: Path) -> None:
    """The agent's word on its tokens (2^62 + 2^62, twice: the corpus run forged-token-overflow)
    overflowed a BIGINT sum and the report of the run was an `Error:` line."""
    store = tmp_path / "store"
    shutil.copytree(CORPUS / "forged-token-overflow" / "store", store, symlinks=True)
    result = agenttrace(
        "report", "corpus-forged-token-overflow", "--store", str(store), "-o", "r.html", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    data = data_block((tmp_path / "r.html").read_text(encoding="utf-8"))
    assert data["verdict"]["state"] == "failed"
    assert data["tokens"]["total"]["tokens"] == 4 * 2**62


def test_an_agents_megabyte_name_is_cut_and_the_page_stays_small(evil: Path) -> None:
    """A 1 MB tool name (the agent's word) is shown cut to `other_chars`, marked, and said in
    the limits; it went into the page whole, twice, before."""
    html = (evil.parent / "evil.html").read_text(encoding="utf-8")
    assert len(html) < 300_000
    document = data_block(html)
    (huge,) = [s["name"] for s in document["steps"]["items"] if s["name"].startswith("execute_tool huge")]
    limit = document["limits"]["other_chars"]
    assert (
        huge
        == ("execute_tool huge " + "A" * 1_000_000)[:limit] + f" … [cut: {limit:,} of 1,000,018 characters]"
    )
    assert document["limits"]["applied"]["other_text"] is True


def test_a_process_only_the_agent_reported_is_marked_as_its_word(evil: Path) -> None:
    document = data_block((evil.parent / "evil.html").read_text(encoding="utf-8"))
    by_pid = {p["pid"]: p for p in document["processes"]["items"]}
    assert by_pid[4242]["command_line"] == "pytest -q  # 120 passed"
    assert by_pid[4242]["reported_by_agent"] is True
    watched = [p for pid, p in by_pid.items() if pid != 4242]
    assert watched and not any(p["reported_by_agent"] for p in watched)
