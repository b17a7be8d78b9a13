"""Settings come from arguments, then the environment, then defaults; bad values are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from agenttrace import config
from agenttrace.errors import ConfigError


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = config.load()
    assert settings.store == tmp_path / ".agenttrace"
    assert settings.flush_interval == 0.5
    assert settings.max_attribute_bytes == 65536


def test_environment_then_arguments(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AGENTTRACE_STORE", str(tmp_path / "env-store"))
    monkeypatch.setenv("AGENTTRACE_FLUSH_INTERVAL", "0.25")
    assert config.load().store == tmp_path / "env-store"
    assert config.load().flush_interval == 0.25
    assert config.load(store=tmp_path / "arg", flush_interval=1.0) == config.Settings(
        tmp_path / "arg", 1.0, 65536
    )


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AGENTTRACE_FLUSH_INTERVAL", "fast", "must be a number of seconds, got 'fast'"),
        ("AGENTTRACE_FLUSH_INTERVAL", "0", "must be between 0 and 3600 seconds"),
        ("AGENTTRACE_FLUSH_INTERVAL", "-1", "must be between 0 and 3600 seconds"),
        ("AGENTTRACE_MAX_ATTRIBUTE_BYTES", "lots", "must be a whole number, got 'lots'"),
        ("AGENTTRACE_MAX_ATTRIBUTE_BYTES", "0", "must be positive"),
    ],
)
def test_bad_environment_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        config.load()
