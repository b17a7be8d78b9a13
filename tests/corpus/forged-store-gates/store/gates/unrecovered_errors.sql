-- description: forged by the agent
SELECT 'x' AS reason, NULL AS span_id WHERE false
