//! The metric queries: one SQL statement per metric, each answered from an index
//! (see `migrations/sqlite/`; the tests check `EXPLAIN QUERY PLAN`).

use super::write::Counted;
use crate::store::{EventCounts, Filter, PrGapSummary, Ranking};
use rusqlite::{Connection, OptionalExtension, params};

use crate::core::event::{EventType, PerType};
use crate::core::time::{Buckets, MINUTES_PER_HOUR, Window, WindowParts, ceil_div};

/// Events per type in a window that `counted` counts, from its
/// [`WindowParts`]: the raw events of the seconds at each end (`?1`..`?2`,
/// `?13`..`?14`), the minute rollup for the minutes next to them
/// (`?3`..`?4`, `?11`..`?12`), the hour rollup for the hours next to those
/// (`?5`..`?6`, `?9`..`?10`) and the day rollup for the whole days
/// (`?7`..`?8`). Each part is an index range of at most a minute of events,
/// 59 minutes, 23 hours or the window's days, so the cost does not grow with
/// the number of events; empty parts cost one probe.
fn event_counts_sql(counted: Counted) -> String {
    let only = counted.events();
    let [minutes, hours, days] = ["minute", "hour", "day"].map(|bucket| counted.table(bucket));
    format!(
        "SELECT
    (SELECT count(*) FROM events WHERE {only}type_code = t.code AND created_at >= ?1 AND created_at < ?2)
    + (SELECT count(*) FROM events WHERE {only}type_code = t.code AND created_at >= ?13 AND created_at < ?14)
    + (SELECT coalesce(sum(events), 0) FROM {minutes}
       WHERE type = t.type AND minute >= ?3 AND minute < ?4)
    + (SELECT coalesce(sum(events), 0) FROM {minutes}
       WHERE type = t.type AND minute >= ?11 AND minute < ?12)
    + (SELECT coalesce(sum(events), 0) FROM {hours}
       WHERE type = t.type AND hour >= ?5 AND hour < ?6)
    + (SELECT coalesce(sum(events), 0) FROM {hours}
       WHERE type = t.type AND hour >= ?9 AND hour < ?10)
    + (SELECT coalesce(sum(events), 0) FROM {days}
       WHERE type = t.type AND day >= ?7 AND day < ?8)
    FROM (SELECT 1 AS code, 'WatchEvent' AS type
          UNION ALL SELECT 2, 'PullRequestEvent' UNION ALL SELECT 3, 'IssuesEvent') AS t"
    )
}

/// `?1`: repository name, `?2`..`?3`: the window, `?4`: 0 without the
/// bots' events, 1 with them. Its PR openings in time order, read in order
/// from the partial index of openings (`pr_openings_by_repo_time`): no sort,
/// no table row touched. The gaps between them are taken in Rust.
const PR_OPENINGS_SQL: &str = "SELECT created_at FROM events
    WHERE type_code = 2 AND action = 'opened' AND repo_name = ?1
      AND created_at >= ?2 AND created_at < ?3 AND bot <= ?4
    ORDER BY created_at, id";

/// `?1`: repository name (any case), `?2`..`?3`: the window, `?4` as in
/// [`PR_OPENINGS_SQL`]. The repository's events, from `events_by_repo_time` alone.
const REPO_EVENTS_SQL: &str =
    "SELECT created_at, type_code FROM events INDEXED BY events_by_repo_time
    WHERE repo_name = ?1 COLLATE NOCASE AND created_at >= ?2 AND created_at < ?3 AND bot <= ?4";

/// `?1` type code, `?2`..`?3` the window: the bots' events of one type
/// (their repository), from the partial index of bots' events alone.
const BOT_EVENTS_SQL: &str = "SELECT repo_name FROM events INDEXED BY bot_events_by_type_time
    WHERE bot = 1 AND type_code = ?1 AND created_at >= ?2 AND created_at < ?3";

/// `?4` for a filter: 0 keeps only the humans' events (`bot <= 0`).
fn bot_bound(exclude_bots: bool) -> i64 {
    i64::from(!exclude_bots)
}

/// `?1`: repository name. The definition itself: the gaps that `LAG()` finds
/// between consecutive openings (as in the `pr_gaps` view), in time order.
const PR_GAPS_WINDOW_SQL: &str = "SELECT
        created_at - LAG(created_at) OVER (ORDER BY created_at, id), created_at
    FROM events
    WHERE type_code = 2 AND action = 'opened' AND repo_name = ?1
    ORDER BY created_at, id";

/// `?1`: row limit (negative for all). Read in rank order from `pr_counts_by_rank`.
const PR_COUNTS_SQL: &str = "SELECT repo_name, events FROM pr_counts
    ORDER BY events DESC, repo_name
    LIMIT ?1";

/// The newest `created_at`: one index lookup per type (a plain `max()` over
/// the table would scan it, as the index leads with the type).
const NEWEST_EVENT_SQL: &str = "SELECT max(newest) FROM (
    SELECT (SELECT max(created_at) FROM events WHERE type_code = 1) AS newest
    UNION ALL SELECT (SELECT max(created_at) FROM events WHERE type_code = 2)
    UNION ALL SELECT (SELECT max(created_at) FROM events WHERE type_code = 3))";

/// The oldest event's time, the same way (one index seek per type).
const OLDEST_EVENT_SQL: &str = "SELECT min(oldest) FROM (
    SELECT (SELECT min(created_at) FROM events WHERE type_code = 1) AS oldest
    UNION ALL SELECT (SELECT min(created_at) FROM events WHERE type_code = 2)
    UNION ALL SELECT (SELECT min(created_at) FROM events WHERE type_code = 3))";

/// `?1` type, `?2`..`?3` a range of `bucket`s (`minute` or `hour`): the
/// rows of a window in `counted`'s rollup of that bucket.
fn timeline_sql(counted: Counted, bucket: &str) -> String {
    format!(
        "SELECT {bucket}, events FROM {}
    WHERE type = ?1 AND {bucket} >= ?2 AND {bucket} < ?3",
        counted.table(bucket)
    )
}

/// Events of each tracked type with `from <= created_at < to` (epoch
/// seconds) that `filter` keeps: one repository's from its index; every
/// event's, or the humans', from their rollups.
pub fn event_counts(
    conn: &Connection,
    from: i64,
    to: i64,
    filter: &Filter,
) -> Result<EventCounts, rusqlite::Error> {
    let window = Window { from, to };
    let mut counts = PerType::default();
    if let Some(repo) = &filter.repo_name {
        for_each_repo_event(conn, repo, window, filter.exclude_bots, |_, event_type| {
            counts[event_type] += 1;
        })?;
        return Ok(counts.into());
    }
    let counted = Counted::kept(filter.exclude_bots);
    Ok(rollup_event_counts(conn, from, to, counted)?.into())
}

/// Hands `visit` the `created_at` and type of each event of `repo` (any
/// case) in `window`, without the bots' with `exclude_bots`.
fn for_each_repo_event(
    conn: &Connection,
    repo: &str,
    window: Window,
    exclude_bots: bool,
    mut visit: impl FnMut(i64, EventType),
) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(REPO_EVENTS_SQL)?;
    let mut rows = stmt.query(params![
        repo,
        window.from,
        window.to,
        bot_bound(exclude_bots)
    ])?;
    while let Some(row) = rows.next()? {
        if let Some(event_type) = EventType::from_code(row.get(1)?) {
            visit(row.get(0)?, event_type);
        }
    }
    Ok(())
}

/// The events `counted` counts of each tracked type with `from <= created_at
/// < to`, from its rollups.
fn rollup_event_counts(
    conn: &Connection,
    from: i64,
    to: i64,
    counted: Counted,
) -> Result<PerType<u64>, rusqlite::Error> {
    // No event is older than 1970 (the parser rejects it), so clamping keeps the
    // bucket arithmetic free of negative-number rounding.
    let parts = WindowParts::of(from.max(0), to.max(0));
    let ranges = [
        parts.head_seconds,
        parts.head_minutes,
        parts.head_hours,
        parts.days,
        parts.tail_hours,
        parts.tail_minutes,
        parts.tail_seconds,
    ];
    let bounds: Vec<i64> = ranges.iter().flat_map(|&(a, b)| [a, b]).collect();
    let mut stmt = conn.prepare_cached(&event_counts_sql(counted))?;
    let mut rows = stmt.query(rusqlite::params_from_iter(bounds))?;
    let mut counts = PerType::default();
    for event_type in EventType::ALL {
        counts[event_type] = rows
            .next()?
            .ok_or(rusqlite::Error::QueryReturnedNoRows)?
            .get(0)?;
    }
    Ok(counts)
}

/// The `created_at` (epoch seconds) of the newest stored event; `None` when empty.
pub fn newest_event_at(conn: &Connection) -> Result<Option<i64>, rusqlite::Error> {
    conn.prepare_cached(NEWEST_EVENT_SQL)?
        .query_row([], |row| row.get(0))
}

/// The `created_at` (epoch seconds) of the oldest stored event; `None` when empty.
pub fn oldest_event_at(conn: &Connection) -> Result<Option<i64>, rusqlite::Error> {
    conn.prepare_cached(OLDEST_EVENT_SQL)?
        .query_row([], |row| row.get(0))
}

/// Events per type in each of `buckets` that `filter` keeps: one
/// repository's from its index; every event's, or the humans', from their
/// rollups.
pub fn timeline(
    conn: &Connection,
    buckets: Buckets,
    filter: &Filter,
) -> Result<Vec<PerType<u64>>, rusqlite::Error> {
    if let Some(repo) = &filter.repo_name {
        let mut counts = vec![PerType::default(); buckets.count];
        for_each_repo_event(
            conn,
            repo,
            buckets.window(),
            filter.exclude_bots,
            |at, event_type| {
                if let Some(i) = buckets.index_of(at) {
                    counts[i][event_type] += 1;
                }
            },
        )?;
        return Ok(counts);
    }
    let counted = Counted::kept(filter.exclude_bots);
    rollup_timeline(conn, buckets, counted)
}

/// The events `counted` counts per type in each of `buckets`, from its
/// rollups. Hours that lie wholly inside one bucket are read from the hour
/// rollup, every other minute from the minute rollup, so a 30-day window of
/// hour-sized or larger buckets reads about 720 hour rows and a few thousand
/// minute rows per type instead of 43,200 minute rows.
fn rollup_timeline(
    conn: &Connection,
    buckets: Buckets,
    counted: Counted,
) -> Result<Vec<PerType<u64>>, rusqlite::Error> {
    let Buckets {
        first_minute,
        minutes: bucket_minutes,
        count: buckets,
    } = buckets;
    let mut counts = vec![PerType::default(); buckets];
    let end = first_minute + bucket_minutes * buckets as i64;
    let bucket_of = |minute: i64| ((minute - first_minute) / bucket_minutes) as usize;
    // Hours wholly inside the window, [first_hour, end_hour); with buckets
    // shorter than an hour nearly every hour would straddle two, so none is used.
    let (first_hour, end_hour) = if bucket_minutes >= MINUTES_PER_HOUR {
        (
            ceil_div(first_minute, MINUTES_PER_HOUR),
            end / MINUTES_PER_HOUR,
        )
    } else {
        (0, 0)
    };
    let hour_fits = |hour: i64| {
        bucket_of(hour * MINUTES_PER_HOUR) == bucket_of((hour + 1) * MINUTES_PER_HOUR - 1)
    };
    // Minute ranges not covered by a fitting hour: the window's ragged ends and
    // the hours that a bucket boundary cuts. Those hours are found from the
    // boundaries (fewer than `buckets`), never by walking the window's hours,
    // so the work is bounded by the buckets and the rows, not the window.
    let mut minute_ranges = Vec::new();
    if first_hour < end_hour {
        minute_ranges.push((first_minute, first_hour * MINUTES_PER_HOUR));
        let mut cut_hours: Vec<i64> = (1..buckets as i64)
            .map(|k| first_minute + k * bucket_minutes)
            .filter(|boundary| boundary.rem_euclid(MINUTES_PER_HOUR) != 0)
            .map(|boundary| boundary.div_euclid(MINUTES_PER_HOUR))
            .filter(|hour| (first_hour..end_hour).contains(hour))
            .collect();
        cut_hours.dedup();
        minute_ranges.extend(
            cut_hours
                .into_iter()
                .map(|hour| (hour * MINUTES_PER_HOUR, (hour + 1) * MINUTES_PER_HOUR)),
        );
        minute_ranges.push((end_hour * MINUTES_PER_HOUR, end));
    } else {
        minute_ranges.push((first_minute, end));
    }
    let mut minutes = conn.prepare_cached(&timeline_sql(counted, "minute"))?;
    let mut hours = conn.prepare_cached(&timeline_sql(counted, "hour"))?;
    for event_type in EventType::ALL {
        for &(from, to) in minute_ranges.iter().filter(|(from, to)| from < to) {
            let mut rows = minutes.query(params![event_type.as_str(), from, to])?;
            while let Some(row) = rows.next()? {
                let (minute, events): (i64, u64) = (row.get(0)?, row.get(1)?);
                counts[bucket_of(minute)][event_type] += events;
            }
        }
        let mut rows = hours.query(params![event_type.as_str(), first_hour, end_hour])?;
        while let Some(row) = rows.next()? {
            let (hour, events): (i64, u64) = (row.get(0)?, row.get(1)?);
            if hour_fits(hour) {
                counts[bucket_of(hour * MINUTES_PER_HOUR)][event_type] += events;
            }
        }
    }
    Ok(counts)
}

/// The gaps between consecutive PR openings of `repo_name` with
/// `from <= created_at < to`, in time order; without the bots' openings
/// with `exclude_bots`.
///
/// The same answer as [`pr_gaps_by_window`], the `LAG()` form: read in
/// order and differenced here instead, because SQLite's window machinery
/// costs several times the ordered read (BENCHMARKS.md).
pub fn pr_gaps(
    conn: &Connection,
    repo_name: &str,
    from: i64,
    to: i64,
    exclude_bots: bool,
) -> Result<PrGapSummary, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(PR_OPENINGS_SQL)?;
    let times = stmt
        .query_map(
            params![repo_name, from, to, bot_bound(exclude_bots)],
            |row| row.get(0),
        )?
        .collect::<Result<Vec<i64>, _>>()?;
    Ok(PrGapSummary::from_times(&times))
}

/// See [`crate::store::Store::repo_spelling`]: a scan of `pr_counts`
/// (one row per repository), asked only when the name as given has no
/// opening.
pub fn repo_spelling(
    conn: &Connection,
    repo_name: &str,
) -> Result<Option<String>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT repo_name FROM pr_counts WHERE repo_name = ?1 COLLATE NOCASE
         ORDER BY events DESC, repo_name LIMIT 1",
    )?
    .query_row([repo_name], |row| row.get(0))
    .optional()
}

/// See [`crate::store::Store::openings_from_files`].
pub fn openings_from_files(
    conn: &Connection,
    repo_name: &str,
    from: i64,
    to: i64,
    exclude_bots: bool,
) -> Result<u64, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT count(*) FROM events
         WHERE type_code = 2 AND action = 'opened' AND repo_name = ?1
           AND created_at >= ?2 AND created_at < ?3 AND bot <= ?4
           AND origin = 3 AND archives = 0",
    )?
    .query_row(
        params![repo_name, from, to, bot_bound(exclude_bots)],
        |row| row.get(0),
    )
}

/// [`pr_gaps`] by its definition, `LAG()` over the openings: for the tests
/// that hold the two equal, and for analysts' reference.
pub fn pr_gaps_by_window(
    conn: &Connection,
    repo_name: &str,
) -> Result<PrGapSummary, rusqlite::Error> {
    let mut stmt = conn.prepare_cached(PR_GAPS_WINDOW_SQL)?;
    let mut gaps = Vec::new();
    let (mut openings, mut last) = (0, None);
    let mut rows = stmt.query(params![repo_name])?;
    while let Some(row) = rows.next()? {
        openings += 1;
        if let Some(gap) = row.get::<_, Option<i64>>(0)? {
            gaps.push(gap);
        }
        last = Some(row.get(1)?);
    }
    Ok(PrGapSummary::from_gaps(openings, gaps, last))
}

/// Repositories with at least one `PullRequestEvent` (any action) and how many,
/// most first, ties by name; at most `limit` of them when given.
pub fn pr_counts(
    conn: &Connection,
    limit: Option<u64>,
) -> Result<Vec<(String, u64)>, rusqlite::Error> {
    let mut counts = Vec::new();
    for_each_pr_count(conn, limit, |repo, n| {
        counts.push((repo.to_owned(), n));
        true
    })?;
    Ok(counts)
}

/// `?1`..`?2`: the window, `?3`: row limit (negative for all). The window's
/// PullRequestEvents (an index range) counted per repository.
/// `?1`..`?2`: the repository of each PullRequestEvent in the window, from
/// the covering index alone.
const TYPE_EVENTS_WINDOW_SQL: &str =
    "SELECT repo_name FROM events INDEXED BY events_by_type_time_repo
    WHERE type_code = ?1 AND created_at >= ?2 AND created_at < ?3";

/// The same ranking grouped and sorted by SQLite, which spills to disk: for
/// windows with more repositories than [`MAX_COUNTED_REPOSITORIES`].
const REPO_COUNTS_WINDOW_SQL: &str =
    "SELECT repo_name, count(*) AS n FROM events INDEXED BY events_by_type_time_repo
    WHERE type_code = ?1 AND created_at >= ?2 AND created_at < ?3 AND bot <= ?5
    GROUP BY repo_name ORDER BY n DESC, repo_name LIMIT ?4";

/// Most repositories a window's ranking counts in memory (about 100 MB);
/// a window with more is ranked by SQLite's own sort instead.
const MAX_COUNTED_REPOSITORIES: usize = 1_000_000;

/// Hands `visit` the repositories of `ranking`, and how many events each,
/// most first (ties by name), until it returns false: the window's rows of
/// one index, counted per repository in memory (SQLite's GROUP BY sorts,
/// several times slower), at most [`MAX_COUNTED_REPOSITORIES`] of them;
/// without bots, less the window's bots' events (their own index's rows).
pub fn for_each_repo_count_between(
    conn: &Connection,
    ranking: Ranking,
    visit: impl FnMut(&str, u64) -> bool,
) -> Result<(), rusqlite::Error> {
    rank_window(conn, ranking, MAX_COUNTED_REPOSITORIES, visit)
}

/// [`for_each_repo_count_between`], counting at most `max_counted`
/// repositories in memory.
fn rank_window(
    conn: &Connection,
    ranking: Ranking,
    max_counted: usize,
    mut visit: impl FnMut(&str, u64) -> bool,
) -> Result<(), rusqlite::Error> {
    let Ranking {
        event_type,
        window,
        limit,
        exclude_bots,
    } = ranking;
    let mut counts = RepoCounts::default();
    {
        let mut stmt = conn.prepare_cached(TYPE_EVENTS_WINDOW_SQL)?;
        let mut rows = stmt.query(params![event_type.code(), window.from, window.to])?;
        while let Some(row) = rows.next()? {
            if !counts.add(row.get_ref(0)?.as_str()?, max_counted) {
                drop(rows);
                return sorted_by_sqlite(conn, ranking, visit);
            }
        }
    }
    if exclude_bots {
        // Every bot's event was counted above, so each finds its repository.
        let mut stmt = conn.prepare_cached(BOT_EVENTS_SQL)?;
        let mut rows = stmt.query(params![event_type.code(), window.from, window.to])?;
        while let Some(row) = rows.next()? {
            counts.remove(row.get_ref(0)?.as_str()?);
        }
    }
    let mut ranked: Vec<usize> = (0..counts.entries.len())
        .filter(|&i| counts.entries[i].count > 0)
        .collect();
    let order = |&a: &usize, &b: &usize| {
        let (x, y) = (&counts.entries[a], &counts.entries[b]);
        y.count
            .cmp(&x.count)
            .then_with(|| counts.name(x).cmp(counts.name(y)))
    };
    if let Some(limit) = limit.and_then(|n| usize::try_from(n).ok())
        && limit < ranked.len()
    {
        ranked.select_nth_unstable_by(limit, order);
        ranked.truncate(limit);
    }
    ranked.sort_unstable_by(order);
    for i in ranked {
        let entry = &counts.entries[i];
        if !visit(counts.name(entry), entry.count) {
            break;
        }
    }
    Ok(())
}

/// Events per repository name, the names kept in one buffer: counting a
/// window's hundred thousand rows allocates nothing per repository.
#[derive(Default)]
struct RepoCounts {
    /// Indexes into `entries`, found by the name's hash.
    table: hashbrown::HashTable<usize>,
    entries: Vec<RepoCount>,
    names: String,
    /// Seeded per map, so names chosen to collide cannot be prepared in advance.
    hasher: foldhash::fast::RandomState,
}

struct RepoCount {
    name: std::ops::Range<usize>,
    count: u64,
}

impl RepoCounts {
    fn name(&self, entry: &RepoCount) -> &str {
        &self.names[entry.name.clone()]
    }

    /// `repo`'s hash, and its entry if it has one.
    fn find(&self, repo: &str) -> (u64, Option<usize>) {
        use std::hash::BuildHasher;
        let hash = self.hasher.hash_one(repo);
        let (entries, names) = (&self.entries, &self.names);
        let found = self
            .table
            .find(hash, |&i| &names[entries[i].name.clone()] == repo);
        (hash, found.copied())
    }

    /// Counts one event of `repo`; false, counting nothing, when that would
    /// make more than `max` repositories.
    fn add(&mut self, repo: &str, max: usize) -> bool {
        use std::hash::BuildHasher;
        let (hash, found) = self.find(repo);
        if let Some(i) = found {
            self.entries[i].count += 1;
            return true;
        }
        if self.entries.len() >= max {
            return false;
        }
        let start = self.names.len();
        self.names.push_str(repo);
        self.entries.push(RepoCount {
            name: start..self.names.len(),
            count: 1,
        });
        let (entries, names, hasher) = (&self.entries, &self.names, &self.hasher);
        self.table.insert_unique(hash, entries.len() - 1, |&i| {
            hasher.hash_one(&names[entries[i].name.clone()])
        });
        true
    }

    /// Takes one event of `repo` back, if it was counted.
    fn remove(&mut self, repo: &str) {
        if let (_, Some(i)) = self.find(repo) {
            self.entries[i].count = self.entries[i].count.saturating_sub(1);
        }
    }
}

/// [`for_each_repo_count_between`] by SQLite's GROUP BY.
fn sorted_by_sqlite(
    conn: &Connection,
    ranking: Ranking,
    mut visit: impl FnMut(&str, u64) -> bool,
) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(REPO_COUNTS_WINDOW_SQL)?;
    let limit = ranking
        .limit
        .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let Window { from, to } = ranking.window;
    let code = ranking.event_type.code();
    let bots = bot_bound(ranking.exclude_bots);
    let mut rows = stmt.query(params![code, from, to, limit, bots])?;
    while let Some(row) = rows.next()? {
        let repo: String = row.get(0)?;
        if !visit(&repo, row.get(1)?) {
            break;
        }
    }
    Ok(())
}

/// Visits the [`pr_counts`] rows in rank order without collecting them, until
/// `visit` returns false. Memory stays flat however many repositories there are.
pub fn for_each_pr_count(
    conn: &Connection,
    limit: Option<u64>,
    mut visit: impl FnMut(&str, u64) -> bool,
) -> Result<(), rusqlite::Error> {
    let mut stmt = conn.prepare_cached(PR_COUNTS_SQL)?;
    // SQLite reads a negative LIMIT as "no limit".
    let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    let mut rows = stmt.query(params![limit])?;
    while let Some(row) = rows.next()? {
        let repo: String = row.get(0)?;
        if !visit(&repo, row.get(1)?) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SqliteLocation;
    use crate::core::event::Event;
    use crate::core::time::END_OF_TIME;
    use crate::core::time::SECONDS_PER_DAY;
    use crate::store::sqlite::{Sqlite, insert_events};

    fn event(id: i64, event_type: EventType, repo: &str, action: Option<&str>, at: i64) -> Event {
        Event {
            id,
            event_type,
            created_at: at,
            repo_name: repo.to_owned(),
            // Every third event a bot's: the bots' rollups are checked too.
            actor_login: Some(
                if id % 3 == 0 {
                    "renovate[bot]"
                } else {
                    "someone"
                }
                .to_owned(),
            ),
            action: action.map(str::to_owned),
            number: Some(id),
        }
    }

    fn db_with(events: &[Event]) -> Sqlite {
        let db = Sqlite::open(&SqliteLocation::Memory).unwrap();
        insert_events(
            &mut db.get().unwrap(),
            events,
            crate::store::Origin::GlobalFeed,
            None,
        )
        .unwrap();
        assert_eq!(
            crate::store::sqlite::rollup_disagreement(&db.get().unwrap()).unwrap(),
            None
        );
        db
    }

    /// The served answer, after checking it equals the LAG() definition.
    fn checked_average(db: &Sqlite, repo: &str) -> PrGapSummary {
        let conn = db.get().unwrap();
        let served = pr_gaps(&conn, repo, 0, END_OF_TIME, false).unwrap();
        assert_eq!(served, pr_gaps_by_window(&conn, repo).unwrap(), "{repo}");
        served
    }

    /// A small deterministic generator (no rand crate needed for tests).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    #[test]
    fn event_counts_are_exact_across_minute_hour_and_day_boundaries() {
        let base = 1_700_000_000 - 1_700_000_000 % SECONDS_PER_DAY; // a midnight
        let span = 3 * SECONDS_PER_DAY;
        let mut rng = Lcg(7);
        let events: Vec<Event> = (1..=3000)
            .map(|id| {
                let event_type = EventType::ALL[rng.below(3) as usize];
                event(
                    id,
                    event_type,
                    "r/r",
                    Some("opened"),
                    base + rng.below(span as u64) as i64,
                )
            })
            .collect();
        // Inserted in three batches, with one batch repeated: duplicates must
        // not touch the rollups.
        let db = db_with(&events[..1000]);
        let mut conn = db.get().unwrap();
        insert_events(
            &mut conn,
            &events[500..2000],
            crate::store::Origin::GlobalFeed,
            None,
        )
        .unwrap();
        insert_events(
            &mut conn,
            &events[1500..],
            crate::store::Origin::GlobalFeed,
            None,
        )
        .unwrap();
        assert_eq!(
            crate::store::sqlite::rollup_disagreement(&conn).unwrap(),
            None
        );

        let mut probes = vec![
            0,
            base,
            base + 1,
            base + 59,
            base + 60,
            base + 3599,
            base + 3600,
            base + 3601,
            base + 23 * 3600 + 61,
            base + SECONDS_PER_DAY,
            base + span,
        ];
        probes.extend(events.iter().take(50).map(|e| e.created_at));
        probes.extend((0..200).map(|_| base - 100 + rng.below(span as u64 + 200) as i64));
        for since in probes {
            let expected = |t: EventType| {
                events
                    .iter()
                    .filter(|e| e.event_type == t && e.created_at >= since)
                    .count() as u64
            };
            let counts = event_counts(&conn, since, END_OF_TIME, &Filter::ALL).unwrap();
            assert_eq!(
                counts.by_type().map(|(_, n)| n),
                EventType::ALL.map(expected),
                "since {since}"
            );
        }
        assert_eq!(
            event_counts(&conn, i64::MIN, END_OF_TIME, &Filter::ALL).unwrap(),
            event_counts(&conn, 0, END_OF_TIME, &Filter::ALL).unwrap()
        );
    }

    /// Retention deletes in batches; after each batch every rollup must still
    /// equal what `events` says, and the metrics must answer for the survivors.
    #[test]
    fn deleting_old_events_keeps_every_rollup_exact() {
        use crate::store::sqlite::delete_events_before;
        let base = 1_700_000_000 - 1_700_000_000 % SECONDS_PER_DAY;
        let span = 3 * SECONDS_PER_DAY;
        let mut rng = Lcg(11);
        let repos = ["a/a", "b/b", "c/c", "d/d"];
        let actions = ["opened", "opened", "closed", "started"];
        let events: Vec<Event> = (1..=4000)
            .map(|id| {
                let event_type = EventType::ALL[rng.below(3) as usize];
                let repo = repos[rng.below(repos.len() as u64) as usize];
                let action = actions[rng.below(actions.len() as u64) as usize];
                let at = base + rng.below(span as u64) as i64;
                event(id, event_type, repo, Some(action), at)
            })
            .collect();
        let db = db_with(&events);
        let mut conn = db.get().unwrap();
        // Only "x/x"'s openings all fall before the cutoff: its row must go.
        let mut events = events;
        for (i, at) in [base, base + 10].into_iter().enumerate() {
            let early = event(
                10_000 + i as i64,
                EventType::PullRequest,
                "x/x",
                Some("opened"),
                at,
            );
            insert_events(
                &mut conn,
                std::slice::from_ref(&early),
                crate::store::Origin::GlobalFeed,
                None,
            )
            .unwrap();
            events.push(early);
        }
        let cutoff = base + span / 2 + 17;
        let mut deleted = 0;
        loop {
            let batch = delete_events_before(&mut conn, cutoff, 700).unwrap();
            deleted += batch;
            assert_eq!(
                crate::store::sqlite::rollup_disagreement(&conn).unwrap(),
                None
            );
            if batch < 700 {
                break;
            }
        }
        let survivors: Vec<&Event> = events.iter().filter(|e| e.created_at >= cutoff).collect();
        assert_eq!(deleted as usize, events.len() - survivors.len());
        assert_eq!(
            crate::store::sqlite::stored_event_count(&conn).unwrap() as usize,
            survivors.len()
        );
        let everything = event_counts(&conn, 0, END_OF_TIME, &Filter::ALL).unwrap();
        assert_eq!(
            everything.by_type().map(|(_, n)| n),
            EventType::ALL.map(|t| survivors.iter().filter(|e| e.event_type == t).count() as u64)
        );
        assert_eq!(
            pr_gaps(&conn, "x/x", 0, END_OF_TIME, false)
                .unwrap()
                .openings,
            0
        );
        for repo in repos {
            checked_average(&db, repo);
        }
        assert_eq!(delete_events_before(&mut conn, cutoff, 700).unwrap(), 0);
    }

    #[test]
    fn timeline_buckets_add_up_per_type() {
        let base = 1_700_000_000 - 1_700_000_000 % SECONDS_PER_DAY;
        let mut rng = Lcg(5);
        let events: Vec<Event> = (1..=2000)
            .map(|id| {
                let event_type = EventType::ALL[rng.below(3) as usize];
                let at = base + rng.below(6 * 3600) as i64;
                event(id, event_type, "r/r", None, at)
            })
            .collect();
        let db = db_with(&events);
        let conn = db.get().unwrap();
        for (first_minute, bucket_minutes, buckets) in [
            (base / 60, 60, 6),
            (base / 60 + 7, 13, 20),
            (base / 60 - 30, 1, 90),
            (base / 60 + 400, 100, 3),
            // Hour-sized and larger buckets, aligned and not, read whole hours.
            (base / 60 - 30, 60, 8),
            (base / 60 + 7, 120, 4),
            (base / 60 + 13, 90, 5),
            (base / 60, 360, 1),
            (base / 60 - 600, 300, 4),
            (base / 60 + 59, 61, 7),
            // A century-wide window in few, huge buckets: the hours a boundary
            // cuts are found from the boundaries, not by walking ~876,000 hours.
            (base / 60 + 6 * 60 - 100 * 525_600 + 7, 876_013, 60),
            (base / 60 + 6 * 60 - 100 * 525_600, 525_600, 100),
        ] {
            let span = Buckets {
                first_minute,
                minutes: bucket_minutes,
                count: buckets,
            };
            let got = rollup_timeline(&conn, span, Counted::Every).unwrap();
            let mut expected = vec![PerType::default(); buckets];
            for e in &events {
                let offset = e.created_at / 60 - first_minute;
                if offset >= 0 && offset < bucket_minutes * buckets as i64 {
                    expected[(offset / bucket_minutes) as usize][e.event_type] += 1;
                }
            }
            assert_eq!(got, expected, "{first_minute} {bucket_minutes} {buckets}");
        }
    }

    #[test]
    fn average_gap_counts_only_openings_in_time_order() {
        use EventType::PullRequest;
        // Inserted out of order, with closes, reopens and another repo mixed in.
        let events = [
            event(5, PullRequest, "a/b", Some("opened"), 1_000 + 700),
            event(1, PullRequest, "a/b", Some("opened"), 1_000),
            event(2, PullRequest, "a/b", Some("closed"), 1_000 + 50),
            event(3, PullRequest, "a/b", Some("reopened"), 1_000 + 60),
            event(4, PullRequest, "a/b", Some("opened"), 1_000 + 100),
            event(6, PullRequest, "x/y", Some("opened"), 5),
            event(7, EventType::Issues, "a/b", Some("opened"), 1_000 + 900),
        ];
        let db = db_with(&events);
        let summary = checked_average(&db, "a/b");
        // Openings at 1000, 1100, 1700: gaps 100 and 600.
        assert_eq!(summary.openings, 3);
        assert_eq!(summary.average_seconds, Some(350.0));
    }

    #[test]
    fn average_gap_needs_two_openings() {
        use EventType::PullRequest;
        let db = db_with(&[
            event(1, PullRequest, "one/pr", Some("opened"), 10),
            event(2, PullRequest, "one/pr", Some("closed"), 20),
        ]);
        let one = checked_average(&db, "one/pr");
        assert_eq!((one.openings, one.average_seconds), (1, None));
        let none = checked_average(&db, "no/such");
        assert_eq!((none.openings, none.average_seconds), (0, None));
    }

    #[test]
    fn equal_timestamps_give_zero_gaps() {
        use EventType::PullRequest;
        let db = db_with(&[
            event(1, PullRequest, "s/t", Some("opened"), 100),
            event(2, PullRequest, "s/t", Some("opened"), 100),
            event(3, PullRequest, "s/t", Some("opened"), 100),
        ]);
        let summary = checked_average(&db, "s/t");
        assert_eq!((summary.openings, summary.average_seconds), (3, Some(0.0)));
    }

    #[test]
    fn average_gap_equals_span_over_count_for_many_openings() {
        // Irregular gaps from a simple LCG, so the mean is not a round number.
        let mut at = 1_600_000_000_i64;
        let mut seed = 17_u64;
        let mut events = Vec::new();
        for id in 1..=500 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            at += (seed >> 40) as i64 % 10_000;
            events.push(event(
                id,
                EventType::PullRequest,
                "big/repo",
                Some("opened"),
                at,
            ));
        }
        let expected = (events[499].created_at - events[0].created_at) as f64 / 499.0;
        let db = db_with(&events);
        let summary = checked_average(&db, "big/repo");
        assert_eq!(summary.openings, 500);
        assert!((summary.average_seconds.unwrap() - expected).abs() < 1e-9 * expected);
    }

    #[test]
    fn event_counts_respect_the_window_and_report_zeros() {
        let events = [
            event(1, EventType::Watch, "a/b", Some("started"), 100),
            event(2, EventType::Watch, "a/b", Some("started"), 200),
            event(3, EventType::Watch, "a/b", Some("started"), 300),
            event(4, EventType::PullRequest, "a/b", Some("opened"), 199),
            event(5, EventType::PullRequest, "a/b", Some("closed"), 200),
        ];
        assert_eq!(newest_event_at(&db_with(&[]).get().unwrap()).unwrap(), None);
        let db = db_with(&events);
        let conn = db.get().unwrap();
        assert_eq!(newest_event_at(&conn).unwrap(), Some(300));
        for since in [0, 100, 199, 200, 201, 301] {
            let expected = |t: EventType| {
                events
                    .iter()
                    .filter(|e| e.event_type == t && e.created_at >= since)
                    .count() as u64
            };
            let counts = event_counts(&conn, since, END_OF_TIME, &Filter::ALL).unwrap();
            assert_eq!(
                counts,
                EventCounts {
                    watch: expected(EventType::Watch),
                    pull_request: expected(EventType::PullRequest),
                    issues: 0,
                },
                "since {since}"
            );
        }
    }

    #[test]
    fn pr_counts_rank_by_count_then_name_and_honour_limit() {
        use EventType::PullRequest;
        let mut events = vec![event(100, EventType::Watch, "watch/only", None, 1)];
        let wanted = [("c/c", 2), ("a/a", 2), ("b/b", 3), ("d/d", 1)];
        let mut id = 0;
        for (repo, n) in wanted {
            for _ in 0..n {
                id += 1;
                let action = if id % 2 == 0 { "closed" } else { "opened" };
                events.push(event(id, PullRequest, repo, Some(action), id));
            }
        }
        let db = db_with(&events);
        let conn = db.get().unwrap();
        let all = pr_counts(&conn, None).unwrap();
        let expected: Vec<(String, u64)> = [("b/b", 3), ("a/a", 2), ("c/c", 2), ("d/d", 1)]
            .into_iter()
            .map(|(r, n)| (r.to_owned(), n))
            .collect();
        assert_eq!(all, expected);
        assert_eq!(pr_counts(&conn, Some(2)).unwrap(), expected[..2]);
        assert_eq!(pr_counts(&conn, Some(u64::MAX)).unwrap(), expected);
    }

    /// A window's ranking counted in memory equals SQLite's GROUP BY (the
    /// path past the memory bound) and a count of the raw events, with and
    /// without a limit, with and without the bots' events.
    #[test]
    fn window_rankings_agree_in_memory_and_in_sqlite() {
        let mut rng = Lcg(11);
        let logins = ["alice", "dependabot[bot]", "Renovate[BOT]", "bob"];
        let events: Vec<Event> = (1..=3000)
            .map(|id| {
                let event_type = EventType::ALL[rng.below(3) as usize];
                let repo = format!("r/{}", rng.below(40));
                let mut event = event(
                    id,
                    event_type,
                    &repo,
                    Some("opened"),
                    rng.below(20_000) as i64,
                );
                event.actor_login = Some(logins[rng.below(4) as usize].to_owned());
                event
            })
            .collect();
        let db = db_with(&events);
        let conn = db.get().unwrap();
        let rank = |ranking: Ranking, max_counted: usize| {
            let mut out = Vec::new();
            rank_window(&conn, ranking, max_counted, |repo, n| {
                out.push((repo.to_owned(), n));
                true
            })
            .unwrap();
            out
        };
        let windows = [(0, 20_000), (3_333, 3_400), (7_000, 15_001), (5, 5)];
        for (event_type, (from, to), exclude_bots) in EventType::ALL
            .into_iter()
            .flat_map(|t| windows.map(|w| (t, w)))
            .flat_map(|(t, w)| [(t, w, false), (t, w, true)])
        {
            let mut truth: std::collections::HashMap<String, u64> = Default::default();
            for e in events.iter().filter(|e| {
                e.event_type == event_type
                    && (from..to).contains(&e.created_at)
                    && !(exclude_bots && e.actor_login.as_ref().unwrap().ends_with("]"))
            }) {
                *truth.entry(e.repo_name.clone()).or_default() += 1;
            }
            let mut truth: Vec<(String, u64)> = truth.into_iter().collect();
            truth.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            for limit in [None, Some(1), Some(7), Some(1000)] {
                let expected =
                    &truth[..limit.map_or(truth.len(), |n| (n as usize).min(truth.len()))];
                let ranking = Ranking {
                    event_type,
                    window: Window { from, to },
                    limit,
                    exclude_bots,
                };
                assert_eq!(rank(ranking, 1_000_000), expected, "{ranking:?}");
                assert_eq!(rank(ranking, 3), expected, "{ranking:?} past the bound");
            }
        }
    }

    /// A changed list of bot logins re-marks the stored events and recounts
    /// the bots' rollups: answers without bots follow the list.
    #[test]
    fn changing_the_bot_logins_re_marks_and_recounts() {
        use crate::core::bots::BotLogins;
        let events: Vec<Event> = (1..=600)
            .map(|id| {
                let mut e = event(id, EventType::ALL[id as usize % 3], "a/b", None, id * 97);
                e.actor_login =
                    Some(["Alice", "bob", "carol[bot]"][id as usize % 5 % 3].to_owned());
                e
            })
            .collect();
        let db = db_with(&events);
        let mut conn = db.get().unwrap();
        let humans = Filter {
            repo_name: None,
            exclude_bots: true,
        };
        for (named, expected_remarked) in [(&["alice"][..], 240), (&["bob"], 480), (&[], 240)] {
            let bots = BotLogins::new(named.iter().map(|l| l.parse().unwrap())).unwrap();
            let remarked = crate::store::sqlite::write::use_bot_logins(&mut conn, &bots).unwrap();
            assert_eq!(remarked, expected_remarked, "{named:?}");
            assert_eq!(
                crate::store::sqlite::rollup_disagreement(&conn).unwrap(),
                None
            );
            let mut expected = PerType::default();
            for e in events
                .iter()
                .filter(|e| !bots.is_bot(e.actor_login.as_ref().unwrap()))
            {
                expected[e.event_type] += 1;
            }
            let counts = event_counts(&conn, 0, END_OF_TIME, &humans).unwrap();
            assert_eq!(counts, expected.into(), "{named:?}");
            // Unchanged: nothing to do.
            assert_eq!(
                crate::store::sqlite::write::use_bot_logins(&mut conn, &bots).unwrap(),
                0
            );
        }
    }

    #[test]
    fn duplicate_ids_are_stored_once() {
        let first = event(1, EventType::Watch, "a/b", Some("started"), 10);
        let db = db_with(&[first.clone(), first.clone()]);
        let mut conn = db.get().unwrap();
        let again = insert_events(
            &mut conn,
            &[first, event(2, EventType::Watch, "a/b", None, 11)],
            crate::store::Origin::GlobalFeed,
            None,
        )
        .unwrap();
        assert_eq!((again.inserted(), again.duplicates), (1, 1));
        assert_eq!(crate::store::sqlite::stored_event_count(&conn).unwrap(), 2);
    }

    /// The codes in `EventType::code` and the CASE of the generated `type`
    /// column of `events` must name the same types.
    #[test]
    fn type_column_reads_back_each_code() {
        let events: Vec<Event> = EventType::ALL
            .iter()
            .enumerate()
            .map(|(i, &t)| event(i as i64 + 1, t, "a/b", None, 10))
            .collect();
        let db = db_with(&events);
        let conn = db.get().unwrap();
        for e in &events {
            let (code, name): (i64, String) = conn
                .query_row(
                    "SELECT type_code, type FROM events WHERE id = ?1",
                    [e.id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            assert_eq!(
                (code, name.as_str()),
                (e.event_type.code(), e.event_type.as_str())
            );
        }
    }

    /// Every metric query reads index ranges: a SEARCH on an index or primary
    /// key, or (pr-counts) a walk of the rank index that LIMIT stops early;
    /// never a table scan or a sort of all rows.
    #[test]
    fn metric_queries_use_indexes() {
        let db = db_with(&[]);
        let conn = db.get().unwrap();
        let tables = [
            "events",
            "event_counts_by_minute",
            "event_counts_by_hour",
            "event_counts_by_day",
            "human_counts_by_minute",
            "human_counts_by_hour",
            "human_counts_by_day",
            "pr_counts",
        ];
        let mut statements: Vec<String> = [
            PR_OPENINGS_SQL,
            PR_GAPS_WINDOW_SQL,
            PR_COUNTS_SQL,
            NEWEST_EVENT_SQL,
            REPO_EVENTS_SQL,
            BOT_EVENTS_SQL,
            crate::store::sqlite::write::OLDEST_EVENTS_SQL,
        ]
        .map(str::to_owned)
        .into();
        for counted in [Counted::Every, Counted::Humans] {
            statements.push(event_counts_sql(counted));
            statements.push(timeline_sql(counted, "minute"));
            statements.push(timeline_sql(counted, "hour"));
        }
        for sql in statements {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let zeros = vec![0; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(zeros), |row| {
                    row.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(
                !plan.iter().any(|step| step.contains("TEMP B-TREE")),
                "{sql}\n{plan:#?}"
            );
            let table_steps: Vec<&String> = plan
                .iter()
                .filter(|step| {
                    step.split_whitespace()
                        .nth(1)
                        .is_some_and(|t| tables.contains(&t))
                })
                .collect();
            assert!(!table_steps.is_empty(), "{plan:#?}");
            for step in table_steps {
                let searches = step.starts_with("SEARCH")
                    && (step.contains("INDEX") || step.contains("PRIMARY KEY"));
                let ranked = step == "SCAN pr_counts USING COVERING INDEX pr_counts_by_rank";
                assert!(searches || ranked, "{sql}\n{plan:#?}");
            }
        }
    }
}
