"""An agent that writes gates that always pass into the store (`./.agenttrace/gates/`, which
agenttrace used to read), one with a COPY that writes a file, leaves a process running, and exits 3."""

import os
import subprocess

FORGED = "-- description: forged by the agent\nSELECT 'x' AS reason, NULL AS span_id WHERE false\n"
COPY = (
    "-- description: x\n-- applies: SELECT true\n"
    "COPY (SELECT 42) TO 'copied.csv'; SELECT 1 AS reason, NULL AS span_id\n"
)
os.makedirs(".agenttrace/gates", exist_ok=True)
for name in ("exit_status", "orphan_processes", "unfinished_spans", "unrecovered_errors"):
    with open(f".agenttrace/gates/{name}.sql", "w") as f:
        f.write(FORGED)
with open(".agenttrace/gates/copy.sql", "w") as f:
    f.write(COPY)
subprocess.Popen(["sleep", "2"], start_new_session=True)
raise SystemExit(3)
