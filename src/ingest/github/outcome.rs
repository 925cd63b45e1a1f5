//! What one poll of a feed came to: [`PollOutcome`] on success, [`PollError`]
//! on failure, and [`Outcome`], the one closed set of names that `/health`,
//! Prometheus and `feed_polls` all use for it.

use std::time::Duration;

use super::client::FetchError;
use crate::store::{InsertStats, StoreError};

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
    pub(super) fn empty() -> Self {
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
    Store(#[from] StoreError),
}

impl PollError {
    /// 404 or 451: the repository is gone, renamed or blocked.
    pub fn unavailable(&self) -> bool {
        matches!(
            self,
            PollError::Fetch { source: FetchError::Status { status }, .. }
                if matches!(status.as_u16(), 404 | 451)
        )
    }

    /// The kind of failure.
    pub fn kind(&self) -> FailureKind {
        match self {
            _ if self.unavailable() => FailureKind::Unavailable,
            PollError::Fetch { source, .. } => match source {
                FetchError::RateLimited { .. } => FailureKind::RateLimited,
                FetchError::Status { .. } => FailureKind::HttpStatus,
                FetchError::Transport(error) if error.is_timeout() => FailureKind::Timeout,
                FetchError::Transport(_) => FailureKind::Transport,
                FetchError::MalformedBody(_) => FailureKind::MalformedBody,
                FetchError::TooLarge { .. } => FailureKind::BodyTooLarge,
            },
            PollError::Store(_) => FailureKind::Store,
        }
    }

    /// The failure in a person's words, with what to do about it where
    /// there is something: one of a closed set of sentences, free of URLs
    /// and addresses, so it can be shown to any client.
    pub fn problem(&self) -> &'static str {
        /// A network failure, and what works without a network.
        macro_rules! offline {
            ($what:literal) => {
                concat!(
                    "cannot reach the GitHub API: ",
                    $what,
                    "; without a network, `ghmetrics import FILE` loads GH Archive files and `ghmetrics serve --no-poll` serves them"
                )
            };
        }
        match self {
            _ if self.unavailable() => "the repository is gone, renamed, private or blocked",
            PollError::Fetch { source, .. } => match source {
                FetchError::RateLimited { .. } => {
                    "GitHub's rate limit is reached; waiting as GitHub asks (a GITHUB_TOKEN raises the limit)"
                }
                FetchError::Status { status } if status.as_u16() == 401 => {
                    "GitHub refused the token (HTTP 401): check GITHUB_TOKEN"
                }
                FetchError::Status { .. } => {
                    "the GitHub API answered with an unexpected HTTP status"
                }
                FetchError::Transport(error) if error.is_timeout() => {
                    offline!("no answer in time")
                }
                FetchError::Transport(error) => match transport_cause(error) {
                    TransportCause::NameLookup => offline!("name lookup failed"),
                    TransportCause::Refused => offline!("connection refused"),
                    TransportCause::Tls => "cannot reach the GitHub API: the TLS handshake failed",
                    TransportCause::Other => offline!("network error"),
                },
                FetchError::MalformedBody(_) => {
                    "the GitHub API sent something that is not a list of events"
                }
                FetchError::TooLarge { .. } => {
                    "the GitHub API sent a page larger than any page of events"
                }
            },
            PollError::Store(_) => "the events could not be stored (see the service log)",
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

/// What lies under a transport error.
enum TransportCause {
    NameLookup,
    Refused,
    Tls,
    Other,
}

/// Reads the cause out of `error`'s chain: reqwest says "dns error" for a
/// failed name lookup, and the I/O error's kind tells a refused connection.
fn transport_cause(error: &reqwest::Error) -> TransportCause {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return TransportCause::Refused;
        }
        if cause.downcast_ref::<rustls::Error>().is_some() {
            return TransportCause::Tls;
        }
        if cause.to_string().starts_with("dns error") {
            return TransportCause::NameLookup;
        }
        source = cause.source();
    }
    TransportCause::Other
}

/// Why a poll failed, as a closed set of names: safe to show any client and
/// to use as a metric label (the details, which may name hosts, are logged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// GitHub answered 403/429 and asked to wait.
    RateLimited,
    /// Any other unexpected HTTP status.
    HttpStatus,
    Timeout,
    /// Connection refused, reset, DNS, TLS.
    Transport,
    /// The body was not a JSON array of events.
    MalformedBody,
    /// The body was larger than a page can be.
    BodyTooLarge,
    /// 404 or 451: a watched repository is gone, renamed or blocked.
    Unavailable,
    /// The database refused the events.
    Store,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::RateLimited => "rate_limited",
            FailureKind::HttpStatus => "http_status",
            FailureKind::Timeout => "timeout",
            FailureKind::Transport => "transport",
            FailureKind::MalformedBody => "malformed_body",
            FailureKind::BodyTooLarge => "body_too_large",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Store => "store",
        }
    }
}

/// What a poll came to, in one word: the `outcome` of `feed_polls` rows and
/// of the `ghmetrics_polls_total` metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// New pages were fetched and stored.
    Ok,
    /// `304 Not Modified`: nothing new since the last poll.
    NotModified,
    /// The repository is gone (404/451).
    Unavailable,
    /// Any other failure.
    Error(FailureKind),
}

impl Outcome {
    pub fn of(result: &Result<PollOutcome, PollError>) -> Outcome {
        match result {
            Ok(outcome) if outcome.not_modified() => Outcome::NotModified,
            Ok(_) => Outcome::Ok,
            Err(error) => match error.kind() {
                FailureKind::Unavailable => Outcome::Unavailable,
                kind => Outcome::Error(kind),
            },
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotModified => "not_modified",
            Outcome::Unavailable => "unavailable",
            Outcome::Error(_) => "error",
        }
    }
}
