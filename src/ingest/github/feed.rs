//! One feed's polling state, and whether consecutive polls of it overlapped.

use super::backoff::Backoff;
use crate::config::RepoName;
use crate::store::GLOBAL_FEED;

/// Which feed a [`Feed`] polls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FeedKind {
    /// `GET /events`: the newest public events of all GitHub.
    Global,
    /// `GET /repos/{owner}/{name}/events`: one watched repository.
    Repo(RepoName),
}

/// One feed's polling state.
#[derive(Debug)]
pub(super) struct Feed {
    pub(super) kind: FeedKind,
    /// ETag of the last complete poll's first page.
    pub(super) etag: Option<String>,
    /// The largest event id this feed has shown (kept across restarts).
    pub(super) newest_id: Option<i64>,
    pub(super) next_due: tokio::time::Instant,
    pub(super) backoff: Backoff,
    /// Pages the last poll fetched: what the next one books from the budget.
    pub(super) pages_last_poll: u32,
    /// Answered 404 or 451 last time (reported once, retried rarely).
    pub(super) unavailable: bool,
}

impl Feed {
    pub(super) fn name(&self) -> &str {
        match &self.kind {
            FeedKind::Global => GLOBAL_FEED,
            FeedKind::Repo(repo) => repo.as_str(),
        }
    }

    pub(super) fn path(&self) -> String {
        match &self.kind {
            FeedKind::Global => "events?per_page=100".to_owned(),
            FeedKind::Repo(repo) => format!("repos/{repo}/events?per_page=100"),
        }
    }
}

/// Whether a poll's answer reached back to what the feed showed before, from
/// the event ids (which grow over time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Continuity {
    /// Events in the answer newer than the previous newest.
    pub new_events: u64,
    /// `None` on a first poll: nothing to compare with.
    pub overlap: Option<bool>,
    /// With a gap: the ids strictly between the previous newest and the oldest
    /// received, an upper bound on the events never seen.
    pub missed_ids: Option<u64>,
}

pub fn continuity(previous_newest: Option<i64>, ids: &[i64]) -> Continuity {
    let (Some(previous), Some(&oldest)) = (previous_newest, ids.iter().min()) else {
        return Continuity {
            new_events: ids.len() as u64,
            overlap: None,
            missed_ids: None,
        };
    };
    let new_events = ids.iter().filter(|&&id| id > previous).count() as u64;
    // Seeing the previous newest again (or its successor) means nothing
    // between the two polls went by unseen.
    let overlap = oldest <= previous.saturating_add(1);
    Continuity {
        new_events,
        overlap: Some(overlap),
        missed_ids: (!overlap).then(|| oldest.abs_diff(previous) - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuity_finds_overlaps_and_gaps() {
        let first = continuity(None, &[105, 101, 103]);
        assert_eq!(
            (first.new_events, first.overlap, first.missed_ids),
            (3, None, None)
        );
        // Saw 100 again: overlap, two new events.
        let overlap = continuity(Some(100), &[102, 100, 101, 99]);
        assert_eq!(
            (overlap.new_events, overlap.overlap, overlap.missed_ids),
            (2, Some(true), None)
        );
        // 101 follows 100 directly: nothing missed.
        assert_eq!(continuity(Some(100), &[101, 102]).overlap, Some(true));
        // 101..=149 never seen.
        let gap = continuity(Some(100), &[150, 160]);
        assert_eq!(
            (gap.new_events, gap.overlap, gap.missed_ids),
            (2, Some(false), Some(49))
        );
        // An empty answer tells nothing.
        assert_eq!(continuity(Some(100), &[]).overlap, None);
    }
}
