//! Proving a short pr-counts ranking over a window from each hour's busiest
//! repositories (`pr_hour_tops`), without counting every repository's events.
//!
//! A summary of an hour lists its busiest repositories with their counts and
//! a bound: the most any repository not listed has in that hour. Over the
//! window's whole hours, a repository listed in every one of them has a known
//! total; one missing from some hour is bounded by those hours' bounds; one
//! listed nowhere, by the sum of all bounds. The partial hours at the window's
//! ends are bounded by their whole hour's summary, and counted exactly from
//! the stored events for the few repositories that may rank ([`Plan::to_count`]).
//! The ranking holds when the k-th exact total exceeds every bound of the
//! repositories not counted ([`Plan::finish`]); otherwise the caller counts
//! everything as before.

use std::collections::{HashMap, HashSet};

use super::text::{bad, fields, number, push_tsv, quote, read_tsv};
use super::{ClickHouse, ClickHouseError};
use crate::core::time::{SECONDS_PER_HOUR, ceil_div};

/// Repositories listed per hour: enough that a day's hundred busiest are
/// listed in every one of its hours (not only on average), so that a ranking
/// of a hundred is proven.
pub const LISTED_PER_HOUR: usize = 1024;
/// The longest window (in hours) tried from the summaries; past it the
/// ranking's repositories seldom appear in every hour's list.
const MOST_HOURS: i64 = 7 * 24;
/// Hours summarised by one read of the stored events.
const HOURS_PER_READ: i64 = 6;

/// One hour's busiest repositories and the most any other one has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HourTop {
    pub listed: HashMap<String, u64>,
    pub bound: u64,
}

/// What is left to do for a ranking that the summaries may prove.
#[derive(Debug)]
pub struct Plan {
    k: usize,
    /// Repositories listed in every whole hour that may rank: their whole
    /// hours' total.
    counted: Vec<(String, u64)>,
    /// The most any other repository can have in the window.
    others_at_most: u64,
}

/// The plan for a ranking of `k` over whole hours `whole` and partial hours
/// `ends` (each bounded by its whole hour's summary), or `None` when the
/// summaries cannot prove one.
pub fn plan(k: usize, whole: &[HourTop], ends: &[HourTop]) -> Option<Plan> {
    if k == 0 {
        return None;
    }
    let bound_of_whole: u64 = whole.iter().map(|h| h.bound).sum();
    let bound_of_ends: u64 = ends.iter().map(|h| h.bound).sum();
    // Per repository, from the hours that list it: the whole hours' known
    // total and their bounds, and the partial hours' whole-hour counts and
    // their bounds.
    let mut listings: HashMap<&str, [u64; 4]> = HashMap::new();
    for (hours, at) in [(whole, 0), (ends, 2)] {
        for hour in hours {
            for (repo, &n) in &hour.listed {
                let sums = listings.entry(repo).or_default();
                sums[at] += n;
                sums[at + 1] += hour.bound;
            }
        }
    }
    // Per repository: known, the bounds of the whole hours that do not list
    // it, and the most the partial hours can add.
    let bounds: Vec<(&str, u64, u64, u64)> = listings
        .into_iter()
        .map(
            |(repo, [known, bounds_listed, at_ends, end_bounds_listed])| {
                let unknown = bound_of_whole - bounds_listed;
                (
                    repo,
                    known,
                    unknown,
                    at_ends + bound_of_ends - end_bounds_listed,
                )
            },
        )
        .collect();
    // Known in every whole hour: exact once the partial hours are counted.
    let mut lows: Vec<u64> = bounds.iter().filter(|b| b.2 == 0).map(|b| b.1).collect();
    if lows.len() < k {
        return None;
    }
    let (_, &mut kth_low, _) = lows.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    // Every repository not counted must stay below the k-th counted total,
    // which is at least `kth_low`: the most of them is checked at the end.
    let mut others_at_most = bound_of_whole + bound_of_ends;
    let mut counted = Vec::new();
    for (repo, known, unknown, at_ends) in bounds {
        let most = known + unknown + at_ends;
        if unknown == 0 && most >= kth_low {
            counted.push((repo.to_owned(), known));
        } else {
            others_at_most = others_at_most.max(most);
        }
    }
    // Without partial hours the totals are the known ones, whose k-th is
    // `kth_low`: decided now.
    (others_at_most < kth_low || !ends.is_empty()).then_some(Plan {
        k,
        counted,
        others_at_most,
    })
}

impl Plan {
    /// The repositories whose events in the partial hours must be counted.
    pub fn to_count(&self) -> impl Iterator<Item = &str> {
        self.counted.iter().map(|(repo, _)| repo.as_str())
    }

    /// The ranking, given the partial hours' counts of [`Plan::to_count`]'s
    /// repositories (absent: none), or `None` if it is not proven.
    pub fn finish(self, at_ends: &HashMap<String, u64>) -> Option<Vec<(String, u64)>> {
        let mut totals: Vec<(String, u64)> = self
            .counted
            .into_iter()
            .map(|(repo, known)| {
                let total = known + at_ends.get(&repo).copied().unwrap_or(0);
                (repo, total)
            })
            .collect();
        totals.sort_unstable_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
        let &(_, kth) = totals.get(self.k - 1)?;
        if kth <= self.others_at_most {
            return None;
        }
        totals.truncate(self.k);
        Some(totals)
    }
}

impl ClickHouse {
    /// The `k` repositories with the most PullRequestEvents in `[from, to)`,
    /// proven from the hours' summaries (see the module), or `None` when
    /// they cannot prove it: an hour with events has no current summary,
    /// the window holds no whole hour or is longer than a week, or the
    /// bounds are too loose. The summaries must be current before and after
    /// the partial hours are counted (the hours' counts do not change).
    pub async fn top_pr_counts_between(
        &self,
        from: i64,
        to: i64,
        k: u64,
    ) -> Result<Option<Vec<(String, u64)>>, ClickHouseError> {
        let (first, end) = (
            ceil_div(from, SECONDS_PER_HOUR),
            to.div_euclid(SECONDS_PER_HOUR),
        );
        let k = usize::try_from(k).unwrap_or(usize::MAX);
        if first >= end || end - first > MOST_HOURS || k > LISTED_PER_HOUR || from < 0 {
            return Ok(None);
        }
        let head = from < first * SECONDS_PER_HOUR;
        let tail = to > end * SECONDS_PER_HOUR;
        let (low, high) = (first - i64::from(head), end - i64::from(!tail));
        let (counts, mut summaries) =
            tokio::try_join!(self.hour_pr_counts(low, high), self.summaries(low, high))?;
        let (mut whole, mut ends) = (Vec::new(), Vec::new());
        for (&hour, &count) in &counts {
            let Some(summary) = summaries.remove(&(hour, count)) else {
                return Ok(None);
            };
            if (head && hour == low) || (tail && hour == high) {
                ends.push(summary);
            } else {
                whole.push(summary);
            }
        }
        let Some(plan) = plan(k, &whole, &ends) else {
            return Ok(None);
        };
        // The partial hours' counts, and the hours' counts again: the
        // summaries were current all along.
        let partial = [
            (from, first * SECONDS_PER_HOUR),
            (end * SECONDS_PER_HOUR, to),
        ];
        let (at_ends, now) = self
            .pr_counts_in(&partial, plan.to_count(), (low, high))
            .await?;
        if now != counts {
            return Ok(None);
        }
        Ok(plan.finish(&at_ends))
    }

    /// PullRequestEvents per hour from `low` to `high` (inclusive), hours
    /// without any left out: from the minute rollup.
    async fn hour_pr_counts(
        &self,
        low: i64,
        high: i64,
    ) -> Result<HashMap<i64, u64>, ClickHouseError> {
        let answer = self
            .query(&format!(
                "{} FORMAT TabSeparated",
                self.hour_pr_counts_sql(low, high)
            ))
            .await?;
        let mut counts = HashMap::new();
        for line in answer.lines() {
            let [_, _, hour, n] = fields::<4>(line)?;
            counts.insert(number(hour, line)?, number(n, line)?);
        }
        Ok(counts)
    }

    /// The query of [`ClickHouse::hour_pr_counts`], its rows `(1, '', hour, n)`.
    fn hour_pr_counts_sql(&self, low: i64, high: i64) -> String {
        format!(
            "SELECT toUInt8(1), '', toInt64(intDiv(minute, 60)) AS hour, toInt64(sum(events)) AS n
             FROM {} WHERE type = 'PullRequestEvent' AND minute >= {} AND minute < {}
             GROUP BY hour HAVING n > 0",
            self.layout.table("event_counts_by_minute"),
            low.max(0) * 60,
            (high + 1).clamp(0, i64::from(u32::MAX) / 60) * 60,
        )
    }

    /// The summaries of the hours from `low` to `high`, by hour and the
    /// count they were made at.
    async fn summaries(
        &self,
        low: i64,
        high: i64,
    ) -> Result<HashMap<(i64, u64), HourTop>, ClickHouseError> {
        let answer = self
            .query(&format!(
                "SELECT hour, pr_events, repo_name, events FROM {}
                 WHERE hour >= {} AND hour <= {} FORMAT TabSeparated",
                self.layout.table("pr_hour_tops"),
                low.max(0),
                high.max(0),
            ))
            .await?;
        let mut summaries: HashMap<(i64, u64), (HourTop, bool)> = HashMap::new();
        for line in answer.lines() {
            let [hour, pr_events, repo, events] = fields::<4>(line)?;
            let key = (number(hour, line)?, number(pr_events, line)?);
            let repo = read_tsv(repo).ok_or_else(|| bad(line))?;
            let events: u64 = number(events, line)?;
            let (summary, complete) = summaries.entry(key).or_default();
            if repo.is_empty() {
                summary.bound = events;
                *complete = true;
            } else {
                summary.listed.insert(repo, events);
            }
        }
        // A summary is written whole; one whose bound row is not there yet
        // is not used.
        Ok(summaries
            .into_iter()
            .filter(|(_, (_, complete))| *complete)
            .map(|(key, (summary, _))| (key, summary))
            .collect())
    }

    /// In one read: the PullRequestEvents of each of `repos` in the `ranges`
    /// of time, and [`ClickHouse::hour_pr_counts`] from `low` to `high`.
    async fn pr_counts_in(
        &self,
        ranges: &[(i64, i64)],
        repos: impl Iterator<Item = &str>,
        (low, high): (i64, i64),
    ) -> Result<(HashMap<String, u64>, HashMap<i64, u64>), ClickHouseError> {
        let names: Vec<String> = repos.map(quote).collect();
        let when: Vec<String> = ranges
            .iter()
            .filter(|(from, to)| from < to)
            .map(|(from, to)| {
                format!("(created_at >= toDateTime({from}) AND created_at < toDateTime({to}))")
            })
            .collect();
        let mut sql = self.hour_pr_counts_sql(low, high);
        if !names.is_empty() && !when.is_empty() {
            sql = format!(
                "SELECT toUInt8(0), repo_name, toInt64(0), toInt64(count()) FROM {}
                 WHERE type = 'PullRequestEvent' AND ({}) AND repo_name IN ({})
                 GROUP BY repo_name
                 UNION ALL {sql}",
                self.layout.table("events"),
                when.join(" OR "),
                names.join(",")
            );
        }
        let (mut counts, mut hours) = (HashMap::new(), HashMap::new());
        for line in self
            .query_long(&format!("{sql} FORMAT TabSeparated"))
            .await?
            .lines()
        {
            let [what, repo, hour, n] = fields::<4>(line)?;
            if what == "1" {
                hours.insert(number(hour, line)?, number(n, line)?);
            } else {
                counts.insert(read_tsv(repo).ok_or_else(|| bad(line))?, number(n, line)?);
            }
        }
        Ok((counts, hours))
    }

    /// Summarises every finished hour whose summary is missing or no longer
    /// current; returns how many it summarised. An hour whose count changes
    /// while it is read is left for the next time.
    pub(super) async fn summarize_hours(&self, now: i64) -> Result<usize, ClickHouseError> {
        let finished = now.div_euclid(SECONDS_PER_HOUR) - 1;
        let counts = self.hour_pr_counts(0, finished).await?;
        let current = self
            .query(&format!(
                "SELECT DISTINCT hour, pr_events FROM {} WHERE repo_name = '' FORMAT TabSeparated",
                self.layout.table("pr_hour_tops")
            ))
            .await?;
        let mut summarized = HashSet::new();
        for line in current.lines() {
            let [hour, pr_events] = fields::<2>(line)?;
            summarized.insert((number::<i64>(hour, line)?, number::<u64>(pr_events, line)?));
        }
        let mut stale: Vec<i64> = counts
            .iter()
            .filter(|&(&hour, &n)| !summarized.contains(&(hour, n)))
            .map(|(&hour, _)| hour)
            .collect();
        stale.sort_unstable();
        let mut done = 0;
        let mut rest = stale.as_slice();
        while let Some(&low) = rest.first() {
            let run = rest.partition_point(|&h| h < low + HOURS_PER_READ);
            let (these, later) = rest.split_at(run);
            rest = later;
            done += self.summarize(these, &counts).await?;
        }
        Ok(done)
    }

    /// Summarises `hours` (sorted, within [`HOURS_PER_READ`]) from the
    /// stored events, keeping those whose count is still `counts`'.
    async fn summarize(
        &self,
        hours: &[i64],
        counts: &HashMap<i64, u64>,
    ) -> Result<usize, ClickHouseError> {
        let (Some(&low), Some(&high)) = (hours.first(), hours.last()) else {
            return Ok(0);
        };
        let answer = self
            .query(&format!(
                "SELECT hour, repo_name, n FROM (
                     SELECT intDiv(toUInt32(created_at), 3600) AS hour, repo_name, count() AS n
                     FROM {} WHERE type = 'PullRequestEvent'
                       AND created_at >= toDateTime({}) AND created_at < toDateTime({})
                     GROUP BY hour, repo_name)
                 ORDER BY hour, n DESC, repo_name LIMIT {} BY hour FORMAT TabSeparated",
                self.layout.table("events"),
                low * SECONDS_PER_HOUR,
                (high + 1) * SECONDS_PER_HOUR,
                LISTED_PER_HOUR + 1,
            ))
            .await?;
        let after = self.hour_pr_counts(low, high).await?;
        let mut rows = Vec::new();
        let mut listed: HashMap<i64, usize> = HashMap::new();
        let mut push = |hour: i64, count: u64, repo: &str, events: u64| {
            rows.extend_from_slice(format!("{hour}\t{count}\t").as_bytes());
            push_tsv(&mut rows, Some(repo));
            rows.extend_from_slice(format!("\t{events}\n").as_bytes());
        };
        let unchanged = |hour: i64| {
            hours.binary_search(&hour).is_ok()
                && counts
                    .get(&hour)
                    .is_some_and(|n| after.get(&hour) == Some(n))
        };
        let mut bounds: HashMap<i64, u64> = HashMap::new();
        for line in answer.lines() {
            let [hour, repo, n] = fields::<3>(line)?;
            let hour: i64 = number(hour, line)?;
            if !unchanged(hour) {
                continue;
            }
            let place = listed.entry(hour).or_default();
            let n: u64 = number(n, line)?;
            if *place == LISTED_PER_HOUR {
                bounds.insert(hour, n);
            } else {
                *place += 1;
                push(
                    hour,
                    counts[&hour],
                    &read_tsv(repo).ok_or_else(|| bad(line))?,
                    n,
                );
            }
        }
        for &hour in listed.keys() {
            push(
                hour,
                counts[&hour],
                "",
                bounds.get(&hour).copied().unwrap_or(0),
            );
        }
        if !listed.is_empty() {
            self.insert("pr_hour_tops", "hour, pr_events, repo_name, events", rows)
                .await?;
        }
        Ok(listed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An hour's summary of `counts` listing at most `listed`, as
    /// [`ClickHouse::summarize`] makes it.
    fn summary(counts: &HashMap<String, u64>, listed: usize) -> HourTop {
        let mut ranked: Vec<(String, u64)> = counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| (r.clone(), *n))
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        HourTop {
            bound: ranked.get(listed).map_or(0, |(_, n)| *n),
            listed: ranked.into_iter().take(listed).collect(),
        }
    }

    /// Per repository of a small alphabet, a skewed count.
    fn hour() -> impl Strategy<Value = HashMap<String, u64>> {
        prop::collection::hash_map(0u8..30, 0u64..40, 0..25).prop_map(|counts| {
            counts
                .into_iter()
                .map(|(r, n)| (format!("r{r:02}"), n * n / (u64::from(r) + 1)))
                .collect()
        })
    }

    fn ranking(totals: HashMap<String, u64>, k: usize) -> Vec<(String, u64)> {
        let mut ranked: Vec<(String, u64)> = totals.into_iter().filter(|(_, n)| *n > 0).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(k);
        ranked
    }

    proptest! {
        /// Whatever the hours, a ranking the summaries prove is the one
        /// counting every event gives: whole hours, and partial hours at
        /// the ends holding part of their hour's events.
        #[test]
        fn a_proven_ranking_is_the_counted_one(
            whole in prop::collection::vec(hour(), 1..6),
            ends in prop::collection::vec((hour(), 0u64..=100), 0..=2),
            listed in 1usize..8,
            k in 1usize..6,
        ) {
            let mut totals: HashMap<String, u64> = HashMap::new();
            for hour in &whole {
                for (repo, n) in hour {
                    *totals.entry(repo.clone()).or_default() += n;
                }
            }
            // The partial hours hold `share` percent of each count, rounded down.
            let mut at_ends: HashMap<String, u64> = HashMap::new();
            for (hour, share) in &ends {
                for (repo, n) in hour {
                    let part = n * share / 100;
                    *totals.entry(repo.clone()).or_default() += part;
                    *at_ends.entry(repo.clone()).or_default() += part;
                }
            }
            let whole_tops: Vec<HourTop> = whole.iter().map(|h| summary(h, listed)).collect();
            let end_tops: Vec<HourTop> = ends.iter().map(|(h, _)| summary(h, listed)).collect();
            if let Some(plan) = plan(k, &whole_tops, &end_tops) {
                let asked: HashMap<String, u64> = plan
                    .to_count()
                    .map(|repo| (repo.to_owned(), at_ends.get(repo).copied().unwrap_or(0)))
                    .collect();
                if let Some(proven) = plan.finish(&asked) {
                    prop_assert_eq!(proven, ranking(totals, k));
                }
            }
        }
    }

    /// A heavy head over a long tail, the usual shape: proven, and equal to
    /// counting everything.
    #[test]
    fn a_heavy_head_is_proven() {
        let hours: Vec<HashMap<String, u64>> = (0..24)
            .map(|h| {
                (1..=500u64)
                    .map(|r| (format!("r{r:03}"), (1000 / r + (h + r) % 3).max(1)))
                    .collect()
            })
            .collect();
        let mut totals: HashMap<String, u64> = HashMap::new();
        for hour in &hours {
            for (repo, n) in hour {
                *totals.entry(repo.clone()).or_default() += n;
            }
        }
        let tops: Vec<HourTop> = hours.iter().map(|h| summary(h, 40)).collect();
        let plan = plan(10, &tops, &[]).expect("a plan");
        assert_eq!(plan.finish(&HashMap::new()), Some(ranking(totals, 10)));
    }
}
