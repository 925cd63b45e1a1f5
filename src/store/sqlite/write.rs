//! Writing events: one transaction per batch, deduplicated by event id, with the
//! rollup tables (see `migrations/sqlite/V2__rollups.sql`) updated in the same transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::store::{
    ArchiveSummary, CRAWL_HOUR_FILES_FROM, FileRecord, HourCoverage, InsertStats, Origin, SourceId,
    Totals, add_to_coverage,
};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::core::bots::BotLogins;
use crate::core::event::{Event, EventType};
use crate::core::time::{SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE};

/// The time-bucket rollups: bucket column, seconds per bucket. Each is a
/// table of every event's (`event_counts_by_<bucket>`) and one of the
/// humans' alone (`human_counts_by_<bucket>`), see [`Counted`].
const TIME_ROLLUPS: [(&str, i64); 3] = [
    ("minute", SECONDS_PER_MINUTE),
    ("hour", SECONDS_PER_HOUR),
    ("day", SECONDS_PER_DAY),
];

/// Which events a family of time rollups counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counted {
    Every,
    /// The events of actors that are not bots (`bot = 0`).
    Humans,
}

impl Counted {
    /// The family an answer reads: the humans' without bots, else every event's.
    pub fn kept(exclude_bots: bool) -> Counted {
        if exclude_bots {
            Counted::Humans
        } else {
            Counted::Every
        }
    }

    /// The family's table of `bucket` (`minute`, `hour`, `day`).
    pub fn table(self, bucket: &str) -> String {
        match self {
            Counted::Every => format!("event_counts_by_{bucket}"),
            Counted::Humans => format!("human_counts_by_{bucket}"),
        }
    }

    /// The condition (ending in `AND`) on `events` rows the family counts.
    pub fn events(self) -> &'static str {
        match self {
            Counted::Every => "",
            Counted::Humans => "bot = 0 AND ",
        }
    }
}

/// Time-rollup increments: per [`TIME_ROLLUPS`] bucket, (type, bucket) -> events.
type TimeDeltas = [HashMap<(EventType, i64), u64>; 3];

/// Rollup increments for the rows one batch really inserted.
#[derive(Default)]
struct RollupDeltas {
    by_time: TimeDeltas,
    /// The same for the humans' events alone.
    humans_by_time: TimeDeltas,
    pr_counts: HashMap<String, u64>,
    /// Events per origin code.
    by_origin: [u64; 4],
    /// `hour_sources`: (hour, type code, origin, archives) -> events, signed:
    /// an event that another archive turns out to hold moves between masks.
    by_hour_source: HashMap<(i64, i64, u8, u32), i64>,
}

impl RollupDeltas {
    fn add(&mut self, event: &Event, origin: u8, archives: u32, bot: bool) {
        self.by_origin[usize::from(origin)] += 1;
        self.move_mask(
            event.created_at,
            event.event_type,
            origin,
            None,
            Some(archives),
        );
        // created_at is never negative (the parser rejects it), so `/` floors.
        let families = if bot {
            [Some(&mut self.by_time), None]
        } else {
            [Some(&mut self.by_time), Some(&mut self.humans_by_time)]
        };
        for family in families.into_iter().flatten() {
            for (deltas, (_, seconds)) in family.iter_mut().zip(TIME_ROLLUPS) {
                *deltas
                    .entry((event.event_type, event.created_at / seconds))
                    .or_default() += 1;
            }
        }
        if event.event_type == EventType::PullRequest {
            *self.pr_counts.entry(event.repo_name.clone()).or_default() += 1;
        }
    }

    /// Counts an event of `created_at`, `event_type` and `origin` under the
    /// archive mask `to` instead of `from` (`None`: not counted there).
    fn move_mask(
        &mut self,
        created_at: i64,
        event_type: EventType,
        origin: u8,
        from: Option<u32>,
        to: Option<u32>,
    ) {
        let hour = created_at / SECONDS_PER_HOUR;
        for (mask, delta) in [(from, -1), (to, 1)] {
            if let Some(mask) = mask {
                *self
                    .by_hour_source
                    .entry((hour, event_type.code(), origin, mask))
                    .or_default() += delta;
            }
        }
    }

    /// Applies the `hour_sources` deltas, `sign` times each.
    fn apply_hour_sources(&self, conn: &Connection, sign: i64) -> Result<(), rusqlite::Error> {
        let mut add = conn.prepare_cached(
            "INSERT INTO hour_sources (hour, type_code, origin, archives, events) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (hour, type_code, origin, archives) DO UPDATE SET events = events + excluded.events",
        )?;
        let mut remove_empty = conn.prepare_cached(
            "DELETE FROM hour_sources
             WHERE hour = ?1 AND type_code = ?2 AND origin = ?3 AND archives = ?4 AND events <= 0",
        )?;
        for (&(hour, type_code, origin, archives), &delta) in &self.by_hour_source {
            let delta = delta * sign;
            if delta == 0 {
                continue;
            }
            add.execute(params![hour, type_code, origin, archives, delta])?;
            if delta < 0 {
                remove_empty.execute(params![hour, type_code, origin, archives])?;
            }
        }
        Ok(())
    }

    /// Adds (`sign` 1) or takes away (-1) the time-rollup deltas of both
    /// families; buckets that reach zero are removed.
    fn apply_time(&self, conn: &Connection, sign: i64) -> Result<(), rusqlite::Error> {
        let families = [
            (&self.by_time, Counted::Every),
            (&self.humans_by_time, Counted::Humans),
        ];
        for (family, counted) in families {
            for (deltas, (column, _)) in family.iter().zip(TIME_ROLLUPS) {
                let table = counted.table(column);
                let mut add = conn.prepare_cached(&format!(
                    "INSERT INTO {table} (type, {column}, events) VALUES (?1, ?2, ?3)
                     ON CONFLICT (type, {column}) DO UPDATE SET events = events + excluded.events"
                ))?;
                let mut remove_empty = conn.prepare_cached(&format!(
                    "DELETE FROM {table} WHERE type = ?1 AND {column} = ?2 AND events <= 0"
                ))?;
                for ((event_type, bucket), &n) in deltas {
                    add.execute(params![event_type.as_str(), bucket, sign * n as i64])?;
                    if sign < 0 {
                        remove_empty.execute(params![event_type.as_str(), bucket])?;
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        self.apply_hour_sources(conn, 1)?;
        self.apply_time(conn, 1)?;
        let mut prs = conn.prepare_cached(
            "INSERT INTO pr_counts (repo_name, events) VALUES (?1, ?2)
             ON CONFLICT (repo_name) DO UPDATE SET events = events + excluded.events",
        )?;
        for (repo, n) in &self.pr_counts {
            prs.execute(params![repo, n])?;
        }
        let mut origins = conn.prepare_cached(
            "INSERT INTO event_counts_by_origin (origin, events) VALUES (?1, ?2)
             ON CONFLICT (origin) DO UPDATE SET events = events + excluded.events",
        )?;
        for (origin, n) in self.by_origin.iter().enumerate().filter(|(_, n)| **n > 0) {
            origins.execute(params![origin, n])?;
        }
        Ok(())
    }

    /// Takes deleted events out of the rollups (the events must already be
    /// gone from `events`): counts go down, and buckets and repositories that
    /// reach zero are removed.
    fn subtract(&self, conn: &Connection) -> Result<(), rusqlite::Error> {
        self.apply_hour_sources(conn, -1)?;
        self.apply_time(conn, -1)?;
        let mut prs =
            conn.prepare_cached("UPDATE pr_counts SET events = events - ?2 WHERE repo_name = ?1")?;
        let mut prs_empty =
            conn.prepare_cached("DELETE FROM pr_counts WHERE repo_name = ?1 AND events <= 0")?;
        for (repo, n) in &self.pr_counts {
            prs.execute(params![repo, n])?;
            prs_empty.execute([repo])?;
        }
        let mut origins = conn.prepare_cached(
            "UPDATE event_counts_by_origin SET events = events - ?2 WHERE origin = ?1",
        )?;
        for (origin, n) in self.by_origin.iter().enumerate().filter(|(_, n)| **n > 0) {
            origins.execute(params![origin, n])?;
        }
        conn.execute("DELETE FROM event_counts_by_origin WHERE events <= 0", [])?;
        Ok(())
    }
}

/// Whether the login `?5` is a bot's: a GitHub App's (`[bot]` at the end,
/// any case: LIKE ignores ASCII case) or one of `bot_logins` (lower case).
const IS_BOT_SQL: &str =
    "coalesce(?5 LIKE '%[bot]' OR lower(?5) IN (SELECT login FROM bot_logins), 0)";

/// Stores `events` in one transaction, arrived by `origin`; an event whose id
/// is already stored is skipped. With `archive`, the events are that archive
/// source's: its bit is set in each event's `archives`, stored or not.
pub fn insert_events(
    conn: &mut Connection,
    events: &[Event],
    origin: Origin,
    archive: Option<SourceId>,
) -> Result<InsertStats, rusqlite::Error> {
    let bit: u32 = archive.map_or(0, |source| 1 << source);
    // IMMEDIATE takes the write lock up front, so a concurrent writer waits on
    // busy_timeout instead of failing half-way with SQLITE_BUSY on lock upgrade.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut stats = InsertStats::default();
    let mut rollups = RollupDeltas::default();
    let mut late: HashMap<(i64, i64), u64> = HashMap::new();
    {
        let mut insert = tx.prepare_cached(
            &format!("INSERT INTO events (id, type_code, created_at, repo_name, actor_login, action, number, origin, archives, bot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {IS_BOT_SQL})
             ON CONFLICT (id) DO NOTHING RETURNING bot"),
        )?;
        let mut mark = tx.prepare_cached(
            "UPDATE events SET archives = archives | ?2 WHERE id = ?1 AND archives & ?2 = 0
             RETURNING created_at, type_code, origin, archives",
        )?;
        let mut is_settled = tx.prepare_cached("SELECT 1 FROM settled_hours WHERE hour = ?1")?;
        let mut settled: HashMap<i64, bool> = HashMap::new();
        for event in events {
            let inserted = insert
                .query_row(
                    params![
                        event.id,
                        event.event_type.code(),
                        event.created_at,
                        event.repo_name,
                        event.actor_login,
                        event.action,
                        event.number,
                        origin.code(),
                        bit,
                    ],
                    |row| row.get::<_, bool>(0),
                )
                .optional()?;
            if let Some(bot) = inserted {
                stats.inserted_by_type[event.event_type] += 1;
                rollups.add(event, origin.code(), bit, bot);
                let hour = event.created_at / SECONDS_PER_HOUR;
                let settled = match settled.get(&hour) {
                    Some(&settled) => settled,
                    None => {
                        let found = is_settled.exists([hour])?;
                        settled.insert(hour, found);
                        found
                    }
                };
                if settled {
                    *late.entry((hour, event.event_type.code())).or_default() += 1;
                }
                continue;
            }
            stats.duplicates += 1;
            if bit == 0 {
                continue;
            }
            // A stored event this archive holds too: counted under its new mask.
            let marked = mark
                .query_row(params![event.id, bit], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, u8>(2)?,
                        row.get::<_, u32>(3)?,
                    ))
                })
                .optional()?;
            if let Some((created_at, type_code, stored_origin, archives)) = marked
                && let Some(event_type) = EventType::from_code(type_code)
            {
                rollups.move_mask(
                    created_at,
                    event_type,
                    stored_origin,
                    Some(archives & !bit),
                    Some(archives),
                );
            }
        }
    }
    rollups.apply(&tx)?;
    {
        let mut add = tx.prepare_cached(
            "INSERT INTO late_arrivals (hour, type_code, events) VALUES (?1, ?2, ?3)
             ON CONFLICT (hour, type_code) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((hour, type_code), n) in late {
            add.execute(params![hour, type_code, n])?;
        }
    }
    tx.commit()?;
    Ok(stats)
}

/// `?1` type code, `?2` cutoff, `?3` limit: the oldest events of a type.
pub(super) const OLDEST_EVENTS_SQL: &str =
    "SELECT id, created_at, repo_name, action, origin, archives, bot FROM events
    WHERE type_code = ?1 AND created_at < ?2
    ORDER BY created_at LIMIT ?3";

/// Deletes up to `limit` of the events created before `cutoff` (epoch
/// seconds), oldest first per type, and takes them out of every rollup, in one
/// transaction; returns how many it deleted (fewer than `limit`: none are left).
/// Small batches keep the write lock short, so the poller and importer
/// interleave with a long purge; readers are never blocked (WAL).
pub fn delete_events_before(
    conn: &mut Connection,
    cutoff: i64,
    limit: usize,
) -> Result<u64, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut doomed = Vec::new();
    {
        // Per type, so that each part is a range of the (type_code, created_at) index.
        let mut select = tx.prepare_cached(OLDEST_EVENTS_SQL)?;
        for event_type in EventType::ALL {
            let left = limit.saturating_sub(doomed.len());
            if left == 0 {
                break;
            }
            let rows =
                select.query_map(params![event_type.code(), cutoff, left as i64], |row| {
                    let event = Event {
                        id: row.get(0)?,
                        event_type,
                        created_at: row.get(1)?,
                        repo_name: row.get(2)?,
                        actor_login: None,
                        action: row.get(3)?,
                        number: None,
                    };
                    let (origin, archives, bot) = (row.get(4)?, row.get(5)?, row.get(6)?);
                    Ok((event, origin, archives, bot))
                })?;
            for event in rows {
                doomed.push(event?);
            }
        }
        let mut delete = tx.prepare_cached("DELETE FROM events WHERE id = ?1")?;
        for (event, ..) in &doomed {
            delete.execute([event.id])?;
        }
    }
    let mut rollups = RollupDeltas::default();
    for (event, origin, archives, bot) in &doomed {
        rollups.add(event, *origin, *archives, *bot);
    }
    rollups.subtract(&tx)?;
    // The hours retention has begun to forget are no longer whole: no
    // longer settled, and their late arrivals and files forgotten with them.
    let touched = (cutoff + SECONDS_PER_HOUR - 1).div_euclid(SECONDS_PER_HOUR);
    for table in ["settled_hours", "late_arrivals", "archive_files"] {
        tx.execute(&format!("DELETE FROM {table} WHERE hour < ?1"), [touched])?;
    }
    tx.commit()?;
    Ok(doomed.len() as u64)
}

/// Deletes `feed_polls` rows older than `cutoff`: coverage history goes with
/// the events it describes.
pub fn delete_feed_polls_before(conn: &Connection, cutoff: i64) -> Result<u64, rusqlite::Error> {
    let deleted = conn.execute("DELETE FROM feed_polls WHERE polled_at < ?1", [cutoff])?;
    Ok(deleted as u64)
}

/// See [`crate::store::Store::totals`].
pub fn totals(conn: &Connection) -> Result<Totals, rusqlite::Error> {
    Ok(Totals {
        events: stored_event_count(conn)?,
        bot_events: conn
            .prepare_cached(
                "SELECT count(*) FROM events INDEXED BY bot_events_by_type_time WHERE bot = 1",
            )?
            .query_row([], |row| row.get(0))?,
        by_origin: events_by_origin(conn)?,
        oldest_event_at: super::metrics::oldest_event_at(conn)?,
        newest_event_at: super::metrics::newest_event_at(conn)?,
    })
}

/// See [`crate::store::Store::use_bot_logins`]: in one transaction, so an
/// interrupted run leaves the old list and its marks, and the next start
/// does it again. The events are walked by id in [`REMARK_STEPS`] ranges, a
/// progress line for each.
pub fn use_bot_logins(conn: &mut Connection, bots: &BotLogins) -> Result<u64, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: BTreeSet<String> = tx
        .prepare("SELECT login FROM bot_logins")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let wanted: BTreeSet<String> = bots.iter().map(str::to_owned).collect();
    let changed: Vec<&String> = stored.symmetric_difference(&wanted).collect();
    if changed.is_empty() {
        return Ok(0);
    }
    tx.execute("DELETE FROM bot_logins", [])?;
    let mut add = tx.prepare("INSERT INTO bot_logins (login) VALUES (?1)")?;
    for login in &wanted {
        add.execute([login])?;
    }
    drop(add);
    tx.execute(
        "CREATE TEMP TABLE IF NOT EXISTS changed_logins (login TEXT PRIMARY KEY)",
        [],
    )?;
    tx.execute("DELETE FROM temp.changed_logins", [])?;
    let mut add = tx.prepare("INSERT INTO temp.changed_logins (login) VALUES (?1)")?;
    for login in &changed {
        add.execute([login])?;
    }
    drop(add);
    let (first, last): (Option<i64>, Option<i64>) =
        tx.query_row("SELECT min(id), max(id) FROM events", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let mut remarked = 0;
    if let (Some(first), Some(last)) = (first, last) {
        tracing::info!(
            logins = changed.len(),
            "the bot logins changed: re-marking their events"
        );
        let step = (last - first) / REMARK_STEPS + 1;
        let mut remark = tx.prepare(&format!(
            "UPDATE events SET bot = {}
             WHERE id >= ?1 AND id < ?2 AND lower(actor_login) IN (SELECT login FROM temp.changed_logins)",
            IS_BOT_SQL.replace("?5", "actor_login")
        ))?;
        for k in 0..REMARK_STEPS {
            let from = first + k * step;
            remarked += remark.execute(params![from, from.saturating_add(step)])? as u64;
            tracing::info!(
                done = format!("{}%", (k + 1) * 100 / REMARK_STEPS),
                remarked,
                "re-marking bot events"
            );
        }
    }
    tx.execute("DROP TABLE temp.changed_logins", [])?;
    // The humans' rollups: every event's less the bots' (from their index,
    // into a keyed table so that the join is one lookup per bucket).
    for (column, seconds) in TIME_ROLLUPS {
        let humans = Counted::Humans.table(column);
        let every = Counted::Every.table(column);
        tx.execute_batch(&format!(
            "DELETE FROM {humans};
             CREATE TEMP TABLE bot_buckets (
                 type TEXT NOT NULL, bucket INTEGER NOT NULL, events INTEGER NOT NULL,
                 PRIMARY KEY (type, bucket)
             ) WITHOUT ROWID;
             INSERT INTO bot_buckets (type, bucket, events)
                 SELECT type, created_at / {seconds}, count(*)
                 FROM events INDEXED BY bot_events_by_type_time
                 WHERE bot = 1 GROUP BY type_code, created_at / {seconds};
             INSERT INTO {humans} (type, {column}, events)
                 SELECT e.type, e.{column}, e.events - coalesce(b.events, 0) FROM {every} AS e
                 LEFT JOIN bot_buckets AS b ON b.type = e.type AND b.bucket = e.{column}
                 WHERE e.events - coalesce(b.events, 0) > 0;
             DROP TABLE bot_buckets;"
        ))?;
    }
    tx.commit()?;
    Ok(remarked)
}

/// How many id ranges [`use_bot_logins`] walks, each with a progress line.
const REMARK_STEPS: i64 = 10;

/// How many events are stored in all (from the day rollup: no table scan).
pub fn stored_event_count(conn: &Connection) -> Result<u64, rusqlite::Error> {
    conn.query_row(
        "SELECT coalesce(sum(events), 0) FROM event_counts_by_day",
        [],
        |row| row.get(0),
    )
}

/// Records what is known of one archive file: a later record of the same
/// file and source replaces it, except that a file read whole stays read
/// (a source that later answers 404 for it does not take it back).
pub fn record_file(conn: &Connection, file: &FileRecord, now: i64) -> Result<(), rusqlite::Error> {
    conn.execute(
        "INSERT INTO archive_files (hour, source, missing, events, max_lag, lags, read_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (hour, source) DO UPDATE SET missing = excluded.missing,
             events = excluded.events, max_lag = excluded.max_lag, lags = excluded.lags,
             read_at = excluded.read_at
         WHERE excluded.missing = 0 OR archive_files.missing = 1",
        params![
            file.hour,
            file.source,
            file.missing,
            file.events,
            file.max_lag,
            file.lags,
            now
        ],
    )?;
    Ok(())
}

/// See [`crate::store::Store::archive_files`].
pub fn archive_files(
    conn: &Connection,
    first: i64,
    last: i64,
) -> Result<Vec<FileRecord>, rusqlite::Error> {
    let mut select = conn.prepare_cached(
        "SELECT hour, source, missing, events, max_lag, lags FROM archive_files
         WHERE hour BETWEEN ?1 AND ?2 ORDER BY hour, source",
    )?;
    let rows = select.query_map([first, last], |row| {
        Ok(FileRecord {
            hour: row.get(0)?,
            source: row.get(1)?,
            missing: row.get(2)?,
            events: row.get(3)?,
            max_lag: row.get(4)?,
            lags: row.get(5)?,
        })
    })?;
    rows.collect()
}

/// Records `hours` settled at `now` (those settled before keep their time).
pub fn settle(conn: &Connection, hours: &[i64], now: i64) -> Result<(), rusqlite::Error> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO settled_hours (hour, settled_at) VALUES (?1, ?2) ON CONFLICT (hour) DO NOTHING",
    )?;
    for hour in hours {
        insert.execute([*hour, now])?;
    }
    Ok(())
}

/// Numbers the sources of `register` not known yet while numbers are left
/// (the caller checks that each got one) and returns every known source.
pub fn archive_sources(
    conn: &mut Connection,
    register: &[String],
) -> Result<Vec<(SourceId, String)>, rusqlite::Error> {
    // Read-only when nothing is to be registered: no write lock.
    let behavior = if register.is_empty() {
        TransactionBehavior::Deferred
    } else {
        TransactionBehavior::Immediate
    };
    let tx = conn.transaction_with_behavior(behavior)?;
    for name in register {
        tx.execute(
            "INSERT INTO archive_sources (id, name)
             SELECT (SELECT coalesce(max(id) + 1, 0) FROM archive_sources), ?1
             WHERE NOT EXISTS (SELECT 1 FROM archive_sources WHERE name = ?1)
               AND (SELECT count(*) FROM archive_sources) < ?2",
            params![name, crate::store::MAX_ARCHIVE_SOURCES],
        )?;
    }
    let sources = {
        let mut select = tx.prepare("SELECT id, name FROM archive_sources ORDER BY id")?;
        let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    tx.commit()?;
    Ok(sources)
}

/// See [`crate::store::Store::archive_summary`].
pub fn archive_summary(
    conn: &Connection,
    lag_hours: i64,
) -> Result<ArchiveSummary, rusqlite::Error> {
    let (files_read, files_beyond_lag, max_lag_hours) = conn.query_row(
        "SELECT count(*), coalesce(sum(hour >= ?1 AND max_lag > ?2), 0), coalesce(max(max_lag), 0)
         FROM archive_files WHERE missing = 0",
        [CRAWL_HOUR_FILES_FROM, lag_hours],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let late_arrivals = conn.query_row(
        "SELECT coalesce(sum(events), 0) FROM late_arrivals",
        [],
        |row| row.get(0),
    )?;
    Ok(ArchiveSummary {
        files_read,
        files_beyond_lag,
        max_lag_hours,
        late_arrivals,
    })
}

/// See [`crate::store::Store::hour_coverage`]: summed from `hour_sources`,
/// the hours with archive events or settled.
pub fn hour_coverage(
    conn: &Connection,
    first: i64,
    last: i64,
) -> Result<Vec<HourCoverage>, rusqlite::Error> {
    let mut hours: BTreeMap<i64, HourCoverage> = BTreeMap::new();
    let mut select = conn.prepare_cached(
        "SELECT hour, type_code, origin, archives, events FROM hour_sources
         WHERE hour BETWEEN ?1 AND ?2 AND (archives != 0 OR origin IN (1, 2))",
    )?;
    let mut rows = select.query([first, last])?;
    while let Some(row) = rows.next()? {
        let Some(event_type) = EventType::from_code(row.get(1)?) else {
            continue;
        };
        let hour = row.get(0)?;
        add_to_coverage(
            coverage_of(&mut hours, hour),
            event_type,
            row.get(2)?,
            row.get(3)?,
            row.get(4)?,
        );
    }
    let mut select = conn.prepare_cached(
        "SELECT hour, type_code, events FROM late_arrivals WHERE hour BETWEEN ?1 AND ?2",
    )?;
    let mut rows = select.query([first, last])?;
    while let Some(row) = rows.next()? {
        if let Some(event_type) = EventType::from_code(row.get(1)?) {
            coverage_of(&mut hours, row.get(0)?).late_arrivals[event_type] +=
                row.get::<_, u64>(2)?;
        }
    }
    let mut select =
        conn.prepare_cached("SELECT hour FROM settled_hours WHERE hour BETWEEN ?1 AND ?2")?;
    let mut rows = select.query([first, last])?;
    while let Some(row) = rows.next()? {
        coverage_of(&mut hours, row.get(0)?).settled = true;
    }
    Ok(hours
        .into_values()
        .filter(|h| h.settled || h.archive_events.total() > 0)
        .collect())
}

/// The entry of `hour`, made when missing.
fn coverage_of(hours: &mut BTreeMap<i64, HourCoverage>, hour: i64) -> &mut HourCoverage {
    hours.entry(hour).or_insert_with(|| HourCoverage {
        hour,
        ..HourCoverage::default()
    })
}

/// See [`crate::store::Store::settled_until`]: the first hour from
/// `first` on whose next hour is not settled, read along the primary key.
pub fn settled_until(conn: &Connection, first: i64) -> Result<Option<i64>, rusqlite::Error> {
    conn.query_row(
        "SELECT min(hour) + 1 FROM settled_hours AS a
         WHERE hour >= ?1 AND EXISTS (SELECT 1 FROM settled_hours WHERE hour = ?1)
           AND NOT EXISTS (SELECT 1 FROM settled_hours AS b WHERE b.hour = a.hour + 1)",
        [first],
        |row| row.get(0),
    )
}

/// How many of the hours `first..=last` are settled.
pub fn settled_hours(conn: &Connection, first: i64, last: i64) -> Result<u64, rusqlite::Error> {
    conn.query_row(
        "SELECT count(*) FROM settled_hours WHERE hour BETWEEN ?1 AND ?2",
        [first, last],
        |row| row.get(0),
    )
}

/// Events per origin code (from the rollup).
pub fn events_by_origin(conn: &Connection) -> Result<[u64; 4], rusqlite::Error> {
    let mut counts = [0; 4];
    let mut select = conn.prepare_cached("SELECT origin, events FROM event_counts_by_origin")?;
    let rows = select.query_map([], |row| {
        Ok((row.get::<_, usize>(0)?, row.get::<_, u64>(1)?))
    })?;
    for row in rows {
        let (origin, events) = row?;
        if let Some(count) = counts.get_mut(origin) {
            *count = events;
        }
    }
    Ok(counts)
}

/// Checks that the rollup tables agree with `events`, returning the first
/// disagreement. The tests run it after imports, polls and duplicate inserts.
pub fn rollup_disagreement(conn: &Connection) -> Result<Option<String>, rusqlite::Error> {
    let mut checks: Vec<(String, String, String)> = Vec::new();
    for counted in [Counted::Every, Counted::Humans] {
        let only = match counted {
            Counted::Every => "",
            Counted::Humans => "WHERE bot = 0",
        };
        for (column, seconds) in TIME_ROLLUPS {
            let table = counted.table(column);
            checks.push((
                table.clone(),
                format!("SELECT type, created_at / {seconds} AS bucket, count(*) AS n FROM events {only} GROUP BY 1, 2"),
                format!("SELECT type, {column} AS bucket, events AS n FROM {table}"),
            ));
        }
    }
    let others = [
        (
            "event_counts_by_origin",
            "SELECT 'origin', origin, count(*) FROM events GROUP BY 2",
            "SELECT 'origin', origin, events FROM event_counts_by_origin",
        ),
        (
            "pr_counts",
            "SELECT 'PullRequestEvent', repo_name, count(*) FROM events WHERE type = 'PullRequestEvent' GROUP BY 2",
            "SELECT 'PullRequestEvent', repo_name, events FROM pr_counts",
        ),
    ];
    checks.extend(
        others
            .into_iter()
            .map(|(table, truth, rollup)| (table.to_owned(), truth.to_owned(), rollup.to_owned())),
    );
    for (table, truth, rollup) in checks {
        let sql = format!(
            "SELECT count(*) FROM (SELECT * FROM ({truth} EXCEPT {rollup}) UNION ALL SELECT * FROM ({rollup} EXCEPT {truth}))"
        );
        let differing: u64 = conn.query_row(&sql, [], |row| row.get(0))?;
        if differing > 0 {
            return Ok(Some(format!(
                "{table}: {differing} rows disagree with events"
            )));
        }
    }
    Ok(None)
}
