-- The ClickHouse schema (see README "ClickHouse"). Applied by ghmetrics at
-- start, recorded in ghmetrics_migrations. `{table X}` names table X (with
-- `--clickhouse-cluster`: X_local on every shard); `{distribute X BY key}`
-- creates, on a cluster only, the Distributed table X over the shards' X_local.
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
