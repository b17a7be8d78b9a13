-- What an all-runs audit (`agenttrace audit --all`) starts from: each run's state, how its command
-- ended, and the gate set it recorded at its start (as run_ending.sql, for every run at once).
SELECT run_id, state, exit_code, signal, recorded_gates FROM runs;
