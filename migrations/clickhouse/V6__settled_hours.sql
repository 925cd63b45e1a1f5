-- Archive sources (a GH Archive URL, a mirror, a directory of hour files),
-- numbered: source N is bit N of events.archives.
CREATE TABLE IF NOT EXISTS {table archive_sources} (
    id   UInt8,
    name String
) ENGINE = MergeTree
ORDER BY id;

{distribute archive_sources BY id};

-- Every archive hour file read whole, or that a source does not have (it
-- answered 404 once the hour and its lag had passed), per source; the
-- newest row of a file and source says what is known.
CREATE TABLE IF NOT EXISTS {table archive_files} (
    hour    UInt32,          -- the hour in the file's name, since the epoch
    source  UInt8,           -- archive_sources.id
    missing UInt8,
    events  UInt64,          -- tracked events in the file
    max_lag Int64,           -- hours from the oldest event's created_at hour to the file's
    lags    String,          -- tracked events per lag: 'lag:events lag:events ...'
    read_at DateTime('UTC')
) ENGINE = MergeTree
ORDER BY (hour, source);

{distribute archive_files BY hour};

-- Hours (by created_at) whose archive files have all been read: answers up
-- to them are final, bar late arrivals. A hour may have several rows.
CREATE TABLE IF NOT EXISTS {table settled_hours} (
    hour       UInt32,
    settled_at DateTime('UTC')
) ENGINE = MergeTree
ORDER BY hour;

{distribute settled_hours BY hour};

-- Events stored for an hour after it settled (rows summed when read).
CREATE TABLE IF NOT EXISTS {table late_arrivals} (
    hour   UInt32,
    type   Enum8('WatchEvent' = 1, 'PullRequestEvent' = 2, 'IssuesEvent' = 3),
    events UInt64
) ENGINE = MergeTree
ORDER BY (hour, type);

{distribute late_arrivals BY hour};

-- Which archive sources hold each event (bit N: source N), as first stored.
ALTER TABLE {table events} ADD COLUMN IF NOT EXISTS archives UInt32 DEFAULT 0;
ALTER TABLE {distributed events} ADD COLUMN IF NOT EXISTS archives UInt32 DEFAULT 0;

-- How each PR opening arrived, as the events table says: which answers rest
-- on files that are not archive hours.
ALTER TABLE {table pr_openings} ADD COLUMN IF NOT EXISTS origin UInt8 DEFAULT 0;
ALTER TABLE {table pr_openings} ADD COLUMN IF NOT EXISTS archives UInt32 DEFAULT 0;
ALTER TABLE {distributed pr_openings} ADD COLUMN IF NOT EXISTS origin UInt8 DEFAULT 0;
ALTER TABLE {distributed pr_openings} ADD COLUMN IF NOT EXISTS archives UInt32 DEFAULT 0;

-- An archive found to hold an event already stored: the event moves from the
-- mask `from_mask` to `to_mask` (what /coverage sums with the events').
CREATE TABLE IF NOT EXISTS {table archive_marks} (
    id         UInt64,
    created_at DateTime('UTC'),
    type       Enum8('WatchEvent' = 1, 'PullRequestEvent' = 2, 'IssuesEvent' = 3),
    origin     UInt8,
    from_mask  UInt32,
    to_mask    UInt32
) ENGINE = MergeTree
ORDER BY (created_at, id);

{distribute archive_marks BY intHash64(id)};

-- The hours imported whole so far were files by created_at, read from one
-- source; each hour before 2025-05-25 is settled by its own file (hours
-- from then on wait for the next files, as new ones do).
INSERT INTO {all archive_sources} SELECT 0, 'archive imported before sources were recorded' FROM {all archive_hours} LIMIT 1;
INSERT INTO {all archive_files} SELECT hour, 0, 0, events_read, 0, concat('0:', toString(events_read)), imported_at FROM {all archive_hours};
INSERT INTO {all settled_hours} SELECT hour, max(imported_at) FROM {all archive_hours} WHERE hour < 485592 GROUP BY hour;
