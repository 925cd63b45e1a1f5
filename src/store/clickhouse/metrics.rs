//! The metric reads: event counts and the timeline from the minute rollup,
//! PR gaps from `pr_openings`, pr-counts from `pr_counts` (a short ranking
//! proven from its top rows, see [`super::top`]), and the totals.

use std::collections::HashMap;

use super::text::{bad, event_type, fields, number, quote, read_tsv};
use super::{ClickHouse, ClickHouseError, top};
use crate::core::event::{EventType, PerType};
use crate::core::time::{Buckets, SECONDS_PER_MINUTE, Window, ceil_div};
use crate::store::{DataVersion, EventCounts, Filter, PrGapSummary, Ranking, Totals};

/// The actor's login in lower case, as SQL.
const LOGIN_SQL: &str = "lower(ifNull(actor_login, ''))";
/// Whether the actor is a GitHub App (its login ends in `[bot]`), as SQL.
const APP_SQL: &str = "endsWith(lower(ifNull(actor_login, '')), '[bot]')";

/// A time in seconds as a `DateTime` bound, within its range.
fn at(seconds: i64) -> String {
    format!("toDateTime({})", seconds.clamp(0, i64::from(u32::MAX)))
}

/// The condition on `created_at` that keeps `window`.
fn within(window: Window) -> String {
    format!(
        "created_at >= {} AND created_at < {}",
        at(window.from),
        at(window.to)
    )
}

/// The longest pr-counts `limit` tried from the top rows of the rollup.
const TOP_K_MAX: u64 = 10_000;
/// Rows of `pr_counts` looked at for a ranking of k: K = 4 k + 64. More
/// candidates make the proof hold more often and cost a little more reading.
const TOP_K_ROWS_PER_PLACE: u64 = 4;
const TOP_K_ROWS_EXTRA: u64 = 64;

impl ClickHouse {
    /// What the answers depend on, cheaply (one request): the rows of the
    /// tables written directly (`events`, `feed_polls`, `watched_repos`,
    /// `archive_files`, `settled_hours`, `late_arrivals`, `archive_marks`;
    /// the rollups follow `events`) on every shard, and the database's delete
    /// mutations, issued and done. Every insert adds rows (only new events
    /// are inserted) and every delete is a mutation, so each write changes
    /// it; background merges move rows between parts without changing their
    /// number or any answer, so they leave it, and the answer cache with it.
    pub async fn parts_version(&self) -> Result<DataVersion, ClickHouseError> {
        let parts = self.layout.system_table("parts");
        let mutations = self.layout.system_table("mutations");
        let database = quote(&self.layout.database);
        let answer = self
            .query(&format!(
                "SELECT
                     (SELECT sum(rows) FROM {parts} WHERE database = {database} AND active
                      AND table IN ('events', 'feed_polls', 'watched_repos', 'archive_files',
                                    'settled_hours', 'late_arrivals', 'archive_marks',
                                    'events_local', 'feed_polls_local', 'watched_repos_local',
                                    'archive_files_local', 'settled_hours_local',
                                    'late_arrivals_local', 'archive_marks_local')),
                     (SELECT count() FROM {mutations} WHERE database = {database}),
                     (SELECT countIf(is_done) FROM {mutations} WHERE database = {database})
                 FORMAT TabSeparated"
            ))
            .await?;
        let mut counters = [0u64; 3];
        for (counter, field) in counters.iter_mut().zip(fields::<3>(answer.trim_end())?) {
            *counter = number(field, &answer)?;
        }
        Ok(DataVersion::from_counters(&counters))
    }

    /// Whether the event's actor is a bot (see [`Filter`]), as SQL.
    fn bot_sql(&self) -> String {
        match self.named_bot_sql() {
            Some(named) => format!("({APP_SQL} OR {named})"),
            None => APP_SQL.to_owned(),
        }
    }

    /// Whether the event's actor is one of the logins named as bots, as SQL;
    /// `None` when none is named.
    fn named_bot_sql(&self) -> Option<String> {
        let bots = self.bots.read().unwrap_or_else(|e| e.into_inner()).clone();
        if bots.is_empty() {
            return None;
        }
        let named: Vec<String> = bots.iter().map(quote).collect();
        Some(format!("{LOGIN_SQL} IN ({})", named.join(", ")))
    }

    /// Rows `(code, k, n)`: the events of each type in the whole minutes
    /// `[m0, m1)`, grouped by `key` (an expression of `minute`), from the
    /// minute rollup; with `exclude_bots`, less the GitHub Apps' (their own
    /// rollup) and those of the logins named as bots (read from the events:
    /// nothing when none is named).
    fn minutes_sql(&self, m0: i64, m1: i64, key: &str, exclude_bots: bool) -> String {
        let range = format!("minute >= {m0} AND minute < {m1}");
        let rollup = |table: &str, sign: &str| {
            format!(
                "SELECT toUInt8(type) AS code, {key} AS k, {sign}sum(events) AS n FROM {}
                 WHERE {range} GROUP BY type, k",
                self.layout.table(table)
            )
        };
        let mut sql = rollup("event_counts_by_minute", "");
        if !exclude_bots {
            return sql;
        }
        sql += &format!(" UNION ALL {}", rollup("app_bot_counts_by_minute", "-"));
        if let Some(named) = self.named_bot_sql() {
            let key = key.replace("minute", "toUInt32(intDiv(toUInt32(created_at), 60))");
            sql += &format!(
                " UNION ALL SELECT toUInt8(type) AS code, {key} AS k, -toInt64(count()) AS n FROM {}
                 WHERE {} AND {named} AND NOT {APP_SQL} GROUP BY type, k",
                self.layout.table("events"),
                within(Window {
                    from: m0 * SECONDS_PER_MINUTE,
                    to: m1 * SECONDS_PER_MINUTE
                }),
            );
        }
        sql
    }

    /// The conditions (each after `AND`) that keep the events `filter` keeps.
    fn filter_sql(&self, filter: &Filter) -> String {
        let mut sql = String::new();
        if let Some(repo) = &filter.repo_name {
            sql += &format!(" AND lower(repo_name) = lower({})", quote(repo));
        }
        if filter.exclude_bots {
            sql += &format!(" AND NOT {}", self.bot_sql());
        }
        sql
    }

    /// Events per type in `[from, to)` that `filter` keeps. For every
    /// event, or without bots: the raw events of the partial minutes at each
    /// end, and the whole minutes between from the minute rollups (a few
    /// thousand rows a month, however many events; see
    /// [`ClickHouse::minutes_sql`]); for one repository, its events in the
    /// window.
    pub async fn event_counts(
        &self,
        from: i64,
        to: i64,
        filter: &Filter,
    ) -> Result<EventCounts, ClickHouseError> {
        if filter.repo_name.is_some() {
            let answer = self
                .query(&format!(
                    "SELECT toUInt8(type), count() FROM {} WHERE {}{} GROUP BY type FORMAT TabSeparated",
                    self.layout.table("events"),
                    within(Window { from, to }),
                    self.filter_sql(filter),
                ))
                .await?;
            let mut counts = PerType::default();
            for line in answer.lines() {
                let [code, count] = fields::<2>(line)?;
                counts[event_type(code)?] = number(count, line)?;
            }
            return Ok(counts.into());
        }
        let (from, to) = (
            from.clamp(0, i64::from(u32::MAX)),
            to.clamp(0, i64::from(u32::MAX)),
        );
        let (m0, m1) = (
            ceil_div(from, SECONDS_PER_MINUTE),
            to.div_euclid(SECONDS_PER_MINUTE),
        );
        // Without a whole minute inside, all of it comes from the raw events.
        let (head_end, tail_start, m0, m1) = if m0 < m1 {
            (m0 * SECONDS_PER_MINUTE, m1 * SECONDS_PER_MINUTE, m0, m1)
        } else {
            (to, to, 0, 0)
        };
        let answer = self
            .query(&format!(
                "SELECT code, greatest(sum(n), 0) FROM (
                     SELECT toUInt8(type) AS code, toUInt8(0) AS k, toInt64(count()) AS n FROM {events}
                     WHERE ((created_at >= toDateTime({from}) AND created_at < toDateTime({head_end}))
                        OR (created_at >= toDateTime({tail_start}) AND created_at < toDateTime({to}))){only}
                     GROUP BY type
                     UNION ALL {minutes})
                 GROUP BY code FORMAT TabSeparated",
                events = self.layout.table("events"),
                only = self.filter_sql(filter),
                minutes = self.minutes_sql(m0, m1, "toUInt8(0)", filter.exclude_bots),
            ))
            .await?;
        let mut counts = PerType::default();
        for line in answer.lines() {
            let [code, count] = fields::<2>(line)?;
            counts[event_type(code)?] = number(count, line)?;
        }
        Ok(counts.into())
    }

    /// Events per type in each of `buckets` that `filter` keeps: for every
    /// event or without bots from the minute rollups (see
    /// [`ClickHouse::minutes_sql`]), for one repository from its events.
    pub async fn timeline(
        &self,
        span: Buckets,
        filter: &Filter,
    ) -> Result<Vec<PerType<u64>>, ClickHouseError> {
        let Buckets {
            first_minute,
            minutes: bucket_minutes,
            count: buckets,
        } = span;
        let end = first_minute + bucket_minutes * buckets as i64;
        let mut counts = vec![PerType::default(); buckets];
        if end <= 0 {
            return Ok(counts);
        }
        // One repository's events in the buckets' seconds, or whole minutes
        // from the minute rollups (buckets are whole minutes).
        let sql = if filter.repo_name.is_some() {
            format!(
                "SELECT toUInt8(type), intDiv(toInt64(toUInt32(created_at)) - ({}), {}) AS bucket, count()
                 FROM {} WHERE {}{} GROUP BY type, bucket FORMAT TabSeparated",
                span.start(),
                span.seconds(),
                self.layout.table("events"),
                within(span.window()),
                self.filter_sql(filter),
            )
        } else {
            let key = format!("intDiv(toInt64(minute) - ({first_minute}), {bucket_minutes})");
            let minutes = self.minutes_sql(
                first_minute.max(0),
                end.min(i64::from(u32::MAX)),
                &key,
                filter.exclude_bots,
            );
            format!(
                "SELECT code, k, greatest(sum(n), 0) FROM ({minutes})
                 GROUP BY code, k FORMAT TabSeparated"
            )
        };
        let answer = self.query(&sql).await?;
        for line in answer.lines() {
            let [code, bucket, count] = fields::<3>(line)?;
            let bucket: usize = number(bucket, line)?;
            let slot = counts.get_mut(bucket).ok_or_else(|| bad(line))?;
            slot[event_type(code)?] = number(count, line)?;
        }
        Ok(counts)
    }

    /// The gaps between the repository's PR openings: ClickHouse 18.16 has
    /// no window functions, so the openings' times are gathered, sorted and
    /// differenced as an array (`arrayDifference` gives 0 first, then each
    /// gap). Each opening counts once by id, even before the
    /// ReplacingMergeTree has folded a second copy. Only the openings with
    /// `from <= created_at < to`: one range of the `(repo_name, created_at)` key.
    /// Without the bots' openings, from the window's events instead (the
    /// openings table does not keep the actor).
    pub async fn pr_gaps(
        &self,
        repo_name: &str,
        from: i64,
        to: i64,
        exclude_bots: bool,
    ) -> Result<PrGapSummary, ClickHouseError> {
        let (table, only_openings) = if exclude_bots {
            let only = format!(
                " AND type = 'PullRequestEvent' AND action = 'opened' AND NOT {}",
                self.bot_sql()
            );
            (self.layout.table("events"), only)
        } else {
            (self.layout.table("pr_openings"), String::new())
        };
        let answer = self
            .query(&format!(
                "SELECT length(times), arrayDifference(times), if(empty(times), NULL, times[-1])
                 FROM (SELECT arraySort(groupArray(at)) AS times FROM (
                     SELECT any(toInt64(toUInt32(created_at))) AS at FROM {table}
                     WHERE repo_name = {} AND {}{only_openings}
                     GROUP BY id))
                 FORMAT TabSeparated",
                quote(repo_name),
                within(Window { from, to }),
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

    /// See [`crate::store::Store::repo_spelling`].
    pub async fn repo_spelling(&self, repo_name: &str) -> Result<Option<String>, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT repo_name FROM {} WHERE lower(repo_name) = lower({}) AND repo_name != ''
                 GROUP BY repo_name HAVING sum(events) > 0
                 ORDER BY sum(events) DESC, repo_name LIMIT 1 FORMAT TabSeparated",
                self.layout.table("pr_counts"),
                quote(repo_name),
            ))
            .await?;
        Ok(answer.lines().next().and_then(read_tsv))
    }

    /// See [`crate::store::Store::openings_from_files`].
    pub async fn openings_from_files(
        &self,
        repo_name: &str,
        from: i64,
        to: i64,
        exclude_bots: bool,
    ) -> Result<u64, ClickHouseError> {
        let events = self.layout.table("events");
        let window = within(Window { from, to });
        let repo = quote(repo_name);
        let humans = if exclude_bots {
            format!(
                " AND id GLOBAL NOT IN (SELECT id FROM {events} WHERE type = 'PullRequestEvent'
                   AND repo_name = {repo} AND {window} AND {})",
                self.bot_sql()
            )
        } else {
            String::new()
        };
        let answer = self
            .query(&format!(
                "SELECT uniqExact(id) FROM {}
                 WHERE repo_name = {repo} AND {window} AND origin = {} AND archives = 0{humans}
                 FORMAT TabSeparated",
                self.layout.table("pr_openings"),
                crate::store::Origin::Import.code(),
            ))
            .await?;
        number(answer.trim_end(), &answer)
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

    /// The repositories with events of `event_type` in `[from, to)`, by how
    /// many, most first (ties by name), at most `limit`. A short ranking of
    /// PullRequestEvents is first tried from the hours' summaries
    /// ([`ClickHouse::top_pr_counts_between`]); otherwise the window's events
    /// are counted per repository (one range of the `(type, created_at)` key).
    pub(crate) async fn for_each_repo_count_between(
        &self,
        ranking: Ranking,
        mut visit: impl FnMut(&str, u64) -> bool,
    ) -> Result<(), ClickHouseError> {
        let Ranking {
            event_type,
            window,
            limit,
            exclude_bots,
        } = ranking;
        let Window { from, to } = window;
        if event_type == EventType::PullRequest
            && !exclude_bots
            && let Some(k) = limit
            && let Some(top) = self.top_pr_counts_between(from, to, k).await?
        {
            for (repo, count) in top {
                if !visit(&repo, count) {
                    break;
                }
            }
            return Ok(());
        }
        let limit = limit.map_or_else(String::new, |n| format!("LIMIT {n}"));
        let filter = Filter {
            repo_name: None,
            exclude_bots,
        };
        let sql = format!(
            "SELECT repo_name, count() AS n FROM {} WHERE type = {} AND {}{}
             GROUP BY repo_name ORDER BY n DESC, repo_name {limit} FORMAT TabSeparated",
            self.layout.table("events"),
            quote(event_type.as_str()),
            within(window),
            self.filter_sql(&filter),
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
    pub(super) async fn rows_around(
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
    pub(super) async fn pr_counts_of(
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
        for line in self.query_long(&sql).await?.lines() {
            let [repo, total] = fields::<2>(line)?;
            let repo = read_tsv(repo).ok_or_else(|| bad(line))?;
            sums.insert(repo, number(total, line)?);
        }
        Ok(sums)
    }

    /// A digest of `pr_counts`' active parts on every shard: any insert or
    /// merge changes it.
    pub(super) async fn pr_counts_parts(&self) -> Result<String, ClickHouseError> {
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
        let Some(span) = self.span().await? else {
            return Ok(Totals::default());
        };
        let answer = self
            .query(&format!(
                "SELECT origin, count(), countIf({}) FROM {} GROUP BY origin FORMAT TabSeparated",
                self.bot_sql(),
                self.layout.table("events")
            ))
            .await?;
        let mut by_origin = [0u64; 4];
        let mut bot_events = 0;
        for line in answer.lines() {
            let [origin, count, bots] = fields::<3>(line)?;
            let origin: usize = number(origin, line)?;
            if let Some(slot) = by_origin.get_mut(origin) {
                *slot = number(count, line)?;
            }
            bot_events += number::<u64>(bots, line)?;
        }
        Ok(Totals {
            events: span.events,
            bot_events,
            by_origin,
            oldest_event_at: span.oldest,
            newest_event_at: span.newest,
        })
    }

    /// See [`crate::store::Store::oldest_event_at`].
    pub async fn oldest_event_at(&self) -> Result<Option<i64>, ClickHouseError> {
        Ok(self.span().await?.and_then(|span| span.oldest))
    }

    /// How many events are stored and the oldest's and newest's times;
    /// `None` when none is: the minute rollup's first and last minutes, then
    /// two short ranges of the events' time.
    async fn span(&self) -> Result<Option<Span>, ClickHouseError> {
        let minutes = self.layout.table("event_counts_by_minute");
        let answer = self
            .query(&format!(
                "SELECT sum(events), min(minute), max(minute)
                 FROM (SELECT minute, sum(events) AS events FROM {minutes} GROUP BY minute HAVING events > 0)
                 FORMAT TabSeparated"
            ))
            .await?;
        let line = answer.trim_end();
        let [events, first_minute, last_minute] = fields::<3>(line)?;
        let events: i64 = number(events, line)?;
        let first_minute: i64 = number(first_minute, line)?;
        let last_minute: i64 = number(last_minute, line)?;
        if events <= 0 {
            return Ok(None);
        }
        let events_table = self.layout.table("events");
        let answer = self
            .query(&format!(
                "SELECT
                   (SELECT toUInt32(min(created_at)) FROM {events_table} WHERE created_at < toDateTime({})),
                   (SELECT toUInt32(max(created_at)) FROM {events_table} WHERE created_at >= toDateTime({}))
                 FORMAT TabSeparated",
                (first_minute + 1) * SECONDS_PER_MINUTE,
                last_minute * SECONDS_PER_MINUTE
            ))
            .await?;
        let line = answer.trim_end();
        let [oldest, newest] = fields::<2>(line)?;
        // 0: no row in the range (a delete in progress).
        let (oldest, newest): (i64, i64) = (number(oldest, line)?, number(newest, line)?);
        Ok(Some(Span {
            events: events as u64,
            oldest: (oldest > 0).then_some(oldest),
            newest: (newest > 0).then_some(newest),
        }))
    }
}

/// What [`ClickHouse::span`] finds.
struct Span {
    events: u64,
    oldest: Option<i64>,
    newest: Option<i64>,
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
