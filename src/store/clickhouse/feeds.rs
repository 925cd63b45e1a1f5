//! The feeds' bookkeeping: one row per poll in `feed_polls` (the global
//! feed's coverage is read from it) and the watched repositories.

use std::collections::HashMap;
use std::io::Write as _;

use super::text::{bad, datetime, fields, number, push_tsv, quote, read_tsv};
use super::{ClickHouse, ClickHouseError};
use crate::store::{FeedCoverage, FeedPoll, GLOBAL_FEED};

impl ClickHouse {
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

    pub(super) async fn watched_since(
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
