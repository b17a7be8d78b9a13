"""agenttrace.gpu.inventory: what `agenttrace gpus` lists, read in this process over the fake NVML."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.nvml.activate import activate, deactivate
from fakes.nvml.state import DRIVER_RESERVE, make_state

from agenttrace.gpu.inventory import command_line, inventory
from agenttrace.gpu.lease import acquire
from agenttrace.gpu.nvml import Nvml


@pytest.fixture
def fake_nvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = make_state(tmp_path, n_devices=2)
    monkeypatch.setenv("FAKE_NVML_STATE", str(state))
    assert activate()
    try:
        yield state
    finally:
        deactivate()


def test_command_lines_come_from_proc_with_secrets_redacted() -> None:
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)", "--api-key", "sk-secret", "a b"]
    )
    try:
        deadline = time.monotonic() + 10  # until its exec is done: before, /proc shows no argv yet
        while (line := command_line(sleeper.pid)) is None or "time.sleep" not in line:
            assert time.monotonic() < deadline, line
            time.sleep(0.01)
        assert "sk-secret" not in line
        assert line.endswith("--api-key '[REDACTED]' 'a b'")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert command_line(sleeper.pid) is None  # gone


def test_inventory_names_the_lock_dir_and_each_lease(fake_nvml: Path, tmp_path: Path) -> None:
    with Nvml.open() as nvml:
        devices = nvml.devices()
    locks = tmp_path / "locks"
    with acquire("1", devices, run_id="run-x", store="/st", wait_s=0, lock_dir=locks):
        found = inventory(lock_dir=locks)
    assert found["lock_dir"] == str(locks)
    first, second = found["devices"]
    assert first["lease"] is None and first["memory_used"] == DRIVER_RESERVE
    lease = second["lease"]
    assert (lease["run_id"], lease["store"], lease["devices"]) == ("run-x", "/st", [devices[1].uuid])
    assert lease["text"].startswith("run run-x (agenttrace pid ")
    assert inventory(lock_dir=locks)["devices"][1]["lease"] is None  # released
