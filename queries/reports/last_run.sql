-- `last`: the run that started most recently.
SELECT run_id FROM runs ORDER BY started DESC, run_id DESC LIMIT 1;
