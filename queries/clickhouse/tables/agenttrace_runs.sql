-- One row per run pushed by agenttrace (`agenttrace push`): which store and host it came from,
-- when, and whether its supervisor's manifest vouched for its records (`supervised`). The newest
-- push of a run wins: its records are those with its `PushedAt`, written before this row, so a push
-- cut short is never read. A run listed here is read from the agenttrace_* tables only.
CREATE TABLE IF NOT EXISTS {db}.agenttrace_runs (
    RunId String,
    Supervised Bool,
    PushedAt DateTime64(6, 'UTC'),
    Host String,
    Store String,
    Spans UInt64,
    Logs UInt64,
    Samples UInt64,
    AgenttraceVersion String
) ENGINE = ReplacingMergeTree(PushedAt)
ORDER BY RunId
