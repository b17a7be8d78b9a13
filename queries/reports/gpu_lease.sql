-- `agenttrace show`: the run's GPU lease (`agenttrace run --gpu`), one row per leased device, with
-- how long the lease waited, whether it was lost (why), and the device as sampled while the lease
-- was held: samples, utilization (fraction 0..1), memory used, Xid codes and uncorrected ECC
-- errors. Only `agenttrace run`'s own records (a lease span or samples the agent sent about itself,
-- origin `agent`, are left out, as `gpu_guard` leaves them out).
WITH lease AS (
    SELECT
        span_id,
        start_time,
        coalesce(end_time, (SELECT ended FROM runs WHERE run_id = $run_id)) AS end_time,
        ended,
        attributes['agenttrace.gpu.lease.request'] AS request,
        TRY_CAST(attributes['agenttrace.gpu.lease.waited_s'] AS DOUBLE) AS waited_s,
        attributes['agenttrace.gpu.lease.lost'] AS lost,
        TRY_CAST(json(attributes['agenttrace.gpu.lease.devices']) AS VARCHAR[]) AS devices,
        TRY_CAST(json(attributes['agenttrace.gpu.lease.indices']) AS INTEGER[]) AS indices
    FROM spans
    WHERE run_id = $run_id
      AND attributes['agenttrace.span.type'] = 'gpu_lease'
      AND origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT * EXCLUDE (devices, indices), unnest(devices) AS uuid, unnest(indices) AS device FROM lease
),
held AS (  -- the device's own samples while the lease was held
    SELECT l.span_id, l.uuid, s.time, s.utilization, s.memory_used, s.memory_total, s.device_name
    FROM leased l
    JOIN gpu_samples s
      ON s.run_id = $run_id AND s.uuid = l.uuid AND s.pid IS NULL AND s.origin IS DISTINCT FROM 'agent'
     AND s.time BETWEEN l.start_time AND coalesce(l.end_time, s.time)
),
events AS (
    SELECT l.span_id, l.uuid,
           list(e.xid ORDER BY e.time) FILTER (WHERE e.kind = 'xid') AS xids,
           sum(e.errors) FILTER (WHERE e.kind = 'ecc_uncorrected') AS ecc_uncorrected
    FROM leased l
    JOIN gpu_events e
      ON e.run_id = $run_id AND e.uuid = l.uuid AND e.origin IS DISTINCT FROM 'agent'
     AND e.time BETWEEN l.start_time AND coalesce(l.end_time, e.time)
    GROUP BY l.span_id, l.uuid
)
SELECT
    l.span_id,
    l.start_time,
    l.end_time,
    l.ended,
    l.request,
    l.waited_s,
    l.lost,
    l.device,
    l.uuid,
    any_value(h.device_name) AS name,
    count(h.time) AS samples,
    max(h.utilization) AS utilization_max,
    round(avg(h.utilization), 4) AS utilization_avg,
    max(h.memory_used) AS memory_used_max,
    max(h.memory_total) AS memory_total,
    coalesce(any_value(e.xids), []) AS xids,
    coalesce(any_value(e.ecc_uncorrected), 0) AS ecc_uncorrected
FROM leased l
LEFT JOIN held h ON h.span_id = l.span_id AND h.uuid = l.uuid
LEFT JOIN events e ON e.span_id = l.span_id AND e.uuid = l.uuid
GROUP BY ALL
ORDER BY l.start_time, l.span_id, l.device, l.uuid;
