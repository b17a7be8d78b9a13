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
import time
from importlib import metadata
from typing import Any

from opentelemetry import context

from ..constants import ENV_NAMES, GIT_DIRTY, PACKAGES
from .redact import redact_argv

GIT_TIMEOUT_S = 5.0


class _Git:
    """One `git` command, started at once and read later: the commit and the dirty state are asked
    for together, while the caller goes on with its own set-up."""

    def __init__(self, cwd: str, *args: str) -> None:
        # agenttrace's own look at the repository is not the agent's work: instrumentation (the
        # `agenttrace run` bootstrap's subprocess spans) is suppressed for it.
        token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            self._process: subprocess.Popen[str] | None = subprocess.Popen(
                ["git", *args],
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        except (OSError, subprocess.SubprocessError):
            self._process = None
        finally:
            context.detach(token)

    def output(self, deadline: float) -> str | None:
        """Its output, stripped; None if it failed, could not start or ran past `deadline`."""
        process, self._process = self._process, None
        if process is None:
            return None
        try:
            out, _ = process.communicate(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return None
        return out.strip() if process.returncode == 0 else None

    def cancel(self) -> None:
        """Stop it if it still runs, and close its pipe."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.kill()
            process.communicate()


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


class Snapshot:
    """A snapshot being taken: the `git` commands run while the caller does other work; `result()`
    waits for them. `agenttrace run` takes it before the agent starts and collects it before the
    agent starts too: the repository and the installed packages are what the agent could change,
    so nothing of them is read once it runs."""

    def __init__(self, argv: list[str] | None = None, cwd: str | None = None) -> None:
        self.cwd = cwd or os.getcwd()
        self.argv = list(argv if argv is not None else sys.argv)
        self._started = time.monotonic()
        self._commit = _Git(self.cwd, "rev-parse", "HEAD")
        self._status = _Git(self.cwd, "status", "--porcelain", "--untracked-files=no")

    def result(self) -> dict[str, Any]:
        """Span attributes describing the process environment, with secrets redacted."""
        attrs: dict[str, Any] = {
            "process.command_args": json.dumps(redact_argv(self.argv)),
            "process.working_directory": self.cwd,
            "process.pid": os.getpid(),
            "process.runtime.name": sys.implementation.name,
            "process.runtime.version": platform.python_version(),
            "host.name": socket.gethostname(),
            "os.type": sys.platform,
            ENV_NAMES: json.dumps(sorted(os.environ)),
            PACKAGES: json.dumps(_packages()),
        }
        deadline = self._started + GIT_TIMEOUT_S
        commit = self._commit.output(deadline)
        if commit:
            attrs["vcs.ref.head.revision"] = commit
            status = self._status.output(deadline)
            if status is not None:
                attrs[GIT_DIRTY] = bool(status)
        else:
            self._status.cancel()
        return attrs

    def cancel(self) -> None:
        """Stop whatever `git` is still running (the snapshot was not needed after all)."""
        self._commit.cancel()
        self._status.cancel()


def snapshot(argv: list[str] | None = None, cwd: str | None = None) -> dict[str, Any]:
    """Span attributes describing the process environment, with secrets redacted."""
    return Snapshot(argv, cwd).result()
