-- One row per piece of evidence of every claim, resolved (DESIGN.md, gate `evidence`):
--   file  resolves unless it could not be read when claimed, or its hash at the end of the run
--         (the verification phase) differs from its hash when claimed, or it was deleted and no
--         copy was kept (over the size cap)
--   url   resolves if an HTTP span of the run fetched it with a 2xx, or a live check
--         (`agenttrace audit --online`, table `url_checks`) got a 2xx
--   span  resolves if the span is in the run, is work (not the run, a claim, an audit or a
--         verification), ended before the claim (so not the span the claim was made in), and did
--         not end in error
-- `problem` says why a piece does not resolve (NULL when it does).
CREATE OR REPLACE VIEW claim_evidence AS
WITH items AS (
    SELECT
        run_id, span_id AS claim_span_id, text AS claim, step, claimed_at,
        unnest(CAST(evidence_json AS JSON[])) AS e,
        generate_subscripts(CAST(evidence_json AS JSON[]), 1) AS position
    FROM claims
),
parsed AS (
    SELECT
        run_id, claim_span_id, claim, step, claimed_at, position,
        coalesce(e ->> 'kind', 'file') AS kind,
        coalesce(e ->> 'ref', json_extract_string(e, '$')) AS ref,
        e ->> 'path' AS path,
        e ->> 'sha256' AS sha256,
        TRY_CAST(e ->> 'size' AS BIGINT) AS size,
        e ->> 'content_type' AS content_type,
        TRY_CAST(e ->> 'stored' AS BOOLEAN) AS stored,
        e ->> 'error' AS claim_error
    FROM items
),
rechecks AS (
    SELECT run_id, path, found, sha256
    FROM verifications
    WHERE type = 'evidence'
    QUALIFY row_number() OVER (PARTITION BY run_id, path ORDER BY end_time DESC) = 1
),
fetched AS (
    SELECT
        run_id,
        rtrim(coalesce(attributes['url.full'], attributes['http.url']), '/') AS url,
        bool_or(_status BETWEEN 200 AND 299) AS ok,
        max(_status) AS status
    FROM (
        SELECT *, TRY_CAST(coalesce(attributes['http.response.status_code'], attributes['http.status_code']) AS INTEGER) AS _status
        FROM spans
        WHERE coalesce(attributes['url.full'], attributes['http.url']) IS NOT NULL
    )
    GROUP BY ALL
),
live AS (
    SELECT rtrim(url, '/') AS url, any_value(status) AS status, any_value(error) AS error
    FROM url_checks
    GROUP BY 1
)
SELECT
    p.run_id,
    p.claim_span_id,
    p.claim,
    p.step,
    p.claimed_at,
    p.position,
    p.kind,
    p.ref,
    p.path,
    p.sha256,
    p.size,
    p.content_type,
    p.stored,
    r.sha256 AS sha256_at_end,
    CASE p.kind
        WHEN 'file' THEN CASE
            WHEN p.claim_error IS NOT NULL THEN
                'evidence file ' || p.ref || ' ' || p.claim_error || ' when the claim was made'
            WHEN p.sha256 IS NULL THEN 'evidence file ' || p.ref || ' has no recorded hash'
            WHEN r.found AND r.sha256 <> p.sha256 THEN
                'evidence file ' || p.ref || ' changed after the claim (sha256 ' || left(p.sha256, 12)
                || '… when claimed, ' || left(r.sha256, 12) || '… at the end of the run)'
            WHEN r.found = false AND NOT coalesce(p.stored, false) THEN
                'evidence file ' || p.ref || ' was deleted before the run ended, and no copy was kept (over the size cap)'
        END
        WHEN 'url' THEN CASE
            WHEN f.ok OR l.status BETWEEN 200 AND 299 THEN NULL
            ELSE 'URL ' || p.ref || ' was never fetched with a 2xx response during the run'
                || CASE WHEN f.status IS NOT NULL THEN ' (it answered ' || f.status || ')' ELSE '' END
                || CASE
                       WHEN l.status IS NOT NULL THEN '; checked live, it answered ' || l.status
                       WHEN l.error IS NOT NULL THEN '; checked live: ' || l.error
                       ELSE ''
                   END
        END
        WHEN 'span' THEN CASE
            WHEN s.span_id IS NULL THEN 'evidence span ' || p.ref || ' is not in the run'
            WHEN s.attributes['agenttrace.span.type'] IN ('run', 'claim', 'audit', 'verify') THEN
                'evidence span ' || p.ref || ' is the run''s own ' || s.attributes['agenttrace.span.type']
                || ' span, not work that backs a claim'
            WHEN NOT s.ended THEN 'evidence span ' || p.ref || ' (' || s.name || ') never ended'
            WHEN s.end_time > p.claimed_at THEN
                'evidence span ' || p.ref || ' (' || s.name || ') ended after the claim was made'
            WHEN s.status_code = 'Error' THEN
                'evidence span ' || p.ref || ' (' || s.name || ') failed'
                || CASE WHEN coalesce(s.status_message, '') <> '' THEN ': ' || s.status_message ELSE '' END
        END
        ELSE 'evidence ' || p.ref || ' is of an unknown kind (' || p.kind || ')'
    END AS problem,
    f.status AS fetched_status,
    l.status AS live_status
FROM parsed p
LEFT JOIN rechecks r ON p.kind = 'file' AND r.run_id = p.run_id AND r.path = p.path
LEFT JOIN fetched f ON p.kind = 'url' AND f.run_id = p.run_id AND f.url = rtrim(p.ref, '/')
LEFT JOIN live l ON p.kind = 'url' AND l.url = rtrim(p.ref, '/')
LEFT JOIN spans s ON p.kind = 'span' AND s.run_id = p.run_id AND s.span_id = p.ref;
