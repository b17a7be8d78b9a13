"""--timeout values: what a user types, in seconds."""

from __future__ import annotations

import pytest

from agenttrace.errors import ConfigError
from agenttrace.supervise.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("2.5", 2.5),
        ("30s", 30.0),
        ("500ms", 0.5),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("2S", 2.0),
    ],
)
def test_durations_users_write(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "0", "0s", "5x", "5m soon", "m5", "1h-30m"])
def test_anything_else_is_refused_with_examples(text: str) -> None:
    with pytest.raises(ConfigError, match="is not a positive duration such as 90, 30s"):
        parse_duration(text, "--timeout")
