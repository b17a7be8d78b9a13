-- The raw records: finished Parquet parts plus spool records not yet sealed into Parquet.
-- `_part_*` and `_spool_*` are registered by agenttrace when it opens the store.
CREATE OR REPLACE VIEW raw_spans AS
SELECT * FROM _part_spans
UNION ALL BY NAME
SELECT * FROM _spool_spans;

CREATE OR REPLACE VIEW raw_samples AS
SELECT * FROM _part_samples;
