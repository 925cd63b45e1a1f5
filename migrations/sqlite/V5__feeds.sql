-- One row per poll of a feed: the global feed ('global') on every poll, a
-- watched repository's feed ('owner/name') whenever it answered anything but
-- 304. GitHub's event ids grow over time, so comparing a poll's oldest id with
-- the newest id seen before tells whether the poll reached back far enough.
CREATE TABLE feed_polls (
    id                 INTEGER PRIMARY KEY,
    polled_at          INTEGER NOT NULL,  -- epoch seconds, UTC
    feed               TEXT    NOT NULL,  -- 'global' or 'owner/name'
    outcome            TEXT    NOT NULL CHECK (outcome IN ('ok', 'not_modified', 'error', 'unavailable')),
    pages              INTEGER NOT NULL,
    received           INTEGER NOT NULL,  -- events of every type in the answer
    inserted           INTEGER NOT NULL,  -- tracked events newly stored
    oldest_id          INTEGER,           -- smallest event id in the answer
    newest_id          INTEGER,           -- largest event id in the answer
    previous_newest_id INTEGER,           -- largest id seen in this feed before
    new_events         INTEGER,           -- events in the answer newer than previous_newest_id
    -- 1: the answer reached back to previous_newest_id, nothing was missed;
    -- 0: a gap; NULL: cannot tell (first poll, 304, error).
    overlap            INTEGER,
    -- Global feed with a gap: ids between previous_newest_id and oldest_id,
    -- an upper bound on the events that were never seen.
    missed_estimate    INTEGER,
    error              TEXT
);
CREATE INDEX feed_polls_by_feed_time ON feed_polls (feed, polled_at);

-- Repositories polled through their own feed, and since when (kept across
-- restarts so "complete since" stays true).
CREATE TABLE watched_repos (
    repo_name     TEXT    NOT NULL PRIMARY KEY,
    watched_since INTEGER NOT NULL  -- epoch seconds, UTC
) WITHOUT ROWID;
