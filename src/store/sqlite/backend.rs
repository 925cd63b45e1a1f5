//! The [`Backend`] questions answered by SQLite: each one a query function of
//! this module's siblings, run with a pooled connection off the async runtime.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;

use tokio_util::sync::CancellationToken;

use super::{Sqlite, SqliteError, feeds, metrics, write};
use crate::core::event::Event;
use crate::store::{
    ArchiveSummary, Backend, BulkWriter, DataVersion, EventCounts, FeedCoverage, FeedPoll,
    FileRecord, HourCoverage, InsertStats, Load, MAX_ARCHIVE_SOURCES, Origin, PrCountSink,
    PrGapSummary, Settling, SourceId, StoreError, Totals, drive_bulk_load,
};

/// Page cache of the bulk loader's connection, in KiB. Inserts land all over
/// the repository index; with SQLite's default 2 MiB cache most of them would
/// re-read pages from disk. The connection goes back to the default afterwards.
const BULK_WRITE_CACHE_KIB: i64 = 64 * 1024;
/// SQLite's default cache size (negative: KiB).
const DEFAULT_CACHE_SIZE: i64 = -2000;

impl Backend for Sqlite {
    const KIND: &'static str = "sqlite";

    async fn data_version(&self) -> Result<DataVersion, StoreError> {
        Ok(self.probe_version()?)
    }

    async fn event_counts(&self, from: i64, to: i64) -> Result<EventCounts, StoreError> {
        Ok(self
            .run(move |c| metrics::event_counts(c, from, to))
            .await?)
    }

    async fn pr_gaps(
        &self,
        repo_name: String,
        from: i64,
        to: i64,
    ) -> Result<PrGapSummary, StoreError> {
        Ok(self
            .run(move |c| metrics::pr_gaps(c, &repo_name, from, to))
            .await?)
    }

    async fn repo_spelling(&self, repo_name: String) -> Result<Option<String>, StoreError> {
        Ok(self
            .run(move |c| metrics::repo_spelling(c, &repo_name))
            .await?)
    }

    async fn openings_from_files(
        &self,
        repo_name: String,
        from: i64,
        to: i64,
    ) -> Result<u64, StoreError> {
        Ok(self
            .run(move |c| metrics::openings_from_files(c, &repo_name, from, to))
            .await?)
    }

    async fn for_each_pr_count<S: PrCountSink>(
        &self,
        limit: Option<u64>,
        window: Option<(i64, i64)>,
        mut sink: S,
    ) -> Result<S, StoreError> {
        Ok(self
            .run(move |c| {
                let visit = |repo: &str, n| sink.accept(repo, n);
                match window {
                    None => metrics::for_each_pr_count(c, limit, visit)?,
                    Some((from, to)) => {
                        metrics::for_each_pr_count_between(c, from, to, limit, visit)?
                    }
                }
                Ok(sink)
            })
            .await?)
    }

    async fn timeline(
        &self,
        first_minute: i64,
        bucket_minutes: i64,
        buckets: usize,
    ) -> Result<Vec<[u64; 3]>, StoreError> {
        Ok(self
            .run(move |c| metrics::timeline(c, first_minute, bucket_minutes, buckets))
            .await?)
    }

    async fn oldest_event_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.run(|c| metrics::oldest_event_at(c)).await?)
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        Ok(self
            .run(|c| {
                Ok(Totals {
                    events: write::stored_event_count(c)?,
                    by_origin: write::events_by_origin(c)?,
                    oldest_event_at: metrics::oldest_event_at(c)?,
                    newest_event_at: metrics::newest_event_at(c)?,
                })
            })
            .await?)
    }

    async fn insert_events(
        &self,
        events: Vec<Event>,
        origin: Origin,
    ) -> Result<InsertStats, StoreError> {
        Ok(self
            .write(move |c| write::insert_events(c, &events, origin, None))
            .await?)
    }

    /// One transaction per batch on one connection with a large page cache.
    fn bulk_load(
        &self,
        loads: Receiver<Load>,
        settling: Settling,
    ) -> Result<InsertStats, StoreError> {
        let mut conn = self.get()?;
        conn.pragma_update(None, "cache_size", -BULK_WRITE_CACHE_KIB)
            .map_err(SqliteError::from)?;
        let result = drive_bulk_load(&mut BulkConnection(&mut conn), loads, &settling);
        conn.pragma_update(None, "cache_size", DEFAULT_CACHE_SIZE)
            .map_err(SqliteError::from)?;
        result
    }

    async fn archive_sources(
        &self,
        register: Vec<String>,
    ) -> Result<Vec<(SourceId, String)>, StoreError> {
        let wanted = register.clone();
        let sources = if register.is_empty() {
            self.run(move |c| write::archive_sources(c, &[])).await?
        } else {
            self.write(move |c| write::archive_sources(c, &register))
                .await?
        };
        if !wanted
            .iter()
            .all(|name| sources.iter().any(|(_, n)| n == name))
        {
            return Err(SqliteError::TooManyArchiveSources(MAX_ARCHIVE_SOURCES).into());
        }
        Ok(sources)
    }

    async fn archive_files(
        &self,
        first_hour: i64,
        last_hour: i64,
    ) -> Result<Vec<FileRecord>, StoreError> {
        Ok(self
            .run(move |c| write::archive_files(c, first_hour, last_hour))
            .await?)
    }

    async fn archive_summary(&self, lag_hours: i64) -> Result<ArchiveSummary, StoreError> {
        Ok(self
            .run(move |c| write::archive_summary(c, lag_hours))
            .await?)
    }

    async fn settled_hours(&self, first_hour: i64, last_hour: i64) -> Result<u64, StoreError> {
        Ok(self
            .run(move |c| write::settled_hours(c, first_hour, last_hour))
            .await?)
    }

    async fn hour_coverage(
        &self,
        first_hour: i64,
        last_hour: i64,
    ) -> Result<Vec<HourCoverage>, StoreError> {
        Ok(self
            .run(move |c| write::hour_coverage(c, first_hour, last_hour))
            .await?)
    }

    async fn settled_until(&self, first_hour: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .run(move |c| write::settled_until(c, first_hour))
            .await?)
    }

    async fn delete_events_before(&self, cutoff: i64, limit: usize) -> Result<u64, StoreError> {
        Ok(self
            .write(move |c| write::delete_events_before(c, cutoff, limit))
            .await?)
    }

    async fn delete_feed_polls_before(&self, cutoff: i64) -> Result<(), StoreError> {
        self.write(move |c| write::delete_feed_polls_before(c, cutoff))
            .await?;
        Ok(())
    }

    async fn record_feed_poll(&self, poll: FeedPoll) -> Result<(), StoreError> {
        Ok(self
            .write(move |c| feeds::record_feed_poll(c, &poll))
            .await?)
    }

    async fn newest_seen_id(&self, feed: String) -> Result<Option<i64>, StoreError> {
        Ok(self.run(move |c| feeds::newest_seen_id(c, &feed)).await?)
    }

    async fn global_feed_coverage(
        &self,
        now: i64,
        window_seconds: i64,
    ) -> Result<FeedCoverage, StoreError> {
        Ok(self
            .run(move |c| feeds::global_feed_coverage(c, now, window_seconds))
            .await?)
    }

    async fn start_watching(
        &self,
        repos: Vec<String>,
        now: i64,
    ) -> Result<HashMap<String, i64>, StoreError> {
        Ok(self
            .write(move |c| feeds::start_watching(c, &repos, now))
            .await?)
    }

    /// SQLite keeps its rollups exact in every transaction: nothing to do.
    async fn upkeep(&self, _shutdown: CancellationToken) {}
}

/// The bulk loader's connection: one transaction per batch.
struct BulkConnection<'a>(&'a mut rusqlite::Connection);

impl BulkWriter for BulkConnection<'_> {
    fn insert(
        &mut self,
        events: &[Event],
        archive: Option<SourceId>,
    ) -> Result<InsertStats, StoreError> {
        Ok(
            write::insert_events(self.0, events, Origin::Import, archive)
                .map_err(SqliteError::from)?,
        )
    }

    fn record_file(&mut self, record: &FileRecord, now: i64) -> Result<(), StoreError> {
        Ok(write::record_file(self.0, record, now).map_err(SqliteError::from)?)
    }

    fn files(&mut self, first: i64, last: i64) -> Result<Vec<FileRecord>, StoreError> {
        Ok(write::archive_files(self.0, first, last).map_err(SqliteError::from)?)
    }

    fn settle(&mut self, hours: &[i64], now: i64) -> Result<(), StoreError> {
        Ok(write::settle(self.0, hours, now).map_err(SqliteError::from)?)
    }
}
