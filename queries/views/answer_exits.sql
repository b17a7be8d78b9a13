-- Exit codes that are an answer, not an error: a predicate program says "no" with them. `grep`
-- exiting 1 found no match, which may be exactly what the agent was checking. A process or shell
-- tool call of `program` (the executable's name, or the first word of a tool's command) that
-- exits with `exit_code` is not a failure for unrecovered_errors. Add a row for another program.
CREATE OR REPLACE VIEW answer_exits AS
SELECT * FROM (VALUES
    ('grep', 1, 'no line matched'), ('egrep', 1, 'no line matched'), ('fgrep', 1, 'no line matched'),
    ('rg', 1, 'no match'), ('ag', 1, 'no match'), ('git-grep', 1, 'no match'),
    ('diff', 1, 'the files differ'), ('cmp', 1, 'the files differ'),
    ('test', 1, 'the condition is false'), ('[', 1, 'the condition is false'),
    ('[[', 1, 'the condition is false'), ('false', 1, 'false'),
    ('pgrep', 1, 'no process matched'), ('pidof', 1, 'no process matched'),
    ('which', 1, 'not found'), ('command', 1, 'not found'), ('id', 1, 'no such user'),
    ('getent', 2, 'no such entry'), ('systemctl', 3, 'the unit is not active')
) AS t(program, exit_code, meaning);
