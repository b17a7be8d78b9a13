-- What an audit starts from: the run's state, how its command ended, and the gate set it recorded
-- at its start (NULL for a run not recorded by `agenttrace run`).
SELECT state, exit_code, signal, recorded_gates FROM runs WHERE run_id = $run_id;
