//! Writes: events stored once by id (the batch's ids looked up in
//! `event_ids` under the write lock), and deletes by mutation, waited for.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use super::text::{datetime, number, push_tsv, quote};
use super::{ClickHouse, ClickHouseError, lock};
use crate::core::event::{Event, EventType};
use crate::core::time::{SECONDS_PER_HOUR, SECONDS_PER_MINUTE};
use crate::store::{
    ArchiveSummary, CRAWL_HOUR_FILES_FROM, FileRecord, HourCoverage, InsertStats,
    MAX_ARCHIVE_SOURCES, Origin, SourceId, add_to_coverage,
};

/// The most settled hours [`ClickHouse::settled_until`] walks: ten years.
const MAX_WALKED_HOURS: i64 = 10 * 366 * 24;

/// How long a purge waits for ClickHouse to finish its delete mutations.
const MUTATION_PATIENCE: Duration = Duration::from_secs(600);

/// Hours `first..=last` within an hour column's UInt32 (empty stays empty).
fn hour_range(first: i64, last: i64) -> (i64, i64) {
    (
        first.clamp(0, i64::from(u32::MAX)),
        last.clamp(-1, i64::from(u32::MAX)),
    )
}

impl ClickHouse {
    /// Stores the events whose ids are not stored yet, arrived by `origin`,
    /// under the write lock; with `archive`, marks every one of them (stored
    /// or not) as held by that archive source.
    pub async fn insert_events(
        &self,
        events: &[Event],
        origin: Origin,
        archive: Option<SourceId>,
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
        let result = self.insert_new(batch, origin, archive, &mut stats).await;
        lock.release().await;
        result.map(|()| stats)
    }

    /// Inserts the events of `batch` not stored yet (the caller holds the lock).
    pub(super) async fn insert_new(
        &self,
        batch: Vec<&Event>,
        origin: Origin,
        archive: Option<SourceId>,
        stats: &mut InsertStats,
    ) -> Result<(), ClickHouseError> {
        let bit: u32 = archive.map_or(0, |source| 1 << source);
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
        let mut stored_before = Vec::new();
        let mut new = Vec::new();
        for event in batch {
            if event.id < 0 || stored.contains(&event.id) {
                stats.duplicates += 1;
                if event.id >= 0 {
                    stored_before.push(event);
                }
                continue;
            }
            new.push(event);
            stats.inserted_by_type[event.event_type] += 1;
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
            let _ = writeln!(rows, "\t{}\t{bit}", origin.code());
            if event.event_type == EventType::PullRequest
                && event.action.as_deref() == Some("opened")
            {
                push_tsv(&mut openings, Some(&event.repo_name));
                let _ = write!(openings, "\t{}\t{}\t", datetime(event.created_at), event.id);
                push_tsv(&mut openings, number.as_deref());
                let _ = writeln!(openings, "\t{}\t{bit}", origin.code());
            }
        }
        // Openings first: a crash between the two inserts leaves openings
        // whose events are not stored, and the retry stores the events and
        // the openings again, which the gap query counts once by id.
        if !openings.is_empty() {
            self.insert(
                "pr_openings",
                "repo_name, created_at, id, number, origin, archives",
                openings,
            )
            .await?;
        }
        // Late arrivals before the events: a crash between the two counts
        // one twice rather than hiding it.
        self.count_late_arrivals(&new).await?;
        if !rows.is_empty() {
            self.insert(
                "events",
                "id, type, created_at, repo_name, actor_login, action, number, origin, archives",
                rows,
            )
            .await?;
        }
        if bit != 0 {
            self.mark_archived(&stored_before, bit).await?;
        }
        Ok(())
    }

    /// Records the events of `new` whose hours are settled as late arrivals.
    async fn count_late_arrivals(&self, new: &[&Event]) -> Result<(), ClickHouseError> {
        let hours: HashSet<i64> = new
            .iter()
            .map(|e| e.created_at / SECONDS_PER_HOUR)
            .collect();
        if hours.is_empty() {
            return Ok(());
        }
        let settled = self.settled_among(hours.iter().copied()).await?;
        let mut late: std::collections::HashMap<(i64, EventType), u64> = Default::default();
        for event in new {
            let hour = event.created_at / SECONDS_PER_HOUR;
            if settled.contains(&hour) {
                *late.entry((hour, event.event_type)).or_default() += 1;
            }
        }
        if late.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::new();
        for ((hour, event_type), n) in late {
            let _ = writeln!(rows, "{hour}\t{}\t{n}", event_type.as_str());
        }
        self.insert("late_arrivals", "hour, type, events", rows)
            .await
    }

    /// Marks the stored events of `events` as held by the archive source
    /// `bit` too, where they were not yet.
    async fn mark_archived(&self, events: &[&Event], bit: u32) -> Result<(), ClickHouseError> {
        let (Some(first), Some(last)) = (
            events.iter().map(|e| e.created_at).min(),
            events.iter().map(|e| e.created_at).max(),
        ) else {
            return Ok(());
        };
        let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        let within = format!(
            "created_at >= toDateTime({first}) AND created_at <= toDateTime({last})
             AND id IN (SELECT toUInt64(x) FROM system.one ARRAY JOIN splitByChar(',', '{}') AS x)",
            ids.join(",")
        );
        let answer = self
            .query(&format!(
                "SELECT id, any(origin), groupBitOr(archives) FROM {} WHERE {within}
                 GROUP BY id FORMAT TabSeparated",
                self.layout.table("events")
            ))
            .await?;
        let mut masks: std::collections::HashMap<i64, (u8, u32)> = Default::default();
        for line in answer.lines() {
            let [id, origin, archives] = super::text::fields::<3>(line)?;
            masks.insert(
                number(id, line)?,
                (number(origin, line)?, number(archives, line)?),
            );
        }
        let answer = self
            .query(&format!(
                "SELECT id, groupBitOr(to_mask) FROM {} WHERE {within} GROUP BY id FORMAT TabSeparated",
                self.layout.table("archive_marks")
            ))
            .await?;
        for line in answer.lines() {
            let [id, marked] = super::text::fields::<2>(line)?;
            if let Some((_, mask)) = masks.get_mut(&number(id, line)?) {
                *mask |= number::<u32>(marked, line)?;
            }
        }
        let mut rows = Vec::new();
        for event in events {
            let Some(&(origin, mask)) = masks.get(&event.id) else {
                continue;
            };
            if mask & bit != 0 {
                continue;
            }
            let _ = writeln!(
                rows,
                "{}\t{}\t{}\t{origin}\t{mask}\t{}",
                event.id,
                datetime(event.created_at),
                event.event_type.as_str(),
                mask | bit
            );
            masks.insert(event.id, (origin, mask | bit));
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.insert(
            "archive_marks",
            "id, created_at, type, origin, from_mask, to_mask",
            rows,
        )
        .await
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

    /// Records what is known of one archive file (the newest row counts).
    pub(super) async fn record_file(
        &self,
        file: &FileRecord,
        now: i64,
    ) -> Result<(), ClickHouseError> {
        let mut row = format!(
            "{}\t{}\t{}\t{}\t{}\t",
            file.hour,
            file.source,
            u8::from(file.missing),
            file.events,
            file.max_lag
        )
        .into_bytes();
        push_tsv(&mut row, Some(&file.lags));
        let _ = writeln!(row, "\t{}", datetime(now));
        self.insert(
            "archive_files",
            "hour, source, missing, events, max_lag, lags, read_at",
            row,
        )
        .await
    }

    /// See [`crate::store::Store::archive_files`]: per file and source,
    /// the newest record, a file read whole before any record of it missing
    /// (the rank `(1 - missing) * 2^33 + read_at` orders them so).
    pub(crate) async fn archive_files(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<FileRecord>, ClickHouseError> {
        let (first, last) = hour_range(first, last);
        let answer = self
            .query(&format!(
                "SELECT hour, source, argMax(missing, (1 - missing) * 8589934592 + toUInt32(read_at)),
                        argMax(events, (1 - missing) * 8589934592 + toUInt32(read_at)), argMax(max_lag, (1 - missing) * 8589934592 + toUInt32(read_at)),
                        argMax(lags, (1 - missing) * 8589934592 + toUInt32(read_at))
                 FROM {} WHERE hour >= {first} AND hour <= {last}
                 GROUP BY hour, source ORDER BY hour, source FORMAT TabSeparated",
                self.layout.table("archive_files"),
            ))
            .await?;
        answer
            .lines()
            .map(|line| {
                let [hour, source, missing, events, max_lag, lags] =
                    super::text::fields::<6>(line)?;
                Ok(FileRecord {
                    hour: number(hour, line)?,
                    source: number(source, line)?,
                    missing: missing == "1",
                    events: number(events, line)?,
                    max_lag: number(max_lag, line)?,
                    lags: super::text::read_tsv(lags).unwrap_or_default(),
                })
            })
            .collect()
    }

    /// Which of `hours` are settled.
    async fn settled_among(
        &self,
        hours: impl Iterator<Item = i64>,
    ) -> Result<HashSet<i64>, ClickHouseError> {
        let list: Vec<String> = hours.map(|hour| hour.to_string()).collect();
        let answer = self
            .query(&format!(
                "SELECT DISTINCT hour FROM {} WHERE hour IN ({}) FORMAT TabSeparated",
                self.layout.table("settled_hours"),
                list.join(",")
            ))
            .await?;
        answer.lines().map(|line| number(line, line)).collect()
    }

    /// Records `hours` settled (those settled before are left as they are).
    pub(super) async fn settle(&self, hours: &[i64], now: i64) -> Result<(), ClickHouseError> {
        let settled = self.settled_among(hours.iter().copied()).await?;
        let mut rows = Vec::new();
        for hour in hours.iter().filter(|h| !settled.contains(h)) {
            let _ = writeln!(rows, "{hour}\t{}", datetime(now));
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.insert("settled_hours", "hour, settled_at", rows).await
    }

    /// See [`crate::store::Store::archive_sources`]: numbered under the
    /// write lock, so that two importers never give one number twice.
    pub(crate) async fn archive_sources(
        &self,
        register: &[String],
    ) -> Result<Vec<(SourceId, String)>, ClickHouseError> {
        if register.is_empty() {
            return self.known_sources().await;
        }
        let lock = lock::WriteLock::acquire(self).await?;
        let result = self.register_sources(register).await;
        lock.release().await;
        result
    }

    async fn register_sources(
        &self,
        register: &[String],
    ) -> Result<Vec<(SourceId, String)>, ClickHouseError> {
        let mut known = self.known_sources().await?;
        let mut rows = Vec::new();
        for name in register {
            if known.iter().any(|(_, n)| n == name) {
                continue;
            }
            let next = known.len();
            if next >= MAX_ARCHIVE_SOURCES {
                return Err(ClickHouseError::Busy(format!(
                    "a store tells at most {MAX_ARCHIVE_SOURCES} archive sources apart"
                )));
            }
            let _ = write!(rows, "{next}\t");
            push_tsv(&mut rows, Some(name));
            rows.push(b'\n');
            known.push((next as SourceId, name.clone()));
        }
        if !rows.is_empty() {
            self.insert("archive_sources", "id, name", rows).await?;
        }
        Ok(known)
    }

    async fn known_sources(&self) -> Result<Vec<(SourceId, String)>, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT id, any(name) FROM {} GROUP BY id ORDER BY id FORMAT TabSeparated",
                self.layout.table("archive_sources"),
            ))
            .await?;
        answer
            .lines()
            .map(|line| {
                let [id, name] = super::text::fields::<2>(line)?;
                Ok((
                    number(id, line)?,
                    super::text::read_tsv(name).unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// See [`crate::store::Store::archive_summary`].
    pub(crate) async fn archive_summary(
        &self,
        lag_hours: i64,
    ) -> Result<ArchiveSummary, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT count(), countIf(hour >= {CRAWL_HOUR_FILES_FROM} AND lag > {lag_hours}), max(lag)
                 FROM (SELECT hour, source, argMax(missing, (1 - missing) * 8589934592 + toUInt32(read_at)) AS gone,
                              argMax(max_lag, (1 - missing) * 8589934592 + toUInt32(read_at)) AS lag
                       FROM {} GROUP BY hour, source)
                 WHERE gone = 0 FORMAT TabSeparated",
                self.layout.table("archive_files"),
            ))
            .await?;
        let [files_read, files_beyond_lag, max_lag] = super::text::fields::<3>(answer.trim_end())?;
        let late = self
            .query(&format!(
                "SELECT sum(events) FROM {} FORMAT TabSeparated",
                self.layout.table("late_arrivals"),
            ))
            .await?;
        Ok(ArchiveSummary {
            files_read: number(files_read, &answer)?,
            files_beyond_lag: number(files_beyond_lag, &answer)?,
            max_lag_hours: number::<i64>(max_lag, &answer)?.max(0),
            late_arrivals: number(late.trim_end(), &late)?,
        })
    }

    /// See [`crate::store::Store::hour_coverage`]: the window's events by
    /// hour, type, origin and mask, moved by the marks of later archives.
    pub(crate) async fn hour_coverage(
        &self,
        first: i64,
        last: i64,
    ) -> Result<Vec<HourCoverage>, ClickHouseError> {
        let (first, last) = hour_range(first, last);
        let (from, to) = (first * SECONDS_PER_HOUR, (last + 1) * SECONDS_PER_HOUR);
        let mut counts: std::collections::BTreeMap<(i64, EventType, u8, u32), i64> =
            Default::default();
        let answer = self
            .query(&format!(
                "SELECT intDiv(toUInt32(created_at), 3600) AS hour, CAST(type AS Int8) AS code, origin,
                        archives, count()
                 FROM {} WHERE created_at >= toDateTime({from}) AND created_at < toDateTime({to})
                   AND (archives != 0 OR origin IN (1, 2))
                 GROUP BY hour, code, origin, archives FORMAT TabSeparated",
                self.layout.table("events"),
            ))
            .await?;
        for line in answer.lines() {
            let [hour, code, origin, archives, n] = super::text::fields::<5>(line)?;
            let key = (
                number(hour, line)?,
                super::text::event_type(code)?,
                number(origin, line)?,
                number(archives, line)?,
            );
            *counts.entry(key).or_default() += number::<i64>(n, line)?;
        }
        let answer = self
            .query(&format!(
                "SELECT intDiv(toUInt32(created_at), 3600) AS hour, CAST(type AS Int8) AS code, origin,
                        from_mask, to_mask, count()
                 FROM {} WHERE created_at >= toDateTime({from}) AND created_at < toDateTime({to})
                 GROUP BY hour, code, origin, from_mask, to_mask FORMAT TabSeparated",
                self.layout.table("archive_marks"),
            ))
            .await?;
        for line in answer.lines() {
            let [hour, code, origin, from_mask, to_mask, n] = super::text::fields::<6>(line)?;
            let (hour, event_type, origin) = (
                number(hour, line)?,
                super::text::event_type(code)?,
                number(origin, line)?,
            );
            let n: i64 = number(n, line)?;
            *counts
                .entry((hour, event_type, origin, number(from_mask, line)?))
                .or_default() -= n;
            *counts
                .entry((hour, event_type, origin, number(to_mask, line)?))
                .or_default() += n;
        }
        let mut hours: std::collections::BTreeMap<i64, HourCoverage> = Default::default();
        let at = |hours: &mut std::collections::BTreeMap<i64, HourCoverage>, hour: i64| {
            hours.entry(hour).or_insert_with(|| HourCoverage {
                hour,
                ..HourCoverage::default()
            });
        };
        for ((hour, event_type, origin, archives), n) in counts {
            if n > 0 {
                at(&mut hours, hour);
                if let Some(coverage) = hours.get_mut(&hour) {
                    add_to_coverage(coverage, event_type, origin, archives, n as u64);
                }
            }
        }
        let answer = self
            .query(&format!(
                "SELECT hour, CAST(type AS Int8) AS code, sum(events) FROM {}
                 WHERE hour >= {first} AND hour <= {last} GROUP BY hour, code FORMAT TabSeparated",
                self.layout.table("late_arrivals"),
            ))
            .await?;
        for line in answer.lines() {
            let [hour, code, n] = super::text::fields::<3>(line)?;
            let hour = number(hour, line)?;
            at(&mut hours, hour);
            if let Some(coverage) = hours.get_mut(&hour) {
                coverage.late_arrivals[super::text::event_type(code)?] += number::<u64>(n, line)?;
            }
        }
        let answer = self
            .query(&format!(
                "SELECT DISTINCT hour FROM {} WHERE hour >= {first} AND hour <= {last} FORMAT TabSeparated",
                self.layout.table("settled_hours"),
            ))
            .await?;
        for line in answer.lines() {
            let hour = number(line, line)?;
            at(&mut hours, hour);
            if let Some(coverage) = hours.get_mut(&hour) {
                coverage.settled = true;
            }
        }
        Ok(hours
            .into_values()
            .filter(|h| h.settled || h.archive_events.total() > 0)
            .collect())
    }

    /// See [`crate::store::Store::settled_until`]: the hours from `first`
    /// on (at most ten years of them), walked in Rust.
    pub(crate) async fn settled_until(&self, first: i64) -> Result<Option<i64>, ClickHouseError> {
        let first = first.clamp(0, i64::from(u32::MAX));
        let answer = self
            .query(&format!(
                "SELECT DISTINCT hour FROM {} WHERE hour >= {first} ORDER BY hour LIMIT {}
                 FORMAT TabSeparated",
                self.layout.table("settled_hours"),
                MAX_WALKED_HOURS
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

    /// How many of the hours `first..=last` are settled.
    pub(crate) async fn settled_hours(
        &self,
        first: i64,
        last: i64,
    ) -> Result<u64, ClickHouseError> {
        let (first, last) = hour_range(first, last);
        let answer = self
            .query(&format!(
                "SELECT uniqExact(hour) FROM {} WHERE hour >= {first} AND hour <= {last} FORMAT TabSeparated",
                self.layout.table("settled_hours"),
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
            (
                "app_bot_counts_by_minute",
                format!("minute < {}", cutoff / SECONDS_PER_MINUTE),
            ),
            // The hours that lose events lose their summaries, and with
            // them their files, settling and late arrivals.
            (
                "pr_hour_tops",
                format!("hour <= {}", cutoff / SECONDS_PER_HOUR),
            ),
            (
                "archive_marks",
                format!("created_at < toDateTime({cutoff})"),
            ),
            (
                "settled_hours",
                format!("hour <= {}", cutoff / SECONDS_PER_HOUR),
            ),
            (
                "late_arrivals",
                format!("hour <= {}", cutoff / SECONDS_PER_HOUR),
            ),
            (
                "archive_files",
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
