//! The poller: [`Poller::poll_feed`] does one round of one feed (every page,
//! conditional on the feed's last ETag, all new events in one transaction, one
//! `feed_polls` row); [`Poller::run`] schedules the global feed and every watched
//! repository's feed, each as often as GitHub asks, backing off on failures,
//! within the shared rate budget, until cancelled.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::Url;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::client::{GithubClient, PageResponse};
use super::feed::{Feed, FeedKind, continuity};
use super::outcome::{Outcome, PollError, PollOutcome};
use super::page::parse_page;
use super::status::PollStatus;
use crate::config::PollerConfig;
use crate::core::event::Event;
use crate::store::{FeedPoll, InsertStats, Origin, Store};

/// Most pages followed in one poll. GitHub serves 3 today; the cap only guards
/// against a server whose `Link` headers never end.
const MAX_PAGES: u32 = 100;

/// Polls GitHub's event feeds into the database.
pub struct Poller {
    client: GithubClient,
    store: Store,
    status: Arc<PollStatus>,
    /// The global feed first, then the watched repositories.
    feeds: Vec<Feed>,
    gone_retry: Duration,
    /// The first gap in the global feed is worth a warning; later ones are counted.
    gap_warned: bool,
}

/// What one poll's pages gave: their events, the outcome so far, the first
/// page's ETag, and the failure that ended it early, if one did.
struct Fetched {
    events: Vec<Event>,
    outcome: PollOutcome,
    first_etag: Option<String>,
    failure: Option<PollError>,
}

impl Poller {
    pub fn new(
        config: &PollerConfig,
        store: Store,
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
                pages_last_poll: 1,
                unavailable: false,
            })
            .collect();
        Ok(Poller {
            client: GithubClient::new(config, status.telemetry().clone())?,
            store,
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
            self.feeds[index].newest_id = self.store.newest_seen_id(name).await?;
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
            outcome: Outcome::of(result).as_str(),
            ..FeedPoll::default()
        };
        match result {
            Ok(outcome) if outcome.not_modified() => {
                if !global {
                    return; // a quiet repository would fill the table with 304s
                }
            }
            Ok(outcome) => {
                let found = continuity(feed.newest_id, &outcome.ids);
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
                row.error = Some(error.to_string());
                if let PollError::Fetch { stored, .. } = error {
                    row.inserted = stored.inserted();
                }
            }
        }
        if let Err(error) = self.store.record_feed_poll(row).await {
            tracing::warn!(%error, "could not record the poll in feed_polls");
        }
    }

    /// Every page of the feed, fetched back to back once the budget allows a
    /// whole poll, then one transaction for all new events.
    async fn fetch_and_store(&mut self, index: usize) -> Result<PollOutcome, PollError> {
        self.client
            .wait_for_budget(self.feeds[index].pages_last_poll)
            .await;
        let Fetched {
            events,
            mut outcome,
            first_etag,
            failure,
        } = self.fetch_pages(index).await;
        if !events.is_empty() {
            let origin = match self.feeds[index].kind {
                FeedKind::Global => Origin::GlobalFeed,
                FeedKind::Repo(_) => Origin::Watched,
            };
            outcome.stored = self.store.insert_events(events, origin).await?;
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
                    self.feeds[index].pages_last_poll = outcome.pages;
                }
                Ok(outcome)
            }
        }
    }

    /// Fetches the feed's pages, following `Link: rel="next"` (never to a
    /// page twice, at most [`MAX_PAGES`]), until the last, a 304, a failure,
    /// or a spent rate limit.
    async fn fetch_pages(&self, index: usize) -> Fetched {
        let mut fetched = Fetched {
            events: Vec::new(),
            outcome: PollOutcome::empty(),
            first_etag: None,
            failure: None,
        };
        let outcome = &mut fetched.outcome;
        let mut next = Some(self.client.endpoint(&self.feeds[index].path()));
        let mut visited: Vec<Url> = Vec::new();
        while let Some(url) = next.take() {
            let page_number = outcome.pages + 1;
            let etag = if page_number == 1 {
                self.feeds[index].etag.as_deref()
            } else {
                None
            };
            let failed = |source| PollError::Fetch {
                page: page_number,
                source,
                stored: InsertStats::default(),
            };
            let page = match self.client.fetch_page(&url, etag).await {
                Ok(PageResponse::NotModified(hints)) => {
                    outcome.next_poll_in = hints.next_poll_in();
                    break;
                }
                Ok(PageResponse::Modified(page)) => page,
                Err(source) => {
                    fetched.failure = Some(failed(source));
                    break;
                }
            };
            outcome.pages = page_number;
            if page_number == 1 {
                fetched.first_etag = page.etag.clone();
                outcome.next_poll_in = page.hints.next_poll_in();
            }
            if let Err(source) = parse_page(&page.body, &mut fetched.events, outcome) {
                fetched.failure = Some(failed(source));
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
                fetched.first_etag = None;
                break;
            }
            if outcome.pages >= MAX_PAGES {
                tracing::warn!(pages = MAX_PAGES, "stopped following Link headers");
                break;
            }
        }
        fetched
    }

    /// Polls every feed, each when it is due, until `cancel` fires. A write
    /// in flight when it fires still completes: the stores finish a write
    /// whose caller has gone.
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
                tracing::warn!(
                    feed = %feed_name,
                    error = %error,
                    retry_in_ms = wait.as_millis() as u64,
                    "poll failed: {}",
                    error.problem()
                );
                wait
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SqliteLocation, StoreLocation};

    /// Watched repositories start spread over the first interval, the global
    /// feed first, instead of a burst of requests at startup.
    #[tokio::test(start_paused = true)]
    async fn watched_feeds_start_spread_out() {
        let mut config = PollerConfig::new("http://127.0.0.1:9".parse().unwrap(), None);
        config.watched = ["a/a", "b/b", "c/c"].map(|r| r.parse().unwrap()).to_vec();
        config.watch_spread = Duration::from_secs(60);
        let store = Store::open(&StoreLocation::Sqlite(SqliteLocation::Memory))
            .await
            .unwrap();
        let start = tokio::time::Instant::now();
        let poller = Poller::new(&config, store, Arc::default()).unwrap();
        let plan: Vec<(String, u64)> = poller
            .feeds
            .iter()
            .map(|f| (f.name().to_owned(), (f.next_due - start).as_secs()))
            .collect();
        let expected = [("global", 0), ("a/a", 15), ("b/b", 30), ("c/c", 45)];
        assert_eq!(plan, expected.map(|(n, s)| (n.to_owned(), s)));
        assert_eq!(poller.feeds[2].path(), "repos/b/b/events?per_page=100");
    }
}
