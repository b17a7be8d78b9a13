"""A snapshot of the environment a run started in: argv, cwd, git, Python, packages, host.

Environment variable *names* are kept; their values are never recorded.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from typing import Any

from opentelemetry import context

from ..constants import ENV_NAMES, GIT_DIRTY, PACKAGES
from .redact import redact_argv


def _git(cwd: str, *args: str) -> str | None:
    # agenttrace's own look at the repository is not the agent's work: instrumentation (the
    # `agenttrace run` bootstrap's subprocess spans) is suppressed for it.
    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    finally:
        context.detach(token)
    return result.stdout.strip() if result.returncode == 0 else None


def _packages() -> dict[str, str]:
    """Installed distributions and versions, read from the `<name>-<version>.dist-info` folder
    names on sys.path (reading every METADATA file takes most of a second in a big environment)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith((".dist-info", ".egg-info")):
                dist, _, version = name.rsplit(".", 1)[0].partition("-")
                if dist and version and dist not in found:
                    found[dist] = version.split("-")[0]
    if not found:  # an unusual layout (zip imports, custom finders): ask importlib
        for distribution in metadata.distributions():
            name = distribution.metadata.get("Name") if distribution.metadata else None
            if name:
                found.setdefault(name, distribution.version)
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def snapshot(argv: list[str] | None = None, cwd: str | None = None) -> dict[str, Any]:
    """Span attributes describing the process environment, with secrets redacted."""
    cwd = cwd or os.getcwd()
    attrs: dict[str, Any] = {
        "process.command_args": json.dumps(redact_argv(list(argv if argv is not None else sys.argv))),
        "process.working_directory": cwd,
        "process.pid": os.getpid(),
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "host.name": socket.gethostname(),
        "os.type": sys.platform,
        ENV_NAMES: json.dumps(sorted(os.environ)),
        PACKAGES: json.dumps(_packages()),
    }
    commit = _git(cwd, "rev-parse", "HEAD")
    if commit:
        attrs["vcs.ref.head.revision"] = commit
        status = _git(cwd, "status", "--porcelain", "--untracked-files=no")
        if status is not None:
            attrs[GIT_DIRTY] = bool(status)
    return attrs
