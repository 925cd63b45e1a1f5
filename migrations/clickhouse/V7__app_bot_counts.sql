-- The GitHub Apps' events (logins ending in [bot]) per type and minute, kept
-- by a materialized view as event_counts_by_minute is: counts and charts
-- without bots subtract them from it (and the events of the logins
-- --bot-login names, read at query time), instead of reading every event of
-- the window. Retention deletes its minutes with event_counts_by_minute's.
CREATE TABLE IF NOT EXISTS {table app_bot_counts_by_minute} (
    type   Enum8('WatchEvent' = 1, 'PullRequestEvent' = 2, 'IssuesEvent' = 3),
    minute UInt32,
    events Int64
) ENGINE = SummingMergeTree
ORDER BY (type, minute);

{distribute app_bot_counts_by_minute BY minute};

CREATE MATERIALIZED VIEW IF NOT EXISTS {table app_bot_counts_by_minute_mv}
TO {local app_bot_counts_by_minute} AS
SELECT type, toUInt32(intDiv(toUInt32(created_at), 60)) AS minute, toInt64(count()) AS events
FROM {local events}
WHERE endsWith(lower(ifNull(actor_login, '')), '[bot]')
GROUP BY type, minute;

-- The Apps' events stored before this migration.
INSERT INTO {all app_bot_counts_by_minute} SELECT type, toUInt32(intDiv(toUInt32(created_at), 60)) AS minute, toInt64(count()) AS events FROM {all events} WHERE endsWith(lower(ifNull(actor_login, '')), '[bot]') GROUP BY type, minute;
