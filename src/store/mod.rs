//! Storage: [`Store`] names every question the service asks of its data, in
//! the service's own terms (count the events since a moment, store a batch
//! once, forget what is older than a cutoff), never in SQL. Two stores answer
//! them: [`sqlite`] (the embedded default, one file) and [`clickhouse`] (for
//! years of GH Archive, several API replicas and analysts' SQL, on one server
//! or a cluster). Handlers, the poller, import and retention see only
//! [`Store`] and the plain types below; the store is picked by the URL's
//! scheme (`sqlite:` / `clickhouse://`, see [`crate::config::StoreLocation`]).
//!
//! An enum rather than a trait object: the methods are async, the set of
//! stores is closed, and a `match` per method keeps each store's answer one
//! click away.

pub mod clickhouse;
pub mod sqlite;

use std::collections::HashMap;

use crate::config::StoreLocation;
use crate::event::{Event, EventType};

pub use clickhouse::{ClickHouse, ClickHouseError};
pub use sqlite::{Db, DbError};

/// The open store. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(Db),
    ClickHouse(ClickHouse),
}

/// A failure of either store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] DbError),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
}

impl StoreError {
    /// Whether the store could not be reached or was too busy to answer in
    /// time (rather than refusing the question): worth retrying.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlite(DbError::Pool(_)) => true,
            StoreError::Sqlite(_) => false,
            StoreError::ClickHouse(error) => error.is_unavailable(),
        }
    }
}

impl Store {
    /// Opens the store at `location` and brings its schema up to date.
    pub async fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        Ok(match location {
            StoreLocation::Sqlite(location) => {
                let location = location.clone();
                let db = tokio::task::spawn_blocking(move || Db::open(&location))
                    .await
                    .map_err(DbError::from)??;
                Store::Sqlite(db)
            }
            StoreLocation::ClickHouse(settings) => {
                Store::ClickHouse(ClickHouse::open(settings).await?)
            }
        })
    }

    /// `sqlite` or `clickhouse`, for logs and `/health`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::ClickHouse(_) => "clickhouse",
        }
    }

    /// The SQLite handle, when this is one (tests and SQLite-only tools).
    pub fn sqlite(&self) -> Option<&Db> {
        match self {
            Store::Sqlite(db) => Some(db),
            Store::ClickHouse(_) => None,
        }
    }

    /// A value that changes whenever anything is written, by this process or
    /// another: answers computed after reading it are exact until it changes.
    pub async fn data_version(&self) -> Result<DataVersion, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.data_version()?,
            Store::ClickHouse(ch) => ch.data_version().await?,
        })
    }

    /// Events of each tracked type with `created_at >= since` (epoch seconds).
    pub async fn event_counts(&self, since: i64) -> Result<EventCounts, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.run(move |c| sqlite::event_counts(c, since)).await?,
            Store::ClickHouse(ch) => ch.event_counts(since).await?,
        })
    }

    /// The gaps between consecutive PR openings of `repo_name`.
    pub async fn pr_gaps(&self, repo_name: String) -> Result<PrGapSummary, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.run(move |c| sqlite::pr_gaps(c, &repo_name)).await?,
            Store::ClickHouse(ch) => ch.pr_gaps(&repo_name).await?,
        })
    }

    /// Hands `sink` the repositories with PullRequestEvents and how many,
    /// most first (ties by name), at most `limit`, until it returns false;
    /// then hands it back. Memory stays flat however many repositories there are.
    pub async fn for_each_pr_count<S: PrCountSink>(
        &self,
        limit: Option<u64>,
        mut sink: S,
    ) -> Result<S, StoreError> {
        match self {
            Store::Sqlite(db) => Ok(db
                .run(move |c| {
                    sqlite::for_each_pr_count(c, limit, |repo, n| sink.accept(repo, n))?;
                    Ok(sink)
                })
                .await?),
            Store::ClickHouse(ch) => {
                ch.for_each_pr_count(limit, |repo, n| sink.accept(repo, n))
                    .await?;
                Ok(sink)
            }
        }
    }

    /// Events per type in `buckets` consecutive buckets of `bucket_minutes`,
    /// the first starting at minute `first_minute` since the epoch.
    pub async fn timeline(
        &self,
        first_minute: i64,
        bucket_minutes: i64,
        buckets: usize,
    ) -> Result<Vec<[u64; 3]>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::timeline(c, first_minute, bucket_minutes, buckets))
                    .await?
            }
            Store::ClickHouse(ch) => ch.timeline(first_minute, bucket_minutes, buckets).await?,
        })
    }

    /// How many events are stored, and when the newest was created.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(|c| {
                    Ok(Totals {
                        events: sqlite::stored_event_count(c)?,
                        newest_event_at: sqlite::newest_event_at(c)?,
                    })
                })
                .await?
            }
            Store::ClickHouse(ch) => ch.totals().await?,
        })
    }

    /// Stores `events`, each id once however often it arrives (from polls
    /// that overlap, a file imported twice, the poller and an import at once).
    pub async fn insert_events(&self, events: Vec<Event>) -> Result<InsertStats, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.write(move |c| sqlite::insert_events(c, &events)).await?,
            Store::ClickHouse(ch) => ch.insert_events(&events).await?,
        })
    }

    /// Deletes up to `limit` events created before `cutoff`; returns how many
    /// (fewer than `limit`: none are left).
    pub async fn delete_events_before(&self, cutoff: i64, limit: usize) -> Result<u64, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::delete_events_before(c, cutoff, limit))
                    .await?
            }
            Store::ClickHouse(ch) => ch.delete_events_before(cutoff).await?,
        })
    }

    /// Forgets the feed polls older than `cutoff`.
    pub async fn delete_feed_polls_before(&self, cutoff: i64) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::delete_feed_polls_before(c, cutoff))
                    .await?;
            }
            Store::ClickHouse(ch) => ch.delete_feed_polls_before(cutoff).await?,
        }
        Ok(())
    }

    /// Records one poll of one feed.
    pub async fn record_feed_poll(&self, poll: FeedPoll) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::record_feed_poll(c, &poll))
                    .await?
            }
            Store::ClickHouse(ch) => ch.record_feed_poll(&poll).await?,
        }
        Ok(())
    }

    /// The newest event id `feed` has shown, so coverage carries across restarts.
    pub async fn newest_seen_id(&self, feed: String) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.run(move |c| sqlite::newest_seen_id(c, &feed)).await?,
            Store::ClickHouse(ch) => ch.newest_seen_id(&feed).await?,
        })
    }

    /// How much of the global feed the polls of the last `window_seconds` saw.
    pub async fn global_feed_coverage(
        &self,
        now: i64,
        window_seconds: i64,
    ) -> Result<FeedCoverage, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::global_feed_coverage(c, now, window_seconds))
                    .await?
            }
            Store::ClickHouse(ch) => ch.global_feed_coverage(now, window_seconds).await?,
        })
    }

    /// Records that `repos` are watched (keeping the start of any already
    /// watched) and returns since when each is.
    pub async fn start_watching(
        &self,
        repos: Vec<String>,
        now: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::start_watching(c, &repos, now))
                    .await?
            }
            Store::ClickHouse(ch) => ch.start_watching(&repos, now).await?,
        })
    }
}

/// Takes the rows of [`Store::for_each_pr_count`] one by one.
pub trait PrCountSink: Send + 'static {
    /// One repository and its PullRequestEvents; false stops the walk.
    fn accept(&mut self, repo_name: &str, count: u64) -> bool;
}

/// How much is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub events: u64,
    /// `created_at` (epoch seconds) of the newest event; `None` when empty.
    pub newest_event_at: Option<i64>,
}

/// Stored events per tracked type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventCounts {
    pub watch: u64,
    pub pull_request: u64,
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

/// The gaps between consecutive PR openings of one repository.
#[derive(Clone, Debug, PartialEq)]
pub struct PrGapSummary {
    /// PR openings (`PullRequestEvent` with action `opened`) found.
    pub openings: u64,
    /// Mean seconds between consecutive openings; `None` with fewer than two
    /// (as are the median, the 90th percentile and the longest).
    pub average_seconds: Option<f64>,
    /// The gaps' 50th and 90th percentiles, interpolated between the two
    /// nearest gaps (as `percentile_cont` and numpy's default do).
    pub median_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub max_seconds: Option<i64>,
    /// When the newest opening happened (epoch seconds); `None` without one.
    pub last_opened_at: Option<i64>,
}

impl PrGapSummary {
    /// The summary of `gaps` (in time order, one fewer than the openings)
    /// between `openings` openings, the newest at `last_opened_at`. Every
    /// store computes the gaps its own way and ends here, so the figures
    /// are the same on all of them.
    pub fn from_gaps(openings: u64, mut gaps: Vec<i64>, last_opened_at: Option<i64>) -> Self {
        let average_seconds =
            (!gaps.is_empty()).then(|| gaps.iter().sum::<i64>() as f64 / gaps.len() as f64);
        gaps.sort_unstable();
        let percentile = |p: f64| {
            let last = gaps.len().checked_sub(1)?;
            let position = p * last as f64;
            let (low, high) = (position.floor() as usize, position.ceil() as usize);
            let weight = position - low as f64;
            Some(gaps[low] as f64 + (gaps[high] - gaps[low]) as f64 * weight)
        };
        PrGapSummary {
            openings,
            average_seconds,
            median_seconds: percentile(0.5),
            p90_seconds: percentile(0.9),
            max_seconds: gaps.last().copied(),
            last_opened_at,
        }
    }

    /// The summary of opening times sorted oldest first.
    pub fn from_times(times: &[i64]) -> Self {
        let gaps = times.windows(2).map(|pair| pair[1] - pair[0]).collect();
        PrGapSummary::from_gaps(times.len() as u64, gaps, times.last().copied())
    }
}

/// What one batch insert did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InsertStats {
    /// Rows that were new, per type in [`EventType::ALL`] order.
    pub inserted_by_type: [u64; 3],
    /// Events already stored (or repeated within the batch), left untouched.
    pub duplicates: u64,
}

impl InsertStats {
    /// Rows that were new.
    pub fn inserted(&self) -> u64 {
        self.inserted_by_type.iter().sum()
    }
}

impl std::ops::AddAssign for InsertStats {
    fn add_assign(&mut self, other: Self) {
        self.duplicates += other.duplicates;
        for (total, more) in self.inserted_by_type.iter_mut().zip(other.inserted_by_type) {
            *total += more;
        }
    }
}

/// The `feed` value of the global feed's rows.
pub const GLOBAL_FEED: &str = "global";

/// One poll of one feed, as stored in `feed_polls`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedPoll {
    pub polled_at: i64,
    pub feed: String,
    /// `ok`, `not_modified`, `error` or `unavailable`.
    pub outcome: &'static str,
    pub pages: u32,
    pub received: u64,
    pub inserted: u64,
    pub oldest_id: Option<i64>,
    pub newest_id: Option<i64>,
    pub previous_newest_id: Option<i64>,
    pub new_events: Option<u64>,
    pub overlap: Option<bool>,
    pub missed_estimate: Option<u64>,
    pub error: Option<String>,
}

/// How much of the global feed the polls since a moment saw.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct FeedCoverage {
    pub window_seconds: i64,
    pub polls: u64,
    /// Polls whose answer did not reach back to the previous poll's newest event.
    pub polls_with_gap: u64,
    /// Events seen for the first time.
    pub events_seen: u64,
    /// Upper bound on the events that went by unseen (from the id ranges).
    pub events_missed_estimate: u64,
    /// `events_seen / (events_seen + events_missed_estimate)`; `None` before
    /// there is anything to compare.
    pub coverage: Option<f64>,
}

impl FeedCoverage {
    /// The coverage of these figures.
    pub fn new(
        window_seconds: i64,
        polls: u64,
        polls_with_gap: u64,
        events_seen: u64,
        events_missed_estimate: u64,
    ) -> FeedCoverage {
        let total = events_seen + events_missed_estimate;
        FeedCoverage {
            window_seconds,
            polls,
            polls_with_gap,
            events_seen,
            events_missed_estimate,
            coverage: (total > 0).then(|| events_seen as f64 / total as f64),
        }
    }
}

/// What [`Store::data_version`] returns: equal values mean nothing was
/// written in between. SQLite fills it with the wal-index header (48 bytes);
/// ClickHouse with a digest of its active parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataVersion([u8; WAL_INDEX_HEADER_BYTES]);

impl DataVersion {
    /// A version made from a number.
    pub(crate) fn from_counter(counter: u64) -> Self {
        let mut version = DataVersion::default();
        version.0[..8].copy_from_slice(&counter.to_le_bytes());
        version
    }

    /// The bytes, to be filled in by a store.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Default for DataVersion {
    fn default() -> Self {
        DataVersion([0; WAL_INDEX_HEADER_BYTES])
    }
}

/// Size of one copy of SQLite's wal-index header (`WalIndexHdr` in wal.c).
pub(crate) const WAL_INDEX_HEADER_BYTES: usize = 48;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_figures_follow_their_definitions() {
        // Openings at 0, 10, 40, 100, 200: gaps 10, 30, 60, 100.
        let summary = PrGapSummary::from_times(&[0, 10, 40, 100, 200]);
        assert_eq!(summary.openings, 5);
        assert_eq!(summary.average_seconds, Some(50.0));
        // Sorted gaps 10, 30, 60, 100: the median sits half-way between 30 and 60,
        // the 90th percentile at 2.7 of 3 steps, between 60 and 100.
        assert_eq!(summary.median_seconds, Some(45.0));
        assert_eq!(summary.p90_seconds, Some(60.0 + 40.0 * 0.7));
        assert_eq!(summary.max_seconds, Some(100));
        assert_eq!(summary.last_opened_at, Some(200));
        let one = PrGapSummary::from_times(&[7]);
        assert_eq!(
            (
                one.average_seconds,
                one.median_seconds,
                one.max_seconds,
                one.last_opened_at
            ),
            (None, None, None, Some(7))
        );
        let none = PrGapSummary::from_times(&[]);
        assert_eq!((none.openings, none.last_opened_at), (0, None));
        let two = PrGapSummary::from_times(&[5, 9]);
        assert_eq!(
            (two.median_seconds, two.p90_seconds),
            (Some(4.0), Some(4.0))
        );
    }
}
