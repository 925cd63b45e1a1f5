//! Writing events: one transaction per batch, deduplicated by event id, with the
//! rollup tables (see `migrations/V2__rollups.sql`) updated in the same transaction.

use std::collections::HashMap;

use rusqlite::{Connection, TransactionBehavior, params};

use crate::event::{Event, EventType};

/// Seconds per rollup bucket.
pub const SECONDS_PER_MINUTE: i64 = 60;
pub const SECONDS_PER_DAY: i64 = 86_400;

/// What one batch insert did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertStats {
    /// Rows that were new.
    pub inserted: u64,
    /// Events already stored (or repeated within the batch), left untouched.
    pub duplicates: u64,
    /// `inserted` per type, in [`EventType::ALL`] order.
    pub inserted_by_type: [u64; 3],
}

impl std::ops::AddAssign for InsertStats {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.duplicates += other.duplicates;
        for (total, more) in self.inserted_by_type.iter_mut().zip(other.inserted_by_type) {
            *total += more;
        }
    }
}

/// Rollup increments for the rows one batch really inserted.
#[derive(Default)]
struct RollupDeltas {
    by_minute: HashMap<(EventType, i64), u64>,
    by_day: HashMap<(EventType, i64), u64>,
    pr_counts: HashMap<String, u64>,
    /// Per repository: openings, first and last opening time.
    pr_openings: HashMap<String, (u64, i64, i64)>,
}

impl RollupDeltas {
    fn add(&mut self, event: &Event) {
        // created_at is never negative (the parser rejects it), so `/` floors.
        *self
            .by_minute
            .entry((event.event_type, event.created_at / SECONDS_PER_MINUTE))
            .or_default() += 1;
        *self
            .by_day
            .entry((event.event_type, event.created_at / SECONDS_PER_DAY))
            .or_default() += 1;
        if event.event_type == EventType::PullRequest {
            *self.pr_counts.entry(event.repo_name.clone()).or_default() += 1;
            if event.action.as_deref() == Some("opened") {
                let at = event.created_at;
                let entry = self
                    .pr_openings
                    .entry(event.repo_name.clone())
                    .or_insert((0, at, at));
                entry.0 += 1;
                entry.1 = entry.1.min(at);
                entry.2 = entry.2.max(at);
            }
        }
    }

    fn apply(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        let mut minute = conn.prepare_cached(
            "INSERT INTO event_counts_by_minute (type, minute, events) VALUES (?1, ?2, ?3)
             ON CONFLICT (type, minute) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((event_type, bucket), n) in &self.by_minute {
            minute.execute(params![event_type.as_str(), bucket, n])?;
        }
        let mut day = conn.prepare_cached(
            "INSERT INTO event_counts_by_day (type, day, events) VALUES (?1, ?2, ?3)
             ON CONFLICT (type, day) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((event_type, bucket), n) in &self.by_day {
            day.execute(params![event_type.as_str(), bucket, n])?;
        }
        let mut prs = conn.prepare_cached(
            "INSERT INTO pr_counts (repo_name, events) VALUES (?1, ?2)
             ON CONFLICT (repo_name) DO UPDATE SET events = events + excluded.events",
        )?;
        for (repo, n) in &self.pr_counts {
            prs.execute(params![repo, n])?;
        }
        let mut openings = conn.prepare_cached(
            "INSERT INTO pr_openings (repo_name, openings, first_at, last_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (repo_name) DO UPDATE SET
                 openings = openings + excluded.openings,
                 first_at = min(first_at, excluded.first_at),
                 last_at = max(last_at, excluded.last_at)",
        )?;
        for (repo, (n, first, last)) in &self.pr_openings {
            openings.execute(params![repo, n, first, last])?;
        }
        Ok(())
    }
}

/// Stores `events` in one transaction; an event whose id is already stored is skipped.
pub fn insert_events(
    conn: &mut Connection,
    events: &[Event],
) -> Result<InsertStats, rusqlite::Error> {
    // IMMEDIATE takes the write lock up front, so a concurrent writer waits on
    // busy_timeout instead of failing half-way with SQLITE_BUSY on lock upgrade.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut stats = InsertStats::default();
    let mut rollups = RollupDeltas::default();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (id, type_code, created_at, repo_name, actor_login, action, number)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
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
            ])?;
            if changed == 1 {
                stats.inserted += 1;
                stats.inserted_by_type[event.event_type.index()] += 1;
                rollups.add(event);
            } else {
                stats.duplicates += 1;
            }
        }
    }
    rollups.apply(&tx)?;
    tx.commit()?;
    Ok(stats)
}

/// How many events are stored in all (from the day rollup: no table scan).
pub fn stored_event_count(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.query_row(
        "SELECT coalesce(sum(events), 0) FROM event_counts_by_day",
        [],
        |row| row.get(0),
    )
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
            "event_counts_by_day",
            "SELECT type, created_at / 86400 AS bucket, count(*) AS n FROM events GROUP BY 1, 2",
            "SELECT type, day AS bucket, events AS n FROM event_counts_by_day",
        ),
        (
            "pr_counts",
            "SELECT 'PullRequestEvent', repo_name, count(*) FROM events WHERE type = 'PullRequestEvent' GROUP BY 2",
            "SELECT 'PullRequestEvent', repo_name, events FROM pr_counts",
        ),
        (
            "pr_openings",
            "SELECT repo_name, count(*), min(created_at), max(created_at) FROM events
             WHERE type = 'PullRequestEvent' AND action = 'opened' GROUP BY 1",
            "SELECT repo_name, openings, first_at, last_at FROM pr_openings",
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
