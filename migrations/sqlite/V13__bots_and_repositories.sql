-- Bots: an event is a bot's (bot = 1) when its actor's login ends in [bot]
-- (a GitHub App) or is one of bot_logins (--bot-login, lower case), as
-- ghmetrics last applied them. Every write sets it; ghmetrics re-marks the
-- events of the logins added or removed when the list changes.
ALTER TABLE events ADD COLUMN bot INTEGER NOT NULL DEFAULT 0 CHECK (bot IN (0, 1));
UPDATE events SET bot = 1 WHERE actor_login LIKE '%[bot]';

CREATE TABLE bot_logins (
    login TEXT NOT NULL PRIMARY KEY
) WITHOUT ROWID;

-- The bots' events by type and time: what an answer without bots subtracts
-- from the rollups (a few per cent of the events).
CREATE INDEX bot_events_by_type_time ON events (type_code, created_at, repo_name) WHERE bot = 1;

-- One repository's events in time order, with their type and mark: its
-- event counts and timeline, from this index alone. Names compare ignoring
-- case, as GitHub's do (query with repo_name = ? COLLATE NOCASE).
CREATE INDEX events_by_repo_time ON events (repo_name COLLATE NOCASE, created_at, type_code, bot);

-- PR openings by repository in (created_at, id) order, now with the mark:
-- PR gaps without bots read this index alone too.
DROP INDEX pr_openings_by_repo_time;
CREATE INDEX pr_openings_by_repo_time ON events (repo_name, created_at, id, bot)
    WHERE type_code = 2 AND action = 'opened';
