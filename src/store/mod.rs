//! Storage: [`Store`] names every question the service asks of its data,
//! in the service's own terms (count the events since a moment, store a
//! batch once, forget what is older than a cutoff), never in SQL. Two stores
//! answer all of them: [`sqlite`] (the embedded default, one file) and
//! [`clickhouse`] (for years of GH Archive, several API replicas and
//! analysts' SQL, on one server or a cluster).
//!
//! A question is one method of [`Store`], with its contract, matching on
//! the store it was opened as: an arm per store, so a question does not
//! compile until both answer it. Handlers, the poller, import and retention
//! see only [`Store`] and the plain types below. The store is picked by the
//! URL's scheme (`sqlite:` / `clickhouse://`, see
//! [`crate::config::StoreLocation`]).

pub mod clickhouse;
pub mod sqlite;

use std::collections::HashMap;
use std::sync::mpsc::Receiver;

use tokio_util::sync::CancellationToken;

use crate::config::StoreLocation;
use crate::core::bots::BotLogins;
use crate::core::event::{Event, EventType, PerType};
use crate::core::time::{Buckets, HourRange, Window};

pub use clickhouse::{ClickHouse, ClickHouseError};
pub use sqlite::{Sqlite, SqliteError};

/// The open store, picked once at start-up by the URL's scheme. Each method
/// below is one question, with the contract both stores keep; its two arms
/// are how each store answers it (a query function of [`sqlite`]'s run on a
/// pooled connection, or a query of [`clickhouse`]'s). Cheap to clone.
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
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::ClickHouse(_) => "clickhouse",
        }
    }

    /// A value that changes whenever anything is written, by this process or
    /// another (never by a background merge or anything else that changes no
    /// answer): answers computed after reading it are exact until it changes.
    /// The API's answer cache reads it on every request, so it is cheap: one
    /// read of SQLite's wal-index; one small query of ClickHouse's
    /// `system.parts` and `system.mutations`.
    pub async fn data_version(&self) -> Result<DataVersion, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.probe_version()?,
            Store::ClickHouse(ch) => ch.parts_version().await?,
        })
    }

    /// Events of each tracked type created in `window` that `filter`
    /// keeps, exact to the second whatever its boundaries.
    pub async fn event_counts(
        &self,
        window: Window,
        filter: Filter,
    ) -> Result<EventCounts, StoreError> {
        let Window { from, to } = window;
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::metrics::event_counts(c, from, to, &filter))
                    .await?
            }
            Store::ClickHouse(ch) => ch.event_counts(from, to, &filter).await?,
        })
    }

    /// The gaps between consecutive PR openings of `repo_name` created in
    /// `window`; without the bots' openings with `exclude_bots`.
    pub async fn pr_gaps(
        &self,
        repo_name: String,
        window: Window,
        exclude_bots: bool,
    ) -> Result<PrGapSummary, StoreError> {
        let Window { from, to } = window;
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::metrics::pr_gaps(c, &repo_name, from, to, exclude_bots))
                    .await?
            }
            Store::ClickHouse(ch) => ch.pr_gaps(&repo_name, from, to, exclude_bots).await?,
        })
    }

    /// The stored spelling of a repository with PullRequestEvents whose name
    /// matches `repo_name` as GitHub matches names (ignoring case); the
    /// busiest such when several are stored.
    pub async fn repo_spelling(&self, repo_name: String) -> Result<Option<String>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::metrics::repo_spelling(c, &repo_name))
                    .await?
            }
            Store::ClickHouse(ch) => ch.repo_spelling(&repo_name).await?,
        })
    }

    /// How many of the PR openings [`Store::pr_gaps`] counts came from
    /// imported files that are not archive hours (origin import, held by no
    /// archive).
    pub async fn openings_from_files(
        &self,
        repo_name: String,
        window: Window,
        exclude_bots: bool,
    ) -> Result<u64, StoreError> {
        let Window { from, to } = window;
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| {
                    sqlite::metrics::openings_from_files(c, &repo_name, from, to, exclude_bots)
                })
                .await?
            }
            Store::ClickHouse(ch) => {
                ch.openings_from_files(&repo_name, from, to, exclude_bots)
                    .await?
            }
        })
    }

    /// Hands `sink` the repositories with PullRequestEvents and how many,
    /// most first (ties by name), at most `limit`, until it returns false;
    /// then hands it back. Memory stays flat however many repositories there
    /// are. Over every stored event (read from the rollup), or only those
    /// created in `window` when there is one (as [`Store::for_each_repo_count`]
    /// ranks them, which also ranks every event without the bots').
    pub async fn for_each_pr_count<S: RepoCountSink>(
        &self,
        limit: Option<u64>,
        window: Option<Window>,
        exclude_bots: bool,
        mut sink: S,
    ) -> Result<S, StoreError> {
        if window.is_some() || exclude_bots {
            let window = window.unwrap_or(Window::EVER);
            return self
                .for_each_repo_count(EventType::PullRequest, limit, window, exclude_bots, sink)
                .await;
        }
        match self {
            Store::Sqlite(db) => Ok(db
                .run(move |c| {
                    sqlite::metrics::for_each_pr_count(c, limit, |repo, n| sink.accept(repo, n))?;
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

    /// Hands `sink` the repositories with events of `event_type` created in
    /// `window`, and how many, most first (ties by name), at most `limit`,
    /// until it returns false; then hands it back; without the bots' events
    /// with `exclude_bots`. Read from the window's events, so its cost grows
    /// with them (ClickHouse first tries a short PullRequestEvent ranking
    /// from its hours' summaries).
    pub async fn for_each_repo_count<S: RepoCountSink>(
        &self,
        event_type: EventType,
        limit: Option<u64>,
        window: Window,
        exclude_bots: bool,
        mut sink: S,
    ) -> Result<S, StoreError> {
        let ranking = Ranking {
            event_type,
            window,
            limit,
            exclude_bots,
        };
        match self {
            Store::Sqlite(db) => Ok(db
                .run(move |c| {
                    let visit = |repo: &str, n| sink.accept(repo, n);
                    sqlite::metrics::for_each_repo_count_between(c, ranking, visit)?;
                    Ok(sink)
                })
                .await?),
            Store::ClickHouse(ch) => {
                let visit = |repo: &str, n| sink.accept(repo, n);
                ch.for_each_repo_count_between(ranking, visit).await?;
                Ok(sink)
            }
        }
    }

    /// Events per type in each of `buckets` that `filter` keeps, oldest first.
    pub async fn timeline(
        &self,
        buckets: Buckets,
        filter: Filter,
    ) -> Result<Vec<PerType<u64>>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::metrics::timeline(c, buckets, &filter))
                    .await?
            }
            Store::ClickHouse(ch) => ch.timeline(buckets, &filter).await?,
        })
    }

    /// Makes `bots` the list of logins counted as bots besides the GitHub
    /// Apps', and brings what depends on it up to date: on SQLite, the mark
    /// each stored event carries, for the events of every login added to or
    /// taken from the list since it was last given (one pass over the
    /// events, with a progress line in the log); ClickHouse asks the logins
    /// at query time. Returns how many events were marked anew.
    pub async fn use_bot_logins(&self, bots: BotLogins) -> Result<u64, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::write::use_bot_logins(c, &bots))
                    .await?
            }
            Store::ClickHouse(ch) => {
                ch.use_bot_logins(bots);
                0
            }
        })
    }

    /// When the oldest stored event was created; `None` when none is.
    /// Cheaper than [`Store::totals`].
    pub async fn oldest_event_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.run(|c| sqlite::metrics::oldest_event_at(c)).await?,
            Store::ClickHouse(ch) => ch.oldest_event_at().await?,
        })
    }

    /// How many events are stored (in all and per [`Origin`]), and when the
    /// oldest and the newest were created.
    pub async fn totals(&self) -> Result<Totals, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.run(|c| sqlite::write::totals(c)).await?,
            Store::ClickHouse(ch) => ch.totals().await?,
        })
    }

    /// Stores `events`, each id once however often it arrives (from polls
    /// that overlap, a file imported twice, the poller and an import at
    /// once), whatever else a later copy carries: the first copy is kept,
    /// with the `origin` it arrived by.
    pub async fn insert_events(
        &self,
        events: Vec<Event>,
        origin: Origin,
    ) -> Result<InsertStats, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::write::insert_events(c, &events, origin, None))
                    .await?
            }
            Store::ClickHouse(ch) => ch.insert_events(&events, origin, None).await?,
        })
    }

    /// Stores what `loads` brings until it closes: batches as
    /// [`Store::insert_events`] would (origin [`Origin::Import`], and the
    /// batch's archive source in each event's `archives`), tuned for a bulk
    /// load; each archive file read whole (or missing) recorded once every
    /// batch before it is stored, and the hours it settles by `settling`
    /// recorded settled. Blocking: runs on a blocking thread of the
    /// async runtime (`spawn_blocking`). See [`drive_bulk_load`].
    pub fn bulk_load(
        &self,
        loads: Receiver<Load>,
        settling: Settling,
    ) -> Result<InsertStats, StoreError> {
        match self {
            Store::Sqlite(db) => db.bulk_load(loads, settling),
            Store::ClickHouse(ch) => ch.bulk_load(loads, settling),
        }
    }

    /// Numbers the archive sources named `register` (keeping the numbers of
    /// those known) and returns every known source, by number. At most
    /// [`MAX_ARCHIVE_SOURCES`].
    pub async fn archive_sources(
        &self,
        register: Vec<String>,
    ) -> Result<Vec<(SourceId, String)>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => db.archive_sources(register).await?,
            Store::ClickHouse(ch) => ch.archive_sources(&register).await?,
        })
    }

    /// What is recorded of the archive files of `hours` (the hours in their
    /// names), every source, oldest first.
    pub async fn archive_files(&self, hours: HourRange) -> Result<Vec<FileRecord>, StoreError> {
        let HourRange {
            first: first_hour,
            last: last_hour,
        } = hours;
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::write::archive_files(c, first_hour, last_hour))
                    .await?
            }
            Store::ClickHouse(ch) => ch.archive_files(first_hour, last_hour).await?,
        })
    }

    /// The archives' figures in all; a file filed by crawl hour counts as
    /// beyond the lag when its largest lag exceeds `lag_hours`.
    pub async fn archive_summary(&self, lag_hours: i64) -> Result<ArchiveSummary, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::write::archive_summary(c, lag_hours))
                    .await?
            }
            Store::ClickHouse(ch) => ch.archive_summary(lag_hours).await?,
        })
    }

    /// How many of `hours` (of `created_at`) are settled.
    pub async fn settled_hours(&self, hours: HourRange) -> Result<u64, StoreError> {
        let HourRange {
            first: first_hour,
            last: last_hour,
        } = hours;
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::write::settled_hours(c, first_hour, last_hour))
                    .await?
            }
            Store::ClickHouse(ch) => ch.settled_hours(first_hour, last_hour).await?,
        })
    }

    /// Per hour of `hours` that any archive file or live
    /// feed has events of, or that is settled: what the archives and the
    /// live feeds hold of it, by event id; oldest first.
    pub async fn hour_coverage(&self, hours: HourRange) -> Result<Vec<HourCoverage>, StoreError> {
        let HourRange {
            first: first_hour,
            last: last_hour,
        } = hours;
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::write::hour_coverage(c, first_hour, last_hour))
                    .await?
            }
            Store::ClickHouse(ch) => ch.hour_coverage(first_hour, last_hour).await?,
        })
    }

    /// The end (exclusive, an hour since the epoch) of the run of settled
    /// hours that starts at `first_hour`; `None` when `first_hour` is not
    /// settled.
    pub async fn settled_until(&self, first_hour: i64) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::write::settled_until(c, first_hour))
                    .await?
            }
            Store::ClickHouse(ch) => ch.settled_until(first_hour).await?,
        })
    }

    /// Deletes events created before `cutoff`, at least `limit` of them
    /// when there are that many (SQLite deletes exactly up to `limit` per
    /// call, so that the poller interleaves; ClickHouse deletes them all at
    /// once, by mutation); returns how many. Fewer than `limit`: none are left.
    pub async fn delete_events_before(&self, cutoff: i64, limit: usize) -> Result<u64, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::write::delete_events_before(c, cutoff, limit))
                    .await?
            }
            Store::ClickHouse(ch) => ch.delete_events_before(cutoff).await?,
        })
    }

    /// Forgets the feed polls older than `cutoff`.
    pub async fn delete_feed_polls_before(&self, cutoff: i64) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(db) => {
                db.write(move |c| sqlite::write::delete_feed_polls_before(c, cutoff))
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
                db.write(move |c| sqlite::feeds::record_feed_poll(c, &poll))
                    .await?
            }
            Store::ClickHouse(ch) => ch.record_feed_poll(&poll).await?,
        }
        Ok(())
    }

    /// The newest event id `feed` has shown, so coverage carries across restarts.
    pub async fn newest_seen_id(&self, feed: String) -> Result<Option<i64>, StoreError> {
        Ok(match self {
            Store::Sqlite(db) => {
                db.run(move |c| sqlite::feeds::newest_seen_id(c, &feed))
                    .await?
            }
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
                db.run(move |c| sqlite::feeds::global_feed_coverage(c, now, window_seconds))
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
                db.write(move |c| sqlite::feeds::start_watching(c, &repos, now))
                    .await?
            }
            Store::ClickHouse(ch) => ch.start_watching(&repos, now).await?,
        })
    }

    /// The writer's periodic upkeep until `shutdown`: ClickHouse merges its
    /// rollups when a bulk load left them in parts; SQLite keeps its rollups
    /// exact in every transaction and needs none.
    pub async fn upkeep(self, shutdown: CancellationToken) {
        if let Store::ClickHouse(ch) = self {
            ch.keep_up(clickhouse::UPKEEP_INTERVAL, shutdown).await;
        }
    }
}

/// Takes the rows of [`Store::for_each_pr_count`] and
/// [`Store::for_each_repo_count`] one by one.
pub trait RepoCountSink: Send + 'static {
    /// One repository and its PullRequestEvents; false stops the walk.
    fn accept(&mut self, repo_name: &str, count: u64) -> bool;
}

/// Which events a question counts: all, or one repository's (its name
/// matched as GitHub matches names, ignoring case), with or without the
/// bots' (an actor whose login ends in `[bot]` or is named by
/// [`Store::use_bot_logins`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub repo_name: Option<String>,
    pub exclude_bots: bool,
}

impl Filter {
    /// Every event.
    pub const ALL: Filter = Filter {
        repo_name: None,
        exclude_bots: false,
    };

    pub fn is_all(&self) -> bool {
        *self == Filter::ALL
    }
}

/// A ranking asked of [`Store::for_each_repo_count`]: the repositories
/// with events of `event_type` in `window` (without the bots' with
/// `exclude_bots`), at most `limit` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ranking {
    pub event_type: EventType,
    pub window: Window,
    pub limit: Option<u64>,
    pub exclude_bots: bool,
}

/// How much is stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub events: u64,
    /// Of them, the bots' (see [`Filter`]).
    pub bot_events: u64,
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

/// What an import hands the store's writer ([`Store::bulk_load`]). Files
/// are numbered by the import; batches of several files may interleave.
pub enum Load {
    /// A batch of events of one file; `archive` is the archive source the
    /// file belongs to (its bit is set in the events' `archives`), `None`
    /// for a file that is not an archive hour.
    Events {
        file: u64,
        events: Vec<Event>,
        archive: Option<SourceId>,
    },
    /// The end of a file: every event it holds was in its batches before.
    /// `archive_file` is `Some` when the file is an archive hour read whole.
    FileEnd {
        file: u64,
        archive_file: Option<ArchiveFile>,
    },
    /// An archive source answered that it does not have the hour's file,
    /// after the hour and its lag had passed: the hour will not come.
    Missing { source: SourceId, hour: i64 },
}

/// An archive source's number: its bit in the events' `archives` mask.
pub type SourceId = u8;

/// How many archive sources a store tells apart (`archives` is a bit mask).
pub const MAX_ARCHIVE_SOURCES: usize = 16;

/// The first hour (since the epoch) whose GH Archive file holds the events
/// crawled in it rather than created in it: 2025-05-25T00:00:00Z
/// (igrigorik/gharchive.org f1f4200). Before it, a file holds its hour's
/// events and nothing later.
pub const CRAWL_HOUR_FILES_FROM: i64 = 1_748_131_200 / 3600;

/// An archive hour file read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveFile {
    pub source: SourceId,
    /// The hour in the file's name (since the epoch).
    pub hour: i64,
    /// Tracked events in the file per type.
    pub events_by_type: PerType<u64>,
    /// Tracked events per lag: hours from their `created_at` hour to the
    /// file's (0: created in the file's own hour).
    pub lags: std::collections::BTreeMap<i64, u64>,
}

impl ArchiveFile {
    /// Tracked events in the file.
    pub fn events_read(&self) -> u64 {
        self.events_by_type.total()
    }

    /// The largest lag of its events, in hours (0 for a file without any).
    pub fn max_lag(&self) -> i64 {
        self.lags.keys().next_back().copied().unwrap_or(0).max(0)
    }

    /// The lags as stored: `lag:events` pairs, smallest lag first.
    pub fn lags_text(&self) -> String {
        let pairs: Vec<String> = self.lags.iter().map(|(l, n)| format!("{l}:{n}")).collect();
        pairs.join(" ")
    }
}

/// What a store has recorded of one archive file: read whole, or missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileRecord {
    pub source: SourceId,
    /// The hour in the file's name.
    pub hour: i64,
    /// The source answered 404 once the hour and its lag had passed.
    pub missing: bool,
    /// Tracked events in the file.
    pub events: u64,
    /// The largest lag of its events, in hours.
    pub max_lag: i64,
    /// Events per lag, `lag:events` pairs (see [`ArchiveFile::lags_text`]).
    pub lags: String,
}

impl FileRecord {
    /// The record of `file` read whole.
    pub fn read(file: &ArchiveFile) -> FileRecord {
        FileRecord {
            source: file.source,
            hour: file.hour,
            missing: false,
            events: file.events_read(),
            max_lag: file.max_lag(),
            lags: file.lags_text(),
        }
    }

    /// The record of a file `source` does not have.
    pub fn missing(source: SourceId, hour: i64) -> FileRecord {
        FileRecord {
            source,
            hour,
            missing: true,
            events: 0,
            max_lag: 0,
            lags: String::new(),
        }
    }
}

/// When an hour (by `created_at`) is settled: every archive file that can
/// still hold its events has been read whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settling {
    /// How many hours after its own an event may be filed (`--archive-lag`).
    pub lag_hours: i64,
    /// The sources of this run: each must have read every file an hour
    /// needs, or have answered that it does not have it.
    pub sources: Vec<SourceId>,
}

impl Settling {
    /// The file hours that can hold events created in `hour`: its own file
    /// before [`CRAWL_HOUR_FILES_FROM`], and the next `lag_hours` files too from then on.
    pub fn files_for(&self, hour: i64) -> std::ops::RangeInclusive<i64> {
        if hour < CRAWL_HOUR_FILES_FROM {
            hour..=hour
        } else {
            hour..=hour + self.lag_hours
        }
    }

    /// The hours (by `created_at`) whose events the file of `file_hour` can hold.
    pub fn hours_of_file(&self, file_hour: i64) -> std::ops::RangeInclusive<i64> {
        if file_hour < CRAWL_HOUR_FILES_FROM {
            file_hour..=file_hour
        } else {
            (file_hour - self.lag_hours).max(CRAWL_HOUR_FILES_FROM)..=file_hour
        }
    }

    /// Of `hours`, those that `files` settle: for each file the hour needs,
    /// at least one source read it whole and every source of this run read
    /// it or does not have it. `files` must hold every record of the files
    /// those hours need.
    pub fn settled(&self, hours: std::ops::RangeInclusive<i64>, files: &[FileRecord]) -> Vec<i64> {
        let has = |hour: i64, source: Option<SourceId>, read: bool| {
            files.iter().any(|f| {
                f.hour == hour && source.is_none_or(|s| f.source == s) && (!read || !f.missing)
            })
        };
        hours
            .filter(|&hour| {
                self.files_for(hour).all(|file| {
                    has(file, None, true) && self.sources.iter().all(|&s| has(file, Some(s), false))
                })
            })
            .collect()
    }
}

/// What one hour's events say about the archives and the live feeds, per
/// type, counted by event id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourCoverage {
    /// Hours since the epoch (of `created_at`).
    pub hour: i64,
    /// Events that at least one archive file holds.
    pub archive_events: PerType<u64>,
    /// Of them, those a live feed (global or watched) had stored first.
    pub live_events: PerType<u64>,
    /// Events the live feeds stored that no archive file holds.
    pub live_only: PerType<u64>,
    /// Per archive source: of `archive_events`, those its files hold.
    pub by_source: Vec<(SourceId, PerType<u64>)>,
    /// Events stored after the hour was settled.
    pub late_arrivals: PerType<u64>,
    pub settled: bool,
}

/// The figures of every event of one hour, type, origin and archive mask:
/// what [`HourCoverage`] is summed from, whatever the store.
pub(crate) fn add_to_coverage(
    coverage: &mut HourCoverage,
    event_type: EventType,
    origin: u8,
    archives: u32,
    events: u64,
) {
    let live = origin == Origin::GlobalFeed.code() || origin == Origin::Watched.code();
    if archives != 0 {
        coverage.archive_events[event_type] += events;
        if live {
            coverage.live_events[event_type] += events;
        }
        for source in 0..MAX_ARCHIVE_SOURCES as SourceId {
            if archives & (1 << source) == 0 {
                continue;
            }
            match coverage.by_source.iter_mut().find(|(s, _)| *s == source) {
                Some((_, counts)) => counts[event_type] += events,
                None => {
                    let mut counts = PerType::default();
                    counts[event_type] = events;
                    coverage.by_source.push((source, counts));
                    coverage.by_source.sort_unstable_by_key(|(s, _)| *s);
                }
            }
        }
    } else if live {
        coverage.live_only[event_type] += events;
    }
}

/// An hour is suspect when its archive events are fewer than this share of
/// the median of the hours around it (GH Archive has hours with a handful
/// of events, and days with a hundredth of the usual).
pub const SUSPECT_SHARE: f64 = 0.1;
/// The hours on each side whose median a suspect hour is compared with.
pub const SUSPECT_NEIGHBOURS: i64 = 12;

/// The hours of `hours` (with their neighbours) that look like holes: fewer
/// archive events than [`SUSPECT_SHARE`] of the median of the archive hours
/// within [`SUSPECT_NEIGHBOURS`] of them, or a file some source does not have.
pub fn suspect_hours(hours: &[HourCoverage], files: &[FileRecord]) -> Vec<i64> {
    let total = |h: &HourCoverage| h.archive_events.total();
    let by_hour: std::collections::BTreeMap<i64, u64> =
        hours.iter().map(|h| (h.hour, total(h))).collect();
    let mut suspect: Vec<i64> = by_hour
        .iter()
        .filter(|&(&hour, &events)| {
            let mut around: Vec<u64> = by_hour
                .range(hour - SUSPECT_NEIGHBOURS..=hour + SUSPECT_NEIGHBOURS)
                .filter(|&(&h, _)| h != hour)
                .map(|(_, &n)| n)
                .collect();
            if around.is_empty() {
                return false;
            }
            around.sort_unstable();
            let median = around[around.len() / 2] as f64;
            (events as f64) < median * SUSPECT_SHARE
        })
        .map(|(&hour, _)| hour)
        .collect();
    suspect.extend(files.iter().filter(|f| f.missing).map(|f| f.hour));
    suspect.sort_unstable();
    suspect.dedup();
    suspect
}

/// What the archives' files say in all: for `/health` and Prometheus.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Files read whole.
    pub files_read: u64,
    /// Files filed by crawl hour whose events are later than the lag allows.
    pub files_beyond_lag: u64,
    /// The largest lag seen in any file, in hours.
    pub max_lag_hours: i64,
    /// Events stored after their hour was settled.
    pub late_arrivals: u64,
}

/// The steps of a bulk load that differ by store: [`drive_bulk_load`] runs
/// them in order on the loader's thread.
pub(crate) trait BulkWriter {
    /// Stores a batch (see [`Load::Events`]).
    fn insert(
        &mut self,
        events: &[Event],
        archive: Option<SourceId>,
    ) -> Result<InsertStats, StoreError>;
    /// Records what is known of one archive file.
    fn record_file(&mut self, record: &FileRecord, now: i64) -> Result<(), StoreError>;
    /// What is recorded of the files of hours `first..=last`.
    fn files(&mut self, first: i64, last: i64) -> Result<Vec<FileRecord>, StoreError>;
    /// Records `hours` settled (those already settled stay as they are).
    fn settle(&mut self, hours: &[i64], now: i64) -> Result<(), StoreError>;
}

/// The bulk-load loop every store shares: batches stored, files recorded
/// once their batches are, and the hours each file settles recorded.
pub(crate) fn drive_bulk_load(
    writer: &mut impl BulkWriter,
    loads: Receiver<Load>,
    settling: &Settling,
) -> Result<InsertStats, StoreError> {
    let mut total = InsertStats::default();
    for load in loads {
        let record = match load {
            Load::Events {
                events, archive, ..
            } => {
                total += writer.insert(&events, archive)?;
                continue;
            }
            Load::FileEnd {
                archive_file: None, ..
            } => continue,
            Load::FileEnd {
                archive_file: Some(file),
                ..
            } => FileRecord::read(&file),
            Load::Missing { source, hour } => FileRecord::missing(source, hour),
        };
        let now = chrono::Utc::now().timestamp();
        writer.record_file(&record, now)?;
        let hours = settling.hours_of_file(record.hour);
        let files = writer.files(*hours.start(), *hours.end() + settling.lag_hours)?;
        let settled = settling.settled(hours, &files);
        if !settled.is_empty() {
            writer.settle(&settled, now)?;
        }
    }
    Ok(total)
}

/// Stored events per tracked type.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventCounts {
    pub watch: u64,
    pub pull_request: u64,
    pub issues: u64,
}

impl From<PerType<u64>> for EventCounts {
    fn from(PerType([watch, pull_request, issues]): PerType<u64>) -> Self {
        EventCounts {
            watch,
            pull_request,
            issues,
        }
    }
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
    /// Rows that were new, per type.
    pub inserted_by_type: PerType<u64>,
    /// Events already stored (or repeated within the batch), left untouched.
    pub duplicates: u64,
}

impl InsertStats {
    /// Rows that were new.
    pub fn inserted(&self) -> u64 {
        self.inserted_by_type.total()
    }
}

impl std::ops::AddAssign for InsertStats {
    fn add_assign(&mut self, other: Self) {
        self.duplicates += other.duplicates;
        self.inserted_by_type += other.inserted_by_type;
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

/// What [`Store::data_version`] returns: equal values mean nothing was
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

    fn read(source: SourceId, hour: i64) -> FileRecord {
        FileRecord {
            source,
            hour,
            missing: false,
            events: 1,
            max_lag: 0,
            lags: String::new(),
        }
    }

    #[test]
    fn an_hour_settles_once_every_file_that_can_hold_it_is_read() {
        let rule = Settling {
            lag_hours: 2,
            sources: vec![0],
        };
        let h = CRAWL_HOUR_FILES_FROM + 10;
        // Filed by crawl hour: the hour's file and the next two.
        assert_eq!(rule.files_for(h), h..=h + 2);
        assert_eq!(rule.hours_of_file(h), h - 2..=h);
        let files: Vec<FileRecord> = (h..=h + 1).map(|f| read(0, f)).collect();
        assert!(rule.settled(h - 2..=h + 2, &files).is_empty());
        let files: Vec<FileRecord> = (h - 1..=h + 2).map(|f| read(0, f)).collect();
        assert_eq!(rule.settled(h - 2..=h + 2, &files), [h - 1, h]);
        // Filed by created hour before: its own file alone.
        let old = CRAWL_HOUR_FILES_FROM - 5;
        assert_eq!(rule.files_for(old), old..=old);
        assert_eq!(
            rule.hours_of_file(CRAWL_HOUR_FILES_FROM),
            CRAWL_HOUR_FILES_FROM..=CRAWL_HOUR_FILES_FROM
        );
        assert_eq!(rule.settled(old..=old, &[read(0, old)]), [old]);
    }

    #[test]
    fn every_source_of_the_run_must_have_read_or_lack_the_file() {
        let old = CRAWL_HOUR_FILES_FROM - 5;
        let both = Settling {
            lag_hours: 6,
            sources: vec![0, 1],
        };
        assert!(both.settled(old..=old, &[read(0, old)]).is_empty());
        let lacks = FileRecord::missing(1, old);
        assert_eq!(
            both.settled(old..=old, &[read(0, old), lacks.clone()]),
            [old]
        );
        // A file no source has is a hole.
        let hole = [FileRecord::missing(0, old), lacks];
        assert!(both.settled(old..=old, &hole).is_empty());
        // A source not of this run is not waited for.
        let one = Settling {
            lag_hours: 6,
            sources: vec![1],
        };
        assert_eq!(one.settled(old..=old, &[read(1, old)]), [old]);
    }

    #[test]
    fn a_thin_or_missing_hour_is_suspect() {
        let hour = |hour: i64, events: u64| HourCoverage {
            hour,
            archive_events: PerType([events, 0, 0]),
            ..HourCoverage::default()
        };
        // 100 events an hour; hour 5 has 9 (under a tenth), hour 7 has 10.
        let hours: Vec<HourCoverage> = (0..30)
            .map(|h| {
                hour(
                    h,
                    [(5, 9), (7, 10)]
                        .iter()
                        .find(|(x, _)| *x == h)
                        .map_or(100, |(_, n)| *n),
                )
            })
            .collect();
        assert_eq!(suspect_hours(&hours, &[]), [5]);
        assert_eq!(
            suspect_hours(&hours, &[FileRecord::missing(1, 20)]),
            [5, 20]
        );
        // Alone, an hour has nothing to be compared with.
        assert!(suspect_hours(&[hour(3, 1)], &[]).is_empty());
    }

    #[test]
    fn coverage_sums_by_mask_and_origin() {
        let mut hour = HourCoverage::default();
        let live = Origin::GlobalFeed.code();
        let import = Origin::Import.code();
        let (watch, pr) = (EventType::Watch, EventType::PullRequest);
        add_to_coverage(&mut hour, watch, live, 0b01, 3);
        add_to_coverage(&mut hour, watch, import, 0b11, 5);
        add_to_coverage(&mut hour, watch, live, 0, 2);
        add_to_coverage(&mut hour, pr, import, 0, 7);
        assert_eq!(hour.archive_events, [8, 0, 0]);
        assert_eq!(hour.live_events, [3, 0, 0]);
        assert_eq!(hour.live_only, [2, 0, 0]);
        assert_eq!(
            hour.by_source,
            [(0, PerType([8, 0, 0])), (1, PerType([5, 0, 0]))]
        );
    }
}
