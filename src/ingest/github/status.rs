//! The poller's report for `/health`, kept current after every poll, and the
//! Prometheus counters each poll feeds.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::outcome::{FailureKind, Outcome, PollError, PollOutcome};
use crate::store::InsertStats;
use crate::telemetry::{RateLimitWait, Telemetry};

/// What `/health` reports about polling.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PollReport {
    /// When the last poll of the global feed finished, successfully or not.
    pub last_poll_at: Option<DateTime<Utc>>,
    /// Why the last global poll failed (a kind, no details: those are in
    /// the log); `None` after a success.
    pub last_poll_error: Option<FailureKind>,
    /// The same failure said for a person ([`PollError::problem`]).
    pub last_poll_problem: Option<&'static str>,
    /// Global polls finished since start, successful or not.
    pub polls: u64,
    /// Global polls in a row that failed, up to the last one.
    pub consecutive_failures: u64,
    /// Events this process stored since start, from every feed.
    pub events_inserted: u64,
    /// Tracked events skipped since start because they could not be parsed.
    pub events_malformed: u64,
}

/// The poller's shared, always-current [`PollReport`] (subscribers, such as
/// tests, are woken after every poll), and the Prometheus counters it feeds.
#[derive(Debug)]
pub struct PollStatus {
    report: watch::Sender<PollReport>,
    /// Bumped after every poll: answers that show the report are exact while
    /// it stays the same.
    generation: std::sync::atomic::AtomicU64,
    telemetry: Arc<Telemetry>,
}

impl Default for PollStatus {
    fn default() -> Self {
        PollStatus::new(Arc::default())
    }
}

impl PollStatus {
    pub fn new(telemetry: Arc<Telemetry>) -> Self {
        PollStatus {
            report: watch::Sender::new(PollReport::default()),
            generation: std::sync::atomic::AtomicU64::new(0),
            telemetry,
        }
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    pub fn snapshot(&self) -> PollReport {
        self.report.borrow().clone()
    }

    /// Changes after every poll.
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A receiver that sees each new report.
    pub fn subscribe(&self) -> watch::Receiver<PollReport> {
        self.report.subscribe()
    }

    /// Counts what a poll of any feed stored; `last_poll_*` and `polls` follow
    /// the global feed only.
    pub(super) fn record(&self, result: &Result<PollOutcome, PollError>, global_feed: bool) {
        let (stored, malformed) = match result {
            Ok(outcome) => (outcome.stored, outcome.malformed),
            Err(PollError::Fetch { stored, .. }) => (*stored, 0),
            Err(PollError::Store(_)) => (InsertStats::default(), 0),
        };
        self.telemetry
            .events_stored(stored.inserted_by_type, stored.duplicates, malformed);
        let outcome = Outcome::of(result);
        if let Err(error) = result {
            self.telemetry.poll_error(error.kind().as_str());
            if let Some(wait) = error.requested_wait() {
                self.telemetry.rate_limit_wait(RateLimitWait::Refused, wait);
            }
        }
        self.telemetry.poll(global_feed, outcome.as_str());
        self.report.send_modify(|report| {
            report.events_inserted += stored.inserted();
            report.events_malformed += malformed;
            if global_feed {
                report.last_poll_at = Some(Utc::now());
                report.polls += 1;
                report.last_poll_error = result.as_ref().err().map(PollError::kind);
                report.last_poll_problem = result.as_ref().err().map(PollError::problem);
                report.consecutive_failures = match result {
                    Ok(_) => 0,
                    Err(_) => report.consecutive_failures + 1,
                };
            }
        });
        // After the report: a reader that sees the new generation sees it.
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
    }
}
