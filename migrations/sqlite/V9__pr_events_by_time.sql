-- pr-counts over a window: the window's PullRequestEvents in time order with
-- their repository, read from this index alone (no lookup of each row in the
-- table). It holds only PullRequestEvents, about a third of all events.
CREATE INDEX pr_events_by_time ON events (created_at, repo_name) WHERE type_code = 2;
