"""Secrets never reach a recorded command line."""

from __future__ import annotations

import pytest

from agenttrace.redact import REDACTED, redact_argv, redact_value


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--api-key", "abc123", "--model", "gpt"], ["--api-key", REDACTED, "--model", "gpt"]),
        (["--token=abc", "-v"], [f"--token={REDACTED}", "-v"]),
        (["PASSWORD=hunter2", "run"], [f"PASSWORD={REDACTED}", "run"]),
        (["--password", "x", "--secret-file", "/s"], ["--password", REDACTED, "--secret-file", REDACTED]),
        (["curl", "https://bob:pw@example.com/x"], ["curl", f"https://{REDACTED}@example.com/x"]),
        (["sk-proj-abcdefghijklmnopqrstuvwx"], [REDACTED]),
        (["ghp_abcdefghijklmnopqrstuvwxyz0123"], [REDACTED]),
        (["AKIAABCDEFGHIJKLMNOP"], [REDACTED]),
        (
            ["python", "agent.py", "--task", "fix the tokenizer"],
            ["python", "agent.py", "--task", "fix the tokenizer"],
        ),
        (["--author=ann", "--auth", "basic:x"], ["--author=ann", "--auth", REDACTED]),
    ],
)
def test_redact_argv(argv: list[str], expected: list[str]) -> None:
    assert redact_argv(argv) == expected


def test_plain_values_are_kept() -> None:
    assert redact_value("https://example.com/path?q=1") == "https://example.com/path?q=1"
    assert redact_value("hello world") == "hello world"
