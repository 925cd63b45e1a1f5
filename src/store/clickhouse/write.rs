//! Writes: events stored once by id (the batch's ids looked up in
//! `event_ids` under the write lock), and deletes by mutation, waited for.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::text::{datetime, number, push_tsv, quote};
use super::{ClickHouse, ClickHouseError, lock};
use crate::event::{Event, EventType};
use crate::store::{ArchiveHour, HourCoverage, InsertStats, Origin};
use crate::time_buckets::{SECONDS_PER_HOUR, SECONDS_PER_MINUTE};

/// How long a purge waits for ClickHouse to finish its delete mutations.
const MUTATION_PATIENCE: Duration = Duration::from_secs(600);

/// Hours `first..=last` within `archive_hours.hour`'s UInt32 (empty stays empty).
fn hour_range(first: i64, last: i64) -> (i64, i64) {
    (
        first.clamp(0, i64::from(u32::MAX)),
        last.clamp(-1, i64::from(u32::MAX)),
    )
}

impl ClickHouse {
    /// Stores the events whose ids are not stored yet, arrived by `origin`,
    /// under the write lock.
    pub async fn insert_events(
        &self,
        events: &[Event],
        origin: Origin,
    ) -> Result<InsertStats, ClickHouseError> {
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
        let result = self.insert_new(batch, origin, &mut stats).await;
        lock.release().await;
        result.map(|()| stats)
    }

    /// Inserts the events of `batch` not stored yet (the caller holds the lock).
    pub(super) async fn insert_new(
        &self,
        batch: Vec<&Event>,
        origin: Origin,
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
            let _ = writeln!(rows, "\t{}", origin.code());
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
                "id, type, created_at, repo_name, actor_login, action, number, origin",
                rows,
            )
            .await?;
        }
        Ok(())
    }

    pub(super) async fn insert(
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

    /// Records a GH Archive hour read whole, with how many of its events
    /// were newly stored.
    pub(super) async fn record_archive_hour(
        &self,
        hour: &ArchiveHour,
        stored: u64,
        now: i64,
    ) -> Result<(), ClickHouseError> {
        // The hour's events that arrived by a live feed: what the poller had
        // stored before the archive brought the rest.
        let start = hour.hour * SECONDS_PER_HOUR;
        let answer = self
            .query(&format!(
                "SELECT CAST(type AS Int8), count() FROM {} WHERE created_at >= toDateTime({start})
                   AND created_at < toDateTime({}) AND origin IN (1, 2)
                 GROUP BY type FORMAT TabSeparated",
                self.layout.table("events"),
                start + SECONDS_PER_HOUR
            ))
            .await?;
        let mut live = [0u64; 3];
        for line in answer.lines() {
            let [code, count] = super::text::fields::<2>(line)?;
            let code: usize = number(code, line)?;
            if let Some(slot) = code.checked_sub(1).and_then(|i| live.get_mut(i)) {
                *slot = number(count, line)?;
            }
        }
        let archive = hour.events_by_type;
        let mut row = format!("{}\t", hour.hour).into_bytes();
        push_tsv(&mut row, Some(&hour.source));
        let _ = writeln!(
            row,
            "\t{}\t{stored}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            hour.events_read(),
            datetime(now),
            archive[0],
            archive[1],
            archive[2],
            live[0],
            live[1],
            live[2]
        );
        self.insert(
            "archive_hours",
            "hour, source, events_read, stored, imported_at, archive_watch, archive_pull_request, \
             archive_issues, live_watch, live_pull_request, live_issues",
            row,
        )
        .await
    }

    /// See [`crate::store::Backend::hour_coverage`]: each hour's newest import.
    pub(super) async fn hour_coverage(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<HourCoverage>, ClickHouseError> {
        let (first, last) = hour_range(first, last);
        let answer = self
            .query(&format!(
                "SELECT hour, argMax(tuple(archive_watch, archive_pull_request, archive_issues,
                                          live_watch, live_pull_request, live_issues), imported_at) AS f
                 FROM {} WHERE hour >= {first} AND hour <= {last} AND archive_watch IS NOT NULL
                 GROUP BY hour ORDER BY hour FORMAT TabSeparated",
                self.layout.table("archive_hours"),
            ))
            .await?;
        answer
            .lines()
            .map(|line| {
                let [hour, figures] = super::text::fields::<2>(line)?;
                let numbers: Vec<u64> = figures
                    .trim_matches(|c| c == '(' || c == ')')
                    .split(',')
                    .map(|n| number(n, line))
                    .collect::<Result<_, _>>()?;
                let [w, p, i, lw, lp, li] = numbers[..] else {
                    return Err(super::text::bad(line));
                };
                Ok(HourCoverage {
                    hour: number(hour, line)?,
                    archive_events: [w, p, i],
                    live_events: [lw, lp, li],
                })
            })
            .collect()
    }

    /// See [`crate::store::Backend::complete_until`]: the hours from
    /// `first` on (at most ten years of them), walked in Rust.
    pub(super) async fn complete_until(&self, first: i64) -> Result<Option<i64>, ClickHouseError> {
        let first = first.clamp(0, i64::from(u32::MAX));
        let answer = self
            .query(&format!(
                "SELECT DISTINCT hour FROM {} WHERE hour >= {first} ORDER BY hour LIMIT {}
                 FORMAT TabSeparated",
                self.layout.table("archive_hours"),
                crate::gharchive::MAX_HOURS
            ))
            .await?;
        let mut end = first;
        for line in answer.lines() {
            let hour: i64 = number(line, line)?;
            if hour != end {
                break;
            }
            end += 1;
        }
        Ok((end > first).then_some(end))
    }

    /// How many of the hours `first..=last` are complete archive hours.
    pub(super) async fn complete_hours(
        &self,
        first: i64,
        last: i64,
    ) -> Result<u64, ClickHouseError> {
        let (first, last) = hour_range(first, last);
        let answer = self
            .query(&format!(
                "SELECT uniqExact(hour) FROM {} WHERE hour >= {first} AND hour <= {last} FORMAT TabSeparated",
                self.layout.table("archive_hours"),
            ))
            .await?;
        number(&answer, &answer)
    }

    /// Which of `batch`'s ids are stored, whatever else their stored copy
    /// carries: ranges of `event_ids`' primary key. The ids travel as one
    /// string literal that the server splits (20,000 literals in `IN (...)`
    /// take 18.16 far longer to parse than the lookup itself).
    pub(super) async fn stored_ids(
        &self,
        batch: &[&Event],
    ) -> Result<HashSet<i64>, ClickHouseError> {
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
    pub(super) async fn purged_before(&self) -> Result<i64, ClickHouseError> {
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
    pub(super) async fn delete_before(&self, cutoff: i64) -> Result<u64, ClickHouseError> {
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
            // The hours that lose events lose their summaries.
            (
                "pr_hour_tops",
                format!("hour <= {}", cutoff / SECONDS_PER_HOUR),
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

    pub(super) async fn wait_for_mutations(&self) -> Result<(), ClickHouseError> {
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
}
