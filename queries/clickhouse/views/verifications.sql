-- ClickHouse variant of queries/views/verifications.sql (same meaning, same columns): a variant because
-- `CAST(text AS JSON)::VARCHAR[]` (a JSON list as a list of text: strings unquoted, other values as
-- JSON text, JSON null as NULL) has no ClickHouse cast (CAST to Array parses ClickHouse's own array
-- syntax), and TRY_CAST(text AS BOOLEAN) must give NULL for other text (ClickHouse's CAST throws).
-- Where DuckDB's cast fails on a `missing` that is not a JSON list, this gives [].
CREATE OR REPLACE VIEW verifications AS
SELECT
    run_id,
    span_id,
    name,
    attributes['agenttrace.verify.type'] AS type,
    attributes['agenttrace.verify.id'] AS id,
    attributes['agenttrace.verify.kind'] AS kind,
    attributes['file.path'] AS path,
    multiIf(lower(attributes['agenttrace.verify.passed']) IN ('true', 't', 'yes', 'y', '1'), true,
            lower(attributes['agenttrace.verify.passed']) IN ('false', 'f', 'no', 'n', '0'), false,
            NULL) AS passed,
    multiIf(lower(attributes['agenttrace.verify.found']) IN ('true', 't', 'yes', 'y', '1'), true,
            lower(attributes['agenttrace.verify.found']) IN ('false', 'f', 'no', 'n', '0'), false,
            NULL) AS found,
    CAST(attributes['file.size'], 'Nullable(Int64)') AS size,
    attributes['agenttrace.verify.sha256'] AS sha256,
    CAST(attributes['agenttrace.verify.items'], 'Nullable(Int32)') AS items,
    arrayMap(
        v -> multiIf(JSONType(v) = 'String', CAST(JSONExtractString(v), 'Nullable(String)'),
                     JSONType(v) = 'Null', NULL,
                     v),
        JSONExtractArrayRaw(coalesce(attributes['agenttrace.verify.missing'], '[]'))) AS missing,
    attributes['agenttrace.verify.command'] AS command,
    CAST(attributes['agenttrace.verify.exit_code'], 'Nullable(Int32)') AS exit_code,
    multiIf(lower(attributes['agenttrace.verify.timed_out']) IN ('true', 't', 'yes', 'y', '1'), true,
            lower(attributes['agenttrace.verify.timed_out']) IN ('false', 'f', 'no', 'n', '0'), false,
            NULL) AS timed_out,
    CAST(attributes['agenttrace.verify.timeout_s'], 'Nullable(Float64)') AS timeout_s,
    attributes['agenttrace.verify.skipped'] AS skipped,
    attributes['agenttrace.verify.error'] AS error,
    attributes['agenttrace.verify.output_sha256'] AS output_sha256,
    attributes['agenttrace.verify.output_tail'] AS output_tail,
    start_time,
    end_time,
    ended
FROM spans
WHERE attributes['agenttrace.span.type'] = 'verify' AND origin IS DISTINCT FROM 'agent';
