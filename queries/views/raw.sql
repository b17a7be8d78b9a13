-- The raw records: finished Parquet parts plus spool records not yet sealed into Parquet.
-- `_part_*` and `_spool_*` are registered by agenttrace when it opens the store. `_Origin` says who
-- reported a record of a run recorded by `agenttrace run` (its manifest lists every part):
-- `supervisor` (what the supervisor saw and did) or `agent` (what the agent reported about itself
-- over OTLP); NULL for runs without a manifest (an SDK or `agenttrace serve` wrote them, or the
-- run is still being recorded).
CREATE OR REPLACE VIEW raw_spans AS
SELECT *, 'supervisor' AS _Origin FROM _part_spans_supervisor
UNION ALL BY NAME
SELECT *, 'agent' AS _Origin FROM _part_spans_agent
UNION ALL BY NAME
SELECT *, NULL::VARCHAR AS _Origin FROM _part_spans
UNION ALL BY NAME
SELECT *, NULL::VARCHAR AS _Origin FROM _spool_spans;


-- The same for OTLP log records and for metric data points (samples), with the same `_Origin`.
CREATE OR REPLACE VIEW raw_logs AS
SELECT *, 'supervisor' AS _Origin FROM _part_logs_supervisor
UNION ALL BY NAME
SELECT *, 'agent' AS _Origin FROM _part_logs_agent
UNION ALL BY NAME
SELECT *, NULL::VARCHAR AS _Origin FROM _part_logs
UNION ALL BY NAME
SELECT *, NULL::VARCHAR AS _Origin FROM _spool_logs;

CREATE OR REPLACE VIEW raw_samples AS
SELECT *, 'supervisor' AS _Origin FROM _part_samples_supervisor
UNION ALL BY NAME
SELECT *, 'agent' AS _Origin FROM _part_samples_agent
UNION ALL BY NAME
SELECT *, NULL::VARCHAR AS _Origin FROM _part_samples
UNION ALL BY NAME
SELECT *, NULL::VARCHAR AS _Origin FROM _spool_samples;
