//! The ClickHouse store: the same questions as [`super::sqlite`], answered
//! from the tables of `migrations/clickhouse/` over the HTTP interface, on
//! one server or (with `--clickhouse-cluster`) through `Distributed` tables
//! over a cluster's shards.
//!
//! Exactly once: a writer takes the store's write lock, looks the batch's ids
//! up (in `event_ids`, sorted by id) and inserts only the new
//! ones, so plain `count()` is exact right after any insert, without `FINAL`
//! or `uniqExact` at query time (see README "ClickHouse" for the measurements).
//! The lock ([`lock`]) serialises the poller, retention and any number of
//! `import` processes on the same store.

mod http;
pub mod lock;
mod migrate;
mod top;
mod upkeep;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use http::ClickHouseError;
use http::{Endpoint, push_tsv, quote, read_tsv};
pub use upkeep::UPKEEP_INTERVAL;

use super::{
    DataVersion, EventCounts, FeedCoverage, FeedPoll, GLOBAL_FEED, InsertStats, PrGapSummary,
    Totals,
};
use crate::config::ClickHouseSettings;
use crate::event::{Event, EventType};
use crate::time_buckets::{SECONDS_PER_MINUTE, ceil_div};

/// The ClickHouse store. Cheap to clone.
#[derive(Clone)]
pub struct ClickHouse {
    layout: Arc<Layout>,
    /// One writer at a time within this process (poller, retention).
    local_writer: Arc<tokio::sync::Mutex<()>>,
}

/// Where the tables are and whom to ask.
pub struct Layout {
    /// The server every query and insert goes to.
    main: Endpoint,
    /// With a cluster without distributed DDL: every shard, for DDL.
    shards: Vec<Endpoint>,
    database: String,
    cluster: Option<String>,
}

impl Layout {
    /// Where a DDL statement runs: every shard when they were listed,
    /// otherwise the main server (with `ON CLUSTER` on a cluster).
    fn ddl_targets(&self) -> impl Iterator<Item = &Endpoint> {
        let shards = if self.cluster.is_some() && !self.shards.is_empty() {
            &self.shards[..]
        } else {
            std::slice::from_ref(&self.main)
        };
        shards.iter()
    }

    /// ` ON CLUSTER name` where DDL goes through the cluster's own queue.
    fn on_cluster(&self) -> String {
        match &self.cluster {
            Some(cluster) if self.shards.is_empty() => format!(" ON CLUSTER {cluster}"),
            _ => String::new(),
        }
    }

    /// A table as queried: the plain table, or the Distributed one.
    fn table(&self, name: &str) -> String {
        format!("{}.{name}", self.database)
    }

    /// The tables that hold rows (for DDL and mutations): `X` or `X_local`.
    fn local_table(&self, name: &str) -> String {
        match &self.cluster {
            Some(_) => format!("{}.{name}_local{}", self.database, self.on_cluster()),
            None => format!("{}.{name}", self.database),
        }
    }

    /// A system table (`parts`, `mutations`) as seen over every shard.
    fn system_table(&self, name: &str) -> String {
        match &self.cluster {
            Some(cluster) => format!("cluster({cluster}, system, {name})"),
            None => format!("system.{name}"),
        }
    }

    /// The name, as system tables list it, of the table holding `name`'s
    /// rows: `X`, or `X_local` on a cluster.
    fn rows_table_name(&self, name: &str) -> String {
        match &self.cluster {
            Some(_) => format!("{name}_local"),
            None => name.to_owned(),
        }
    }

    /// Per-request settings: inserts into a Distributed table wait until
    /// every shard has its rows, so the next read sees them.
    fn insert_settings(&self) -> &'static [(&'static str, &'static str)] {
        match self.cluster {
            Some(_) => &[("insert_distributed_sync", "1")],
            None => &[],
        }
    }
}

/// The longest pr-counts `limit` tried from the top rows of the rollup.
const TOP_K_MAX: u64 = 10_000;
/// Rows of `pr_counts` looked at for a ranking of k: K = 4 k + 64. More
/// candidates make the proof hold more often and cost a little more reading.
const TOP_K_ROWS_PER_PLACE: u64 = 4;
const TOP_K_ROWS_EXTRA: u64 = 64;
/// How long start-up waits for an unreachable ClickHouse server.
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);
/// How long a purge waits for ClickHouse to finish its delete mutations.
const MUTATION_PATIENCE: Duration = Duration::from_secs(600);

impl ClickHouse {
    /// Connects, checks the server answers, and applies the migrations.
    pub async fn open(settings: &ClickHouseSettings) -> Result<ClickHouse, ClickHouseError> {
        let layout = Layout {
            main: Endpoint::new(settings, settings.endpoint.clone()),
            shards: settings
                .shard_endpoints
                .iter()
                .map(|url| Endpoint::new(settings, url.clone()))
                .collect(),
            database: settings.database.clone(),
            cluster: settings.cluster.clone(),
        };
        // A server started at the same time (a compose file, a reboot) may
        // take a while to listen: wait for it, saying so, up to a minute.
        let started = Instant::now();
        let version = loop {
            match layout.main.run("SELECT version()", &[], None).await {
                Err(error) if error.is_unavailable() && started.elapsed() < STARTUP_PATIENCE => {
                    tracing::warn!(%error, "waiting for ClickHouse");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                answer => break answer?,
            }
        };
        tracing::info!(server = %layout.main.describe(), version = %version.trim(), "connected to ClickHouse");
        migrate::run(&layout).await?;
        Ok(ClickHouse {
            layout: Arc::new(layout),
            local_writer: Arc::default(),
        })
    }

    /// The same store with its own HTTP connections, for use on another
    /// runtime (the import's writer thread).
    pub fn with_new_connections(&self) -> ClickHouse {
        let layout = &self.layout;
        ClickHouse {
            layout: Arc::new(Layout {
                main: layout.main.with_new_connections(),
                shards: layout
                    .shards
                    .iter()
                    .map(Endpoint::with_new_connections)
                    .collect(),
                database: layout.database.clone(),
                cluster: layout.cluster.clone(),
            }),
            local_writer: self.local_writer.clone(),
        }
    }

    async fn query(&self, sql: &str) -> Result<String, ClickHouseError> {
        self.layout.main.run(sql, &[], None).await
    }

    /// What the answers depend on, cheaply (one request): the rows of the
    /// tables written directly (`events`, `feed_polls`, `watched_repos`; the
    /// rollups follow `events`) on every shard, and the database's delete
    /// mutations, issued and done. Every insert adds rows (only new events
    /// are inserted) and every delete is a mutation, so each write changes
    /// it; background merges move rows between parts without changing their
    /// number or any answer, so they leave it, and the answer cache with it.
    pub async fn data_version(&self) -> Result<DataVersion, ClickHouseError> {
        let parts = self.layout.system_table("parts");
        let mutations = self.layout.system_table("mutations");
        let database = quote(&self.layout.database);
        let answer = self
            .query(&format!(
                "SELECT
                     (SELECT sum(rows) FROM {parts} WHERE database = {database} AND active
                      AND table IN ('events', 'feed_polls', 'watched_repos',
                                    'events_local', 'feed_polls_local', 'watched_repos_local')),
                     (SELECT count() FROM {mutations} WHERE database = {database}),
                     (SELECT countIf(is_done) FROM {mutations} WHERE database = {database})
                 FORMAT TabSeparated"
            ))
            .await?;
        let mut version = DataVersion::default();
        let numbers = fields::<3>(answer.trim_end())?;
        for (slot, field) in version.bytes_mut().chunks_mut(8).zip(numbers) {
            let value: u64 = number(field, &answer)?;
            slot.copy_from_slice(&value.to_le_bytes());
        }
        Ok(version)
    }

    /// Events per type since `since`: the raw events of the partial first
    /// minute, then whole minutes from the minute rollup (a few thousand
    /// rows a month, however many events).
    pub async fn event_counts(&self, since: i64) -> Result<EventCounts, ClickHouseError> {
        let since = since.clamp(0, i64::from(u32::MAX));
        let first_minute = ceil_div(since, SECONDS_PER_MINUTE);
        let answer = self
            .query(&format!(
                "SELECT code, sum(n) FROM (
                     SELECT toUInt8(type) AS code, toInt64(count()) AS n FROM {events}
                     WHERE created_at >= toDateTime({since}) AND created_at < toDateTime({whole})
                     GROUP BY type
                     UNION ALL
                     SELECT toUInt8(type) AS code, sum(events) AS n FROM {minutes}
                     WHERE minute >= {first_minute} GROUP BY type)
                 GROUP BY code FORMAT TabSeparated",
                events = self.layout.table("events"),
                minutes = self.layout.table("event_counts_by_minute"),
                whole = (first_minute * SECONDS_PER_MINUTE).min(i64::from(u32::MAX)),
            ))
            .await?;
        let mut counts = [0u64; 3];
        for line in answer.lines() {
            let [code, count] = fields::<2>(line)?;
            counts[type_index(code)?] = number(count, line)?;
        }
        let [watch, pull_request, issues] = counts;
        Ok(EventCounts {
            watch,
            pull_request,
            issues,
        })
    }

    pub async fn timeline(
        &self,
        first_minute: i64,
        bucket_minutes: i64,
        buckets: usize,
    ) -> Result<Vec<[u64; 3]>, ClickHouseError> {
        let end = first_minute + bucket_minutes * buckets as i64;
        let mut counts = vec![[0u64; 3]; buckets];
        if end <= 0 {
            return Ok(counts);
        }
        // Whole minutes from the minute rollup (buckets are whole minutes).
        let answer = self
            .query(&format!(
                "SELECT toUInt8(type), intDiv(toInt64(minute) - ({first_minute}), {bucket_minutes}) AS bucket, sum(events)
                 FROM {} WHERE minute >= {} AND minute < {}
                 GROUP BY type, bucket FORMAT TabSeparated",
                self.layout.table("event_counts_by_minute"),
                first_minute.max(0),
                end.min(i64::from(u32::MAX)),
            ))
            .await?;
        for line in answer.lines() {
            let [code, bucket, count] = fields::<3>(line)?;
            let bucket: usize = number(bucket, line)?;
            let slot = counts.get_mut(bucket).ok_or_else(|| bad(line))?;
            slot[type_index(code)?] = number(count, line)?;
        }
        Ok(counts)
    }

    /// The gaps between the repository's PR openings: ClickHouse 18.16 has
    /// no window functions, so the openings' times are gathered, sorted and
    /// differenced as an array (`arrayDifference` gives 0 first, then each
    /// gap). Each opening counts once by id, even before the
    /// ReplacingMergeTree has folded a second copy.
    pub async fn pr_gaps(&self, repo_name: &str) -> Result<PrGapSummary, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT length(times), arrayDifference(times), if(empty(times), NULL, times[-1])
                 FROM (SELECT arraySort(groupArray(at)) AS times FROM (
                     SELECT any(toInt64(toUInt32(created_at))) AS at FROM {}
                     WHERE repo_name = {} GROUP BY id))
                 FORMAT TabSeparated",
                self.layout.table("pr_openings"),
                quote(repo_name)
            ))
            .await?;
        let line = answer.trim_end();
        let [openings, differences, last] = fields::<3>(line)?;
        let differences = differences
            .strip_prefix('[')
            .and_then(|d| d.strip_suffix(']'))
            .ok_or_else(|| bad(line))?;
        let gaps = differences
            .split(',')
            .filter(|d| !d.is_empty())
            .skip(1)
            .map(|d| number(d, line))
            .collect::<Result<Vec<i64>, _>>()?;
        let last = match read_tsv(last) {
            None => None,
            Some(at) => Some(number(&at, line)?),
        };
        Ok(PrGapSummary::from_gaps(number(openings, line)?, gaps, last))
    }

    /// Repositories by PullRequestEvents, most first. A short ranking
    /// (`limit` up to [`TOP_K_MAX`]) is first tried from a few thousand rows
    /// of the rollup ([`ClickHouse::top_pr_counts`]); the whole ranking, or a
    /// short one that cannot be proven that way, sums every repository's rows.
    pub async fn for_each_pr_count(
        &self,
        limit: Option<u64>,
        mut visit: impl FnMut(&str, u64) -> bool,
    ) -> Result<(), ClickHouseError> {
        if let Some(k) = limit.filter(|&k| k <= TOP_K_MAX)
            && let Some(top) = self.top_pr_counts(k).await?
        {
            for (repo, count) in top {
                if !visit(&repo, count) {
                    break;
                }
            }
            return Ok(());
        }
        let limit = limit.map_or_else(String::new, |n| format!("LIMIT {n}"));
        let sql = format!(
            "SELECT repo_name, sum(events) AS n FROM {} WHERE repo_name != ''
             GROUP BY repo_name HAVING n > 0 ORDER BY n DESC, repo_name {limit} FORMAT TabSeparated",
            self.layout.table("pr_counts")
        );
        self.layout
            .main
            .for_each_line(&sql, |line| visit_pr_count(line, &mut visit))
            .await
    }

    /// The `k` repositories with the most PullRequestEvents, found without
    /// summing every repository's rows, or `None` when that cannot be proven
    /// (see [`top`]): the threshold `R` is the `K`-th largest row (K a few
    /// times k); one read gives the rows of at least `R` and each part's
    /// extremes below it; the candidates whose bounds still differ are then
    /// summed, a few granules each through the primary key. The reads must
    /// see the same parts: if an insert or a merge changed them in between
    /// (the parts' digest), the proof is void.
    pub async fn top_pr_counts(
        &self,
        k: u64,
    ) -> Result<Option<Vec<(String, u64)>>, ClickHouseError> {
        if k == 0 {
            return Ok(Some(Vec::new()));
        }
        let before = self.pr_counts_parts().await?;
        let pr_counts = self.layout.table("pr_counts");
        let rows_read = TOP_K_ROWS_PER_PLACE * k + TOP_K_ROWS_EXTRA;
        // Retention's mark row may be among these rows: R is only a threshold.
        let answer = self
            .query(&format!(
                "SELECT events FROM {pr_counts} ORDER BY events DESC LIMIT 1 OFFSET {}
                 FORMAT TabSeparated",
                rows_read - 1
            ))
            .await?;
        // Fewer rows than that: summing them all is as cheap.
        let Ok(threshold) = answer.trim().parse::<i64>() else {
            return Ok(None);
        };
        // Ties at R may add rows: past a few times K, give up rather than
        // read the whole table this way.
        let Some((rows, below)) = self.rows_around(threshold, 4 * rows_read).await? else {
            return Ok(None);
        };
        let Some(plan) = top::plan(k as usize, &rows, &below) else {
            return Ok(None);
        };
        let sums = self.pr_counts_of(plan.to_sum()).await?;
        if self.pr_counts_parts().await? != before {
            return Ok(None);
        }
        Ok(plan.finish(&sums))
    }

    /// In one read: the rows of `pr_counts` of at least `threshold` (`None`
    /// if more than `most_rows`) with their parts, and every part's extremes
    /// below it (0 without such a row; each shard's parts apart: two shards'
    /// parts may share a name).
    async fn rows_around(
        &self,
        threshold: i64,
        most_rows: u64,
    ) -> Result<Option<(Vec<top::TopRow>, Vec<top::PartBelow>)>, ClickHouseError> {
        let pr_counts = self.layout.table("pr_counts");
        let sql = format!(
            "SELECT repo_name, _part, events, events FROM {pr_counts}
             WHERE events >= {threshold} AND repo_name != '' LIMIT {}
             UNION ALL
             SELECT '', _part, maxIf(events, events < {threshold}), minIf(events, events < {threshold})
             FROM {pr_counts} GROUP BY _part
             FORMAT TabSeparated",
            most_rows + 1
        );
        let settings = [("distributed_group_by_no_merge", "1")];
        let answer = self.layout.main.run(&sql, &settings, None).await?;
        let (mut rows, mut below) = (Vec::new(), Vec::new());
        for line in answer.lines() {
            let [repo, part, max, min] = fields::<4>(line)?;
            let repo = read_tsv(repo).ok_or_else(|| bad(line))?;
            let part = read_tsv(part).ok_or_else(|| bad(line))?;
            if repo.is_empty() {
                let (max, min) = (number(max, line)?, number(min, line)?);
                below.push(top::PartBelow { part, max, min });
            } else {
                let events = number(max, line)?;
                rows.push(top::TopRow { repo, part, events });
            }
        }
        Ok((rows.len() as u64 <= most_rows).then_some((rows, below)))
    }

    /// The PullRequestEvents of each of `repos`, summed by name through the
    /// primary key (a few granules each).
    async fn pr_counts_of(
        &self,
        repos: impl Iterator<Item = &str>,
    ) -> Result<HashMap<String, i64>, ClickHouseError> {
        let names: Vec<String> = repos.map(quote).collect();
        let mut sums = HashMap::with_capacity(names.len());
        if names.is_empty() {
            return Ok(sums);
        }
        let sql = format!(
            "SELECT repo_name, sum(events) FROM {} WHERE repo_name IN ({})
             GROUP BY repo_name FORMAT TabSeparated",
            self.layout.table("pr_counts"),
            names.join(",")
        );
        // Up to K names: past the default 256 KiB of SQL text.
        let max_query_size = (sql.len() + 1024).max(1 << 18).to_string();
        let settings = [("max_query_size", max_query_size.as_str())];
        let answer = self.layout.main.run(&sql, &settings, None).await?;
        for line in answer.lines() {
            let [repo, total] = fields::<2>(line)?;
            let repo = read_tsv(repo).ok_or_else(|| bad(line))?;
            sums.insert(repo, number(total, line)?);
        }
        Ok(sums)
    }

    /// A digest of `pr_counts`' active parts on every shard: any insert or
    /// merge changes it.
    async fn pr_counts_parts(&self) -> Result<String, ClickHouseError> {
        let table = self.layout.rows_table_name("pr_counts");
        let parts = self.layout.system_table("parts");
        self.query(&format!(
            "SELECT count(), groupBitXor(cityHash64(name, modification_time)) FROM {parts}
             WHERE database = {} AND table = '{table}' AND active FORMAT TabSeparated",
            quote(&self.layout.database)
        ))
        .await
    }

    /// How many events (from the minute rollup) and the newest one's time
    /// (looked for only after the newest minute the rollup knows).
    pub async fn totals(&self) -> Result<Totals, ClickHouseError> {
        let minutes = self.layout.table("event_counts_by_minute");
        let answer = self
            .query(&format!(
                "SELECT sum(events), max(minute) FROM {minutes} FORMAT TabSeparated"
            ))
            .await?;
        let line = answer.trim_end();
        let [events, last_minute] = fields::<2>(line)?;
        let events: i64 = number(events, line)?;
        let last_minute: i64 = number(last_minute, line)?;
        if events <= 0 {
            return Ok(Totals::default());
        }
        let answer = self
            .query(&format!(
                "SELECT toUInt32(max(created_at)) FROM {} WHERE created_at >= toDateTime({})
                 FORMAT TabSeparated",
                self.layout.table("events"),
                last_minute * SECONDS_PER_MINUTE
            ))
            .await?;
        let newest: i64 = number(&answer, &answer)?;
        Ok(Totals {
            events: events as u64,
            newest_event_at: (newest > 0).then_some(newest),
        })
    }

    /// Stores the events whose ids are not stored yet, under the write lock.
    pub async fn insert_events(&self, events: &[Event]) -> Result<InsertStats, ClickHouseError> {
        let mut stats = InsertStats::default();
        let mut seen = HashSet::with_capacity(events.len());
        let batch: Vec<&Event> = events
            .iter()
            .filter(|event| {
                let first = seen.insert(event.id);
                if !first {
                    stats.duplicates += 1;
                }
                first
            })
            .collect();
        if batch.is_empty() {
            return Ok(stats);
        }
        let lock = lock::WriteLock::acquire(self).await?;
        let result = self.insert_new(batch, &mut stats).await;
        lock.release().await;
        result.map(|()| stats)
    }

    /// Inserts the events of `batch` not stored yet (the caller holds the lock).
    async fn insert_new(
        &self,
        batch: Vec<&Event>,
        stats: &mut InsertStats,
    ) -> Result<(), ClickHouseError> {
        // Events older than what retention already took out of pr_counts
        // would be counted there and then deleted without being taken out
        // again: they are past retention anyway, so they are not stored.
        let purged_before = self.purged_before().await?;
        let (batch, expired): (Vec<&Event>, Vec<&Event>) = batch
            .into_iter()
            .partition(|e| e.created_at >= purged_before);
        stats.duplicates += expired.len() as u64;
        let stored = self.stored_ids(&batch).await?;
        let mut rows = Vec::new();
        let mut openings = Vec::new();
        for event in batch {
            if event.id < 0 || stored.contains(&event.id) {
                stats.duplicates += 1;
                continue;
            }
            stats.inserted_by_type[event.event_type.index()] += 1;
            let number = event.number.map(|n| n.to_string());
            let _ = write!(
                rows,
                "{}\t{}\t{}\t",
                event.id,
                event.event_type.as_str(),
                datetime(event.created_at)
            );
            push_tsv(&mut rows, Some(&event.repo_name));
            rows.push(b'\t');
            push_tsv(&mut rows, event.actor_login.as_deref());
            rows.push(b'\t');
            push_tsv(&mut rows, event.action.as_deref());
            rows.push(b'\t');
            push_tsv(&mut rows, number.as_deref());
            rows.push(b'\n');
            if event.event_type == EventType::PullRequest
                && event.action.as_deref() == Some("opened")
            {
                push_tsv(&mut openings, Some(&event.repo_name));
                let _ = write!(openings, "\t{}\t{}\t", datetime(event.created_at), event.id);
                push_tsv(&mut openings, number.as_deref());
                openings.push(b'\n');
            }
        }
        // Openings first: a crash between the two inserts leaves openings
        // whose events are not stored, and the retry stores the events and
        // the openings again, which the gap query counts once by id.
        if !openings.is_empty() {
            self.insert("pr_openings", "repo_name, created_at, id, number", openings)
                .await?;
        }
        if !rows.is_empty() {
            self.insert(
                "events",
                "id, type, created_at, repo_name, actor_login, action, number",
                rows,
            )
            .await?;
        }
        Ok(())
    }

    async fn insert(
        &self,
        table: &str,
        columns: &str,
        rows: Vec<u8>,
    ) -> Result<(), ClickHouseError> {
        let sql = format!(
            "INSERT INTO {} ({columns}) FORMAT TabSeparated",
            self.layout.table(table)
        );
        self.layout
            .main
            .run(&sql, self.layout.insert_settings(), Some(rows))
            .await?;
        Ok(())
    }

    /// Which of `batch`'s ids are stored, whatever else their stored copy
    /// carries: ranges of `event_ids`' primary key. The ids travel as one
    /// string literal that the server splits (20,000 literals in `IN (...)`
    /// take 18.16 far longer to parse than the lookup itself).
    async fn stored_ids(&self, batch: &[&Event]) -> Result<HashSet<i64>, ClickHouseError> {
        if batch.is_empty() {
            return Ok(HashSet::new());
        }
        let mut ids = String::with_capacity(batch.len() * 12);
        for (i, event) in batch.iter().enumerate() {
            if i > 0 {
                ids.push(',');
            }
            let _ = write!(ids, "{}", event.id.max(0));
        }
        let answer = self
            .query(&format!(
                "SELECT DISTINCT id FROM {}
                 WHERE id IN (SELECT toUInt64(x) FROM system.one ARRAY JOIN splitByChar(',', '{ids}') AS x)
                 FORMAT TabSeparated",
                self.layout.table("event_ids"),
            ))
            .await?;
        answer.lines().map(|id| number(id, id)).collect()
    }

    /// Deletes every event created before `cutoff` (ClickHouse deletes by
    /// mutation, all at once) and waits until the mutations are done, so the
    /// next answer no longer counts them; returns how many there were.
    pub async fn delete_events_before(&self, cutoff: i64) -> Result<u64, ClickHouseError> {
        if cutoff <= 0 {
            return Ok(0);
        }
        // Whole minutes, so that the minute rollup loses exactly the minutes
        // whose events go: at most 59 s of events are kept longer.
        let cutoff = cutoff.min(i64::from(u32::MAX));
        let cutoff = cutoff - cutoff % SECONDS_PER_MINUTE;
        let lock = lock::WriteLock::acquire(self).await?;
        let result = self.delete_before(cutoff).await;
        lock.release().await;
        result
    }

    /// The cutoff retention last applied (epoch seconds; 0 before any):
    /// the sum of `pr_counts`' mark row.
    async fn purged_before(&self) -> Result<i64, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT sum(events) FROM {} WHERE repo_name = '' FORMAT TabSeparated",
                self.layout.table("pr_counts")
            ))
            .await?;
        number(&answer, &answer)
    }

    /// Deletes the events before `cutoff` (a whole minute) and their rows in
    /// every rollup (the caller holds the lock). Each step can be run again
    /// after a crash without counting twice: the minutes go by a delete of
    /// whole minutes, and the PullRequestEvents leave `pr_counts` as negative
    /// rows inserted together with the mark that moves the applied cutoff on.
    async fn delete_before(&self, cutoff: i64) -> Result<u64, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT count() FROM {} WHERE created_at < toDateTime({cutoff}) FORMAT TabSeparated",
                self.layout.table("events")
            ))
            .await?;
        let doomed: u64 = number(&answer, &answer)?;
        let applied = self.purged_before().await?;
        if cutoff > applied {
            let sql = format!(
                "INSERT INTO {pr_counts} (repo_name, events)
                 SELECT repo_name, -toInt64(count()) FROM {events}
                 WHERE type = 'PullRequestEvent' AND created_at >= toDateTime({applied})
                   AND created_at < toDateTime({cutoff})
                 GROUP BY repo_name
                 UNION ALL SELECT '', toInt64({cutoff} - {applied})",
                pr_counts = self.layout.table("pr_counts"),
                events = self.layout.table("events"),
            );
            self.layout
                .main
                .run(&sql, self.layout.insert_settings(), None)
                .await?;
        }
        if doomed == 0 {
            return Ok(0);
        }
        for (table, condition) in [
            ("events", format!("created_at < toDateTime({cutoff})")),
            ("event_ids", format!("created_at < toDateTime({cutoff})")),
            ("pr_openings", format!("created_at < toDateTime({cutoff})")),
            (
                "event_counts_by_minute",
                format!("minute < {}", cutoff / SECONDS_PER_MINUTE),
            ),
        ] {
            let sql = format!(
                "ALTER TABLE {} DELETE WHERE {condition}",
                self.layout.local_table(table)
            );
            for target in self.layout.ddl_targets() {
                target.run(&sql, &[], None).await?;
            }
        }
        self.wait_for_mutations().await?;
        Ok(doomed)
    }

    async fn wait_for_mutations(&self) -> Result<(), ClickHouseError> {
        let mutations = self.layout.system_table("mutations");
        let sql = format!(
            "SELECT count() FROM {mutations} WHERE database = {} AND NOT is_done FORMAT TabSeparated",
            quote(&self.layout.database)
        );
        let started = Instant::now();
        while started.elapsed() < MUTATION_PATIENCE {
            if self.query(&sql).await?.trim() == "0" {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(ClickHouseError::Busy(
            "ClickHouse has not finished deleting old events; it carries on in the background"
                .to_owned(),
        ))
    }

    pub async fn delete_feed_polls_before(&self, cutoff: i64) -> Result<(), ClickHouseError> {
        if cutoff <= 0 {
            return Ok(());
        }
        let sql = format!(
            "ALTER TABLE {} DELETE WHERE polled_at < toDateTime({})",
            self.layout.local_table("feed_polls"),
            cutoff.min(i64::from(u32::MAX))
        );
        for target in self.layout.ddl_targets() {
            target.run(&sql, &[], None).await?;
        }
        self.wait_for_mutations().await
    }

    pub async fn record_feed_poll(&self, poll: &FeedPoll) -> Result<(), ClickHouseError> {
        let mut row = Vec::new();
        let _ = write!(row, "{}\t", datetime(poll.polled_at));
        push_tsv(&mut row, Some(&poll.feed));
        row.push(b'\t');
        push_tsv(&mut row, Some(poll.outcome));
        let _ = write!(
            row,
            "\t{}\t{}\t{}",
            poll.pages, poll.received, poll.inserted
        );
        for value in [
            poll.oldest_id.map(|v| v.to_string()),
            poll.newest_id.map(|v| v.to_string()),
            poll.previous_newest_id.map(|v| v.to_string()),
            poll.new_events.map(|v| v.to_string()),
            poll.overlap.map(|v| u8::from(v).to_string()),
            poll.missed_estimate.map(|v| v.to_string()),
            poll.error.clone(),
        ] {
            row.push(b'\t');
            push_tsv(&mut row, value.as_deref());
        }
        row.push(b'\n');
        self.insert(
            "feed_polls",
            "polled_at, feed, outcome, pages, received, inserted, oldest_id, newest_id, previous_newest_id, new_events, overlap, missed_estimate, error",
            row,
        )
        .await
    }

    pub async fn newest_seen_id(&self, feed: &str) -> Result<Option<i64>, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT max(newest_id) FROM {} WHERE feed = {} FORMAT TabSeparated",
                self.layout.table("feed_polls"),
                quote(feed)
            ))
            .await?;
        match read_tsv(answer.trim_end()) {
            None => Ok(None),
            Some(id) => Ok(Some(number(&id, &answer)?)),
        }
    }

    pub async fn global_feed_coverage(
        &self,
        now: i64,
        window_seconds: i64,
    ) -> Result<FeedCoverage, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT count(), countIf(ifNull(overlap = 0, 0)), ifNull(sum(new_events), 0), ifNull(sum(missed_estimate), 0)
                 FROM {} WHERE feed = {} AND polled_at > toDateTime({}) FORMAT TabSeparated",
                self.layout.table("feed_polls"),
                quote(GLOBAL_FEED),
                (now - window_seconds).clamp(0, i64::from(u32::MAX))
            ))
            .await?;
        let line = answer.trim_end();
        let numbers = fields::<4>(line)?;
        let mut parsed = [0u64; 4];
        for (slot, field) in parsed.iter_mut().zip(numbers) {
            *slot = number(field, line)?;
        }
        let [polls, polls_with_gap, events_seen, events_missed_estimate] = parsed;
        Ok(FeedCoverage::new(
            window_seconds,
            polls,
            polls_with_gap,
            events_seen,
            events_missed_estimate,
        ))
    }

    pub async fn start_watching(
        &self,
        repos: &[String],
        now: i64,
    ) -> Result<HashMap<String, i64>, ClickHouseError> {
        let mut watched = self.watched_since(repos).await?;
        let mut rows = Vec::new();
        for repo in repos.iter().filter(|repo| !watched.contains_key(*repo)) {
            push_tsv(&mut rows, Some(repo));
            let _ = writeln!(rows, "\t{}", datetime(now));
        }
        if !rows.is_empty() {
            self.insert("watched_repos", "repo_name, watched_since", rows)
                .await?;
            watched = self.watched_since(repos).await?;
        }
        Ok(watched)
    }

    async fn watched_since(
        &self,
        repos: &[String],
    ) -> Result<HashMap<String, i64>, ClickHouseError> {
        if repos.is_empty() {
            return Ok(HashMap::new());
        }
        let names: Vec<String> = repos.iter().map(|r| quote(r)).collect();
        let answer = self
            .query(&format!(
                "SELECT repo_name, toUInt32(min(watched_since)) FROM {} WHERE repo_name IN ({})
                 GROUP BY repo_name FORMAT TabSeparated",
                self.layout.table("watched_repos"),
                names.join(",")
            ))
            .await?;
        answer
            .lines()
            .map(|line| {
                let [repo, since] = fields::<2>(line)?;
                Ok((
                    read_tsv(repo).ok_or_else(|| bad(line))?,
                    number(since, line)?,
                ))
            })
            .collect()
    }
}

/// Reads one `repo_name \t count` line of a pr-counts answer into `visit`.
fn visit_pr_count(
    line: &str,
    visit: &mut impl FnMut(&str, u64) -> bool,
) -> Result<bool, ClickHouseError> {
    let [repo, count] = fields::<2>(line)?;
    let repo = read_tsv(repo).ok_or_else(|| bad(line))?;
    Ok(visit(&repo, number(count, line)?))
}

/// Epoch seconds as a `DateTime` field: `YYYY-MM-DD hh:mm:ss` in UTC (the
/// columns' time zone). A bare number is read as a timestamp only when it
/// has enough digits, so 500 would be refused; outside `DateTime`'s range
/// (1970 to 2106) the nearest end.
fn datetime(seconds: i64) -> impl std::fmt::Display {
    let seconds = seconds.clamp(0, i64::from(u32::MAX));
    chrono::DateTime::from_timestamp(seconds, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
}

/// `text` (the whole answer or one of its fields, from `line`) as a number.
fn number<T: std::str::FromStr>(text: &str, line: &str) -> Result<T, ClickHouseError> {
    text.trim().parse().map_err(|_| bad(line))
}

/// The `N` tab-separated fields of an answer line.
fn fields<const N: usize>(line: &str) -> Result<[&str; N], ClickHouseError> {
    let mut parts = line.split('\t');
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next().ok_or_else(|| bad(line))?;
    }
    match parts.next() {
        Some(_) => Err(bad(line)),
        None => Ok(out),
    }
}

/// The [`EventType::index`] of a stored type code.
fn type_index(code: &str) -> Result<usize, ClickHouseError> {
    EventType::ALL
        .iter()
        .find(|t| t.code().to_string() == code)
        .map(|t| t.index())
        .ok_or_else(|| bad(code))
}

fn bad(text: &str) -> ClickHouseError {
    ClickHouseError::Answer(text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Start-up waits for a server that starts listening a few seconds late
    /// (here a stand-in answering `200 OK` to every statement).
    #[tokio::test]
    async fn open_waits_for_a_server_that_is_not_listening_yet() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = vec![0u8; 1 << 16];
                    let _ = socket.read(&mut request).await;
                    let answer = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\n18.16.1\n";
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        let Ok(crate::config::StoreLocation::ClickHouse(settings)) =
            crate::config::StoreLocation::parse(&format!("clickhouse://127.0.0.1:{port}/db"), None)
        else {
            panic!("not a ClickHouse URL");
        };
        let started = Instant::now();
        ClickHouse::open(&settings).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(3));
    }

    #[test]
    fn datetimes_are_written_as_utc_text_within_range() {
        assert_eq!(datetime(500).to_string(), "1970-01-01 00:08:20");
        assert_eq!(datetime(1_700_000_000).to_string(), "2023-11-14 22:13:20");
        assert_eq!(datetime(-5).to_string(), "1970-01-01 00:00:00");
        assert_eq!(datetime(i64::MAX).to_string(), "2106-02-07 06:28:15");
    }

    #[test]
    fn answer_lines_have_exactly_their_fields() {
        assert_eq!(fields::<2>("a\tb").unwrap(), ["a", "b"]);
        assert!(fields::<2>("a").is_err());
        assert!(fields::<2>("a\tb\tc").is_err());
        assert_eq!(type_index("2").unwrap(), EventType::PullRequest.index());
        assert!(type_index("9").is_err());
    }
}
