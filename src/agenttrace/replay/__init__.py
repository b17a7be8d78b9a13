"""Record and replay an agent's model calls at the HTTP level (issue 15).

- `routes`: the LLM APIs the proxy serves, their upstreams, the agent's env (`agent_env`);
- `normalize`: the normalised request replay matches on, and `request_diff`;
- `proxy`: `LLMProxy`, a loopback HTTP proxy that records (forwards upstream, streams back, stores
  each exchange) or replays a `Recording` (and reports the first `Divergence`);
- `exchanges`: the `Exchange` record, `record_span` (one span per exchange in the run) and
  `load_recording` (a recorded run's exchanges, checked).

Library only: `agenttrace run --record`, `--replay` and `agenttrace replay` drive it, like this:

    artifacts = ArtifactStore(layout, settings.max_artifact_bytes)   # put_bytes ignores the cap
    recording = load_recording(layout, original_run_id)              # replay only; ReplayError
    proxy = LLMProxy(
        upstreams=routes.upstreams(os.environ),       # the supervisor's env, before it is changed
        artifacts=artifacts,
        on_exchange=lambda ex: record_span(tracer, root_span, ex, artifacts),
        recording=recording,                          # None: record mode
        then_live=..., from_step=...,                 # replay only
        workdir=str(cwd),                             # the agent's working directory
    ).start()
    root_span.set_attributes(root_attributes(str(cwd)))   # record and replay: the run is a recording
    env.update(agent_env(proxy))                          # OPENAI_BASE_URL, ANTHROPIC_BASE_URL, ...
    ... run the agent ...
    proxy.stop()          # once the agent exited, before the root span ends: every exchange stored
    proxy.divergence      # None, or where the replay parted from the recording (`.message()`,
                          # `.to_json()`): the run fails as `diverged` unless it went live

A replayed run carries `agenttrace.replay_of` (`exchanges.REPLAY_OF_ATTRIBUTE`) on its root span.
Codex takes its base URL from `-c model_providers.<name>.base_url=<codex_base_url(proxy)>`.
"""
