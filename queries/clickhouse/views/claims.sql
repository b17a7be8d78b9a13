-- ClickHouse variant of queries/views/claims.sql (same meaning, same columns): a variant because
-- DuckDB's JSON[] (TRY_CAST of the evidence attribute, re-cast to JSON) and `->>` on values that are
-- not strings have no ClickHouse cast. JSONExtractArrayRaw gives the list's items as minified JSON
-- text, as DuckDB's JSON[] does; `evidence_json` is them joined as DuckDB writes a JSON[] cast to
-- JSON ('[' items joined by ', ' ']'). A ClickHouse array cannot be NULL: where the attribute is not
-- a JSON list, `evidence` is [] (DuckDB: NULL) and `evidence_json` is NULL, as in DuckDB; tell the
-- two cases apart by `evidence_json IS NULL`. `step` is a join, not a correlated subquery.
CREATE OR REPLACE VIEW claims AS
WITH c AS (
    SELECT
        *,
        coalesce(attributes['agenttrace.claim.evidence'], '[]') AS _evidence,
        isValidJSON(_evidence) AND JSONType(_evidence) = 'Array' AS _is_list,
        if(_is_list, JSONExtractArrayRaw(_evidence), []) AS _items
    FROM spans
    WHERE attributes['agenttrace.span.type'] = 'claim'
),
claim_steps AS (
    SELECT c.run_id AS run_id, c.span_id AS span_id, c.start_time AS start_time, max(st.step) AS step
    FROM c
    INNER JOIN steps AS st ON st.run_id = c.run_id AND st.start_time <= c.start_time
    GROUP BY c.run_id, c.span_id, c.start_time
)
SELECT
    c.run_id AS run_id,
    c.span_id AS span_id,
    c.attributes['agenttrace.claim.text'] AS text,
    -- coalesce(e ->> 'ref', json_extract_string(e, '$')): a string unquoted, other JSON as its text
    arrayMap(
        e -> multiIf(
            JSONType(e, 'ref') = 'String', CAST(JSONExtractString(e, 'ref'), 'Nullable(String)'),
            JSONType(e, 'ref') != 'Null', JSONExtractRaw(e, 'ref'),
            JSONType(e) = 'String', JSONExtractString(e),
            JSONType(e) != 'Null', JSONExtractRaw(e),
            NULL),
        c._items) AS evidence,
    cs.step AS step,
    c.start_time AS claimed_at,
    if(c._is_list, concat('[', arrayStringConcat(c._items, ', '), ']'), NULL) AS evidence_json,
    c.parent_span_id AS parent_span_id
FROM c
LEFT JOIN claim_steps AS cs
  ON cs.run_id = c.run_id AND cs.span_id = c.span_id AND cs.start_time = c.start_time;
