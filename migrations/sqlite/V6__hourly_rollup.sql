-- Events per type and UTC hour (hour = created_at / 3600), between the minute
-- and day rollups. A window that starts just after midnight used to sum up to
-- 1,439 minute rows per type before its first whole day (event-counts fell to
-- 12,000 requests/s); with hours it sums at most 59 minute rows and 23 hour rows.
CREATE TABLE event_counts_by_hour (
    type   TEXT    NOT NULL,
    hour   INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (type, hour)
) WITHOUT ROWID;

INSERT INTO event_counts_by_hour (type, hour, events)
    SELECT type, minute / 60, sum(events) FROM event_counts_by_minute GROUP BY 1, 2;
