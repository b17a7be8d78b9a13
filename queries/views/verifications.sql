-- The checks of the verification phase (spans of type `verify`), one row each:
--   type  deliverable | criterion | evidence
--   deliverable: path, found, size, sha256 (copied into the artifact store)
--   criterion:   id, kind (covers | command); covers: items, missing (the items not found in
--                `path`); command: command, exit_code, timed_out, output_sha256, output_tail;
--                skipped: why it was not run
--   evidence:    path of a file a claim cited, found, its sha256 at the end of the run
-- Only the supervisor verifies: `verify` spans the agent reported itself are not verifications.
CREATE OR REPLACE VIEW verifications AS
SELECT
    run_id,
    span_id,
    name,
    attributes['agenttrace.verify.type'] AS type,
    attributes['agenttrace.verify.id'] AS id,
    attributes['agenttrace.verify.kind'] AS kind,
    attributes['file.path'] AS path,
    TRY_CAST(attributes['agenttrace.verify.passed'] AS BOOLEAN) AS passed,
    TRY_CAST(attributes['agenttrace.verify.found'] AS BOOLEAN) AS found,
    TRY_CAST(attributes['file.size'] AS BIGINT) AS size,
    attributes['agenttrace.verify.sha256'] AS sha256,
    TRY_CAST(attributes['agenttrace.verify.items'] AS INTEGER) AS items,
    CAST(coalesce(attributes['agenttrace.verify.missing'], '[]') AS JSON)::VARCHAR[] AS missing,
    attributes['agenttrace.verify.command'] AS command,
    TRY_CAST(attributes['agenttrace.verify.exit_code'] AS INTEGER) AS exit_code,
    TRY_CAST(attributes['agenttrace.verify.timed_out'] AS BOOLEAN) AS timed_out,
    TRY_CAST(attributes['agenttrace.verify.timeout_s'] AS DOUBLE) AS timeout_s,
    attributes['agenttrace.verify.skipped'] AS skipped,
    attributes['agenttrace.verify.error'] AS error,
    attributes['agenttrace.verify.output_sha256'] AS output_sha256,
    attributes['agenttrace.verify.output_tail'] AS output_tail,
    start_time,
    end_time,
    ended
FROM spans
WHERE attributes['agenttrace.span.type'] = 'verify' AND origin IS DISTINCT FROM 'agent';
