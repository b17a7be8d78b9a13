-- `agenttrace export`: each GPU device's samples (utilization as a fraction, memory used in bytes),
-- times in ns, for a timeline's counter tracks. The supervisor's samples only: `hw.gpu.*` metrics
-- the agent sent about itself prove nothing.
SELECT
    device,
    any_value(uuid) AS uuid,
    epoch_ns(time) AS time_ns,
    max(utilization) AS utilization,
    max(memory_used) AS memory_used
FROM gpu_samples
WHERE run_id = $run_id AND pid IS NULL AND device IS NOT NULL AND origin IS DISTINCT FROM 'agent'
GROUP BY device, time
ORDER BY device, time;
