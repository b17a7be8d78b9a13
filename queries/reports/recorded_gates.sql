-- The gate set a run recorded at its start (`agenttrace run`), from its root span.
SELECT recorded_gates FROM runs WHERE run_id = $run_id;
