-- Per complete archive hour and tracked type: the events its file holds
-- (archive_*) and how many of them the live feeds (the global feed or a
-- watched repository's) had stored before (live_*): how much of reality the
-- poller sees. NULL for hours recorded before these were.
ALTER TABLE archive_hours ADD COLUMN archive_watch INTEGER;
ALTER TABLE archive_hours ADD COLUMN archive_pull_request INTEGER;
ALTER TABLE archive_hours ADD COLUMN archive_issues INTEGER;
ALTER TABLE archive_hours ADD COLUMN live_watch INTEGER;
ALTER TABLE archive_hours ADD COLUMN live_pull_request INTEGER;
ALTER TABLE archive_hours ADD COLUMN live_issues INTEGER;
