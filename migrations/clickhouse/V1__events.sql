-- The ClickHouse schema (see README "ClickHouse"). Applied by ghmetrics at
-- start, recorded in ghmetrics_migrations. `{table X}` creates table X (with
-- `--clickhouse-cluster`: X_local on every shard); `{distribute X BY key}`
-- creates, on a cluster only, the Distributed table X over the shards' X_local;
-- `{local X}` names the table that holds X's rows (X, or X_local).
-- Types stay within what ClickHouse 18.16 and current releases both accept.

-- One row per stored event of a tracked type. ghmetrics writes each id once
-- (it looks the batch's ids up before inserting, one writer at a time); the
-- ReplacingMergeTree is the backstop that folds a duplicate into one row at
-- the next merge if two writers ever raced. Sorted by (type, created_at) so
-- "events since a moment" reads one range per type.
CREATE TABLE IF NOT EXISTS {table events} (
    id          UInt64,
    type        Enum8('WatchEvent' = 1, 'PullRequestEvent' = 2, 'IssuesEvent' = 3),
    created_at  DateTime('UTC'),
    repo_name   String,
    actor_login Nullable(String),
    action      Nullable(String),
    number      Nullable(Int64)
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (type, created_at, id);

-- Sharded by the event id's hash: an even spread whatever the repository
-- sizes, and every copy of one event on the same shard, where the
-- ReplacingMergeTree can fold it.
{distribute events BY intHash64(id)};

-- PR openings (PullRequestEvent, action 'opened') sorted by repository, so a
-- repository's gaps read one short range instead of every PR event.
CREATE TABLE IF NOT EXISTS {table pr_openings} (
    repo_name  String,
    created_at DateTime('UTC'),
    id         UInt64,
    number     Nullable(Int64)
) ENGINE = ReplacingMergeTree
ORDER BY (repo_name, created_at, id);

{distribute pr_openings BY intHash64(id)};

-- Rollups, kept by materialized views on every insert into events (on each
-- shard, from the rows that shard receives), so that event-counts, the
-- timeline and pr-counts read a few thousand rows instead of every event.
-- They are exact because every event is inserted once (see events). Retention
-- deletes the minutes before its (whole-minute) cutoff, and takes the deleted
-- PullRequestEvents out of pr_counts with negative rows.
CREATE TABLE IF NOT EXISTS {table event_counts_by_minute} (
    type   Enum8('WatchEvent' = 1, 'PullRequestEvent' = 2, 'IssuesEvent' = 3),
    minute UInt32,
    events Int64
) ENGINE = SummingMergeTree
ORDER BY (type, minute);

{distribute event_counts_by_minute BY minute};

CREATE MATERIALIZED VIEW IF NOT EXISTS {table event_counts_by_minute_mv}
TO {local event_counts_by_minute} AS
SELECT type, toUInt32(intDiv(toUInt32(created_at), 60)) AS minute, toInt64(count()) AS events
FROM {local events}
GROUP BY type, minute;

-- PullRequestEvents per repository. The row with repo_name '' is retention's
-- mark: its sum is the cutoff up to which deleted events were taken out.
-- Small granules: a short ranking reads only the granules of its candidate
-- repositories (see top_pr_counts in src/store/clickhouse/mod.rs).
CREATE TABLE IF NOT EXISTS {table pr_counts} (
    repo_name String,
    events    Int64
) ENGINE = SummingMergeTree
ORDER BY repo_name
SETTINGS index_granularity = 256;

{distribute pr_counts BY cityHash64(repo_name)};

CREATE MATERIALIZED VIEW IF NOT EXISTS {table pr_counts_mv}
TO {local pr_counts} AS
SELECT repo_name, toInt64(count()) AS events
FROM {local events}
WHERE type = 'PullRequestEvent'
GROUP BY repo_name;

-- One row per poll of a feed ('global' or 'owner/name'), as in SQLite's V5.
CREATE TABLE IF NOT EXISTS {table feed_polls} (
    polled_at          DateTime('UTC'),
    feed               String,
    outcome            String,
    pages              UInt32,
    received           UInt64,
    inserted           UInt64,
    oldest_id          Nullable(Int64),
    newest_id          Nullable(Int64),
    previous_newest_id Nullable(Int64),
    new_events         Nullable(UInt64),
    overlap            Nullable(UInt8),
    missed_estimate    Nullable(UInt64),
    error              Nullable(String)
) ENGINE = MergeTree
ORDER BY (feed, polled_at);

{distribute feed_polls BY cityHash64(feed)};

-- Repositories polled through their own feed, and since when (the first row
-- of a repository counts).
CREATE TABLE IF NOT EXISTS {table watched_repos} (
    repo_name     String,
    watched_since DateTime('UTC')
) ENGINE = MergeTree
ORDER BY repo_name;

{distribute watched_repos BY cityHash64(repo_name)};
