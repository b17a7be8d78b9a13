"""Keep secrets out of recorded command lines and arguments."""

from __future__ import annotations

import re

REDACTED = "[REDACTED]"

_SECRET_NAME = re.compile(
    r"(pass(word|wd)?|secret|token|api[-_]?key|apikey|auth(?!or)|credential|private[-_]?key)", re.I
)
_SECRET_VALUE = re.compile(
    r"^(sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+)$"
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@", re.I)


def redact_value(value: str) -> str:
    """A value with embedded credentials removed (`https://user:pw@host` keeps scheme and host)."""
    if _SECRET_VALUE.match(value):
        return REDACTED
    return _URL_CREDENTIALS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", value)


def redact_argv(argv: list[str]) -> list[str]:
    """argv with secret values replaced: `--token X`, `--api-key=X`, `PASSWORD=X`, and values that
    look like well-known key formats."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if "=" in arg:
            name, _, value = arg.partition("=")
            if _SECRET_NAME.search(name) and value:
                out.append(f"{name}={REDACTED}")
                continue
        elif arg.startswith("-") and _SECRET_NAME.search(arg):
            out.append(arg)
            hide_next = True
            continue
        out.append(redact_value(arg))
    return out
