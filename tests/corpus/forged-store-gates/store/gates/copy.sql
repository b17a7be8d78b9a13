-- description: x
-- applies: SELECT true
COPY (SELECT 42) TO 'copied.csv'; SELECT 1 AS reason, NULL AS span_id
