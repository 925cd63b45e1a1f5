-- How each event arrived: 1 the global feed, 2 a watched repository's feed,
-- 3 an imported file; 0 for events stored before origins were recorded. The
-- first copy stored decides (a later copy is a duplicate).
ALTER TABLE events ADD COLUMN origin INTEGER NOT NULL DEFAULT 0 CHECK (origin IN (0, 1, 2, 3));

-- Events stored per origin, kept in step with `events` like the other rollups.
CREATE TABLE event_counts_by_origin (
    origin INTEGER NOT NULL PRIMARY KEY,
    events INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO event_counts_by_origin (origin, events)
    SELECT 0, sum(events) FROM event_counts_by_day HAVING sum(events) > 0;

-- GH Archive hours imported whole (a file named YYYY-MM-DD-H.json.gz read to
-- its end): every event created in that hour is stored.
CREATE TABLE archive_hours (
    hour        INTEGER NOT NULL PRIMARY KEY,  -- created_at / 3600 of its events
    source      TEXT    NOT NULL,              -- the file (or URL) it came from
    events_read INTEGER NOT NULL,              -- tracked events in the file
    stored      INTEGER NOT NULL,              -- of them newly stored
    imported_at INTEGER NOT NULL               -- epoch seconds, UTC
);
