-- ClickHouse variant of queries/reports/gpu_lease.sql (same meaning, same columns): DuckDB's
-- `TRY_CAST(json(x) AS VARCHAR[] / INTEGER[])` is JSONExtractArrayRaw with each element read as
-- DuckDB does (a string unquoted, a JSON null NULL, anything else its JSON text / the integer);
-- its two `unnest`s side by side (zipped, the shorter padded with NULLs) are one ARRAY JOIN over
-- the indexes of the longer; `list(x ORDER BY t) FILTER (...)` is a sorted groupArrayIf; DuckDB's
-- round() (the exact value, half away from zero) is spelled out (ClickHouse's is not that); the
-- ECC sum is over Int128 (DuckDB's sum of BIGINTs is a HUGEINT).
-- `agenttrace show`: the run's GPU lease (`agenttrace run --gpu`), one row per leased device, with
-- how long the lease waited, whether it was lost (why), and the device as sampled while the lease
-- was held: samples, utilization (fraction 0..1), memory used, Xid codes and uncorrected ECC
-- errors. Only `agenttrace run`'s own records (a lease span or samples the agent sent about itself,
-- origin `agent`, are left out, as `gpu_guard` leaves them out).
WITH lease AS (
    SELECT
        span_id,
        start_time,
        coalesce(end_time, (SELECT ended FROM runs WHERE run_id = {run_id:String})) AS end_time,
        ended,
        attributes['agenttrace.gpu.lease.request'] AS request,
        CAST(attributes['agenttrace.gpu.lease.waited_s'] AS Nullable(Float64)) AS waited_s,
        attributes['agenttrace.gpu.lease.lost'] AS lost,
        arrayMap(j -> multiIf(JSONType(j) = 'Null', NULL, JSONType(j) = 'String', JSONExtractString(j), j),
                 JSONExtractArrayRaw(coalesce(attributes['agenttrace.gpu.lease.devices'], ''))) AS devices,
        arrayMap(j -> multiIf(
                     JSONType(j) IN ('Int64', 'UInt64'), accurateCastOrNull(j, 'Int32'),
                     JSONType(j) = 'Double', accurateCastOrNull(sign(JSONExtractFloat(j)) * floor(abs(JSONExtractFloat(j)) + 0.5), 'Int32'),
                     JSONType(j) = 'Bool', toNullable(toInt32(JSONExtractBool(j))),
                     JSONType(j) = 'String', accurateCastOrNull(trimBoth(JSONExtractString(j)), 'Int32'),
                     NULL),
                 JSONExtractArrayRaw(coalesce(attributes['agenttrace.gpu.lease.indices'], ''))) AS indices
    FROM spans
    WHERE run_id = {run_id:String}
      AND attributes['agenttrace.span.type'] = 'gpu_lease'
      AND origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT span_id, start_time, end_time, ended, request, waited_s, lost,
           pair.1 AS uuid, pair.2 AS device
    FROM lease
    ARRAY JOIN arrayMap(i -> (devices[i], indices[i]), range(1, greatest(length(devices), length(indices)) + 1)) AS pair
),
held AS (  -- the device's own samples while the lease was held
    SELECT l.span_id AS span_id, l.uuid AS uuid, s.time AS time, s.utilization AS utilization,
           s.memory_used AS memory_used, s.memory_total AS memory_total, s.device_name AS device_name
    FROM leased AS l
    JOIN gpu_samples AS s ON s.uuid = l.uuid
    WHERE s.run_id = {run_id:String} AND s.pid IS NULL AND s.origin IS DISTINCT FROM 'agent'
      AND s.time BETWEEN l.start_time AND coalesce(l.end_time, s.time)
),
events AS (
    SELECT l.span_id AS span_id, l.uuid AS uuid,
           arrayMap(p -> p.2, arraySort(p -> p.1, groupArrayIf((e.time, e.xid), e.kind = 'xid'))) AS xids,
           sumIf(toInt128(e.errors), e.kind = 'ecc_uncorrected') AS ecc_uncorrected
    FROM leased AS l
    JOIN gpu_events AS e ON e.uuid = l.uuid
    WHERE e.run_id = {run_id:String} AND e.origin IS DISTINCT FROM 'agent'
      AND e.time BETWEEN l.start_time AND coalesce(l.end_time, e.time)
    GROUP BY l.span_id, l.uuid
)
SELECT
    l.span_id AS span_id,
    l.start_time AS start_time,
    l.end_time AS end_time,
    l.ended AS ended,
    l.request AS request,
    l.waited_s AS waited_s,
    l.lost AS lost,
    l.device AS device,
    l.uuid AS uuid,
    any(h.device_name) AS name,
    count(h.time) AS samples,
    max(h.utilization) AS utilization_max,
    -- round(avg(h.utilization), 4) as DuckDB rounds (the exact value, half away from zero): u * 10^4 in
    -- floating point, and where that is k + 0.5 exactly, the side the exact product is on (Dekker's
    -- error-free product: a split in two halves of at most 27 bits)
    arrayMap((u, a, p) -> if(isFinite(p),
                             sign(u) * (floor(p) + (p - floor(p) > 0.5
                                 OR (p - floor(p) = 0.5
                                     AND ((a * 134217729 - (a * 134217729 - a)) * 10000 - p)
                                         + (a - (a * 134217729 - (a * 134217729 - a))) * 10000 >= 0))) / 10000,
                             u),
             [avg(h.utilization)], [abs(avg(h.utilization))], [abs(avg(h.utilization)) * 10000])[1] AS utilization_avg,
    max(h.memory_used) AS memory_used_max,
    max(h.memory_total) AS memory_total,
    any(e.xids) AS xids,
    coalesce(any(e.ecc_uncorrected), 0) AS ecc_uncorrected
FROM leased AS l
LEFT JOIN held AS h ON h.span_id = l.span_id AND h.uuid = l.uuid
LEFT JOIN events AS e ON e.span_id = l.span_id AND e.uuid = l.uuid
GROUP BY l.span_id, l.start_time, l.end_time, l.ended, l.request, l.waited_s, l.lost, l.device, l.uuid
ORDER BY l.start_time, l.span_id, l.device, l.uuid
