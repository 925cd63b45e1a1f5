//! Writing events: one transaction per batch, deduplicated by event id.

use rusqlite::{Connection, TransactionBehavior, params};

use crate::event::Event;

/// What one batch insert did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertStats {
    /// Rows that were new.
    pub inserted: u64,
    /// Events already stored (or repeated within the batch), left untouched.
    pub duplicates: u64,
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
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO events (id, type, created_at, repo_name, actor_login, action, number)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO NOTHING",
        )?;
        for event in events {
            let changed = insert.execute(params![
                event.id,
                event.event_type.as_str(),
                event.created_at,
                event.repo_name,
                event.actor_login,
                event.action,
                event.number,
            ])?;
            if changed == 1 {
                stats.inserted += 1;
            } else {
                stats.duplicates += 1;
            }
        }
    }
    tx.commit()?;
    Ok(stats)
}

/// How many events are stored in all.
pub fn stored_event_count(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.query_row("SELECT count(*) FROM events", [], |row| row.get(0))
}
