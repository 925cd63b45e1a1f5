//! The poller: [`Poller::poll_feed`] does one round of one feed (every page,
//! conditional on the feed's last ETag, all new events in one transaction, one
//! `feed_polls` row); [`Poller::run`] schedules the global feed and every watched
//! repository's feed, each as often as GitHub asks, backing off on failures,
//! within the shared rate budget, until cancelled.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;
use serde_json::value::RawValue;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::client::{FetchError, GithubClient, PageResponse};
use crate::config::{PollerConfig, RepoName};
use crate::db::{
    Db, DbError, FeedPoll, GLOBAL_FEED, InsertStats, insert_events, newest_seen_id,
    record_feed_poll,
};
use crate::event::{Event, parse_event};
use crate::telemetry::{RateLimitWait, Telemetry};

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
    /// The ids of every event received (all types), for coverage.
    pub ids: Vec<i64>,
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
            ids: Vec::new(),
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
    /// 404 or 451: the repository is gone, renamed or blocked.
    fn unavailable(&self) -> bool {
        matches!(
            self,
            PollError::Fetch { source: FetchError::Status { status }, .. }
                if matches!(status.as_u16(), 404 | 451)
        )
    }

    /// A short name for the kind of failure, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            _ if self.unavailable() => "unavailable",
            PollError::Fetch { source, .. } => match source {
                FetchError::RateLimited { .. } => "rate_limited",
                FetchError::Status { .. } => "http_status",
                FetchError::Transport(error) if error.is_timeout() => "timeout",
                FetchError::Transport(_) => "transport",
                FetchError::MalformedBody(_) => "malformed_body",
                FetchError::TooLarge { .. } => "body_too_large",
            },
            PollError::Store(_) => "store",
        }
    }

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
    /// When the last poll of the global feed finished, successfully or not.
    pub last_poll_at: Option<DateTime<Utc>>,
    /// Why the last global poll failed; `None` after a success.
    pub last_poll_error: Option<String>,
    /// Global polls finished since start, successful or not.
    pub polls: u64,
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
            telemetry,
        }
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    pub fn snapshot(&self) -> PollReport {
        self.report.borrow().clone()
    }

    /// A receiver that sees each new report.
    pub fn subscribe(&self) -> watch::Receiver<PollReport> {
        self.report.subscribe()
    }

    /// Counts what a poll of any feed stored; `last_poll_*` and `polls` follow
    /// the global feed only.
    fn record(&self, result: &Result<PollOutcome, PollError>, global_feed: bool) {
        let (stored, malformed) = match result {
            Ok(outcome) => (outcome.stored, outcome.malformed),
            Err(PollError::Fetch { stored, .. }) => (*stored, 0),
            Err(PollError::Store(_)) => (InsertStats::default(), 0),
        };
        self.telemetry
            .events_stored(stored.inserted_by_type, stored.duplicates, malformed);
        let outcome = match result {
            Ok(outcome) if outcome.not_modified() => "not_modified",
            Ok(_) => "ok",
            Err(error) => {
                self.telemetry.poll_error(error.kind());
                if let Some(wait) = error.requested_wait() {
                    self.telemetry.rate_limit_wait(RateLimitWait::Refused, wait);
                }
                "error"
            }
        };
        self.telemetry.poll(global_feed, outcome);
        self.report.send_modify(|report| {
            report.events_inserted += stored.inserted();
            report.events_malformed += malformed;
            if global_feed {
                report.last_poll_at = Some(Utc::now());
                report.polls += 1;
                report.last_poll_error = result.as_ref().err().map(ToString::to_string);
            }
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
struct Feed {
    kind: FeedKind,
    /// ETag of the last complete poll's first page.
    etag: Option<String>,
    /// The largest event id this feed has shown (kept across restarts).
    newest_id: Option<i64>,
    next_due: tokio::time::Instant,
    backoff: Backoff,
    /// Answered 404 or 451 last time (reported once, retried rarely).
    unavailable: bool,
}

impl Feed {
    fn name(&self) -> &str {
        match &self.kind {
            FeedKind::Global => GLOBAL_FEED,
            FeedKind::Repo(repo) => repo.as_str(),
        }
    }

    fn path(&self) -> String {
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

/// Polls GitHub's event feeds into the database.
pub struct Poller {
    client: GithubClient,
    db: Db,
    status: Arc<PollStatus>,
    /// The global feed first, then the watched repositories.
    feeds: Vec<Feed>,
    gone_retry: Duration,
    /// The first gap in the global feed is worth a warning; later ones are counted.
    gap_warned: bool,
}

impl Poller {
    pub fn new(
        config: &PollerConfig,
        db: Db,
        status: Arc<PollStatus>,
    ) -> Result<Self, reqwest::Error> {
        let now = tokio::time::Instant::now();
        let backoff = Backoff::new(config.backoff_base, config.backoff_max);
        let watched = config.watched.len() as u32;
        let feeds = std::iter::once(FeedKind::Global)
            .chain(config.watched.iter().cloned().map(FeedKind::Repo))
            .enumerate()
            .map(|(i, kind)| Feed {
                kind,
                etag: None,
                newest_id: None,
                // Watched repositories are spread over the first interval
                // rather than asked all at once.
                next_due: now + config.watch_spread * i as u32 / (watched + 1),
                backoff: backoff.clone(),
                unavailable: false,
            })
            .collect();
        Ok(Poller {
            client: GithubClient::new(config, status.telemetry().clone())?,
            db,
            status,
            feeds,
            gone_retry: config.gone_retry,
            gap_warned: false,
        })
    }

    /// One round of the global feed.
    pub async fn poll_once(&mut self) -> Result<PollOutcome, PollError> {
        self.poll_feed(0).await
    }

    /// One round of feed `index` (0: global, then the watched repositories in
    /// order), recorded in `feed_polls`.
    pub async fn poll_feed(&mut self, index: usize) -> Result<PollOutcome, PollError> {
        if self.feeds[index].newest_id.is_none() {
            let name = self.feeds[index].name().to_owned();
            self.feeds[index].newest_id =
                self.db.run(move |conn| newest_seen_id(conn, &name)).await?;
        }
        let result = self.fetch_and_store(index).await;
        self.record_poll(index, &result).await;
        result
    }

    async fn record_poll(&mut self, index: usize, result: &Result<PollOutcome, PollError>) {
        let feed = &mut self.feeds[index];
        let global = feed.kind == FeedKind::Global;
        let mut row = FeedPoll {
            polled_at: Utc::now().timestamp(),
            feed: feed.name().to_owned(),
            previous_newest_id: feed.newest_id,
            ..FeedPoll::default()
        };
        match result {
            Ok(outcome) if outcome.not_modified() => {
                if !global {
                    return; // a quiet repository would fill the table with 304s
                }
                row.outcome = "not_modified";
            }
            Ok(outcome) => {
                let found = continuity(feed.newest_id, &outcome.ids);
                row.outcome = "ok";
                row.pages = outcome.pages;
                row.received = outcome.received;
                row.inserted = outcome.stored.inserted();
                row.oldest_id = outcome.ids.iter().min().copied();
                row.newest_id = outcome.ids.iter().max().copied();
                row.new_events = Some(found.new_events);
                row.overlap = found.overlap;
                // Ids are global: a gap in one repository's feed says nothing
                // about how many of *its* events were missed.
                row.missed_estimate = found.missed_ids.filter(|_| global);
                feed.newest_id = feed.newest_id.max(row.newest_id);
                if global {
                    self.status.telemetry().global_feed_continuity(
                        found.new_events,
                        found.overlap == Some(false),
                        row.missed_estimate.unwrap_or(0),
                    );
                }
                if global && found.overlap == Some(false) && !self.gap_warned {
                    self.gap_warned = true;
                    tracing::warn!(
                        missed_estimate = found.missed_ids,
                        "the global feed moved on faster than it was polled: events were missed \
                         between two polls. Set GITHUB_TOKEN for a higher rate limit, or watch the \
                         repositories you care about with --watch-repo for complete data"
                    );
                }
            }
            Err(error) => {
                row.outcome = if error.unavailable() {
                    "unavailable"
                } else {
                    "error"
                };
                row.error = Some(error.to_string());
                if let PollError::Fetch { stored, .. } = error {
                    row.inserted = stored.inserted();
                }
            }
        }
        if let Err(error) = self
            .db
            .write(move |conn| record_feed_poll(conn, &row))
            .await
        {
            tracing::warn!(%error, "could not record the poll in feed_polls");
        }
    }

    /// Every page of the feed, then one transaction for all new events.
    async fn fetch_and_store(&mut self, index: usize) -> Result<PollOutcome, PollError> {
        let first = self.client.endpoint(&self.feeds[index].path());
        let mut outcome = PollOutcome::empty();
        let mut events = Vec::new();
        let mut next = Some(first);
        let mut first_etag = None;
        let mut failure = None;
        let mut visited: Vec<Url> = Vec::new();

        while let Some(url) = next.take() {
            let page_number = outcome.pages + 1;
            let etag = if page_number == 1 {
                self.feeds[index].etag.as_deref()
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
                .write(move |conn| insert_events(conn, &events))
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
                    self.feeds[index].etag = first_etag;
                }
                Ok(outcome)
            }
        }
    }

    /// Polls every feed, each when it is due, until `cancel` fires. A
    /// transaction in flight when it fires still completes (see [`Db::run`]).
    pub async fn run(mut self, cancel: CancellationToken) {
        tracing::info!(
            api = %self.client.api_url_redacted(),
            watched_repositories = self.feeds.len() - 1,
            "poller started"
        );
        // There is always the global feed, so the loop ends only on cancel.
        while let Some((index, due)) = self
            .feeds
            .iter()
            .enumerate()
            .map(|(i, feed)| (i, feed.next_due))
            .min_by_key(|&(_, due)| due)
        {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep_until(due) => {}
            }
            let result = tokio::select! {
                _ = cancel.cancelled() => break,
                result = self.poll_feed(index) => result,
            };
            let wait = self.after_poll(index, &result);
            self.feeds[index].next_due = tokio::time::Instant::now() + wait;
        }
        tracing::info!("poller stopped");
    }

    /// Logs and reports a poll's result; returns how long the feed waits before the next.
    fn after_poll(&mut self, index: usize, result: &Result<PollOutcome, PollError>) -> Duration {
        let feed = &mut self.feeds[index];
        self.status.record(result, feed.kind == FeedKind::Global);
        let feed_name = feed.name().to_owned();
        match result {
            Ok(outcome) => {
                feed.backoff.reset();
                if feed.unavailable {
                    feed.unavailable = false;
                    tracing::info!(feed = %feed_name, "repository is available again");
                }
                if outcome.not_modified() {
                    tracing::debug!(
                        feed = %feed_name,
                        next_poll_in_s = outcome.next_poll_in.as_secs(),
                        "no new events (304)"
                    );
                } else {
                    tracing::info!(
                        feed = %feed_name,
                        pages = outcome.pages,
                        received = outcome.received,
                        inserted = outcome.stored.inserted(),
                        duplicates = outcome.stored.duplicates,
                        malformed = outcome.malformed,
                        next_poll_in_s = outcome.next_poll_in.as_secs(),
                        "poll done"
                    );
                }
                outcome.next_poll_in
            }
            Err(error) if error.unavailable() && matches!(feed.kind, FeedKind::Repo(_)) => {
                if !feed.unavailable {
                    feed.unavailable = true;
                    tracing::warn!(
                        feed = %feed_name,
                        error = %error,
                        retry_in_s = self.gone_retry.as_secs(),
                        "watched repository not found or unavailable (deleted, renamed, private or blocked); asking again rarely"
                    );
                }
                self.gone_retry
            }
            Err(error) => {
                let wait = error
                    .requested_wait()
                    .unwrap_or_else(|| feed.backoff.next_wait());
                tracing::warn!(feed = %feed_name, error = %error, retry_in_ms = wait.as_millis() as u64, "poll failed");
                wait
            }
        }
    }
}

/// Just the id of an event of any type.
#[derive(serde::Deserialize)]
struct EventId<'a> {
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
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
    for item in &items {
        if let Ok(EventId { id: Some(id) }) = serde_json::from_str::<EventId>(item.get())
            && let Ok(id) = id.parse()
        {
            outcome.ids.push(id);
        }
    }
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

    /// Watched repositories start spread over the first interval, the global
    /// feed first, instead of a burst of requests at startup.
    #[tokio::test(start_paused = true)]
    async fn watched_feeds_start_spread_out() {
        let mut config = PollerConfig::new("http://127.0.0.1:9".parse().unwrap(), None);
        config.watched = ["a/a", "b/b", "c/c"].map(|r| r.parse().unwrap()).to_vec();
        config.watch_spread = Duration::from_secs(60);
        let db = Db::open(&crate::config::DbLocation::Memory).unwrap();
        let start = tokio::time::Instant::now();
        let poller = Poller::new(&config, db, Arc::default()).unwrap();
        let plan: Vec<(String, u64)> = poller
            .feeds
            .iter()
            .map(|f| (f.name().to_owned(), (f.next_due - start).as_secs()))
            .collect();
        let expected = [("global", 0), ("a/a", 15), ("b/b", 30), ("c/c", 45)];
        assert_eq!(plan, expected.map(|(n, s)| (n.to_owned(), s)));
        assert_eq!(poller.feeds[2].path(), "repos/b/b/events?per_page=100");
    }

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
