//! Proving a short pr-counts ranking from the top rows of the `pr_counts`
//! rollup, without summing every repository's rows.
//!
//! `pr_counts` holds, in each part, at most one row per repository (each
//! insert's materialized view groups by repository; merges sum them). Take a
//! threshold `R` and read (1) every row of at least `R`, with its part: the
//! candidates' visible rows, and (2) for each part, the largest and smallest
//! of its rows below `R`. A repository's total is then its visible rows plus
//! at most one hidden row in each part where it has no visible one, and that
//! hidden row lies between the part's smallest and largest below `R` (or is
//! absent: 0). That bounds every candidate from both sides, and every other
//! repository from above by the sum of the parts' largest rows below `R`.
//!
//! When the k-th largest lower bound `T` exceeds the bound of the others, the
//! ranking is among the candidates whose upper bound reaches `T`; those whose
//! bounds differ are summed exactly ([`Plan::to_sum`]) and the ranking follows
//! ([`Plan::finish`]). All reads must see the same parts (the caller checks
//! the parts' digest before and after).
//!
//! On a cluster two shards' parts may share a name, and a row's part name
//! does not say which shard it came from. So the parts are read by name: the
//! (2) read lists every part of every shard (extremes 0 where a part has no
//! row below `R`), and a candidate with `j` visible rows in parts named `n`
//! has them in `j` different parts of that name (one row per repository in
//! a part), so at most `m - j` of the `m` parts named `n` hide a row of it:
//! bounded by the `m - j` largest (and smallest) extremes among them. On one
//! server, where names are unique, that is "the parts where it has no row".

use std::collections::HashMap;

/// A row of `pr_counts` at or above the threshold.
#[derive(Clone, Debug)]
pub struct TopRow {
    pub repo: String,
    pub part: String,
    pub events: i64,
}

/// One part's rows below the threshold: their largest and smallest.
#[derive(Clone, Debug)]
pub struct PartBelow {
    pub part: String,
    pub max: i64,
    pub min: i64,
}

/// What is left to do for a ranking that the top rows prove.
#[derive(Debug)]
pub struct Plan {
    k: usize,
    /// Candidates that may rank, with their total when the bounds fix it.
    ranked: Vec<(String, Option<i64>)>,
}

/// The plan for a ranking of `k` from the rows at or above the threshold and
/// every part's rows below it, or `None` when they cannot prove one.
pub fn plan(k: usize, rows: &[TopRow], below: &[PartBelow]) -> Option<Plan> {
    let names = Namesakes::of(below);
    let others_at_most: i64 = below.iter().map(|p| p.max.max(0)).sum();
    let others_at_least: i64 = below.iter().map(|p| p.min.min(0)).sum();
    // Each candidate's visible total and how many of its rows each part name holds.
    let mut candidates: HashMap<&str, (i64, HashMap<&str, usize>)> = HashMap::new();
    for row in rows {
        let (total, seen) = candidates.entry(&row.repo).or_default();
        *total += row.events;
        *seen.entry(&row.part).or_default() += 1;
    }
    let bounds: Vec<(&str, i64, i64)> = candidates
        .into_iter()
        .map(|(repo, (visible, seen))| {
            // Start from "a hidden row in every part", then for each name
            // where it has visible rows keep only the worst parts that can
            // still hide one.
            let (mut low, mut high) = (others_at_least, others_at_most);
            for (name, visible_rows) in seen {
                let (all_low, all_high) = names.hiding(name, 0);
                let (some_low, some_high) = names.hiding(name, visible_rows);
                low += some_low - all_low;
                high += some_high - all_high;
            }
            (repo, visible + low, visible + high)
        })
        .collect();
    if bounds.len() < k || k == 0 {
        return None;
    }
    let mut lows: Vec<i64> = bounds.iter().map(|&(_, low, _)| low).collect();
    let (_, &mut kth_low, _) = lows.select_nth_unstable_by(k - 1, |a, b| b.cmp(a));
    if kth_low <= others_at_most {
        return None;
    }
    let ranked = bounds
        .into_iter()
        .filter(|&(_, _, high)| high >= kth_low)
        .map(|(repo, low, high)| (repo.to_owned(), (low == high).then_some(low)))
        .collect();
    Some(Plan { k, ranked })
}

/// The parts below the threshold grouped by name, each name's extremes
/// sorted worst first, as running sums.
struct Namesakes<'a> {
    /// Per name: running sums of the largest rows below (clipped at 0,
    /// largest first) and of the smallest (clipped at 0, smallest first).
    sums: HashMap<&'a str, (Vec<i64>, Vec<i64>)>,
}

impl<'a> Namesakes<'a> {
    fn of(below: &'a [PartBelow]) -> Self {
        let mut extremes: HashMap<&str, (Vec<i64>, Vec<i64>)> = HashMap::new();
        for part in below {
            let (maxes, mins) = extremes.entry(&part.part).or_default();
            maxes.push(part.max.max(0));
            mins.push(part.min.min(0));
        }
        let running = |mut values: Vec<i64>, worst_first: fn(&i64, &i64) -> std::cmp::Ordering| {
            values.sort_unstable_by(worst_first);
            values
                .iter()
                .scan(0, |sum, v| {
                    *sum += v;
                    Some(*sum)
                })
                .collect()
        };
        let sums = extremes
            .into_iter()
            .map(|(name, (maxes, mins))| {
                let maxes = running(maxes, |a, b| b.cmp(a));
                let mins = running(mins, |a, b| a.cmp(b));
                (name, (maxes, mins))
            })
            .collect();
        Namesakes { sums }
    }

    /// The bounds (low, high) on what the parts named `name` hide of a
    /// repository with `visible` rows in them.
    fn hiding(&self, name: &str, visible: usize) -> (i64, i64) {
        let Some((maxes, mins)) = self.sums.get(name) else {
            return (0, 0);
        };
        match maxes.len().saturating_sub(visible) {
            0 => (0, 0),
            n => (mins[n - 1], maxes[n - 1]),
        }
    }
}

impl Plan {
    /// The candidates whose totals must be summed.
    pub fn to_sum(&self) -> impl Iterator<Item = &str> {
        self.ranked
            .iter()
            .filter(|(_, total)| total.is_none())
            .map(|(repo, _)| repo.as_str())
    }

    /// The ranking, given the totals of [`Plan::to_sum`]'s repositories, or
    /// `None` if one is missing.
    pub fn finish(self, sums: &HashMap<String, i64>) -> Option<Vec<(String, u64)>> {
        let mut totals = Vec::with_capacity(self.ranked.len());
        for (repo, total) in self.ranked {
            let total = total.or_else(|| sums.get(&repo).copied())?;
            // The first k are above the others' bound, so above 0.
            if let Ok(total) = u64::try_from(total) {
                totals.push((repo, total));
            }
        }
        totals.sort_unstable_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
        totals.truncate(self.k);
        Some(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Parts of `(repo, events)` rows, at most one per repository in each.
    fn parts() -> impl Strategy<Value = Vec<HashMap<u8, i64>>> {
        prop::collection::vec(
            prop::collection::hash_map(0u8..40, prop_oneof![9 => 1i64..60, 1 => -20i64..0], 0..30),
            1..6,
        )
    }

    /// The ranking by summing everything: what pr-counts answers.
    fn summed(parts: &[HashMap<u8, i64>], k: usize) -> Vec<(String, u64)> {
        let mut totals: HashMap<String, i64> = HashMap::new();
        for part in parts {
            for (&repo, &events) in part {
                *totals.entry(format!("r{repo:02}")).or_default() += events;
            }
        }
        let mut ranking: Vec<(String, u64)> = totals
            .into_iter()
            .filter(|&(_, n)| n > 0)
            .map(|(repo, n)| (repo, n as u64))
            .collect();
        ranking.sort_unstable_by(|(a, x), (b, y)| y.cmp(x).then_with(|| a.cmp(b)));
        ranking.truncate(k);
        ranking
    }

    /// The two reads at threshold `r`, as the SQL makes them (every part
    /// listed, extremes 0 without a row below); on a "cluster", parts i and
    /// i + 1 (i even) share a name, as two shards' parts may.
    fn read(parts: &[HashMap<u8, i64>], r: i64, cluster: bool) -> (Vec<TopRow>, Vec<PartBelow>) {
        let name = |i: usize| format!("all_{}", if cluster { i / 2 } else { i });
        let mut rows = Vec::new();
        let mut below = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            let hidden = || part.values().copied().filter(|&e| e < r);
            below.push(PartBelow {
                part: name(i),
                max: hidden().max().unwrap_or(0),
                min: hidden().min().unwrap_or(0),
            });
            rows.extend(
                part.iter()
                    .filter(|&(_, &e)| e >= r)
                    .map(|(&repo, &events)| TopRow {
                        repo: format!("r{repo:02}"),
                        part: name(i),
                        events,
                    }),
            );
        }
        (rows, below)
    }

    proptest! {
        /// Whatever the parts and threshold, a proven ranking is the summed one.
        #[test]
        fn a_proven_ranking_is_the_summed_one(parts in parts(), r in 1i64..60, k in 1usize..12, cluster: bool) {
            let (rows, below) = read(&parts, r, cluster);
            if let Some(plan) = plan(k, &rows, &below) {
                let want = summed(&parts, k);
                let all = summed(&parts, usize::MAX);
                let sums: HashMap<String, i64> = plan
                    .to_sum()
                    .map(|repo| {
                        let n = all.iter().find(|(r, _)| r == repo).map_or(0, |&(_, n)| n as i64);
                        (repo.to_owned(), n)
                    })
                    .collect();
                // A repository with a total of 0 or less is not in `all`;
                // the plan only asks for ones that can reach the ranking.
                prop_assert_eq!(plan.finish(&sums), Some(want));
            }
        }
    }

    #[test]
    fn a_long_tail_is_proven_from_the_top_rows_alone_once_merged() {
        // One part: every candidate's total is its visible row.
        let part: HashMap<u8, i64> = (0..40).map(|r| (r, 1000 / (i64::from(r) + 1))).collect();
        let (rows, below) = read(std::slice::from_ref(&part), 100, false);
        let plan = plan(3, &rows, &below).unwrap();
        assert_eq!(plan.to_sum().count(), 0);
        let ranking = plan.finish(&HashMap::new()).unwrap();
        assert_eq!(ranking, summed(&[part], 3));
    }

    #[test]
    fn a_repository_split_over_many_parts_makes_it_unprovable() {
        // Ten parts each with one row of 9 for "r00" and one of 10 for r01..r10.
        let parts: Vec<HashMap<u8, i64>> =
            (1..=10).map(|r| HashMap::from([(0, 9), (r, 10)])).collect();
        let (rows, below) = read(&parts, 10, false);
        assert!(plan(1, &rows, &below).is_none());
        assert_eq!(summed(&parts, 1), [("r00".to_owned(), 90)]);
    }

    #[test]
    fn a_long_tail_on_two_merged_shards_is_proven_from_the_top_rows_alone() {
        // Each repository's events split over two shards, each merged into
        // one part, both named alike: a candidate with a visible row on
        // each is exact, one with a single visible row is bounded by the
        // larger of the two parts' largest rows below.
        let shard = |offset: i64| -> HashMap<u8, i64> {
            (0..40)
                .map(|r| (r, 1000 / (i64::from(r) + 1) + offset))
                .collect()
        };
        let parts = [shard(0), shard(3)];
        let (rows, below) = read(&parts, 100, true);
        let plan = plan(3, &rows, &below).unwrap();
        assert_eq!(plan.to_sum().count(), 0, "every candidate is exact");
        assert_eq!(plan.finish(&HashMap::new()).unwrap(), summed(&parts, 3));
    }
}
