"""The model traffic of one `agenttrace run`: recorded (`--record`), or replayed from an earlier
run's recording (`--replay RUN`), through the loopback LLM proxy (`agenttrace.replay.proxy`).

    traffic = LlmTraffic(run_id, settings, cwd, record=True)
    traffic.load()                  # --replay: the recording, checked, before the run starts
    traffic.start(tracer, root)     # the proxy, and the root span's replay attributes
    env, argv = traffic.point(env, argv)   # OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ... ; Codex's -c
    ...
    traffic.stop(root)              # every exchange stored (one `llm_exchange` span each)

What the agent is pointed at: `OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, `GOOGLE_GEMINI_BASE_URL`,
`AGENTTRACE_LLM_PROXY` (the generic route, upstream `AGENTTRACE_LLM_UPSTREAM`), and for Codex its
model provider's `base_url` (a `-c` override; the provider's own URL, read from its config.toml,
is the upstream). The upstreams are what the supervisor's environment named, else each vendor's
API: the agent's own setting of these variables is replaced, never followed.

A replay's divergence (the first request its recording cannot answer) is recorded on the root
span (`agenttrace.replay.divergence`, JSON) with what was decided (`agenttrace.replay.then`:
`fail`, or `live` to go on upstream): the `replay` gate fails a run that diverged with `fail`.
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config
from . import agent_telemetry

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

    from ..replay.exchanges import Recording
    from ..replay.proxy import Divergence, LLMProxy

REPLAY_OF = "agenttrace.replay_of"
THEN = "agenttrace.replay.then"
DIVERGENCE = "agenttrace.replay.divergence"
FROM_STEP = "agenttrace.replay.from_step"
EXCHANGES = "agenttrace.replay.exchanges"


class LlmTraffic:
    def __init__(
        self,
        run_id: str,
        settings: config.Settings,
        cwd: Path,
        *,
        record: bool = False,
        replay_of: str | None = None,
        then_live: bool = False,
        from_step: int | None = None,
    ) -> None:
        self.run_id = run_id
        self.settings = settings
        self.cwd = cwd
        self.record = record
        self.replay_of = replay_of
        self.then_live = then_live
        self.from_step = from_step
        self.recording: Recording | None = None
        self.proxy: LLMProxy | None = None
        self.diverged: Divergence | None = None
        """Where the replay parted from its recording (after `stop`), or None."""
        self._upstreams: dict[str, str] = {}

    @property
    def active(self) -> bool:
        return self.record or self.replay_of is not None

    def load(self, command: list[str]) -> None:
        """Before the run starts: the upstreams (ConfigError for a bad one) and, for a replay, the
        recording (ReplayError: no such recording, or its records fail their checks)."""
        if not self.active:
            return
        from ..replay.routes import upstreams

        self._upstreams = upstreams(os.environ)
        codex = _codex_provider(command)
        if codex is not None and codex[1]:
            self._upstreams["openai"] = codex[1].rstrip("/")
        if self.replay_of is not None:
            from ..replay.exchanges import load_recording

            self.recording = load_recording(self.settings.store, self.replay_of)

    def start(self, tracer: Tracer, root: Span) -> None:
        """Start the proxy (its own threads; returns at once) and mark the run's root span."""
        if not self.active:
            return
        from ..replay.exchanges import record_span, root_attributes
        from ..replay.proxy import LLMProxy
        from ..store.artifact_store import ArtifactStore
        from ..store.layout import StoreLayout

        artifacts = ArtifactStore(StoreLayout(self.settings.store), self.settings.max_artifact_bytes)
        for key, value in root_attributes(str(self.cwd)).items():
            root.set_attribute(key, value)
        if self.replay_of is not None:
            root.set_attribute(REPLAY_OF, self.replay_of)
            root.set_attribute(THEN, "live" if self.then_live else "fail")
            if self.from_step is not None:
                root.set_attribute(FROM_STEP, self.from_step)
        self.proxy = LLMProxy(
            upstreams=self._upstreams,
            artifacts=artifacts,
            on_exchange=lambda exchange: record_span(tracer, root, exchange, artifacts),
            recording=self.recording,
            then_live=self.then_live,
            from_step=self.from_step,
            workdir=str(self.cwd),
        ).start()

    def point(self, env: dict[str, str], argv: list[str]) -> tuple[dict[str, str], list[str]]:
        """The agent's environment and command line, pointed at the proxy."""
        if self.proxy is None:
            return env, argv
        from ..replay.routes import agent_env, codex_base_url

        env = {**env, **agent_env(self.proxy)}
        codex = _codex_provider(argv)
        if codex is not None:
            found = agent_telemetry.detect(argv)
            assert found is not None
            at = found[1] + 1
            override = f"model_providers.{codex[0]}.base_url={json.dumps(codex_base_url(self.proxy))}"
            argv = [*argv[:at], "-c", override, *argv[at:]]
        return env, argv

    def stop(self, root: Span | None) -> None:
        """Stop the proxy once the agent's tree is done: every exchange is stored and has its span.
        Never raises."""
        proxy, self.proxy = self.proxy, None
        if proxy is None:
            return
        try:
            proxy.stop()
        except Exception as exc:  # the run's record goes on; the exchanges it lost are said
            if root is not None:
                root.set_attribute("agenttrace.replay.error", f"the LLM proxy did not stop cleanly: {exc}")
        self.diverged = proxy.divergence
        if root is not None:
            root.set_attribute(EXCHANGES, len(proxy.exchanges))
            if self.diverged is not None:
                root.set_attribute(DIVERGENCE, json.dumps(self.diverged.to_json(), default=str))


def _codex_provider(argv: list[str]) -> tuple[str, str | None] | None:
    """For a Codex command: its model provider's name and base URL (config.toml, read only), when
    it uses a provider of its own; None otherwise (the built-in one follows OPENAI_BASE_URL)."""
    found = agent_telemetry.detect(argv)
    if found is None or found[0] != "codex":
        return None
    path = agent_telemetry.codex_home(dict(os.environ)) / "config.toml"
    try:
        settings: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    name = settings.get("model_provider")
    providers = settings.get("model_providers")
    if not isinstance(name, str) or not isinstance(providers, dict):
        return None
    if not isinstance(providers.get(name), dict):
        return None
    base = providers[name].get("base_url")
    return name, base if isinstance(base, str) else None
