//! The poller: [`Poller::poll_once`] does one round (every page, conditional on
//! the last ETag, all new events in one transaction); [`Poller::run`] repeats it,
//! sleeping as long as GitHub asks, backing off on failures, until cancelled.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{FetchError, GithubClient, PageResponse};
use crate::config::PollerConfig;
use crate::db::{Db, DbError, InsertStats, insert_events};
use crate::event::{Event, parse_event};

/// Most pages followed in one poll. GitHub serves 3 today; the cap only guards
/// against a server whose `Link` headers never end.
const MAX_PAGES: u32 = 100;

/// What one successful poll did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollOutcome {
    /// Pages fetched (0 when page 1 answered `304 Not Modified`).
    pub pages: u32,
    /// Events of every type received.
    pub received: u64,
    /// Events of untracked types, skipped.
    pub untracked: u64,
    /// Tracked events that could not be parsed, skipped.
    pub malformed: u64,
    pub stored: InsertStats,
    /// How long GitHub asks us to wait before the next poll.
    pub next_poll_in: Duration,
}

impl PollOutcome {
    fn empty() -> Self {
        PollOutcome {
            pages: 0,
            received: 0,
            untracked: 0,
            malformed: 0,
            stored: InsertStats::default(),
            next_poll_in: Duration::ZERO,
        }
    }

    pub fn not_modified(&self) -> bool {
        self.pages == 0
    }
}

/// Why a poll failed. Events from the pages fetched before a failure are kept.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("page {page}: {source}")]
    Fetch {
        page: u32,
        source: FetchError,
        /// What the pages before the failing one stored.
        stored: InsertStats,
    },
    #[error("storing events: {0}")]
    Store(#[from] DbError),
}

impl PollError {
    /// The wait GitHub asked for (rate limits), if any; otherwise back off.
    pub fn requested_wait(&self) -> Option<Duration> {
        match self {
            PollError::Fetch { source, .. } => source.requested_wait(),
            PollError::Store(_) => None,
        }
    }
}

/// What `/health` reports about polling.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct PollReport {
    /// When the last poll finished, successfully or not.
    pub last_poll_at: Option<DateTime<Utc>>,
    /// Why the last poll failed; `None` after a success.
    pub last_poll_error: Option<String>,
    /// Polls finished since start, successful or not.
    pub polls: u64,
    /// Events this process stored since start.
    pub events_inserted: u64,
    /// Tracked events skipped since start because they could not be parsed.
    pub events_malformed: u64,
}

/// The poller's shared, always-current [`PollReport`]; subscribers (tests, a
/// future dashboard) are woken after every poll.
#[derive(Debug)]
pub struct PollStatus(watch::Sender<PollReport>);

impl Default for PollStatus {
    fn default() -> Self {
        PollStatus(watch::Sender::new(PollReport::default()))
    }
}

impl PollStatus {
    pub fn snapshot(&self) -> PollReport {
        self.0.borrow().clone()
    }

    /// A receiver that sees each new report.
    pub fn subscribe(&self) -> watch::Receiver<PollReport> {
        self.0.subscribe()
    }

    fn record(&self, result: &Result<PollOutcome, PollError>) {
        self.0.send_modify(|report| {
            report.last_poll_at = Some(Utc::now());
            report.polls += 1;
            match result {
                Ok(outcome) => {
                    report.events_inserted += outcome.stored.inserted;
                    report.events_malformed += outcome.malformed;
                }
                Err(PollError::Fetch { stored, .. }) => report.events_inserted += stored.inserted,
                Err(PollError::Store(_)) => {}
            }
            report.last_poll_error = result.as_ref().err().map(ToString::to_string);
        });
    }
}

/// Exponential backoff with jitter for consecutive failures.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            failures: 0,
        }
    }

    /// The wait after one more failure: `base * 2^failures`, capped at `max`, then
    /// jittered down by up to half so that many clients do not retry in step.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(self.failures))
            .min(self.max);
        self.failures = self.failures.saturating_add(1);
        ceiling.mul_f64(1.0 - fastrand::f64() / 2.0)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// Polls `GET /events` into the database.
pub struct Poller {
    client: GithubClient,
    db: Db,
    status: Arc<PollStatus>,
    backoff: Backoff,
    /// ETag of the last complete poll's first page.
    etag: Option<String>,
}

impl Poller {
    pub fn new(
        config: &PollerConfig,
        db: Db,
        status: Arc<PollStatus>,
    ) -> Result<Self, reqwest::Error> {
        Ok(Poller {
            client: GithubClient::new(config)?,
            db,
            status,
            backoff: Backoff::new(config.backoff_base, config.backoff_max),
            etag: None,
        })
    }

    /// One round: every page of the feed, then one transaction for all new events.
    pub async fn poll_once(&mut self) -> Result<PollOutcome, PollError> {
        let first = self.client.endpoint("events?per_page=100");
        let mut outcome = PollOutcome::empty();
        let mut events = Vec::new();
        let mut next = Some(first);
        let mut first_etag = None;
        let mut failure = None;
        let mut visited: Vec<Url> = Vec::new();

        while let Some(url) = next.take() {
            let page_number = outcome.pages + 1;
            let etag = if page_number == 1 {
                self.etag.as_deref()
            } else {
                None
            };
            let page = match self.client.fetch_page(&url, etag).await {
                Ok(PageResponse::NotModified(hints)) => {
                    outcome.next_poll_in = hints.next_poll_in();
                    break;
                }
                Ok(PageResponse::Modified(page)) => page,
                Err(source) => {
                    failure = Some(PollError::Fetch {
                        page: page_number,
                        source,
                        stored: InsertStats::default(),
                    });
                    break;
                }
            };
            outcome.pages = page_number;
            if page_number == 1 {
                first_etag = page.etag.clone();
                outcome.next_poll_in = page.hints.next_poll_in();
            }
            if let Err(source) = parse_page(&page.body, &mut events, &mut outcome) {
                failure = Some(PollError::Fetch {
                    page: page_number,
                    source,
                    stored: InsertStats::default(),
                });
                break;
            }
            visited.push(url);
            next = page.next.filter(|next| !visited.contains(next));
            if page.hints.rate_limit_wait.is_some() && next.is_some() {
                // Asking for the next page now would only earn a 403.
                outcome.next_poll_in = outcome.next_poll_in.max(page.hints.next_poll_in());
                tracing::warn!(
                    "rate limit exhausted in the middle of a poll; the rest waits for the next one"
                );
                first_etag = None;
                break;
            }
            if outcome.pages >= MAX_PAGES {
                tracing::warn!(pages = MAX_PAGES, "stopped following Link headers");
                break;
            }
        }

        if !events.is_empty() {
            outcome.stored = self
                .db
                .run(move |conn| insert_events(conn, &events))
                .await?;
        }
        match failure {
            Some(mut error) => {
                if let PollError::Fetch { stored, .. } = &mut error {
                    *stored = outcome.stored;
                }
                Err(error)
            }
            None => {
                if outcome.pages > 0 {
                    // Remembered only once everything is stored, so a poll that
                    // failed half-way is fetched again in full.
                    self.etag = first_etag;
                }
                Ok(outcome)
            }
        }
    }

    /// Polls until `cancel` fires. A transaction in flight when it fires still
    /// completes (see [`Db::run`]).
    pub async fn run(mut self, cancel: CancellationToken) {
        tracing::info!(url = %self.client.endpoint("events"), "poller started");
        loop {
            let result = tokio::select! {
                _ = cancel.cancelled() => break,
                result = self.poll_once() => result,
            };
            let wait = self.after_poll(&result);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("poller stopped");
    }

    /// Logs and records a poll's result; returns how long to wait before the next.
    fn after_poll(&mut self, result: &Result<PollOutcome, PollError>) -> Duration {
        self.status.record(result);
        match result {
            Ok(outcome) => {
                self.backoff.reset();
                if outcome.not_modified() {
                    tracing::debug!(
                        next_poll_in_s = outcome.next_poll_in.as_secs(),
                        "no new events (304)"
                    );
                } else {
                    tracing::info!(
                        pages = outcome.pages,
                        received = outcome.received,
                        inserted = outcome.stored.inserted,
                        duplicates = outcome.stored.duplicates,
                        malformed = outcome.malformed,
                        next_poll_in_s = outcome.next_poll_in.as_secs(),
                        "poll done"
                    );
                }
                outcome.next_poll_in
            }
            Err(error) => {
                let wait = error
                    .requested_wait()
                    .unwrap_or_else(|| self.backoff.next_wait());
                tracing::warn!(error = %error, retry_in_ms = wait.as_millis() as u64, "poll failed");
                wait
            }
        }
    }
}

/// Parses one page body (a JSON array of events) into `events`, counting what it skips.
fn parse_page(
    body: &[u8],
    events: &mut Vec<Event>,
    outcome: &mut PollOutcome,
) -> Result<(), FetchError> {
    let items: Vec<&RawValue> = serde_json::from_slice(body)
        .map_err(|e| FetchError::MalformedBody(format!("expected a JSON array of events: {e}")))?;
    outcome.received += items.len() as u64;
    for item in items {
        match parse_event(item.get()) {
            Ok(Some(event)) => events.push(event),
            Ok(None) => outcome.untracked += 1,
            Err(reason) => {
                outcome.malformed += 1;
                tracing::warn!(%reason, "skipped a malformed event");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        let mut backoff = Backoff::new(base, max);
        let ceilings = [2, 4, 8, 16, 32, 60, 60, 60];
        for ceiling in ceilings {
            let wait = backoff.next_wait();
            let ceiling = Duration::from_secs(ceiling);
            assert!(
                wait <= ceiling && wait >= ceiling / 2,
                "{wait:?} vs {ceiling:?}"
            );
        }
        backoff.reset();
        assert!(backoff.next_wait() <= base);
    }

    #[test]
    fn a_page_that_is_not_an_array_is_rejected_whole() {
        let mut events = Vec::new();
        let mut outcome = PollOutcome::empty();
        for body in [&b"{\"message\":\"x\"}"[..], b"[{\"id\":", b"<html>", b""] {
            assert!(matches!(
                parse_page(body, &mut events, &mut outcome),
                Err(FetchError::MalformedBody(_))
            ));
        }
        let mixed = br#"[{"id":"1","type":"WatchEvent","repo":{"name":"a/b"},"created_at":"2020-01-01T00:00:00Z","payload":{"action":"started"}},
                        {"type":"WatchEvent"}, 7,
                        {"id":"2","type":"PushEvent","repo":{"name":"a/b"},"created_at":"2020-01-01T00:00:00Z"}]"#;
        parse_page(mixed, &mut events, &mut outcome).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (outcome.received, outcome.malformed, outcome.untracked),
            (4, 2, 1)
        );
    }
}
