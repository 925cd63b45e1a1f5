//! Writing events: one transaction per batch, deduplicated by event id, with the
//! rollup tables (see `migrations/sqlite/V2__rollups.sql`) updated in the same transaction.

use std::collections::HashMap;

use crate::store::{ArchiveHour, HourCoverage, InsertStats, Origin};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::event::{Event, EventType};
use crate::time_buckets::{SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE};

/// The time-bucket rollup tables: table, bucket column, seconds per bucket.
const TIME_ROLLUPS: [(&str, &str, i64); 3] = [
    ("event_counts_by_minute", "minute", SECONDS_PER_MINUTE),
    ("event_counts_by_hour", "hour", SECONDS_PER_HOUR),
    ("event_counts_by_day", "day", SECONDS_PER_DAY),
];

/// Rollup increments for the rows one batch really inserted.
#[derive(Default)]
struct RollupDeltas {
    /// Per [`TIME_ROLLUPS`] table: (type, bucket) -> events.
    by_time: [HashMap<(EventType, i64), u64>; 3],
    pr_counts: HashMap<String, u64>,
    /// Events per origin code.
    by_origin: [u64; 4],
}

impl RollupDeltas {
    fn add(&mut self, event: &Event, origin: u8) {
        self.by_origin[usize::from(origin)] += 1;
        // created_at is never negative (the parser rejects it), so `/` floors.
        for (deltas, (_, _, seconds)) in self.by_time.iter_mut().zip(TIME_ROLLUPS) {
            *deltas
                .entry((event.event_type, event.created_at / seconds))
                .or_default() += 1;
        }
        if event.event_type == EventType::PullRequest {
            *self.pr_counts.entry(event.repo_name.clone()).or_default() += 1;
        }
    }

    fn apply(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        for (deltas, (table, column, _)) in self.by_time.iter().zip(TIME_ROLLUPS) {
            let mut add = conn.prepare_cached(&format!(
                "INSERT INTO {table} (type, {column}, events) VALUES (?1, ?2, ?3)
                 ON CONFLICT (type, {column}) DO UPDATE SET events = events + excluded.events"
            ))?;
            for ((event_type, bucket), n) in deltas {
                add.execute(params![event_type.as_str(), bucket, n])?;
            }
        }
        let mut prs = conn.prepare_cached(
            "INSERT INTO pr_counts (repo_name, events) VALUES (?1, ?2)
             ON CONFLICT (repo_name) DO UPDATE SET events = events + excluded.events",
        )?;
        for (repo, n) in &self.pr_counts {
            prs.execute(params![repo, n])?;
        }
        let mut origins = conn.prepare_cached(
            "INSERT INTO event_counts_by_origin (origin, events) VALUES (?1, ?2)
             ON CONFLICT (origin) DO UPDATE SET events = events + excluded.events",
        )?;
        for (origin, n) in self.by_origin.iter().enumerate().filter(|(_, n)| **n > 0) {
            origins.execute(params![origin, n])?;
        }
        Ok(())
    }

    /// Takes deleted events out of the rollups (the events must already be
    /// gone from `events`): counts go down, and buckets and repositories that
    /// reach zero are removed.
    fn subtract(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        for (deltas, (table, column, _)) in self.by_time.iter().zip(TIME_ROLLUPS) {
            let mut decrement = conn.prepare_cached(&format!(
                "UPDATE {table} SET events = events - ?3 WHERE type = ?1 AND {column} = ?2"
            ))?;
            let mut remove_empty = conn.prepare_cached(&format!(
                "DELETE FROM {table} WHERE type = ?1 AND {column} = ?2 AND events <= 0"
            ))?;
            for ((event_type, bucket), n) in deltas {
                decrement.execute(params![event_type.as_str(), bucket, n])?;
                remove_empty.execute(params![event_type.as_str(), bucket])?;
            }
        }
        let mut prs =
            conn.prepare_cached("UPDATE pr_counts SET events = events - ?2 WHERE repo_name = ?1")?;
        let mut prs_empty =
            conn.prepare_cached("DELETE FROM pr_counts WHERE repo_name = ?1 AND events <= 0")?;
        for (repo, n) in &self.pr_counts {
            prs.execute(params![repo, n])?;
            prs_empty.execute([repo])?;
        }
        let mut origins = conn.prepare_cached(
            "UPDATE event_counts_by_origin SET events = events - ?2 WHERE origin = ?1",
        )?;
        for (origin, n) in self.by_origin.iter().enumerate().filter(|(_, n)| **n > 0) {
            origins.execute(params![origin, n])?;
        }
        conn.execute("DELETE FROM event_counts_by_origin WHERE events <= 0", [])?;
        Ok(())
    }
}

/// Stores `events` in one transaction, arrived by `origin`; an event whose id
/// is already stored is skipped.
pub fn insert_events(
    conn: &mut Connection,
    events: &[Event],
    origin: Origin,
) -> Result<InsertStats, rusqlite::Error> {
    // IMMEDIATE takes the write lock up front, so a concurrent writer waits on
    // busy_timeout instead of failing half-way with SQLITE_BUSY on lock upgrade.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut stats = InsertStats::default();
    let mut rollups = RollupDeltas::default();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (id, type_code, created_at, repo_name, actor_login, action, number, origin)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO NOTHING",
        )?;
        for event in events {
            let changed = insert.execute(params![
                event.id,
                event.event_type.code(),
                event.created_at,
                event.repo_name,
                event.actor_login,
                event.action,
                event.number,
                origin.code(),
            ])?;
            if changed == 1 {
                stats.inserted_by_type[event.event_type.index()] += 1;
                rollups.add(event, origin.code());
            } else {
                stats.duplicates += 1;
            }
        }
    }
    rollups.apply(&tx)?;
    tx.commit()?;
    Ok(stats)
}

/// `?1` type code, `?2` cutoff, `?3` limit: the oldest events of a type.
pub(super) const OLDEST_EVENTS_SQL: &str =
    "SELECT id, created_at, repo_name, action, origin FROM events
    WHERE type_code = ?1 AND created_at < ?2
    ORDER BY created_at LIMIT ?3";

/// Deletes up to `limit` of the events created before `cutoff` (epoch
/// seconds), oldest first per type, and takes them out of every rollup, in one
/// transaction; returns how many it deleted (fewer than `limit`: none are left).
/// Small batches keep the write lock short, so the poller and importer
/// interleave with a long purge; readers are never blocked (WAL).
pub fn delete_events_before(
    conn: &mut Connection,
    cutoff: i64,
    limit: usize,
) -> Result<u64, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut doomed = Vec::new();
    {
        // Per type, so that each part is a range of the (type_code, created_at) index.
        let mut select = tx.prepare_cached(OLDEST_EVENTS_SQL)?;
        for event_type in EventType::ALL {
            let left = limit.saturating_sub(doomed.len());
            if left == 0 {
                break;
            }
            let rows =
                select.query_map(params![event_type.code(), cutoff, left as i64], |row| {
                    let event = Event {
                        id: row.get(0)?,
                        event_type,
                        created_at: row.get(1)?,
                        repo_name: row.get(2)?,
                        actor_login: None,
                        action: row.get(3)?,
                        number: None,
                    };
                    Ok((event, row.get::<_, u8>(4)?))
                })?;
            for event in rows {
                doomed.push(event?);
            }
        }
        let mut delete = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
        for (event, _) in &doomed {
            delete.execute([event.id])?;
        }
    }
    let mut rollups = RollupDeltas::default();
    for (event, origin) in &doomed {
        rollups.add(event, *origin);
    }
    rollups.subtract(&tx)?;
    tx.commit()?;
    Ok(doomed.len() as u64)
}

/// Deletes `feed_polls` rows older than `cutoff`: coverage history goes with
/// the events it describes.
pub fn delete_feed_polls_before(conn: &Connection, cutoff: i64) -> Result<u64, rusqlite::Error> {
    let deleted = conn.execute("DELETE FROM feed_polls WHERE polled_at < ?1", [cutoff])?;
    Ok(deleted as u64)
}

/// How many events are stored in all (from the day rollup: no table scan).
pub fn stored_event_count(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.query_row(
        "SELECT coalesce(sum(events), 0) FROM event_counts_by_day",
        [],
        |row| row.get(0),
    )
}

/// Records a GH Archive hour read whole, with how many of its events the
/// batches since the file began newly stored.
pub fn record_archive_hour(
    conn: &Connection,
    hour: &ArchiveHour,
    stored: u64,
    now: i64,
) -> Result<(), rusqlite::Error> {
    // The hour's events that arrived by a live feed: what the poller had
    // stored before the archive brought the rest.
    let mut live = [0u64; 3];
    {
        let mut count = conn.prepare_cached(
            "SELECT count(*) FROM events
             WHERE type_code = ?1 AND created_at >= ?2 AND created_at < ?3 AND origin IN (1, 2)",
        )?;
        let start = hour.hour * crate::time_buckets::SECONDS_PER_HOUR;
        for (slot, event_type) in live.iter_mut().zip(EventType::ALL) {
            *slot = count.query_row(
                params![
                    event_type.code(),
                    start,
                    start + crate::time_buckets::SECONDS_PER_HOUR
                ],
                |row| row.get(0),
            )?;
        }
    }
    let archive = hour.events_by_type;
    conn.execute(
        "INSERT INTO archive_hours (hour, source, events_read, stored, imported_at,
             archive_watch, archive_pull_request, archive_issues, live_watch, live_pull_request, live_issues)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (hour) DO UPDATE SET source = excluded.source,
             events_read = excluded.events_read, stored = excluded.stored,
             imported_at = excluded.imported_at,
             archive_watch = excluded.archive_watch, archive_pull_request = excluded.archive_pull_request,
             archive_issues = excluded.archive_issues, live_watch = excluded.live_watch,
             live_pull_request = excluded.live_pull_request, live_issues = excluded.live_issues",
        params![
            hour.hour, hour.source, hour.events_read(), stored, now,
            archive[0], archive[1], archive[2], live[0], live[1], live[2]
        ],
    )?;
    Ok(())
}

/// See [`crate::store::Backend::hour_coverage`].
pub fn hour_coverage(
    conn: &Connection,
    first: i64,
    last: i64,
) -> Result<Vec<HourCoverage>, rusqlite::Error> {
    let mut select = conn.prepare_cached(
        "SELECT hour, archive_watch, archive_pull_request, archive_issues,
                live_watch, live_pull_request, live_issues
         FROM archive_hours WHERE hour BETWEEN ?1 AND ?2 AND archive_watch IS NOT NULL
         ORDER BY hour",
    )?;
    let rows = select.query_map([first, last], |row| {
        Ok(HourCoverage {
            hour: row.get(0)?,
            archive_events: [row.get(1)?, row.get(2)?, row.get(3)?],
            live_events: [row.get(4)?, row.get(5)?, row.get(6)?],
        })
    })?;
    rows.collect()
}

/// See [`crate::store::Backend::complete_until`]: the first hour from
/// `first` on whose next hour is not complete, read along the primary key.
pub fn complete_until(conn: &Connection, first: i64) -> Result<Option<i64>, rusqlite::Error> {
    conn.query_row(
        "SELECT min(hour) + 1 FROM archive_hours AS a
         WHERE hour >= ?1 AND EXISTS (SELECT 1 FROM archive_hours WHERE hour = ?1)
           AND NOT EXISTS (SELECT 1 FROM archive_hours AS b WHERE b.hour = a.hour + 1)",
        [first],
        |row| row.get(0),
    )
}

/// How many of the hours `first..=last` are complete archive hours.
pub fn complete_hours(conn: &Connection, first: i64, last: i64) -> Result<u64, rusqlite::Error> {
    conn.query_row(
        "SELECT count(*) FROM archive_hours WHERE hour BETWEEN ?1 AND ?2",
        [first, last],
        |row| row.get(0),
    )
}

/// Events per origin code (from the rollup).
pub fn events_by_origin(conn: &Connection) -> Result<[u64; 4], rusqlite::Error> {
    let mut counts = [0; 4];
    let mut select = conn.prepare_cached("SELECT origin, events FROM event_counts_by_origin")?;
    let rows = select.query_map([], |row| {
        Ok((row.get::<_, usize>(0)?, row.get::<_, u64>(1)?))
    })?;
    for row in rows {
        let (origin, events) = row?;
        if let Some(count) = counts.get_mut(origin) {
            *count = events;
        }
    }
    Ok(counts)
}

/// Checks that the rollup tables agree with `events`, returning the first
/// disagreement. The tests run it after imports, polls and duplicate inserts.
pub fn rollup_disagreement(conn: &Connection) -> Result<Option<String>, rusqlite::Error> {
    let checks = [
        (
            "event_counts_by_minute",
            "SELECT type, created_at / 60 AS bucket, count(*) AS n FROM events GROUP BY 1, 2",
            "SELECT type, minute AS bucket, events AS n FROM event_counts_by_minute",
        ),
        (
            "event_counts_by_hour",
            "SELECT type, created_at / 3600 AS bucket, count(*) AS n FROM events GROUP BY 1, 2",
            "SELECT type, hour AS bucket, events AS n FROM event_counts_by_hour",
        ),
        (
            "event_counts_by_day",
            "SELECT type, created_at / 86400 AS bucket, count(*) AS n FROM events GROUP BY 1, 2",
            "SELECT type, day AS bucket, events AS n FROM event_counts_by_day",
        ),
        (
            "event_counts_by_origin",
            "SELECT 'origin', origin, count(*) FROM events GROUP BY 2",
            "SELECT 'origin', origin, events FROM event_counts_by_origin",
        ),
        (
            "pr_counts",
            "SELECT 'PullRequestEvent', repo_name, count(*) FROM events WHERE type = 'PullRequestEvent' GROUP BY 2",
            "SELECT 'PullRequestEvent', repo_name, events FROM pr_counts",
        ),
    ];
    for (table, truth, rollup) in checks {
        let sql = format!(
            "SELECT count(*) FROM (SELECT * FROM ({truth} EXCEPT {rollup}) UNION ALL SELECT * FROM ({rollup} EXCEPT {truth}))"
        );
        let differing: u64 = conn.query_row(&sql, [], |row| row.get(0))?;
        if differing > 0 {
            return Ok(Some(format!(
                "{table}: {differing} rows disagree with events"
            )));
        }
    }
    Ok(None)
}
