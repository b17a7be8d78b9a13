"""Record a corpus case again: `python tests/corpus/record.py CASE [CASE ...]`.

Runs `tests/corpus/<case>/agent.py` under `agenttrace run` in a fresh working directory (with the
case's `run.json`: extra `agenttrace run` options and environment), and replaces the case's
`store/` with the store it leaves. The label is not touched: a person writes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
AGENTTRACE = Path(sys.executable).parent / "agenttrace"


def record(case: str) -> None:
    folder = HERE / case
    settings = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    with tempfile.TemporaryDirectory(prefix=f"corpus-{case}-") as work:
        shutil.copy(folder / "agent.py", Path(work) / "agent.py")
        command = [str(AGENTTRACE), "run", "--run-id", settings.get("run_id", f"corpus-{case}")]
        command += [*settings.get("options", []), "--", sys.executable, "agent.py"]
        env = {**os.environ, "AGENTTRACE_FLUSH_INTERVAL": "0.1", **settings.get("env", {})}
        result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        print(f"{case}: exit {result.returncode}\n{result.stderr[-2000:]}")
        shutil.rmtree(folder / "store", ignore_errors=True)
        shutil.copytree(Path(work) / ".agenttrace", folder / "store", symlinks=True)


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(p.name for p in HERE.iterdir() if (p / "agent.py").exists()):
        record(name)
