-- One row per stored GitHub event of a tracked type. The GitHub event id is the
-- primary key (a rowid alias, so deduplication costs no extra index).
-- created_at is integer Unix epoch seconds (UTC): 8 bytes instead of 20 of text,
-- fast range scans, and SQLite's date functions read it with 'unixepoch':
--   SELECT datetime(created_at, 'unixepoch') FROM events;
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    type        TEXT    NOT NULL CHECK (type IN ('WatchEvent', 'PullRequestEvent', 'IssuesEvent')),
    created_at  INTEGER NOT NULL,
    repo_name   TEXT    NOT NULL,
    actor_login TEXT,
    action      TEXT,
    number      INTEGER
);

-- event-counts: one range scan per type over created_at.
CREATE INDEX events_by_type_time ON events (type, created_at);

-- pr-counts (covering scan of the type = 'PullRequestEvent' prefix, grouped by repo)
-- and average-pr-time (range scan on type, repo, action, already ordered by time).
CREATE INDEX events_by_type_repo_action_time ON events (type, repo_name, action, created_at);

-- The gaps between consecutive PR openings of each repository: the window-function
-- form of /metrics/average-pr-time, for ad hoc SQL.
CREATE VIEW pr_gaps AS
SELECT
    repo_name,
    id AS event_id,
    number,
    created_at AS opened_at,
    datetime(created_at, 'unixepoch') AS opened_at_utc,
    created_at - LAG(created_at) OVER (PARTITION BY repo_name ORDER BY created_at, id) AS gap_seconds
FROM events
WHERE type = 'PullRequestEvent' AND action = 'opened';
