-- Every stored event's id, sorted by id: the lookup before an insert finds a
-- stored id in one short range whatever `created_at`, type or repository the
-- new copy carries (events is sorted by type and time, where an id alone
-- would mean reading every row). Kept by a materialized view on each shard
-- from the rows it receives; retention deletes with the events.
CREATE TABLE IF NOT EXISTS {table event_ids} (
    id         UInt64,
    created_at DateTime('UTC')
) ENGINE = ReplacingMergeTree
ORDER BY id;

{distribute event_ids BY intHash64(id)};

CREATE MATERIALIZED VIEW IF NOT EXISTS {table event_ids_mv}
TO {local event_ids} AS
SELECT id, created_at FROM {local events};

-- The ids stored before this migration. Run again after an interruption it
-- repeats ids, which the lookup reads once and a merge folds.
INSERT INTO {all event_ids} SELECT id, created_at FROM {all events};
