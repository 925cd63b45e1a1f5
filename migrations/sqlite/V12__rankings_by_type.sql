-- Rankings over a window, of any type (top, and pr-counts with a window): the
-- window's events of one type with their repository, in time order, read from
-- this index alone. Its prefix serves what events_by_type_time served (events
-- per type and time), its PullRequestEvents what pr_events_by_time did.
CREATE INDEX events_by_type_time_repo ON events (type_code, created_at, repo_name);
DROP INDEX events_by_type_time;
DROP INDEX pr_events_by_time;
