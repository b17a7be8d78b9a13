"""Turn on a known CLI agent's own OpenTelemetry export toward the run's embedded receiver.

    recipe = agent_telemetry.apply(["codex", "exec", "fix the bug"], env, "http://127.0.0.1:4321")
    recipe.name, recipe.argv, recipe.env   # "codex", argv with `-c otel.*=...` overrides, env

Claude Code, Codex and Gemini CLI each export traces, logs and metrics over OTLP, but only when
told to. `agenttrace run` recognises them by executable name (`claude`, `codex`, `gemini`; also
behind a plain `node SCRIPT` or `npx PACKAGE`) and tells them, so the user adds nothing:

- **Claude Code** and **Gemini CLI**: environment variables.
- **Codex**: `-c key=value` overrides put right after the executable (Codex reads `[otel]` only
  from `$CODEX_HOME/config.toml` or `-c`), plus short batch delays in the environment so it
  flushes before it exits. The user's CODEX_HOME and its files are neither copied nor written:
  Codex still finds its auth, model and provider settings where they are.

What the agent does is never changed: only its telemetry switches are set. A choice the user made
wins: a variable already in the environment is kept (`OTEL_LOGS_EXPORTER=none` keeps Claude's logs
off, `CLAUDE_CODE_ENABLE_TELEMETRY=0` or `GEMINI_TELEMETRY_ENABLED=false` all of it), and for Codex
an `otel.*` key set in the user's config.toml or with `-c` on the command line is kept (an exporter
the user pointed elsewhere keeps sending there). Endpoint variables are not a choice left to the
agent: they name the receiver (as OTEL_EXPORTER_OTLP_ENDPOINT already does), which forwards
everything to the user's own OTEL_EXPORTER_OTLP_ENDPOINT, if any.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

AGENTS = ("claude", "codex", "gemini")
ATTRIBUTE = "agenttrace.agent.telemetry"
"""On the run's root span: the recipe applied (`claude`, `codex`, `gemini`), or `off` when a known
agent ran with --no-agent-telemetry."""

PACKAGES = {
    "@anthropic-ai/claude-code": "claude",
    "@openai/codex": "codex",
    "@google/gemini-cli": "gemini",
}
"""npm packages (for `npx PACKAGE` and `node .../node_modules/PACKAGE/...`)."""

_SUFFIXES = (".exe", ".js", ".cjs", ".mjs")

CLAUDE_ENV = {
    "CLAUDE_CODE_ENABLE_TELEMETRY": "1",
    "CLAUDE_CODE_ENHANCED_TELEMETRY_BETA": "1",  # without it: no spans, and logs carry no trace ids
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_LOGS_EXPORTER": "otlp",
    "OTEL_METRICS_EXPORTER": "otlp",
    "OTEL_LOG_TOOL_DETAILS": "1",  # tool parameters (the Bash command) on tool events
    "OTEL_LOG_USER_PROMPTS": "1",  # the prompt is already in the recorded command line
    "CLAUDE_CODE_PROPAGATE_TRACEPARENT": "1",  # the Bash tool's processes join the tool's span
    "OTEL_LOGS_EXPORT_INTERVAL": "1000",
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_TRACES_EXPORT_INTERVAL": "1000",
}
"""Claude Code (it strips OTEL_* from its tools' environment, so none of this reaches them)."""

GEMINI_ENV = {
    "GEMINI_TELEMETRY_ENABLED": "true",
    "GEMINI_TELEMETRY_TARGET": "local",
    "GEMINI_TELEMETRY_TRACES_ENABLED": "true",
    "GEMINI_TELEMETRY_LOG_PROMPTS": "true",
}
"""Gemini CLI; GEMINI_TELEMETRY_OTLP_ENDPOINT and _PROTOCOL are set to the receiver (below)."""

CODEX_ENV = {
    "OTEL_BSP_SCHEDULE_DELAY": "100",
    "OTEL_BLRP_SCHEDULE_DELAY": "100",
    "OTEL_METRIC_EXPORT_INTERVAL": "200",
}
"""Codex exits as soon as a turn ends (at once when one fails), often before its batch exporters
flush with their default delays: short delays get its telemetry out first."""

CODEX_EXPORTERS = {"exporter": "logs", "trace_exporter": "traces", "metrics_exporter": "metrics"}
"""Codex's `[otel]` keys and the OTLP signal each exports."""
CODEX_SETTINGS = {"log_user_prompt": "true"}


@dataclass(frozen=True)
class Recipe:
    """What `apply` did: the agent's name, the command line and environment to start it with."""

    name: str
    argv: list[str]
    env: dict[str, str]
    set: tuple[str, ...]
    """The variables and `-c` overrides set (names only), for the record."""


def detect(command: list[str]) -> tuple[str, int] | None:
    """The known agent `command` runs and the index of its executable in `command`, or None.

    By the executable's name (`claude`, `codex`, `gemini`, with `.exe`/`.js` ignored), or behind
    a trivial wrapper: `node SCRIPT ...` (SCRIPT so named, or inside the agent's npm package) and
    `npx [-y|--yes|--quiet] NAME ...` (NAME the agent or its npm package, with or without `@version`).
    """
    if not command:
        return None
    name = _agent_named(command[0])
    if name is not None:
        return name, 0
    wrapper = _stem(command[0])
    if wrapper == "node" and len(command) > 1 and not command[1].startswith("-"):
        script = command[1]
        name = _agent_named(script) or next(
            (agent for package, agent in PACKAGES.items() if f"/node_modules/{package}/" in script), None
        )
        return (name, 1) if name is not None else None
    if wrapper == "npx":
        index = 1
        while index < len(command) and command[index] in ("-y", "--yes", "-q", "--quiet"):
            index += 1
        if index < len(command):
            package = re.sub(r"(?<=.)@[^/]*$", "", command[index])  # drop a version
            name = PACKAGES.get(package) or _agent_named(package)
            if name is not None:
                return name, index
    return None


def _stem(path: str) -> str:
    base = os.path.basename(path)
    for suffix in _SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def _agent_named(path: str) -> str | None:
    stem = _stem(path)
    return stem if stem in AGENTS else None


def apply(command: list[str], env: dict[str, str], endpoint: str) -> Recipe | None:
    """Turn on the telemetry of the known agent `command` runs, toward the OTLP/HTTP receiver at
    `endpoint` (its base URL); None when `command` is not a known agent. `env` is the agent's
    environment as it would be otherwise; neither it nor `command` is changed."""
    found = detect(command)
    if found is None:
        return None
    name, index = found
    endpoint = endpoint.rstrip("/")
    env = dict(env)
    argv = list(command)
    if name == "claude":
        done = _defaults(env, CLAUDE_ENV)
        # The protocol and endpoint are the receiver's already (the supervisor sets them).
    elif name == "gemini":
        done = _defaults(env, GEMINI_ENV)
        env["GEMINI_TELEMETRY_OTLP_ENDPOINT"] = endpoint
        env["GEMINI_TELEMETRY_OTLP_PROTOCOL"] = "http"  # OTLP/JSON over HTTP; its default is gRPC
        done += ["GEMINI_TELEMETRY_OTLP_ENDPOINT", "GEMINI_TELEMETRY_OTLP_PROTOCOL"]
    else:
        overrides = codex_overrides(argv[index + 1 :], env, endpoint)
        argv[index + 1 : index + 1] = [arg for key, value in overrides for arg in ("-c", f"{key}={value}")]
        done = [f"-c {key}" for key, _ in overrides] + _defaults(env, CODEX_ENV)
    return Recipe(name, argv, env, tuple(done))


def _defaults(env: dict[str, str], values: dict[str, str]) -> list[str]:
    """Set each variable the user has not set; the names set."""
    done = []
    for key, value in values.items():
        if key not in env:
            env[key] = value
            done.append(key)
    return done


def codex_home(env: dict[str, str]) -> Path:
    """Where Codex reads its config.toml: $CODEX_HOME, else ~/.codex."""
    home = env.get("CODEX_HOME")
    if home:
        return Path(home)
    return Path(env.get("HOME") or os.path.expanduser("~")) / ".codex"


def codex_overrides(args: list[str], env: dict[str, str], endpoint: str) -> list[tuple[str, str]]:
    """The `-c otel.KEY=VALUE` overrides that send Codex's logs, traces and metrics to the receiver
    (OTLP/HTTP protobuf), less the keys the user set: in config.toml's `[otel]` table (read, never
    written) or with `-c`/`--config` in `args`."""
    taken = set(_user_otel_keys(args))
    config = codex_home(env) / "config.toml"
    try:
        otel = tomllib.loads(config.read_text(encoding="utf-8")).get("otel", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        otel = {}  # none, or one Codex itself will refuse: nothing of the user's to keep
    if isinstance(otel, dict):
        taken |= set(otel)
    overrides = [
        (f"otel.{key}", f'{{ otlp-http = {{ endpoint = "{endpoint}/v1/{signal}", protocol = "binary" }} }}')
        for key, signal in CODEX_EXPORTERS.items()
    ]
    overrides += [(f"otel.{key}", value) for key, value in CODEX_SETTINGS.items()]
    return [(key, value) for key, value in overrides if key.removeprefix("otel.") not in taken]


def _user_otel_keys(args: list[str]) -> list[str]:
    keys = []
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            setting = args[i + 1]
        elif arg.startswith("--config="):
            setting = arg.removeprefix("--config=")
        elif arg.startswith("-c") and len(arg) > 2:
            setting = arg[2:]
        else:
            continue
        key = setting.split("=", 1)[0].strip()
        if key.startswith("otel."):
            keys.append(key.removeprefix("otel.").split(".", 1)[0])
        elif key == "otel":
            keys.extend(CODEX_EXPORTERS)
            keys.extend(CODEX_SETTINGS)
    return keys
