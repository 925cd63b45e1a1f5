-- Archive sources (a GH Archive URL, a mirror, a directory of hour files),
-- numbered: source N is bit N of events.archives.
CREATE TABLE archive_sources (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id BETWEEN 0 AND 15),
    name TEXT    NOT NULL UNIQUE
);

-- Every archive hour file read whole, or that a source does not have (it
-- answered 404 once the hour and its lag had passed), per source.
CREATE TABLE archive_files (
    hour    INTEGER NOT NULL,  -- the hour in the file's name, since the epoch
    source  INTEGER NOT NULL,  -- archive_sources.id
    missing INTEGER NOT NULL CHECK (missing IN (0, 1)),
    events  INTEGER NOT NULL,  -- tracked events in the file
    max_lag INTEGER NOT NULL,  -- hours from the oldest event's created_at hour to the file's
    lags    TEXT    NOT NULL,  -- tracked events per lag: 'lag:events lag:events ...'
    read_at INTEGER NOT NULL,  -- epoch seconds, UTC
    PRIMARY KEY (hour, source)
) WITHOUT ROWID;

-- Hours (by created_at) whose archive files have all been read: answers up
-- to them are final, bar late arrivals.
CREATE TABLE settled_hours (
    hour       INTEGER NOT NULL PRIMARY KEY,
    settled_at INTEGER NOT NULL
);

-- Which archive sources hold each event (bit N: source N); 0 for none.
ALTER TABLE events ADD COLUMN archives INTEGER NOT NULL DEFAULT 0;

-- Events per created hour, type, origin and archive mask: what /coverage
-- sums, without reading events.
CREATE TABLE hour_sources (
    hour      INTEGER NOT NULL,
    type_code INTEGER NOT NULL,
    origin    INTEGER NOT NULL,
    archives  INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    PRIMARY KEY (hour, type_code, origin, archives)
) WITHOUT ROWID;

-- Events stored for an hour after it settled, per hour and type.
CREATE TABLE late_arrivals (
    hour      INTEGER NOT NULL,
    type_code INTEGER NOT NULL,
    events    INTEGER NOT NULL,
    PRIMARY KEY (hour, type_code)
) WITHOUT ROWID;

-- The hours imported whole so far were files by created_at, read from one
-- source: its events are the archive's, and each hour settled by its own
-- file (hours from 2025-05-25 on wait for the next files, as new ones do).
INSERT INTO archive_sources (id, name)
    SELECT 0, 'archive imported before sources were recorded'
    WHERE EXISTS (SELECT 1 FROM archive_hours);
INSERT INTO archive_files (hour, source, missing, events, max_lag, lags, read_at)
    SELECT hour, 0, 0, events_read, 0, '0:' || events_read, imported_at FROM archive_hours;
INSERT INTO settled_hours (hour, settled_at)
    SELECT hour, imported_at FROM archive_hours WHERE hour < 485592;
UPDATE events SET archives = 1
    WHERE origin = 3 AND created_at / 3600 IN (SELECT hour FROM archive_hours);
INSERT INTO hour_sources (hour, type_code, origin, archives, events)
    SELECT created_at / 3600, type_code, origin, archives, count(*) FROM events GROUP BY 1, 2, 3, 4;
DROP TABLE archive_hours;
