-- Where a pushed run's records differed from its supervisor's manifest when it was pushed (the
-- `integrity` gate reads them): one row per problem, tied to the push that found it.
CREATE TABLE IF NOT EXISTS {db}.agenttrace_problems (
    RunId String,
    PushedAt DateTime64(6, 'UTC'),
    Reason String,
    Part Nullable(String)
) ENGINE = MergeTree
ORDER BY (RunId, PushedAt)
