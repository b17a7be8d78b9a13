"""Record a corpus case again: `python tests/corpus/record.py CASE [CASE ...]`.

Runs the case's agent under `agenttrace run` in a fresh working directory and replaces the case's
`store/` with the store it leaves. The label is not touched: a person writes it.

What a case folder may hold besides `label.json` and `store/`:
  agent.py / agent.sh / ...  the agent; every file not named below is copied into the working
                             directory (folders too: fixtures the agent works on)
  run.json                   {"command": [...], "options": [...], "env": {...}, "run_id": "...",
                             "fake_gpus": N}: the command (default `python agent.py`; "{python}"
                             is this Python), extra `agenttrace run` options and environment;
                             with `fake_gpus`, the run is recorded on N GPUs of the fake NVML
                             (tests/fakes/nvml), and the agent finds `fake_cuda.py` as $FAKE_CUDA
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
        gpus = tempfile.TemporaryDirectory(prefix=f"corpus-{case}-gpus-")
        if settings.get("fake_gpus"):
            from fakes.nvml.state import make_state

            state = make_state(Path(gpus.name), n_devices=int(settings["fake_gpus"]))
            fake = HERE.parent / "fakes" / "nvml"
            env |= {
                "FAKE_NVML_STATE": str(state),
                "AGENTTRACE_GPU_LOCK_DIR": str(Path(gpus.name) / "locks"),
                "FAKE_CUDA": f"{sys.executable} {fake / 'fake_cuda.py'}",
            }
            command[:1] = [sys.executable, str(fake / "agenttrace_with_fake_nvml.py")]
        with gpus:
            result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, check=False)
        print(f"{case}: exit {result.returncode}\n{result.stderr[-2000:]}")
        shutil.rmtree(folder / "store", ignore_errors=True)
        # derived/ is left out: written after the verdict by a detached process, it may be half
        # there now, and the audit recomputes it from the parts
        leave_out = shutil.ignore_patterns("derived")
        shutil.copytree(Path(work) / ".agenttrace", folder / "store", symlinks=True, ignore=leave_out)
    if model is not None:
        model.shutdown()
        model.server_close()


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))  # fakes.nvml
    found = sorted(
        p.name
        for p in HERE.iterdir()
        if (p / "label.json").exists() and ((p / "agent.py").exists() or (p / "run.json").exists())
    )
    for name in sys.argv[1:] or found:
        record(name)
