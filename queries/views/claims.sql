-- Claims an agent made, each with its evidence: spans of type `claim` whose
-- `agenttrace.claim.text` is the claim and `agenttrace.claim.evidence` a JSON list of references.
CREATE OR REPLACE VIEW claims AS
SELECT
    c.run_id,
    c.span_id,
    c.attributes['agenttrace.claim.text'] AS text,
    CAST(coalesce(c.attributes['agenttrace.claim.evidence'], '[]') AS JSON)::VARCHAR[] AS evidence,
    (SELECT max(st.step) FROM steps st
      WHERE st.run_id = c.run_id AND st.start_time <= c.start_time) AS step,
    c.start_time AS claimed_at
FROM spans c
WHERE c.attributes['agenttrace.span.type'] = 'claim';
