//! The writers' upkeep. ClickHouse merges a table's parts in the background
//! but leaves parts of similar size apart for a long time (after a bulk
//! `INSERT`, for as long as anyone watched), and a short
//! pr-counts ranking is proven from the top rows alone only when `pr_counts`
//! is (nearly) one part per shard. So an import ends by merging the rollups,
//! and the serving writer merges them when it finds them fragmented; both
//! drop the ended write locks kept past their time (see [`super::lock`]).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::lock;
use super::text::{fields, number, quote};
use super::{ClickHouse, ClickHouseError};

/// How often the serving writer does its upkeep (two small queries over
/// `system.parts` and `system.tables`).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(600);

impl ClickHouse {
    /// Merges the rollups into one part per shard (`OPTIMIZE ... FINAL`, well
    /// under a second for a million repositories) and logs how long it took. A failure is
    /// logged: rankings are only slower until ClickHouse merges on its own.
    pub async fn merge_rollups(&self) {
        let started = Instant::now();
        match self.optimize_rollups().await {
            Ok(()) => tracing::info!(
                seconds = started.elapsed().as_secs_f64(),
                "merged the ClickHouse rollups"
            ),
            Err(error) => tracing::warn!(%error, "could not merge the ClickHouse rollups"),
        }
    }

    /// Summarises the finished hours whose summary of busiest repositories
    /// is missing or out of date ([`super::hour_tops`]) and logs how many. A
    /// failure is logged: rankings over windows are only slower until the
    /// next upkeep.
    pub async fn summarize_finished_hours(&self) {
        let started = Instant::now();
        match self.summarize_hours(chrono::Utc::now().timestamp()).await {
            Ok(0) => {}
            Ok(hours) => tracing::info!(
                hours,
                seconds = started.elapsed().as_secs_f64(),
                "summarized the hours' busiest repositories"
            ),
            Err(error) => {
                tracing::warn!(%error, "could not summarize the hours' busiest repositories")
            }
        }
    }

    pub(super) async fn optimize_rollups(&self) -> Result<(), ClickHouseError> {
        for table in ["pr_counts", "event_counts_by_minute"] {
            let sql = format!("OPTIMIZE TABLE {} FINAL", self.layout.local_table(table));
            for target in self.layout.ddl_targets() {
                target.run(&sql, &[], None).await?;
            }
        }
        Ok(())
    }

    /// Whether `pr_counts` is spread over parts of similar size, as a bulk
    /// `INSERT` leaves it, and ClickHouse leaves it so: more than a tenth of its rows
    /// outside the largest part of each shard. Small parts (the poller's
    /// batches) leave it unfragmented: their rows are few and small, the
    /// proof's bounds stay tight, and ClickHouse merges them soon.
    pub async fn rollups_fragmented(&self) -> Result<bool, ClickHouseError> {
        let table = self.layout.rows_table_name("pr_counts");
        let parts = self.layout.system_table("parts");
        let shards = match &self.layout.cluster {
            Some(cluster) => format!(
                "(SELECT toUInt64(uniqExact(shard_num)) FROM system.clusters WHERE cluster = {})",
                quote(cluster)
            ),
            None => "1".to_owned(),
        };
        let answer = self
            .query(&format!(
                "SELECT sum(rows), arraySum(arraySlice(arrayReverseSort(groupArray(rows)), 1, {shards}))
                 FROM {parts} WHERE database = {} AND table = '{table}' AND active
                 FORMAT TabSeparated",
                quote(&self.layout.database)
            ))
            .await?;
        let line = answer.trim_end();
        let [all, largest] = fields::<2>(line)?;
        let all: u64 = number(all, line)?;
        let largest: u64 = number(largest, line)?;
        Ok(all.saturating_sub(largest) * 10 > all)
    }

    /// Drops the ended write locks kept past their time; a failure is
    /// logged (they are a few empty tables).
    pub async fn drop_ended_locks(&self) {
        if let Err(error) = lock::drop_ended_locks(self).await {
            tracing::warn!(%error, "could not drop ended ClickHouse write locks");
        }
    }

    /// The serving writer's upkeep, at start and then every `every` until
    /// cancelled: merges the rollups when [`Self::rollups_fragmented`] finds
    /// them so, summarises the finished hours, and drops ended write locks.
    pub async fn keep_up(self, every: Duration, cancel: CancellationToken) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.rollups_fragmented().await {
                Ok(true) => self.merge_rollups().await,
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "could not look at the ClickHouse rollups"),
            }
            self.summarize_finished_hours().await;
            self.drop_ended_locks().await;
        }
    }
}
