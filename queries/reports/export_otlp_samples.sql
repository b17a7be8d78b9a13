-- `agenttrace export --format otlp-json`: the run's metric data points, as stored (the columns of
-- the store's sample schema, for `gpu.samples.to_otlp`).
SELECT * EXCLUDE (_Origin) FROM raw_samples WHERE RunId = $run_id ORDER BY TimeUnix;
