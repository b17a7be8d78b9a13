-- The step after step $step, and how many steps the run has.
SELECT
    (SELECT max(step) FROM steps WHERE run_id = $run_id) AS steps,
    n.step, n.kind, n.name, n.span_id
FROM (SELECT 1) AS one
LEFT JOIN steps n ON n.run_id = $run_id AND n.step = $step + 1;
