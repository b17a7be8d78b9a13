-- The views (and materialized tables) with a `run_id` column: those a run's derived folder holds.
SELECT DISTINCT table_name FROM duckdb_columns() WHERE column_name = 'run_id';
