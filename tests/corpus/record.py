"""Record a corpus case again: `python tests/corpus/record.py CASE [CASE ...]`.

Runs the case's agent under `agenttrace run` in a fresh working directory and replaces the case's
`store/` with the store it leaves. The label is not touched: a person writes it.

What a case folder may hold besides `label.json` and `store/`:
  agent.py / agent.sh / ...  the agent; every file not named below is copied into the working
                             directory (folders too: fixtures the agent works on)
  run.json                   {"command": [...], "options": [...], "env": {...}, "run_id": "..."}:
                             the command (default `python agent.py`; "{python}" is this Python),
                             extra `agenttrace run` options and environment
  model.json                 the case's model (scripted_model.py): served on loopback for the run,
                             with OPENAI_BASE_URL, ANTHROPIC_BASE_URL and dummy keys set
  README.md                  how the run was recorded, for a person
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripted_model import ScriptedModel

HERE = Path(__file__).resolve().parent
AGENTTRACE = Path(sys.executable).parent / "agenttrace"
NOT_COPIED = {"label.json", "store", "run.json", "model.json", "README.md"}


def record(case: str) -> None:
    folder = HERE / case
    settings = json.loads((folder / "run.json").read_text()) if (folder / "run.json").exists() else {}
    model = None
    env = {**os.environ, "AGENTTRACE_FLUSH_INTERVAL": "0.1"}
    if (folder / "model.json").exists():
        model = ScriptedModel(json.loads((folder / "model.json").read_text())["answers"]).start()
        env |= {
            "OPENAI_BASE_URL": model.base_url + "/v1",
            "OPENAI_API_KEY": "sk-corpus",
            "ANTHROPIC_BASE_URL": model.base_url,
            "ANTHROPIC_API_KEY": "sk-ant-corpus",
        }
    env |= settings.get("env", {})
    with tempfile.TemporaryDirectory(prefix=f"corpus-{case}-") as work:
        for item in folder.iterdir():
            if item.name not in NOT_COPIED:
                copy = shutil.copytree if item.is_dir() else shutil.copy
                copy(item, Path(work) / item.name)
        agent = [
            part.replace("{python}", sys.executable)
            for part in settings.get("command", ["{python}", "agent.py"])
        ]
        command = [str(AGENTTRACE), "run", "--run-id", settings.get("run_id", f"corpus-{case}")]
        command += [*settings.get("options", []), "--", *agent]
        result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        print(f"{case}: exit {result.returncode}\n{result.stderr[-2000:]}")
        shutil.rmtree(folder / "store", ignore_errors=True)
        shutil.copytree(Path(work) / ".agenttrace", folder / "store", symlinks=True)
    if model is not None:
        model.shutdown()
        model.server_close()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    found = sorted(
        p.name
        for p in HERE.iterdir()
        if (p / "label.json").exists() and ((p / "agent.py").exists() or (p / "run.json").exists())
    )
    for name in sys.argv[1:] or found:
        record(name)
