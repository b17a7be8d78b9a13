"""Run a real CLI coding agent (Claude Code, Codex, Gemini CLI) offline against a fake model server.

    from cli_agents import run_cli_agent            # put tests/agents on sys.path first
    run = run_cli_agent("claude", "happy", workdir, otlp_endpoint="http://127.0.0.1:4318")
    run.returncode, run.server.model_turns(), (workdir / "out.txt").read_text()

`run_cli_agent` starts the CLI's fake model server (`fake_servers.SERVERS[name]`) with the scenario,
writes the CLI's config into a temporary HOME (and CODEX_HOME) that is removed afterwards, runs the
CLI in `workdir` with its own telemetry exported to `otlp_endpoint` (OTLP/HTTP; the base URL, the
`/v1/traces|logs|metrics` paths are added where a CLI needs full URLs), and returns an `AgentRun`.
The CLIs come from `.agents/node_modules` (installed by `make agents`). The real user's HOME and
config files are never read or written, and nothing from the caller's environment leaks in except
what `extra_env` adds: the CLI sees PATH, LANG, a temporary HOME and its recipe's variables.

`recipe(name, ...)` returns just the command line, environment and config files of a CLI, for code
that runs the CLI itself (for example under `agenttrace run`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fake_servers import PROMPT, SERVERS, FakeModelServer

REPO = Path(__file__).resolve().parents[2]
AGENTS_DIR = REPO / ".agents"
"""Where `make agents` installs the CLIs (git-ignored)."""
NODE_BIN = AGENTS_DIR / "node_modules" / ".bin"
PACKAGES = {
    "claude": "@anthropic-ai/claude-code",
    "codex": "@openai/codex",
    "gemini": "@google/gemini-cli",
}
CLIS = tuple(PACKAGES)

PROTOCOLS = ("protobuf", "json")
"""OTLP/HTTP encodings a caller may ask for. Gemini CLI's HTTP exporter always sends JSON."""

CODEX_MODEL = "gpt-5.5"
"""A model Codex knows (with an unknown one it warns that it falls back to default metadata)."""

EXPORT_INTERVAL_MS = "1000"
"""Batch and metric export intervals: short, so a short session's telemetry is sent before it exits."""


class AgentNotInstalled(RuntimeError):
    """The CLI is not in .agents/node_modules: run `make agents`."""


@dataclass
class Recipe:
    """How to run one CLI offline with its telemetry on."""

    argv: list[str]
    env: dict[str, str]
    """The variables the recipe sets (on top of PATH, LANG and HOME)."""
    files: dict[str, str] = field(default_factory=dict)
    """Config files to write, by path relative to the temporary HOME, and their text."""


@dataclass
class AgentRun:
    """What happened when a CLI ran."""

    name: str
    scenario: str
    workdir: Path
    argv: list[str]
    env: dict[str, str]
    """The recipe's variables (the CLI's whole environment is these plus PATH, LANG and HOME)."""
    files: dict[str, str]
    returncode: int
    stdout: str
    stderr: str
    duration_s: float
    server: FakeModelServer
    """The fake model server, stopped; `server.requests` are the exchanges it recorded."""
    version: str = ""

    @property
    def output(self) -> Any:
        """The CLI's JSON output: one object (Claude, Gemini) or a list of JSONL events (Codex)."""
        text = self.stdout.strip()
        try:
            return json.loads(text)
        except ValueError:
            events = []
            for line in text.splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
            return events

    def describe(self) -> str:
        """A short account for assertion messages."""
        turns = [e.summary() for e in self.server.requests]
        return (
            f"{self.name} ({self.scenario}) exited {self.returncode} after {self.duration_s:.1f}s\n"
            f"argv: {self.argv}\nmodel server saw: {json.dumps(turns, indent=1)}\n"
            f"stdout (tail): {self.stdout[-3000:]}\nstderr (tail): {self.stderr[-3000:]}"
        )


def executable(name: str) -> Path:
    """The installed CLI's executable, or AgentNotInstalled saying how to install it."""
    path = NODE_BIN / name
    if not path.exists():
        raise AgentNotInstalled(
            f"{name} is not installed at {path}: run `make agents` (npm install of {PACKAGES[name]})"
        )
    return path


def installed_version(name: str) -> str:
    """The version of the CLI's npm package in .agents/node_modules."""
    manifest = AGENTS_DIR / "node_modules" / PACKAGES[name] / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def _claude(model_url: str, otlp_endpoint: str | None, protocol: str, home: Path) -> Recipe:
    env = {
        "ANTHROPIC_BASE_URL": model_url,
        "ANTHROPIC_API_KEY": "dummy",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }
    if otlp_endpoint is not None:
        env |= {
            "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
            "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",  # without it: no traces, and logs carry no trace ids
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_LOGS_EXPORTER": "otlp",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_PROTOCOL": f"http/{protocol}",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            "OTEL_LOG_TOOL_DETAILS": "1",
            "OTEL_LOG_USER_PROMPTS": "1",
            "OTEL_METRIC_EXPORT_INTERVAL": EXPORT_INTERVAL_MS,
            "OTEL_LOGS_EXPORT_INTERVAL": EXPORT_INTERVAL_MS,
            "OTEL_TRACES_EXPORT_INTERVAL": EXPORT_INTERVAL_MS,
            "CLAUDE_CODE_OTEL_DIAG_STDERR": "1",
        }
    argv = [str(executable("claude")), "-p", PROMPT, "--allowedTools", "Bash", "--output-format", "json"]
    return Recipe(argv, env)


def _codex(model_url: str, otlp_endpoint: str | None, protocol: str, home: Path) -> Recipe:
    config = f"""\
model = "{CODEX_MODEL}"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.fake]
name = "fake"
base_url = "{model_url}/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"

[analytics]
enabled = false
"""
    env = {"CODEX_HOME": str(home / ".codex"), "OPENAI_API_KEY": "dummy"}
    if otlp_endpoint is not None:
        wire = "binary" if protocol == "protobuf" else "json"

        def exporter(signal: str) -> str:
            return f'{{ otlp-http = {{ endpoint = "{otlp_endpoint}/v1/{signal}", protocol = "{wire}" }} }}'

        config += f"""
[otel]
environment = "test"
log_user_prompt = true
exporter = {exporter("logs")}
trace_exporter = {exporter("traces")}
metrics_exporter = {exporter("metrics")}
"""
        # Codex exits at once when a turn fails (exit 1), often before its batch exporters flush:
        # short schedule delays get most of its telemetry out before that.
        env |= {
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_BLRP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "200",
        }
    argv = [str(executable("codex")), "exec", "--skip-git-repo-check", "--json", PROMPT]
    return Recipe(argv, env, {".codex/config.toml": config})


def _gemini(model_url: str, otlp_endpoint: str | None, protocol: str, home: Path) -> Recipe:
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    }
    env = {"GEMINI_API_KEY": "dummy", "GOOGLE_GEMINI_BASE_URL": model_url}
    if otlp_endpoint is not None:
        env |= {
            "GEMINI_TELEMETRY_ENABLED": "true",
            "GEMINI_TELEMETRY_TARGET": "local",
            "GEMINI_TELEMETRY_OTLP_PROTOCOL": "http",  # OTLP/JSON; the default is gRPC
            "GEMINI_TELEMETRY_OTLP_ENDPOINT": otlp_endpoint,
            "GEMINI_TELEMETRY_TRACES_ENABLED": "true",
            "GEMINI_TELEMETRY_LOG_PROMPTS": "true",
        }
    argv = [str(executable("gemini")), "-p", PROMPT, "--yolo", "--skip-trust", "--output-format", "json"]
    return Recipe(argv, env, {".gemini/settings.json": json.dumps(settings, indent=2)})


_RECIPES = {"claude": _claude, "codex": _codex, "gemini": _gemini}


def recipe(
    name: str, model_url: str, otlp_endpoint: str | None, home: Path, protocol: str = "protobuf"
) -> Recipe:
    """The command line, environment and config files (relative to `home`) that run `name` offline
    against `model_url` (the fake server's base URL), with its own telemetry sent to
    `otlp_endpoint` (an OTLP/HTTP base URL), or with its telemetry left off when that is None."""
    if name not in _RECIPES:
        raise ValueError(f"unknown CLI {name!r}; one of {', '.join(CLIS)}")
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown OTLP protocol {protocol!r}; one of {', '.join(PROTOCOLS)}")
    endpoint = otlp_endpoint.rstrip("/") if otlp_endpoint is not None else None
    return _RECIPES[name](model_url.rstrip("/"), endpoint, protocol, home)


def base_environment(home: Path) -> dict[str, str]:
    """PATH (with node), LANG and a temporary HOME: nothing else from the caller's environment."""
    node = shutil.which("node")
    path = [str(Path(node).parent)] if node else []
    path += ["/usr/local/bin", "/usr/bin", "/bin"]
    return {
        "PATH": os.pathsep.join(dict.fromkeys(path)),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "TMPDIR": str(home / "tmp"),
    }


def run_cli_agent(
    name: str,
    scenario: str,
    workdir: Path,
    otlp_endpoint: str | None,
    *,
    protocol: str = "protobuf",
    extra_env: dict[str, str] | None = None,
    timeout: float = 180,
    home: Path | None = None,
    wrapper: list[str] | None = None,
) -> AgentRun:
    """Run CLI `name` once in `workdir` against its fake model server playing `scenario`.

    `otlp_endpoint` is the OTLP/HTTP base URL the CLI's own telemetry goes to; None leaves the
    CLI's telemetry off (for a supervisor such as `agenttrace run` to turn it on).
    `protocol` is the OTLP/HTTP encoding (`protobuf` or `json`; Gemini always sends JSON).
    `wrapper` is put before the CLI's command line, e.g. `[agenttrace, "run", "--store", S, "--"]`.
    `extra_env` is added last (for example TRACEPARENT or OTEL_RESOURCE_ATTRIBUTES). `home` keeps
    the CLI's HOME (and its logs and session files) where the caller wants it; by default it is a
    temporary directory removed afterwards. Raises AgentNotInstalled when the CLI is missing, and
    subprocess.TimeoutExpired (after killing it) when it runs over `timeout` seconds.
    """
    executable(name)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    owned_home = home is None
    home_dir = Path(tempfile.mkdtemp(prefix=f"agenttrace-{name}-home-")) if home is None else Path(home)
    server = SERVERS[name](scenario).start()
    try:
        (home_dir / "tmp").mkdir(parents=True, exist_ok=True)
        spec = recipe(name, server.url, otlp_endpoint, home_dir, protocol)
        for relative, text in spec.files.items():
            target = home_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        env = {**base_environment(home_dir), **spec.env, **(extra_env or {})}
        argv = [*(wrapper or ()), *spec.argv]
        started = time.monotonic()
        with subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        ) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                stdout, stderr = process.communicate()
                raise subprocess.TimeoutExpired(argv, timeout, stdout, stderr) from None
        duration = time.monotonic() - started
        _kill_group(process)  # anything it left behind in its process group
    finally:
        server.stop()
        if owned_home:
            shutil.rmtree(home_dir, ignore_errors=True)
    return AgentRun(
        name=name,
        scenario=scenario,
        workdir=workdir,
        argv=argv,
        env={**spec.env, **(extra_env or {})},
        files=spec.files,
        returncode=process.returncode,
        stdout=stdout,
        stderr=stderr,
        duration_s=duration,
        server=server,
        version=installed_version(name),
    )


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, 9)
