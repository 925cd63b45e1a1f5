//! Bookkeeping of the feeds: one `feed_polls` row per poll, the
//! coverage of the global feed computed from them, and `watched_repos`.

use std::collections::HashMap;

use crate::store::{FeedCoverage, FeedPoll, GLOBAL_FEED};
use rusqlite::{Connection, OptionalExtension, params};

pub fn record_feed_poll(conn: &Connection, poll: &FeedPoll) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO feed_polls (polled_at, feed, outcome, pages, received, inserted, oldest_id,
             newest_id, previous_newest_id, new_events, overlap, missed_estimate, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        poll.polled_at,
        poll.feed,
        poll.outcome,
        poll.pages,
        poll.received,
        poll.inserted,
        poll.oldest_id,
        poll.newest_id,
        poll.previous_newest_id,
        poll.new_events,
        poll.overlap,
        poll.missed_estimate,
        poll.error,
    ])?;
    Ok(())
}

/// The newest event id a feed has shown, so coverage carries across restarts.
pub fn newest_seen_id(conn: &Connection, feed: &str) -> Result<Option<i64>, rusqlite::Error> {
    conn.query_row(
        "SELECT max(newest_id) FROM feed_polls WHERE feed = ?1",
        [feed],
        |row| row.get(0),
    )
}

pub fn global_feed_coverage(
    conn: &Connection,
    now: i64,
    window_seconds: i64,
) -> Result<FeedCoverage, rusqlite::Error> {
    let (polls, polls_with_gap, events_seen, events_missed_estimate): (u64, u64, u64, u64) = conn
        .query_row(
        "SELECT count(*), coalesce(sum(overlap = 0), 0), coalesce(sum(new_events), 0),
                    coalesce(sum(missed_estimate), 0)
             FROM feed_polls WHERE feed = ?1 AND polled_at > ?2",
        params![GLOBAL_FEED, now - window_seconds],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    Ok(FeedCoverage::new(
        window_seconds,
        polls,
        polls_with_gap,
        events_seen,
        events_missed_estimate,
    ))
}

/// Records that these repositories are watched (keeping the original start of
/// any already watched) and returns when each watch began.
pub fn start_watching(
    conn: &Connection,
    repos: &[String],
    now: i64,
) -> Result<HashMap<String, i64>, rusqlite::Error> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO watched_repos (repo_name, watched_since) VALUES (?1, ?2)
         ON CONFLICT (repo_name) DO NOTHING",
    )?;
    let mut since =
        conn.prepare_cached("SELECT watched_since FROM watched_repos WHERE repo_name = ?1")?;
    let mut watched = HashMap::new();
    for repo in repos {
        insert.execute(params![repo, now])?;
        let started: Option<i64> = since.query_row([repo], |row| row.get(0)).optional()?;
        watched.insert(repo.clone(), started.unwrap_or(now));
    }
    Ok(watched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SqliteLocation;
    use crate::store::sqlite::Sqlite;

    fn poll(polled_at: i64, new_events: u64, missed: Option<u64>) -> FeedPoll {
        FeedPoll {
            polled_at,
            feed: GLOBAL_FEED.to_owned(),
            outcome: "ok",
            new_events: Some(new_events),
            overlap: Some(missed.is_none()),
            missed_estimate: missed,
            ..FeedPoll::default()
        }
    }

    #[test]
    fn coverage_sums_the_window_only() {
        let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
        let conn = db.get().unwrap();
        let now = 1_700_000_000;
        for p in [
            poll(now - 4000, 500, Some(10_000)), // outside the hour
            poll(now - 3000, 300, None),
            poll(now - 2000, 300, Some(600)),
            poll(now - 1000, 200, Some(300)),
        ] {
            record_feed_poll(&conn, &p).unwrap();
        }
        let mut other = poll(now - 10, 99, Some(99));
        other.feed = "a/b".to_owned();
        record_feed_poll(&conn, &other).unwrap();
        let coverage = global_feed_coverage(&conn, now, 3600).unwrap();
        assert_eq!(
            (
                coverage.polls,
                coverage.polls_with_gap,
                coverage.events_seen,
                coverage.events_missed_estimate
            ),
            (3, 2, 800, 900)
        );
        assert_eq!(coverage.coverage, Some(800.0 / 1700.0));
        let empty = global_feed_coverage(&conn, now + 100_000, 3600).unwrap();
        assert_eq!((empty.polls, empty.coverage), (0, None));
    }

    #[test]
    fn a_watch_keeps_its_first_start() {
        let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
        let conn = db.get().unwrap();
        let repos = vec!["a/a".to_owned(), "b/b".to_owned()];
        let first = start_watching(&conn, &repos[..1], 100).unwrap();
        assert_eq!(first["a/a"], 100);
        let again = start_watching(&conn, &repos, 200).unwrap();
        assert_eq!((again["a/a"], again["b/b"]), (100, 200));
    }
}
