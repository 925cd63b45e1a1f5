-- The bots' events (bot = 1) per type and minute, hour and day, kept exact
-- with event_counts_by_* in the same transactions: an answer without bots
-- subtracts them, so it costs what the answer with them costs.
CREATE TABLE bot_counts_by_minute (
    type   TEXT    NOT NULL,
    minute INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, minute)
) WITHOUT ROWID;
CREATE TABLE bot_counts_by_hour (
    type   TEXT    NOT NULL,
    hour   INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, hour)
) WITHOUT ROWID;
CREATE TABLE bot_counts_by_day (
    type   TEXT    NOT NULL,
    day    INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, day)
) WITHOUT ROWID;

INSERT INTO bot_counts_by_minute (type, minute, events)
    SELECT type, created_at / 60, count(*) FROM events WHERE bot = 1 GROUP BY type_code, created_at / 60;
INSERT INTO bot_counts_by_hour (type, hour, events)
    SELECT type, minute / 60, sum(events) FROM bot_counts_by_minute GROUP BY type, minute / 60;
INSERT INTO bot_counts_by_day (type, day, events)
    SELECT type, hour / 24, sum(events) FROM bot_counts_by_hour GROUP BY type, hour / 24;
