-- When each run started (the derived index is named by it).
SELECT run_id, started FROM runs;
