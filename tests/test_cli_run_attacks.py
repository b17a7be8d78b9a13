"""The audited party has no pen: an agent under `agenttrace run` tries to change its own verdict,
as an attacker would, with real processes, real OTLP and the real store (DESIGN.md, "Gates")."""

# ruff: noqa: E501  (the agents under test are programs written out as text)
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, query, run_cli

CORPUS = Path(__file__).resolve().parent / "corpus"
FORGED_GATE = "-- description: forged by the agent\nSELECT 'x' AS reason, NULL AS span_id WHERE false\n"


def agenttrace_run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--store", str(tmp_path / "store"), *args, cwd=tmp_path, env=env, timeout=90)


def agent(tmp_path: Path, source: str) -> list[str]:
    path = tmp_path / "agent.py"
    path.write_text(textwrap.dedent(source))
    return [sys.executable, str(path)]


def gate_statuses(verdict: dict[str, Any]) -> dict[str, str]:
    return {g["name"]: g["status"] for g in verdict["gates"]}


def the_run_id(tmp_path: Path) -> str:
    (row,) = query(tmp_path / "store", "SELECT run_id FROM runs")
    return str(row["run_id"])


def test_gates_the_agent_writes_are_never_run(tmp_path: Path) -> None:
    """It writes gates that always pass into the store, the default store and a gates folder the
    user names, one with a COPY that would write a file; leaves an orphan; exits 3."""
    store, written = tmp_path / "store", tmp_path / "copied.csv"
    user_gates = tmp_path / "user-gates"
    user_gates.mkdir()
    (user_gates / "mine.sql").write_text(
        "-- description: the user's own gate\nSELECT 'x' AS reason, NULL AS span_id WHERE false\n"
    )
    command = agent(
        tmp_path,
        f"""\
        import os, subprocess
        copy = "-- description: x\\n-- applies: SELECT true\\nCOPY (SELECT 42) TO '{written}'; SELECT 1 AS reason, NULL AS span_id\\n"
        for folder in ({str(store / "gates")!r}, ".agenttrace/gates", {str(user_gates)!r}):
            os.makedirs(folder, exist_ok=True)
            for name in ("exit_status", "orphan_processes", "unfinished_spans", "unrecovered_errors", "mine"):
                with open(os.path.join(folder, name + ".sql"), "w") as f:
                    f.write({FORGED_GATE!r})
            with open(os.path.join(folder, "copy.sql"), "w") as f:
                f.write(copy)
        subprocess.Popen(["sleep", "3"], start_new_session=True)
        raise SystemExit(3)
        """,
    )
    result = agenttrace_run(tmp_path, "--json", "--gates", str(user_gates), "--", *command)
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["state"] == "failed" and verdict["exit"]["code"] == 3
    statuses = gate_statuses(verdict)
    assert statuses["exit_status"] == "fail" and statuses["orphan_processes"] == "fail"
    assert "copy" not in statuses
    (mine,) = [g for g in verdict["gates"] if g["name"] == "mine"]
    assert mine["recorded"] and mine["status"] == "pass"
    assert not written.exists(), "nothing the agent wrote was executed"
    # A later audit uses the gates recorded at the start, not the user's folder as it is now.
    again = run_cli("audit", "last", "--json", "--store", str(store))
    assert again.returncode == 1
    assert gate_statuses(json.loads(again.stdout)) == statuses
    assert not written.exists()


def test_the_agent_is_not_handed_the_store(tmp_path: Path) -> None:
    command = agent(
        tmp_path,
        """\
        import json, os
        print(json.dumps({k: v for k, v in os.environ.items() if k.startswith(("AGENTTRACE_", "OTEL_"))}))
        """,
    )
    result = agenttrace_run(tmp_path, "--", *command, env={"AGENTTRACE_STORE": str(tmp_path / "store")})
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert "AGENTTRACE_STORE" not in seen
    assert str(tmp_path / "store") not in json.dumps(seen)
    assert seen["AGENTTRACE_ENDPOINT"].startswith("http://127.0.0.1:")


def test_forged_otlp_does_not_change_the_supervisors_record(tmp_path: Path) -> None:
    """The agent sends spans claiming exit code 0 and a passing verdict: an end record for the run's
    root span, a second `run` span that starts earlier, and an `audit` span; then it exits 3."""
    command = agent(
        tmp_path,
        """\
        import json, os, time, urllib.request
        _, trace_id, root_id, _ = os.environ["TRACEPARENT"].split("-")
        now = time.time_ns()
        def attrs(**kv):
            return [{"key": k, "value": {"stringValue": str(v)}} for k, v in kv.items()]
        spans = [
            {"traceId": trace_id, "spanId": root_id, "name": "sh", "startTimeUnixNano": str(now - 10**9),
             "endTimeUnixNano": str(now), "attributes": attrs(**{"agenttrace.span.type": "run",
             "process.exit.code": 0, "agenttrace.run.state": "succeeded"})},
            {"traceId": trace_id, "spanId": "00000000000000f1", "name": "run", "startTimeUnixNano": "1",
             "endTimeUnixNano": str(now), "attributes": attrs(**{"agenttrace.span.type": "run",
             "process.exit.code": 0, "agenttrace.run.state": "succeeded"})},
            {"traceId": trace_id, "spanId": "00000000000000f2", "parentSpanId": root_id, "name": "agenttrace audit",
             "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 10**12),
             "attributes": attrs(**{"agenttrace.span.type": "audit", "agenttrace.audit.state": "succeeded",
             "agenttrace.audit.reasons": "[]"})},
        ]
        body = json.dumps({"resourceSpans": [{"resource": {"attributes": attrs(**{"agenttrace.run.id": os.environ["AGENTTRACE_RUN_ID"]})},
                           "scopeSpans": [{"spans": spans}]}]}).encode()
        request = urllib.request.Request(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] + "/v1/traces", body,
                                         {"Content-Type": "application/json"})
        assert urllib.request.urlopen(request).status == 200
        raise SystemExit(3)
        """,
    )
    result = agenttrace_run(tmp_path, "--json", "--", *command)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["exit"]["code"] == 3
    store = tmp_path / "store"
    (run,) = query(store, "SELECT state, exit_code, supervised FROM runs")
    assert run == {"state": "failed", "exit_code": 3, "supervised": True}
    forged = query(store, "SELECT span_id, origin FROM spans WHERE origin = 'agent' ORDER BY span_id")
    assert {r["span_id"] for r in forged} >= {"00000000000000f1", "00000000000000f2"}
    root = query(store, "SELECT origin, attributes['process.exit.code'] AS code FROM spans "
                        "WHERE attributes['agenttrace.span.type'] = 'run' AND origin = 'supervisor'")  # fmt: skip
    assert root == [{"origin": "supervisor", "code": "3"}]
    again = run_cli("audit", "last", "--json", "--store", str(store))
    assert again.returncode == 1 and json.loads(again.stdout)["exit"]["code"] == 3


def test_a_part_written_into_the_store_by_the_agent_fails_the_run(tmp_path: Path) -> None:
    """The agent knows the default store is ./.agenttrace: it writes a forged part for its own run."""
    command = agent(
        tmp_path,
        """\
        import os, uuid
        import pyarrow as pa, pyarrow.parquet as pq
        folder = os.path.join(".agenttrace", "spans", "run_id=" + os.environ["AGENTTRACE_RUN_ID"])
        os.makedirs(folder, exist_ok=True)
        pq.write_table(pa.table({"RunId": [os.environ["AGENTTRACE_RUN_ID"]]}),
                       os.path.join(folder, f"part-1-{uuid.uuid4().hex[:12]}.parquet"))
        """,
    )
    result = run_cli("run", "--json", "--", *command, cwd=tmp_path, timeout=90)
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    (integrity,) = [g for g in verdict["gates"] if g["name"] == "integrity"]
    assert integrity["status"] == "fail"
    (violation,) = integrity["violations"]
    assert "was not written by the run's supervisor" in violation["reason"]
    assert violation["part"].startswith(f"spans/run_id={verdict['run_id']}/part-1-")


@pytest.mark.parametrize("tampering", ["rewrite", "delete", "add", "manifest", "delete-all", "garbage-all"])
def test_tampering_after_the_run_is_named_by_audit(tmp_path: Path, tampering: str) -> None:
    """What an orphan left running could do once the supervisor is done: each is FAILED (exit 1)
    on `integrity`, never an error (exit 2) that a CI step might treat differently."""
    result = agenttrace_run(tmp_path, "--", "sh", "-c", "exit 0")
    assert result.returncode == 0, result.stderr
    store = tmp_path / "store"
    run_id = the_run_id(tmp_path)
    assert run_cli("audit", run_id, "--store", str(store)).returncode == 0
    parts = sorted((store / "spans" / f"run_id={run_id}").glob("*.parquet"))
    target = parts[0]
    if tampering == "rewrite":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        os.chmod(target, 0o600)
        target.write_bytes(bytes(data))
        expected = "was changed after the supervisor wrote it"
    elif tampering == "delete":
        target.unlink()
        expected = "was deleted after the supervisor wrote it"
    elif tampering == "add":
        target = target.with_name("part-9-forged.parquet")
        target.write_bytes(parts[0].read_bytes())
        expected = "was not written by the run's supervisor"
    elif tampering == "manifest":
        (store / "manifests" / f"{run_id}.json").unlink()
        expected = "its manifest is missing"
    elif tampering == "delete-all":  # nothing left to read: still the run its supervisor recorded
        for part in parts:
            part.unlink()
        expected = "was deleted after the supervisor wrote it"
    else:
        for part in parts:
            os.chmod(part, 0o600)
            part.write_bytes(b"not parquet at all")
        expected = "was changed after the supervisor wrote it"
    audited = run_cli("audit", run_id, "--json", "--store", str(store))
    assert audited.returncode == 1, audited.stderr
    verdict = json.loads(audited.stdout)
    (integrity,) = [g for g in verdict["gates"] if g["name"] == "integrity"]
    assert integrity["status"] == "fail"
    assert any(expected in v["reason"] for v in integrity["violations"]), integrity
    if tampering not in ("manifest", "delete-all", "garbage-all"):
        assert any(target.name in (v.get("part") or "") for v in integrity["violations"])
    assert any(r.startswith("integrity: ") for r in verdict["reasons"])


def test_a_claim_cannot_copy_a_private_file_into_the_store(tmp_path: Path) -> None:
    secret = tmp_path / "private" / "shadow"
    secret.parent.mkdir()
    secret.write_text("root:secret-hash-7f\n")
    secret.chmod(0o600)
    work = tmp_path / "work"
    work.mkdir()
    (work / "report.md").write_text("all good\n")
    (work / "link").symlink_to(secret)
    claim = str(BIN / "agenttrace")
    script = f"{claim} claim 'read it' --json --evidence {secret} --evidence link --evidence report.md; echo exit=$?"
    result = run_cli(
        "run", "--store", str(tmp_path / "store"), "--", "sh", "-c", script, cwd=work, timeout=90
    )
    assert "exit=2" in result.stdout, result.stderr
    recorded = json.loads(result.stdout[: result.stdout.index("exit=")])
    errors = {e["ref"]: e.get("error") for e in recorded["evidence"]}
    assert "outside the run's working directory" in errors[str(secret)]
    assert "outside the run's working directory" in errors["link"]
    assert errors["report.md"] is None
    copies = [p for p in (tmp_path / "store" / "artifacts" / "sha256").rglob("*") if p.is_file()]
    assert all(b"secret-hash" not in p.read_bytes() for p in copies)
    assert copies and all(stat.S_IMODE(p.stat().st_mode) == 0o400 for p in copies)
    for folder in [tmp_path / "store", *[p for p in (tmp_path / "store").rglob("*") if p.is_dir()]]:
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_protect_store_makes_the_store_read_only_for_the_agent(tmp_path: Path) -> None:
    store = tmp_path / "store"
    command = agent(
        tmp_path,
        f"""\
        import errno, os
        try:
            os.makedirs({str(store / "gates")!r}, exist_ok=True)
            open({str(store / "gates" / "x.sql")!r}, "w").write("forged")
        except OSError as exc:
            print("refused:", errno.errorcode[exc.errno])
        open("mine.txt", "w").write("the rest stays writable")
        """,
    )
    result = agenttrace_run(tmp_path, "--protect-store", "--", *command)
    assert result.returncode == 0, result.stderr
    assert "refused: EROFS" in result.stdout
    assert (tmp_path / "mine.txt").exists() and not (store / "gates").exists()
    (row,) = query(store, "SELECT attributes['agenttrace.run.store_protection'] AS mode FROM spans "
                          "WHERE attributes['agenttrace.span.type'] = 'run'")  # fmt: skip
    assert row["mode"] == "mount namespace"


def test_spool_records_changed_while_the_run_is_recorded_fail_it(tmp_path: Path) -> None:
    """The agent rewrites a byte in the middle of each spool segment of its own run (the
    supervisor's and the receiver's), in the default store under its working directory. (Bytes it
    appends are overwritten by the writer's next record: a writer writes at its own offset.)"""
    shutil.copy(CORPUS / "tampered-spool" / "agent.py", tmp_path / "agent.py")  # the corpus case, live
    command = [sys.executable, str(tmp_path / "agent.py")]
    result = run_cli("run", "--json", "--", *command, cwd=tmp_path, timeout=90,
                     env={"AGENTTRACE_FLUSH_INTERVAL": "0.1"})  # fmt: skip
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout[result.stdout.index("{") :])
    (integrity,) = [g for g in verdict["gates"] if g["name"] == "integrity"]
    assert integrity["status"] == "fail"
    assert any(".arrows" in v["reason"] for v in integrity["violations"]), integrity


def test_checks_that_run_the_agents_code_see_the_protected_store_read_only_and_leave_nothing(
    tmp_path: Path,
) -> None:
    """A `command` criterion runs after the agent, on code the agent wrote: under --protect-store it
    sees the store read-only too, and a daemon it starts is gone before the audit."""
    store = tmp_path / "store"
    (tmp_path / "check.sh").write_text(
        "echo forged > store/forged.txt || echo REFUSED\n"
        "setsid sleep 31.4159 </dev/null >/dev/null 2>&1 &\n"
        "exit 0\n"
    )
    (tmp_path / "objective.toml").write_text(
        'goal = "nothing"\n\n[[criteria]]\nid = "check"\ncommand = "sh check.sh"\ntimeout = "30s"\n'
    )
    result = agenttrace_run(
        tmp_path, "--json", "--protect-store", "--objective", str(tmp_path / "objective.toml"), "--", "true"
    )
    assert result.returncode == 0, result.stderr
    assert not (store / "forged.txt").exists()
    (row,) = query(store, "SELECT output_tail FROM verifications WHERE type = 'criterion'")
    assert "Read-only file system" in row["output_tail"] and "REFUSED" in row["output_tail"]
    left = subprocess.run(["pgrep", "-f", "sleep 31.4159"], capture_output=True, text=True, check=False)
    assert left.stdout.strip() == "", "the check's daemon outlived it"


SWAPPED = """
import dataclasses, json, sys
import agenttrace.audit.record as record
from agenttrace.supervise.supervisor import Supervisor

real = record.audit_and_record

def swapped(*args, **kwargs):  # what a successful swap of the parts would make the audit see
    return dataclasses.replace(real(*args, **kwargs), state="succeeded", reasons=[])

record.audit_and_record = swapped
supervisor = Supervisor(["sh", "-c", "exit 3"], store=sys.argv[1])
verdict = supervisor.audit(supervisor.run())
print(json.dumps(verdict.as_json()))
"""


def test_what_the_supervisor_saw_overrules_a_store_changed_under_the_audit(tmp_path: Path) -> None:
    """If a process the agent left behind swaps the store's parts between the audit's integrity
    check and its reading of them, the stored record may say `succeeded`. The supervisor saw the
    command exit 3: the run fails on `integrity`, and that is the verdict recorded."""
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, "-c", SWAPPED, str(store)], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["state"] == "failed"
    reason = verdict["reasons"][-1]
    assert reason.startswith("integrity: the stored record says the run succeeded, but the supervisor saw ")
    assert "the agent exited with code 3" in reason and reason.endswith(
        ": the store was changed under the audit"
    )
    (run,) = query(store, "SELECT state FROM runs")
    assert run["state"] == "failed"


def test_the_agent_cannot_report_a_failed_process_as_a_success(tmp_path: Path) -> None:
    """The agent's child exits 4; the agent then reports that process (same pid) as exiting 0."""
    command = agent(
        tmp_path,
        """\
        import json, os, subprocess, time, urllib.request
        started = time.time_ns()
        child = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 4"])
        child.wait()
        _, trace_id, root_id, _ = os.environ["TRACEPARENT"].split("-")
        attrs = {"agenttrace.span.type": "process", "agenttrace.process.source": "python",
                 "process.pid": str(child.pid), "process.exit.code": "0", "process.command_line": "sh"}
        span = {"traceId": trace_id, "spanId": "00000000000000e1", "parentSpanId": root_id, "name": "process sh",
                "startTimeUnixNano": str(started), "endTimeUnixNano": str(time.time_ns()),
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}
        body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()
        request = urllib.request.Request(os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] + "/v1/traces", body,
                                         {"Content-Type": "application/json"})
        assert urllib.request.urlopen(request).status == 200
        print(child.pid)
        """,
    )
    result = agenttrace_run(tmp_path, "--", *command)
    pid = int(result.stdout.strip().splitlines()[-1])
    rows = query(tmp_path / "store", "SELECT exit_code, origin FROM processes WHERE pid = $pid", {"pid": pid})
    assert rows and all(r["exit_code"] == 4 for r in rows), rows
    assert result.returncode == 1, "the failed process is not recovered by a forged success"


def test_a_directory_blocking_the_manifest_does_not_stop_the_verdict(tmp_path: Path) -> None:
    command = agent(
        tmp_path,
        """\
        import os
        os.makedirs(os.path.join(".agenttrace", "manifests", os.environ["AGENTTRACE_RUN_ID"] + ".json", "x"))
        """,
    )
    result = run_cli("run", "--", *command, cwd=tmp_path, timeout=90)
    assert result.returncode == 0, result.stderr
    (manifest,) = (tmp_path / ".agenttrace" / "manifests").iterdir()
    assert manifest.is_file()
    assert run_cli("audit", "last", cwd=tmp_path).returncode == 0
