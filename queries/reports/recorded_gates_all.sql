-- The gate set each run recorded at its start (`agenttrace audit --all`), from its root span.
SELECT run_id, recorded_gates FROM runs;
