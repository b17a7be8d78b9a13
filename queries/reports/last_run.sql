-- `last`: the run that started most recently (with its start, to compare with the runs whose
-- start is read from the derived index, `store.derived`).
SELECT run_id, started FROM runs ORDER BY started DESC, run_id DESC LIMIT 1;
