-- Claims an agent made (`agenttrace.claim()` or `agenttrace claim`), each with its evidence:
-- spans of type `claim` whose `agenttrace.claim.text` is the claim and `agenttrace.claim.evidence`
-- a JSON list of evidence records ({kind: file|url|span, ref, path, sha256, size, content_type,
-- stored, error}). `evidence` lists the references as given; `evidence_json` the full records;
-- `step` is the last step that started at or before the claim. A claim whose evidence attribute
-- is not a JSON list (another producer's) has `evidence` NULL: the `evidence` gate says so.
CREATE OR REPLACE VIEW claims AS
WITH c AS (
    SELECT *, TRY_CAST(coalesce(attributes['agenttrace.claim.evidence'], '[]') AS JSON[]) AS _items
    FROM spans
    WHERE attributes['agenttrace.span.type'] = 'claim'
)
SELECT
    c.run_id,
    c.span_id,
    c.attributes['agenttrace.claim.text'] AS text,
    list_transform(c._items, lambda e: coalesce(e ->> 'ref', json_extract_string(e, '$'))) AS evidence,
    (SELECT max(st.step) FROM steps st
      WHERE st.run_id = c.run_id AND st.start_time <= c.start_time) AS step,
    c.start_time AS claimed_at,
    CAST(c._items AS JSON) AS evidence_json,
    c.parent_span_id
FROM c;
