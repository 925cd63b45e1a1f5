-- The humans' events (bot = 0) per type and minute, hour and day, kept exact
-- with event_counts_by_* in the same transactions: an answer without bots
-- reads these as an answer with them reads event_counts_by_*.
CREATE TABLE human_counts_by_minute (
    type   TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, minute)
) WITHOUT ROWID;
CREATE TABLE human_counts_by_hour (
    type   TEXT    NOT NULL,
    hour   INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, hour)
) WITHOUT ROWID;
CREATE TABLE human_counts_by_day (
    type   TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, day)
) WITHOUT ROWID;

-- Every event's counts less the bots' (read from the bots' index into a
-- keyed table, so that the join is one lookup per minute).
CREATE TEMP TABLE bot_minutes (
    type   TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, minute)
) WITHOUT ROWID;
INSERT INTO bot_minutes (type, minute, events)
    SELECT type, created_at / 60, count(*)
    FROM events INDEXED BY bot_events_by_type_time WHERE bot = 1 GROUP BY type_code, created_at / 60;
INSERT INTO human_counts_by_minute (type, minute, events)
    SELECT e.type, e.minute, e.events - coalesce(b.events, 0)
    FROM event_counts_by_minute AS e LEFT JOIN bot_minutes AS b USING (type, minute)
    WHERE e.events - coalesce(b.events, 0) > 0;
DROP TABLE bot_minutes;
INSERT INTO human_counts_by_hour (type, hour, events)
    SELECT type, minute / 60, sum(events) FROM human_counts_by_minute GROUP BY type, minute / 60;
INSERT INTO human_counts_by_day (type, day, events)
    SELECT type, hour / 24, sum(events) FROM human_counts_by_hour GROUP BY type, hour / 24;
