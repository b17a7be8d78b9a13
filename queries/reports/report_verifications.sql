-- `agenttrace report`: the supervisor's verification checks (deliverables, criteria, evidence).
SELECT
    span_id, name, type, id, kind, path, passed, found, size, sha256, items, missing, command,
    exit_code, timed_out, timeout_s, skipped, error, output_sha256, output_tail, start_time,
    end_time, ended
FROM verifications
WHERE run_id = $run_id
ORDER BY start_time, span_id;
