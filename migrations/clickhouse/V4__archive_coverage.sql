-- Per complete archive hour and tracked type: the events its file holds
-- (archive_*) and how many of them the live feeds had stored before (live_*).
ALTER TABLE {table archive_hours} ADD COLUMN IF NOT EXISTS archive_watch Nullable(UInt64);
ALTER TABLE {table archive_hours} ADD COLUMN IF NOT EXISTS archive_pull_request Nullable(UInt64);
ALTER TABLE {table archive_hours} ADD COLUMN IF NOT EXISTS archive_issues Nullable(UInt64);
ALTER TABLE {table archive_hours} ADD COLUMN IF NOT EXISTS live_watch Nullable(UInt64);
ALTER TABLE {table archive_hours} ADD COLUMN IF NOT EXISTS live_pull_request Nullable(UInt64);
ALTER TABLE {table archive_hours} ADD COLUMN IF NOT EXISTS live_issues Nullable(UInt64);
ALTER TABLE {distributed archive_hours} ADD COLUMN IF NOT EXISTS archive_watch Nullable(UInt64);
ALTER TABLE {distributed archive_hours} ADD COLUMN IF NOT EXISTS archive_pull_request Nullable(UInt64);
ALTER TABLE {distributed archive_hours} ADD COLUMN IF NOT EXISTS archive_issues Nullable(UInt64);
ALTER TABLE {distributed archive_hours} ADD COLUMN IF NOT EXISTS live_watch Nullable(UInt64);
ALTER TABLE {distributed archive_hours} ADD COLUMN IF NOT EXISTS live_pull_request Nullable(UInt64);
ALTER TABLE {distributed archive_hours} ADD COLUMN IF NOT EXISTS live_issues Nullable(UInt64);
