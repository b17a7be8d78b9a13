"""`python tests/fakes/nvml/agenttrace_with_fake_nvml.py ARGS...`: the real `agenttrace` CLI with ARGS, its
pynvml on the fake NVML named by $FAKE_NVML_STATE (unset: pynvml looks for the real library)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[2])
# this folder (sys.path[0] for a script) would shadow top-level modules with names like `state`
sys.path[:] = [TESTS] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from fakes.nvml.activate import activate  # noqa: E402

activate()
sys.path.remove(TESTS)  # nothing else of tests/ is importable by the CLI

from agenttrace.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.argv = ["agenttrace", *sys.argv[1:]]
    main()
