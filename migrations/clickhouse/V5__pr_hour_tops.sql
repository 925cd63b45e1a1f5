-- Each hour's busiest repositories by PullRequestEvents: at most 256 rows
-- with their counts, and one row with repo_name '' whose events is the most
-- any other repository has in that hour. Writers compute them for finished
-- hours (an import's end, the serving writer's upkeep); a short pr-counts
-- ranking over a window is proven from them instead of counting every
-- repository (see src/store/clickhouse/hour_tops.rs). pr_events is the hour's
-- PullRequestEvents when computed: a summary is used only while the minute
-- rollup still counts as many (events are only added; retention deletes the
-- summaries of the hours it touches). A recomputed hour's rows replace the
-- older ones of the same repository at a merge; rows left over from older
-- summaries carry an older pr_events and are never read.
CREATE TABLE IF NOT EXISTS {table pr_hour_tops} (
    hour      UInt32,
    pr_events UInt64,
    repo_name String,
    events    UInt64
) ENGINE = ReplacingMergeTree(pr_events)
ORDER BY (hour, repo_name)
SETTINGS index_granularity = 1024;

{distribute pr_hour_tops BY hour};
