-- Whether a run has NVML samples of `agenttrace run`'s own (origin not `agent`): `agenttrace show`
-- and `agenttrace step` ask nothing more about the GPUs of a run without them (and, for `show`,
-- without a span named as `agenttrace run` names its GPU lease).
SELECT EXISTS (FROM gpu_samples WHERE run_id = $run_id AND origin IS DISTINCT FROM 'agent') AS sampled;
