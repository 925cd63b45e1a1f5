-- How each event arrived: 1 the global feed, 2 a watched repository's feed,
-- 3 an imported file; 0 for events stored before origins were recorded. The
-- first copy stored decides (a later copy is a duplicate).
ALTER TABLE {table events} ADD COLUMN IF NOT EXISTS origin UInt8 DEFAULT 0;

-- On a cluster the Distributed table that inserts go through needs it too.
ALTER TABLE {distributed events} ADD COLUMN IF NOT EXISTS origin UInt8 DEFAULT 0;

-- GH Archive hours imported whole (a file named YYYY-MM-DD-H.json.gz read to
-- its end): every event created in that hour is stored. Imported again, an
-- hour gets another row (the newest says the latest import); a plain
-- MergeTree, so merges never change the row count the data version reads.
CREATE TABLE IF NOT EXISTS {table archive_hours} (
    hour        UInt32,            -- created_at / 3600 of its events
    source      String,            -- the file (or URL) it came from
    events_read UInt64,            -- tracked events in the file
    stored      UInt64,            -- of them newly stored
    imported_at DateTime('UTC')
) ENGINE = MergeTree
ORDER BY hour;

{distribute archive_hours BY hour};
