//! Storage: [`Backend`] names every question the service asks of its data,
//! in the service's own terms (count the events since a moment, store a
//! batch once, forget what is older than a cutoff), never in SQL. Two stores
//! answer all of them: [`sqlite`] (the embedded default, one file) and
//! [`clickhouse`] (for years of GH Archive, several API replicas and
//! analysts' SQL, on one server or a cluster). A question added to the trait
//! does not compile until both answer it.
//!
//! Callers hold a [`Store`], which forwards each question to the store it
//! was opened as; handlers, the poller, import and retention see only it and
//! the plain types below. The store is picked by the URL's scheme
//! (`sqlite:` / `clickhouse://`, see [`crate::config::StoreLocation`]).

pub mod clickhouse;
pub mod sqlite;

use std::collections::HashMap;
use std::future::Future;
use std::sync::mpsc::Receiver;

use tokio_util::sync::CancellationToken;

use crate::config::StoreLocation;
use crate::event::{Event, EventType};

pub use clickhouse::{ClickHouse, ClickHouseError};
pub use sqlite::{Sqlite, SqliteError};

/// Every question the service asks of a store. Each store implements it in
/// its own module; the contract written on each method holds for both.
pub trait Backend: Clone + Send + Sync + 'static {
    /// A name for logs and `/health`.
    const KIND: &'static str;

    /// A value that changes whenever anything is written, by this process or
    /// another (never by a background merge or anything else that changes no
    /// answer): answers computed after reading it are exact until it changes.
    /// The API's answer cache reads it on every request, so it is cheap: one
    /// read of 48 bytes of SQLite's wal-index; one small query of
    /// ClickHouse's `system.parts` and `system.mutations`.
    fn data_version(&self) -> impl Future<Output = Result<DataVersion, StoreError>> + Send;

    /// Events of each tracked type with `from <= created_at < to` (epoch
    /// seconds), exact to the second whatever the window's boundaries; `to`
    /// is [`crate::time_buckets::END_OF_TIME`] for "since `from`".
    fn event_counts(
        &self,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<EventCounts, StoreError>> + Send;

    /// The gaps between consecutive PR openings of `repo_name` with
    /// `from <= created_at < to`.
    fn pr_gaps(
        &self,
        repo_name: String,
        from: i64,
        to: i64,
    ) -> impl Future<Output = Result<PrGapSummary, StoreError>> + Send;

    /// Hands `sink` the repositories with PullRequestEvents and how many,
    /// most first (ties by name), at most `limit`, until it returns false;
    /// then hands it back. Memory stays flat however many repositories there
    /// are. Over every stored event (read from the rollup), or only those
    /// with `from <= created_at < to` when `window` is `Some((from, to))`
    /// (read from the window's events: its cost grows with them).
    fn for_each_pr_count<S: PrCountSink>(
        &self,
        limit: Option<u64>,
        window: Option<(i64, i64)>,
        sink: S,
    ) -> impl Future<Output = Result<S, StoreError>> + Send;

    /// Events per type in `buckets` consecutive buckets of `bucket_minutes`,
    /// the first starting at minute `first_minute` since the epoch.
    fn timeline(
        &self,
        first_minute: i64,
        bucket_minutes: i64,
        buckets: usize,
    ) -> impl Future<Output = Result<Vec<[u64; 3]>, StoreError>> + Send;

    /// When the oldest stored event was created; `None` when none is.
    /// Cheaper than [`Backend::totals`].
    fn oldest_event_at(&self) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// How many events are stored (in all and per [`Origin`]), and when the
    /// oldest and the newest were created.
    fn totals(&self) -> impl Future<Output = Result<Totals, StoreError>> + Send;

    /// Stores `events`, each id once however often it arrives (from polls
    /// that overlap, a file imported twice, the poller and an import at
    /// once), whatever else a later copy carries: the first copy is kept,
    /// with the `origin` it arrived by.
    fn insert_events(
        &self,
        events: Vec<Event>,
        origin: Origin,
    ) -> impl Future<Output = Result<InsertStats, StoreError>> + Send;

    /// Stores what `loads` brings until it closes: batches as
    /// [`Backend::insert_events`] would (origin [`Origin::Import`]), tuned
    /// for a bulk load, and each archive hour read whole, recorded once
    /// every batch before it is stored. Blocking: runs on a plain thread,
    /// outside any async runtime.
    fn bulk_load(&self, loads: Receiver<Load>) -> Result<InsertStats, StoreError>;

    /// How many of the hours `first_hour..=last_hour` (hours since the
    /// epoch) are complete archive hours.
    fn complete_hours(
        &self,
        first_hour: i64,
        last_hour: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The complete archive hours of `first_hour..=last_hour` with their
    /// live-feed figures, oldest first (hours recorded without figures left out).
    fn hour_coverage(
        &self,
        first_hour: i64,
        last_hour: i64,
    ) -> impl Future<Output = Result<Vec<HourCoverage>, StoreError>> + Send;

    /// The end (exclusive, an hour since the epoch) of the run of complete
    /// archive hours that starts at `first_hour`; `None` when `first_hour`
    /// is not complete.
    fn complete_until(
        &self,
        first_hour: i64,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Deletes events created before `cutoff`, at least `limit` of them
    /// when there are that many (SQLite deletes exactly up to `limit` per
    /// call, so that the poller interleaves; ClickHouse deletes them all at
    /// once, by mutation); returns how many. Fewer than `limit`: none are left.
    fn delete_events_before(
        &self,
        cutoff: i64,
        limit: usize,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Forgets the feed polls older than `cutoff`.
    fn delete_feed_polls_before(
        &self,
        cutoff: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records one poll of one feed.
    fn record_feed_poll(
        &self,
        poll: FeedPoll,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The newest event id `feed` has shown, so coverage carries across restarts.
    fn newest_seen_id(
        &self,
        feed: String,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// How much of the global feed the polls of the last `window_seconds` saw.
    fn global_feed_coverage(
        &self,
        now: i64,
        window_seconds: i64,
    ) -> impl Future<Output = Result<FeedCoverage, StoreError>> + Send;

    /// Records that `repos` are watched (keeping the start of any already
    /// watched) and returns since when each is.
    fn start_watching(
        &self,
        repos: Vec<String>,
        now: i64,
    ) -> impl Future<Output = Result<HashMap<String, i64>, StoreError>> + Send;

    /// The writer's periodic upkeep until `shutdown` (ClickHouse merges its
    /// rollups when a bulk load left them in parts; SQLite needs none).
    fn upkeep(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send;
}

/// The open store. Cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(Sqlite),
    ClickHouse(ClickHouse),
}

/// A failure of either store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] SqliteError),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
}

impl StoreError {
    /// Whether the store could not be reached or was too busy to answer in
    /// time (rather than refusing the question): worth retrying.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Sqlite(error) => error.is_unavailable(),
            StoreError::ClickHouse(error) => error.is_unavailable(),
        }
    }
}

/// `store.$call` on whichever store `$store` is.
macro_rules! on_store {
    ($store:expr, $backend:ident => $call:expr) => {
        match $store {
            Store::Sqlite($backend) => $call,
            Store::ClickHouse($backend) => $call,
        }
    };
}

impl Store {
    /// Opens the store at `location` and brings its schema up to date.
    pub async fn open(location: &StoreLocation) -> Result<Store, StoreError> {
        Ok(match location {
            StoreLocation::Sqlite(location) => Store::Sqlite(Sqlite::open_async(location).await?),
            StoreLocation::ClickHouse(settings) => {
                Store::ClickHouse(ClickHouse::open(settings).await?)
            }
        })
    }

    /// `sqlite` or `clickhouse`, for logs and `/health`.
    pub fn kind(&self) -> &'static str {
        fn kind<B: Backend>(_: &B) -> &'static str {
            B::KIND
        }
        on_store!(self, b => kind(b))
    }

    /// See [`Backend::data_version`].
    pub async fn data_version(&self) -> Result<DataVersion, StoreError> {
        on_store!(self, b => Backend::data_version(b).await)
    }

    /// See [`Backend::event_counts`].
    pub async fn event_counts(&self, from: i64, to: i64) -> Result<EventCounts, StoreError> {
        on_store!(self, b => Backend::event_counts(b, from, to).await)
    }

    /// See [`Backend::pr_gaps`].
    pub async fn pr_gaps(
        &self,
        repo_name: String,
        from: i64,
        to: i64,
    ) -> Result<PrGapSummary, StoreError> {
        on_store!(self, b => Backend::pr_gaps(b, repo_name, from, to).await)
    }

    /// See [`Backend::for_each_pr_count`].
    pub async fn for_each_pr_count<S: PrCountSink>(
        &self,
        limit: Option<u64>,
        window: Option<(i64, i64)>,
        sink: S,
    ) -> Result<S, StoreError> {
        on_store!(self, b => Backend::for_each_pr_count(b, limit, window, sink).await)
    }

    /// See [`Backend::timeline`].
    pub async fn timeline(
        &self,
        first_minute: i64,
        bucket_minutes: i64,
        buckets: usize,
    ) -> Result<Vec<[u64; 3]>, StoreError> {
        on_store!(self, b => Backend::timeline(b, first_minute, bucket_minutes, buckets).await)
    }

    /// See [`Backend::oldest_event_at`].
    pub async fn oldest_event_at(&self) -> Result<Option<i64>, StoreError> {
        on_store!(self, b => Backend::oldest_event_at(b).await)
    }

    /// See [`Backend::totals`].
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        on_store!(self, b => Backend::totals(b).await)
    }

    /// See [`Backend::insert_events`].
    pub async fn insert_events(
        &self,
        events: Vec<Event>,
        origin: Origin,
    ) -> Result<InsertStats, StoreError> {
        on_store!(self, b => Backend::insert_events(b, events, origin).await)
    }

    /// See [`Backend::bulk_load`].
    pub fn bulk_load(&self, loads: Receiver<Load>) -> Result<InsertStats, StoreError> {
        on_store!(self, b => Backend::bulk_load(b, loads))
    }

    /// See [`Backend::complete_hours`].
    pub async fn complete_hours(&self, first_hour: i64, last_hour: i64) -> Result<u64, StoreError> {
        on_store!(self, b => Backend::complete_hours(b, first_hour, last_hour).await)
    }

    /// See [`Backend::hour_coverage`].
    pub async fn hour_coverage(
        &self,
        first_hour: i64,
        last_hour: i64,
    ) -> Result<Vec<HourCoverage>, StoreError> {
        on_store!(self, b => Backend::hour_coverage(b, first_hour, last_hour).await)
    }

    /// See [`Backend::complete_until`].
    pub async fn complete_until(&self, first_hour: i64) -> Result<Option<i64>, StoreError> {
        on_store!(self, b => Backend::complete_until(b, first_hour).await)
    }

    /// See [`Backend::delete_events_before`].
    pub async fn delete_events_before(&self, cutoff: i64, limit: usize) -> Result<u64, StoreError> {
        on_store!(self, b => Backend::delete_events_before(b, cutoff, limit).await)
    }

    /// See [`Backend::delete_feed_polls_before`].
    pub async fn delete_feed_polls_before(&self, cutoff: i64) -> Result<(), StoreError> {
        on_store!(self, b => Backend::delete_feed_polls_before(b, cutoff).await)
    }

    /// See [`Backend::record_feed_poll`].
    pub async fn record_feed_poll(&self, poll: FeedPoll) -> Result<(), StoreError> {
        on_store!(self, b => Backend::record_feed_poll(b, poll).await)
    }

    /// See [`Backend::newest_seen_id`].
    pub async fn newest_seen_id(&self, feed: String) -> Result<Option<i64>, StoreError> {
        on_store!(self, b => Backend::newest_seen_id(b, feed).await)
    }

    /// See [`Backend::global_feed_coverage`].
    pub async fn global_feed_coverage(
        &self,
        now: i64,
        window_seconds: i64,
    ) -> Result<FeedCoverage, StoreError> {
        on_store!(self, b => Backend::global_feed_coverage(b, now, window_seconds).await)
    }

    /// See [`Backend::start_watching`].
    pub async fn start_watching(
        &self,
        repos: Vec<String>,
        now: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        on_store!(self, b => Backend::start_watching(b, repos, now).await)
    }

    /// See [`Backend::upkeep`].
    pub async fn upkeep(self, shutdown: CancellationToken) {
        on_store!(&self, b => Backend::upkeep(b, shutdown).await)
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
    /// Events per [`Origin`], by [`Origin::code`].
    pub by_origin: [u64; 4],
    /// `created_at` (epoch seconds) of the oldest event; `None` when empty.
    pub oldest_event_at: Option<i64>,
    /// `created_at` (epoch seconds) of the newest event; `None` when empty.
    pub newest_event_at: Option<i64>,
}

/// How a stored event arrived (the first copy's way decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Stored before the store recorded origins.
    Unknown,
    /// GitHub's global `/events` feed, a sample of everything.
    GlobalFeed,
    /// A watched repository's own feed.
    Watched,
    /// An imported file (`ghmetrics import`).
    Import,
}

impl Origin {
    /// In [`Origin::code`] order.
    pub const ALL: [Origin; 4] = [
        Origin::Unknown,
        Origin::GlobalFeed,
        Origin::Watched,
        Origin::Import,
    ];

    /// The stored code (the `origin` column).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The name `/health` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Origin::Unknown => "unknown",
            Origin::GlobalFeed => "global_feed",
            Origin::Watched => "watched",
            Origin::Import => "import",
        }
    }
}

/// What an import hands the store's writer ([`Backend::bulk_load`]). Files
/// are numbered by the import; batches of several files may interleave.
pub enum Load {
    /// A batch of events of one file.
    Events { file: u64, events: Vec<Event> },
    /// The end of a file: every event it holds was in its batches before.
    /// `hour` is `Some` when the file is a GH Archive hour read to its end.
    FileEnd {
        file: u64,
        hour: Option<ArchiveHour>,
    },
}

/// A bulk load's events newly stored per file, until the file's end: what is
/// recorded with an archive hour.
#[derive(Default)]
pub(crate) struct StoredPerFile(std::collections::HashMap<u64, u64>);

impl StoredPerFile {
    pub(crate) fn add(&mut self, file: u64, stats: InsertStats) {
        *self.0.entry(file).or_default() += stats.inserted();
    }

    /// The file's count, forgotten.
    pub(crate) fn end(&mut self, file: u64) -> u64 {
        self.0.remove(&file).unwrap_or_default()
    }
}

/// A GH Archive hour file read to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveHour {
    /// Hours since the epoch (`created_at / 3600` of its events).
    pub hour: i64,
    /// Where it was read from (a path or a URL).
    pub source: String,
    /// Tracked events in the file per type, in [`EventType::ALL`] order.
    pub events_by_type: [u64; 3],
}

impl ArchiveHour {
    /// Tracked events in the file.
    pub fn events_read(&self) -> u64 {
        self.events_by_type.iter().sum()
    }
}

/// What a complete archive hour says about the live feed: per type (in
/// [`EventType::ALL`] order) the events the hour's file holds, and how many
/// of them the live feeds had stored before it was imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourCoverage {
    /// Hours since the epoch.
    pub hour: i64,
    pub archive_events: [u64; 3],
    pub live_events: [u64; 3],
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
    /// When the oldest and the newest opening happened (epoch seconds);
    /// `None` without one.
    pub first_opened_at: Option<i64>,
    pub last_opened_at: Option<i64>,
}

impl PrGapSummary {
    /// The summary of `gaps` (in time order, one fewer than the openings)
    /// between `openings` openings, the newest at `last_opened_at`. Every
    /// store computes the gaps its own way and ends here, so the figures
    /// are the same on all of them.
    pub fn from_gaps(openings: u64, mut gaps: Vec<i64>, last_opened_at: Option<i64>) -> Self {
        let span: i64 = gaps.iter().sum();
        let average_seconds = (!gaps.is_empty()).then(|| span as f64 / gaps.len() as f64);
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
            first_opened_at: last_opened_at.map(|last| last - span),
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
#[derive(Clone, Debug, Default, PartialEq)]
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

/// What [`Backend::data_version`] returns: equal values mean nothing was
/// written in between. Opaque: each store fills it its own way (SQLite with
/// its wal-index header, ClickHouse with its row and mutation counts), and
/// only equality means anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataVersion([u8; DataVersion::BYTES]);

impl Default for DataVersion {
    fn default() -> Self {
        DataVersion([0; DataVersion::BYTES])
    }
}

impl DataVersion {
    /// Room for the largest store's version (SQLite's wal-index header).
    pub(crate) const BYTES: usize = 48;

    /// A version made from numbers (at most six).
    pub(crate) fn from_counters(counters: &[u64]) -> Self {
        let mut version = DataVersion::default();
        for (slot, counter) in version.0.chunks_mut(8).zip(counters) {
            slot.copy_from_slice(&counter.to_le_bytes());
        }
        version
    }

    /// The bytes, to be filled in by a store.
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

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
