//! The [`Backend`] questions answered by SQLite: each one a query function of
//! this module's siblings, run with a pooled connection off the async runtime.

use std::collections::HashMap;
use std::sync::mpsc::Receiver;

use tokio_util::sync::CancellationToken;

use super::{Sqlite, SqliteError, feeds, metrics, write};
use crate::event::Event;
use crate::store::{
    Backend, DataVersion, EventCounts, FeedCoverage, FeedPoll, HourCoverage, InsertStats, Load,
    Origin, PrCountSink, PrGapSummary, StoreError, StoredPerFile, Totals,
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
            .write(move |c| write::insert_events(c, &events, origin))
            .await?)
    }

    /// One transaction per batch on one connection with a large page cache.
    fn bulk_load(&self, loads: Receiver<Load>) -> Result<InsertStats, StoreError> {
        let mut conn = self.get()?;
        let load = |conn: &mut rusqlite::Connection| -> Result<InsertStats, SqliteError> {
            conn.pragma_update(None, "cache_size", -BULK_WRITE_CACHE_KIB)?;
            let mut total = InsertStats::default();
            let mut stored = StoredPerFile::default();
            let result = loads.iter().try_for_each(|load| {
                match load {
                    Load::Events { file, events } => {
                        let stats = write::insert_events(conn, &events, Origin::Import)?;
                        total += stats;
                        stored.add(file, stats);
                    }
                    Load::FileEnd { file, hour } => {
                        let stored = stored.end(file);
                        if let Some(hour) = hour {
                            let now = chrono::Utc::now().timestamp();
                            write::record_archive_hour(conn, &hour, stored, now)?;
                        }
                    }
                }
                Ok::<_, SqliteError>(())
            });
            conn.pragma_update(None, "cache_size", DEFAULT_CACHE_SIZE)?;
            result.map(|()| total)
        };
        Ok(load(&mut conn)?)
    }

    async fn complete_hours(&self, first_hour: i64, last_hour: i64) -> Result<u64, StoreError> {
        Ok(self
            .run(move |c| write::complete_hours(c, first_hour, last_hour))
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

    async fn complete_until(&self, first_hour: i64) -> Result<Option<i64>, StoreError> {
        Ok(self
            .run(move |c| write::complete_until(c, first_hour))
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
