//! The metric queries: one SQL statement per metric, each answered from an index
//! (see `migrations/V1__events.sql`; the tests check `EXPLAIN QUERY PLAN`).

use rusqlite::{Connection, params};

use crate::event::EventType;

/// `?1`: window start, epoch seconds.
const EVENT_COUNTS_SQL: &str = "SELECT
    (SELECT count(*) FROM events WHERE type = 'WatchEvent' AND created_at >= ?1),
    (SELECT count(*) FROM events WHERE type = 'PullRequestEvent' AND created_at >= ?1),
    (SELECT count(*) FROM events WHERE type = 'IssuesEvent' AND created_at >= ?1)";

/// `?1`: repository name.
const AVERAGE_PR_GAP_SQL: &str = "SELECT count(*), avg(gap) FROM (
    SELECT created_at - LAG(created_at) OVER (ORDER BY created_at, id) AS gap
    FROM events
    WHERE type = 'PullRequestEvent' AND repo_name = ?1 AND action = 'opened'
    )";

/// `?1`: row limit (negative for all).
const PR_COUNTS_SQL: &str = "SELECT repo_name, count(*) AS prs
    FROM events
    WHERE type = 'PullRequestEvent'
    GROUP BY repo_name
    ORDER BY prs DESC, repo_name
    LIMIT ?1";

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
    let mut stmt = conn.prepare_cached(EVENT_COUNTS_SQL)?;
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
    let mut stmt = conn.prepare_cached(AVERAGE_PR_GAP_SQL)?;
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
    let mut stmt = conn.prepare_cached(PR_COUNTS_SQL)?;
    // SQLite reads a negative LIMIT as "no limit".
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let rows = stmt.query_map(params![limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DbLocation;
    use crate::db::{Db, insert_events};
    use crate::event::Event;

    fn event(id: i64, event_type: EventType, repo: &str, action: Option<&str>, at: i64) -> Event {
        Event {
            id,
            event_type,
            created_at: at,
            repo_name: repo.to_owned(),
            actor_login: Some("someone".to_owned()),
            action: action.map(str::to_owned),
            number: Some(id),
        }
    }

    fn db_with(events: &[Event]) -> Db {
        let db = Db::open(&DbLocation::Memory).unwrap();
        insert_events(&mut db.get().unwrap(), events).unwrap();
        db
    }

    #[test]
    fn average_gap_counts_only_openings_in_time_order() {
        use EventType::PullRequest;
        // Inserted out of order, with closes, reopens and another repo mixed in.
        let events = [
            event(5, PullRequest, "a/b", Some("opened"), 1_000 + 700),
            event(1, PullRequest, "a/b", Some("opened"), 1_000),
            event(2, PullRequest, "a/b", Some("closed"), 1_000 + 50),
            event(3, PullRequest, "a/b", Some("reopened"), 1_000 + 60),
            event(4, PullRequest, "a/b", Some("opened"), 1_000 + 100),
            event(6, PullRequest, "x/y", Some("opened"), 5),
            event(7, EventType::Issues, "a/b", Some("opened"), 1_000 + 900),
        ];
        let db = db_with(&events);
        let summary = average_pr_gap(&db.get().unwrap(), "a/b").unwrap();
        // Openings at 1000, 1100, 1700: gaps 100 and 600.
        assert_eq!(summary.openings, 3);
        assert_eq!(summary.average_seconds, Some(350.0));
    }

    #[test]
    fn average_gap_needs_two_openings() {
        use EventType::PullRequest;
        let db = db_with(&[
            event(1, PullRequest, "one/pr", Some("opened"), 10),
            event(2, PullRequest, "one/pr", Some("closed"), 20),
        ]);
        let conn = db.get().unwrap();
        let one = average_pr_gap(&conn, "one/pr").unwrap();
        assert_eq!((one.openings, one.average_seconds), (1, None));
        let none = average_pr_gap(&conn, "no/such").unwrap();
        assert_eq!((none.openings, none.average_seconds), (0, None));
    }

    #[test]
    fn equal_timestamps_give_zero_gaps() {
        use EventType::PullRequest;
        let db = db_with(&[
            event(1, PullRequest, "s/t", Some("opened"), 100),
            event(2, PullRequest, "s/t", Some("opened"), 100),
            event(3, PullRequest, "s/t", Some("opened"), 100),
        ]);
        let summary = average_pr_gap(&db.get().unwrap(), "s/t").unwrap();
        assert_eq!((summary.openings, summary.average_seconds), (3, Some(0.0)));
    }

    #[test]
    fn average_gap_equals_span_over_count_for_many_openings() {
        // Irregular gaps from a simple LCG, so the mean is not a round number.
        let mut at = 1_600_000_000_i64;
        let mut seed = 17_u64;
        let mut events = Vec::new();
        for id in 1..=500 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            at += (seed >> 40) as i64 % 10_000;
            events.push(event(
                id,
                EventType::PullRequest,
                "big/repo",
                Some("opened"),
                at,
            ));
        }
        let expected = (events[499].created_at - events[0].created_at) as f64 / 499.0;
        let db = db_with(&events);
        let summary = average_pr_gap(&db.get().unwrap(), "big/repo").unwrap();
        assert_eq!(summary.openings, 500);
        assert!((summary.average_seconds.unwrap() - expected).abs() < 1e-9 * expected);
    }

    #[test]
    fn event_counts_respect_the_window_and_report_zeros() {
        let events = [
            event(1, EventType::Watch, "a/b", Some("started"), 100),
            event(2, EventType::Watch, "a/b", Some("started"), 200),
            event(3, EventType::Watch, "a/b", Some("started"), 300),
            event(4, EventType::PullRequest, "a/b", Some("opened"), 199),
            event(5, EventType::PullRequest, "a/b", Some("closed"), 200),
        ];
        let db = db_with(&events);
        let conn = db.get().unwrap();
        for since in [0, 100, 199, 200, 201, 301] {
            let expected = |t: EventType| {
                events
                    .iter()
                    .filter(|e| e.event_type == t && e.created_at >= since)
                    .count() as u64
            };
            let counts = event_counts(&conn, since).unwrap();
            assert_eq!(
                counts,
                EventCounts {
                    watch: expected(EventType::Watch),
                    pull_request: expected(EventType::PullRequest),
                    issues: 0,
                },
                "since {since}"
            );
        }
    }

    #[test]
    fn pr_counts_rank_by_count_then_name_and_honour_limit() {
        use EventType::PullRequest;
        let mut events = vec![event(100, EventType::Watch, "watch/only", None, 1)];
        let wanted = [("c/c", 2), ("a/a", 2), ("b/b", 3), ("d/d", 1)];
        let mut id = 0;
        for (repo, n) in wanted {
            for _ in 0..n {
                id += 1;
                let action = if id % 2 == 0 { "closed" } else { "opened" };
                events.push(event(id, PullRequest, repo, Some(action), id));
            }
        }
        let db = db_with(&events);
        let conn = db.get().unwrap();
        let all = pr_counts(&conn, None).unwrap();
        let expected: Vec<(String, u64)> = [("b/b", 3), ("a/a", 2), ("c/c", 2), ("d/d", 1)]
            .into_iter()
            .map(|(r, n)| (r.to_owned(), n))
            .collect();
        assert_eq!(all, expected);
        assert_eq!(pr_counts(&conn, Some(2)).unwrap(), expected[..2]);
        assert_eq!(pr_counts(&conn, Some(u64::MAX)).unwrap(), expected);
    }

    #[test]
    fn duplicate_ids_are_stored_once() {
        let first = event(1, EventType::Watch, "a/b", Some("started"), 10);
        let db = db_with(&[first.clone(), first.clone()]);
        let mut conn = db.get().unwrap();
        let again = insert_events(
            &mut conn,
            &[first, event(2, EventType::Watch, "a/b", None, 11)],
        )
        .unwrap();
        assert_eq!((again.inserted, again.duplicates), (1, 1));
        assert_eq!(crate::db::stored_event_count(&conn).unwrap(), 2);
    }

    /// Every metric query must search an index, never scan the table.
    #[test]
    fn metric_queries_use_indexes() {
        let db = db_with(&[]);
        let conn = db.get().unwrap();
        let queries = [EVENT_COUNTS_SQL, AVERAGE_PR_GAP_SQL, PR_COUNTS_SQL];
        for sql in queries {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = stmt
                .query_map([0], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let touches_events: Vec<&String> =
                plan.iter().filter(|step| step.contains("events")).collect();
            assert!(!touches_events.is_empty(), "{plan:?}");
            for step in touches_events {
                assert!(
                    step.starts_with("SEARCH") && step.contains("INDEX"),
                    "{sql}\n{plan:?}"
                );
            }
        }
    }
}
