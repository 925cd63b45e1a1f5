-- Small rollup tables, kept in step with `events` in the same transaction as
-- every insert, so that the metrics stay sub-millisecond at tens of millions of
-- events: event-counts sums whole days and minutes instead of counting rows, and
-- pr-counts reads its ranking from an index instead of grouping all PR events.

-- Events per type and UTC minute (minute = created_at / 60).
CREATE TABLE event_counts_by_minute (
    type   TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, minute)
) WITHOUT ROWID;

-- Events per type and UTC day (day = created_at / 86400).
CREATE TABLE event_counts_by_day (
    type   TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, day)
) WITHOUT ROWID;

-- PullRequestEvents (any action) per repository.
CREATE TABLE pr_counts (
    repo_name TEXT    NOT NULL PRIMARY KEY,
    events    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX pr_counts_by_rank ON pr_counts (events DESC, repo_name);

INSERT INTO event_counts_by_minute (type, minute, events)
    SELECT type, created_at / 60, count(*) FROM events GROUP BY 1, 2;
INSERT INTO event_counts_by_day (type, day, events)
    SELECT type, created_at / 86400, count(*) FROM events GROUP BY 1, 2;
INSERT INTO pr_counts (repo_name, events)
    SELECT repo_name, count(*) FROM events WHERE type = 'PullRequestEvent' GROUP BY 1;
