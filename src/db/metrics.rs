//! The metric queries: one SQL statement per metric, each answered from an index
//! (see `migrations/V1__events.sql`; the tests check `EXPLAIN QUERY PLAN`).

use rusqlite::{Connection, params};

use crate::event::EventType;

/// Stored events per tracked type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct EventCounts {
    #[serde(rename = "WatchEvent")]
    pub watch: u64,
    #[serde(rename = "PullRequestEvent")]
    pub pull_request: u64,
    #[serde(rename = "IssuesEvent")]
    pub issues: u64,
}

impl EventCounts {
    /// The counts in [`EventType::ALL`] order.
    pub fn by_type(&self) -> [(EventType, u64); 3] {
        [
            (EventType::Watch, self.watch),
            (EventType::PullRequest, self.pull_request),
            (EventType::Issues, self.issues),
        ]
    }
}

/// Events of each tracked type with `created_at >= since` (epoch seconds).
///
/// Three scalar subqueries rather than `GROUP BY type`: each is a range search on
/// `events_by_type_time`, and a type with no events still answers 0.
pub fn event_counts(conn: &Connection, since: i64) -> Result<EventCounts, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT
            (SELECT count(*) FROM events WHERE type = 'WatchEvent' AND created_at >= ?1),
            (SELECT count(*) FROM events WHERE type = 'PullRequestEvent' AND created_at >= ?1),
            (SELECT count(*) FROM events WHERE type = 'IssuesEvent' AND created_at >= ?1)",
    )?;
    stmt.query_row(params![since], |row| {
        Ok(EventCounts {
            watch: row.get(0)?,
            pull_request: row.get(1)?,
            issues: row.get(2)?,
        })
    })
}

/// The gaps between consecutive PR openings of one repository.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrGapSummary {
    /// PR openings (`PullRequestEvent` with action `opened`) found.
    pub openings: u64,
    /// Mean seconds between consecutive openings; `None` with fewer than two.
    pub average_seconds: Option<f64>,
}

/// Mean gap between consecutive PR openings of `repo_name`, ordered by time.
///
/// The gaps come from `LAG()` (the same window as the `pr_gaps` view); their sum
/// is an exact integer, so the mean equals (last - first) / (n - 1).
pub fn average_pr_gap(conn: &Connection, repo_name: &str) -> Result<PrGapSummary, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT count(*), avg(gap) FROM (
            SELECT created_at - LAG(created_at) OVER (ORDER BY created_at, id) AS gap
            FROM events
            WHERE type = 'PullRequestEvent' AND repo_name = ?1 AND action = 'opened'
        )",
    )?;
    stmt.query_row(params![repo_name], |row| {
        Ok(PrGapSummary {
            openings: row.get(0)?,
            average_seconds: row.get(1)?,
        })
    })
}

/// Repositories with at least one `PullRequestEvent` (any action) and how many,
/// most first, ties by name; at most `limit` of them when given.
pub fn pr_counts(
    conn: &Connection,
    limit: Option<u64>,
) -> Result<Vec<(String, u64)>, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT repo_name, count(*) AS prs
         FROM events
         WHERE type = 'PullRequestEvent'
         GROUP BY repo_name
         ORDER BY prs DESC, repo_name
         LIMIT ?1",
    )?;
    // SQLite reads a negative LIMIT as "no limit".
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let rows = stmt.query_map(params![limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}
