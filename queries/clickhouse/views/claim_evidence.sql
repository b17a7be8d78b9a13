-- ClickHouse variant of queries/views/claim_evidence.sql (same meaning, same columns): a variant because
-- the DuckDB file unnests a JSON[] cast (`unnest` + `generate_subscripts`: ARRAY JOIN of
-- JSONExtractArrayRaw with arrayEnumerate here) and reads each item with `->>`, which gives a value
-- that is not a string as its JSON text (JSONExtractString would give ''). `rtrim(x, '/')` is
-- trimRight, `left` is leftUTF8 (characters), GROUP BY ALL is spelled out.
CREATE OR REPLACE VIEW claim_evidence AS
WITH items AS (
    SELECT
        run_id, span_id AS claim_span_id, text AS claim, step, claimed_at, e, position
    FROM claims
    ARRAY JOIN
        JSONExtractArrayRaw(coalesce(evidence_json, '[]')) AS e,
        arrayEnumerate(JSONExtractArrayRaw(coalesce(evidence_json, '[]'))) AS position
),
parsed AS (
    SELECT
        run_id, claim_span_id, claim, step, claimed_at, position,
        -- e ->> 'key': NULL when missing or a JSON null, a string unquoted, other JSON as its text
        multiIf(JSONType(e, 'kind') = 'String', CAST(JSONExtractString(e, 'kind'), 'Nullable(String)'),
                JSONType(e, 'kind') != 'Null', JSONExtractRaw(e, 'kind'), NULL) AS _kind,
        coalesce(_kind, 'file') AS kind,
        coalesce(
            multiIf(JSONType(e, 'ref') = 'String', CAST(JSONExtractString(e, 'ref'), 'Nullable(String)'),
                    JSONType(e, 'ref') != 'Null', JSONExtractRaw(e, 'ref'), NULL),
            multiIf(JSONType(e) = 'String', CAST(JSONExtractString(e), 'Nullable(String)'),
                    JSONType(e) != 'Null', JSONExtractRaw(e), NULL)) AS ref,
        multiIf(JSONType(e, 'path') = 'String', CAST(JSONExtractString(e, 'path'), 'Nullable(String)'),
                JSONType(e, 'path') != 'Null', JSONExtractRaw(e, 'path'), NULL) AS path,
        multiIf(JSONType(e, 'sha256') = 'String', CAST(JSONExtractString(e, 'sha256'), 'Nullable(String)'),
                JSONType(e, 'sha256') != 'Null', JSONExtractRaw(e, 'sha256'), NULL) AS sha256,
        CAST(multiIf(JSONType(e, 'size') = 'String', CAST(JSONExtractString(e, 'size'), 'Nullable(String)'),
                     JSONType(e, 'size') != 'Null', JSONExtractRaw(e, 'size'), NULL), 'Nullable(Int64)') AS size,
        multiIf(JSONType(e, 'content_type') = 'String', CAST(JSONExtractString(e, 'content_type'), 'Nullable(String)'),
                JSONType(e, 'content_type') != 'Null', JSONExtractRaw(e, 'content_type'), NULL) AS content_type,
        multiIf(JSONType(e, 'stored') = 'String', CAST(JSONExtractString(e, 'stored'), 'Nullable(String)'),
                JSONType(e, 'stored') != 'Null', JSONExtractRaw(e, 'stored'), NULL) AS _stored,
        multiIf(lower(_stored) IN ('true', 't', 'yes', 'y', '1'), true,
                lower(_stored) IN ('false', 'f', 'no', 'n', '0'), false, NULL) AS stored,
        multiIf(JSONType(e, 'error') = 'String', CAST(JSONExtractString(e, 'error'), 'Nullable(String)'),
                JSONType(e, 'error') != 'Null', JSONExtractRaw(e, 'error'), NULL) AS claim_error
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
        trimRight(coalesce(attributes['url.full'], attributes['http.url']), '/') AS url,
        max(_status BETWEEN 200 AND 299) AS ok,
        max(_status) AS status
    FROM (
        SELECT *, CAST(coalesce(attributes['http.response.status_code'], attributes['http.status_code']), 'Nullable(Int32)') AS _status
        FROM spans
        WHERE coalesce(attributes['url.full'], attributes['http.url']) IS NOT NULL
    )
    GROUP BY run_id, url
),
live AS (
    SELECT trimRight(url, '/') AS url, any(status) AS status, any(error) AS error
    FROM url_checks
    GROUP BY trimRight(url, '/')
)
SELECT
    p.run_id AS run_id,
    p.claim_span_id AS claim_span_id,
    p.claim AS claim,
    p.step AS step,
    p.claimed_at AS claimed_at,
    p.position AS position,
    p.kind AS kind,
    p.ref AS ref,
    p.path AS path,
    p.sha256 AS sha256,
    p.size AS size,
    p.content_type AS content_type,
    p.stored AS stored,
    r.sha256 AS sha256_at_end,
    CASE p.kind
        WHEN 'file' THEN CASE
            WHEN p.claim_error IS NOT NULL THEN
                'evidence file ' || p.ref || ' ' || p.claim_error || ' when the claim was made'
            WHEN p.sha256 IS NULL THEN 'evidence file ' || p.ref || ' has no recorded hash'
            WHEN r.found AND r.sha256 <> p.sha256 THEN
                'evidence file ' || p.ref || ' changed after the claim (sha256 ' || leftUTF8(p.sha256, 12)
                || '… when claimed, ' || leftUTF8(r.sha256, 12) || '… at the end of the run)'
            WHEN r.found = false AND NOT coalesce(p.stored, false) THEN
                'evidence file ' || p.ref || ' was deleted before the run ended, and no copy was kept (over the size cap)'
        END
        WHEN 'url' THEN CASE
            WHEN f.ok OR l.status BETWEEN 200 AND 299 THEN NULL
            ELSE 'URL ' || p.ref || ' was never fetched with a 2xx response during the run'
                || CASE WHEN f.status IS NOT NULL THEN ' (it answered ' || toString(f.status) || ')' ELSE '' END
                || CASE
                       WHEN l.status IS NOT NULL THEN '; checked live, it answered ' || toString(l.status)
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
FROM parsed AS p
LEFT JOIN rechecks AS r ON p.kind = 'file' AND r.run_id = p.run_id AND r.path = p.path
LEFT JOIN fetched AS f ON p.kind = 'url' AND f.run_id = p.run_id AND f.url = trimRight(p.ref, '/')
LEFT JOIN live AS l ON p.kind = 'url' AND l.url = trimRight(p.ref, '/')
LEFT JOIN spans AS s ON p.kind = 'span' AND s.run_id = p.run_id AND s.span_id = p.ref;
