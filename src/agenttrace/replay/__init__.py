"""Record and replay an agent's model calls at the HTTP level (issue 15).

- `routes`: the LLM APIs the proxy serves, their upstreams, the agent's env (`agent_env`);
- `normalize`: the normalised request replay matches on, and `request_diff`;
- `proxy`: `LLMProxy`, a loopback HTTP proxy that records (forwards upstream, streams back, stores
  each exchange) or replays a `Recording` (and reports the first `Divergence`);
- `exchanges`: the `Exchange` record, `record_span` (one span per exchange in the run) and
  `load_recording` (a recorded run's exchanges, checked).

Library only: `agenttrace run --record`, `--replay` and `agenttrace replay` drive it.
"""
