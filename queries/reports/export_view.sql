-- `agenttrace export --format parquet|csv --view VIEW`: one view's rows for one run. `$view` is
-- one of the names `views_with_run_id` lists (checked before this runs).
SELECT * FROM query_table($view) WHERE run_id = $run_id;
