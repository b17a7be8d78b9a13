-- What an audit starts from: the run's state and how its command ended.
SELECT state, exit_code, signal FROM runs WHERE run_id = $run_id;
