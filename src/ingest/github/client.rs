//! HTTP access to GitHub's events API: the headers GitHub asks for, conditional
//! requests, `Link` pagination, and reading rate-limit and poll-interval hints.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};

use super::budget::RateBudget;
use crate::config::{GithubToken, PollerConfig};
use crate::telemetry::Telemetry;

/// GitHub's default poll interval when a response carries no `X-Poll-Interval`.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

/// Floor under any wait GitHub asks for, so a `0` or a reset time already past
/// never turns into a tight request loop.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// Ceiling on a rate-limit wait: GitHub's windows are an hour long, so a longer
/// wait only means a broken header or clock.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(3600);

/// Largest page body read. A page of 100 events is a few hundred KB (2 MB
/// with the fullest pre-2025 payloads); anything past this is not GitHub.
pub const MAX_PAGE_BYTES: usize = 16 << 20;

/// The REST API version this client was written against.
const API_VERSION: &str = "2022-11-28";

/// A GitHub REST API client for the events feeds. Clones share one rate budget.
#[derive(Clone, Debug)]
pub struct GithubClient {
    http: reqwest::Client,
    api_url: Url,
    token: Option<GithubToken>,
    budget: Arc<RateBudget>,
    telemetry: Arc<Telemetry>,
}

/// A successful (`200`) page of events.
#[derive(Debug)]
pub struct EventsPage {
    /// The raw body: a JSON array of events.
    pub body: bytes::Bytes,
    /// The page's `ETag`, verbatim (quotes and `W/` included).
    pub etag: Option<String>,
    /// The `rel="next"` target of the `Link` header.
    pub next: Option<Url>,
    pub hints: ResponseHints,
}

/// What a response says about when to ask again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseHints {
    /// `X-Poll-Interval`, or the default.
    pub poll_interval: Duration,
    /// Set when `X-RateLimit-Remaining` is 0: how long until `X-RateLimit-Reset`.
    pub rate_limit_wait: Option<Duration>,
    /// `X-RateLimit-Remaining`, and how long until `X-RateLimit-Reset`.
    pub quota: Option<(u64, Duration)>,
}

impl ResponseHints {
    /// The earliest GitHub allows the next poll.
    pub fn next_poll_in(&self) -> Duration {
        self.poll_interval
            .max(self.rate_limit_wait.unwrap_or_default())
    }
}

/// One page request's result.
#[derive(Debug)]
pub enum PageResponse {
    Modified(EventsPage),
    /// `304`: nothing changed since the ETag we sent.
    NotModified(ResponseHints),
}

/// Why a page request failed. None of these is fatal: the poller waits and retries.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("rate limited (HTTP {status}); GitHub asks to wait {}s", wait.as_secs())]
    RateLimited { status: StatusCode, wait: Duration },
    #[error("unexpected HTTP status {status}")]
    Status { status: StatusCode },
    #[error("request failed: {}", error_chain(.0))]
    Transport(reqwest::Error),
    #[error("malformed response body: {0}")]
    MalformedBody(String),
    #[error("response body larger than {limit} bytes; not read")]
    TooLarge { limit: usize },
}

impl From<reqwest::Error> for FetchError {
    /// Keeps the URL in the message (which page failed) without any
    /// `user:password@` it carried.
    fn from(mut error: reqwest::Error) -> Self {
        if let Some(url) = error.url_mut() {
            strip_credentials(url);
        }
        FetchError::Transport(error)
    }
}

/// Removes `user:password@` from `url`.
fn strip_credentials(url: &mut Url) {
    // Only URLs that cannot have credentials refuse, and they have none.
    let _ = url.set_password(None);
    let _ = url.set_username("");
}

/// `url` as text for logs and errors: credentials replaced by `***`.
pub fn redacted(url: &Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let _ = shown.set_username("***");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// Reads a body of at most `limit` bytes; a longer one is abandoned as soon as
/// it is known to be too long (from `Content-Length`, or while reading), so a
/// broken or hostile server cannot make the poller hold gigabytes.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<bytes::Bytes, FetchError> {
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(FetchError::TooLarge { limit });
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(FetchError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

impl FetchError {
    /// The wait GitHub asked for, when it asked for one.
    pub fn requested_wait(&self) -> Option<Duration> {
        match self {
            FetchError::RateLimited { wait, .. } => Some(*wait),
            _ => None,
        }
    }
}

/// `error: cause: cause`, because reqwest's own `Display` hides the cause
/// (timeout, connection refused) that an operator needs to see.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub use crate::core::tls::install_crypto_provider;

impl GithubClient {
    pub fn new(config: &PollerConfig, telemetry: Arc<Telemetry>) -> Result<Self, reqwest::Error> {
        install_crypto_provider();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/vnd.github+json"),
        );
        headers.insert(
            "X-GitHub-Api-Version",
            HeaderValue::from_static(API_VERSION),
        );
        let http = reqwest::Client::builder()
            .user_agent(concat!("ghmetrics/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout)
            .build()?;
        Ok(GithubClient {
            http,
            api_url: config.api_url.clone(),
            token: config.token.clone(),
            budget: Arc::default(),
            telemetry,
        })
    }

    /// Whether `url` is on the configured API's origin (scheme, host, port):
    /// `Link` headers pointing anywhere else are not followed, so a hostile
    /// API cannot make the service fetch internal addresses.
    fn same_origin(&self, url: &Url) -> bool {
        let same = url.origin() == self.api_url.origin();
        if !same {
            tracing::warn!(link = %redacted(url), "ignored a Link to another origin than the API's");
        }
        same
    }

    /// The API base URL for logs, without credentials.
    pub fn api_url_redacted(&self) -> String {
        redacted(&self.api_url)
    }

    /// `{api}/{path}`, whether or not the base URL ends in a slash.
    pub fn endpoint(&self, path_and_query: &str) -> Url {
        let base = self.api_url.as_str().trim_end_matches('/');
        let joined = format!("{base}/{}", path_and_query.trim_start_matches('/'));
        // Both halves are valid URL text, so the join is too; fall back to the
        // base rather than panic if that ever stops being true.
        joined.parse().unwrap_or_else(|_| self.api_url.clone())
    }

    /// Waits until a poll of `pages` requests fits the rate budget shared by
    /// every feed, and books it. The pages themselves are then fetched back
    /// to back with [`GithubClient::fetch_page`].
    pub async fn wait_for_budget(&self, pages: u32) {
        if let Some((reason, waited)) = self.budget.acquire(pages).await {
            self.telemetry.rate_limit_wait(reason, waited);
        }
    }

    /// GETs one page, conditionally when `etag` is given.
    pub async fn fetch_page(
        &self,
        url: &Url,
        etag: Option<&str>,
    ) -> Result<PageResponse, FetchError> {
        let mut request = self.http.get(url.clone());
        if let Some(etag) = etag.and_then(|e| HeaderValue::from_str(e).ok()) {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        // The token goes only to the configured API host, never to wherever a
        // `Link` header might point.
        if let Some(token) = &self.token
            && url.origin() == self.api_url.origin()
            && let Ok(mut value) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        {
            value.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, value);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers();
        let hints = read_hints(headers, SystemTime::now());
        if let Some((remaining, resets_in)) = hints.quota {
            self.budget.observe(remaining, resets_in);
        }
        match status {
            StatusCode::OK => {
                let etag = headers
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let next = headers
                    .get_all(header::LINK)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(next_link)
                    .and_then(|target| url.join(&target).ok())
                    .filter(|next| self.same_origin(next));
                let body = read_capped(response, MAX_PAGE_BYTES).await?;
                Ok(PageResponse::Modified(EventsPage {
                    body,
                    etag,
                    next,
                    hints,
                }))
            }
            StatusCode::NOT_MODIFIED => Ok(PageResponse::NotModified(hints)),
            StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS => {
                match retry_after(headers).or(hints.rate_limit_wait) {
                    Some(wait) => Err(FetchError::RateLimited { status, wait }),
                    None => Err(FetchError::Status { status }),
                }
            }
            _ => Err(FetchError::Status { status }),
        }
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Poll interval and rate-limit state of a response, relative to `now`.
pub fn read_hints(headers: &HeaderMap, now: SystemTime) -> ResponseHints {
    let poll_interval = header_u64(headers, "x-poll-interval")
        .map_or(DEFAULT_POLL_INTERVAL, |secs| {
            Duration::from_secs(secs).max(MIN_WAIT)
        });
    let now_secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let resets_in = header_u64(headers, "x-ratelimit-reset").map(|reset| {
        Duration::from_secs(reset.saturating_sub(now_secs)).clamp(MIN_WAIT, MAX_RATE_LIMIT_WAIT)
    });
    let remaining = header_u64(headers, "x-ratelimit-remaining");
    let rate_limit_wait = match remaining {
        Some(0) => Some(resets_in.unwrap_or(DEFAULT_POLL_INTERVAL)),
        _ => None,
    };
    ResponseHints {
        poll_interval,
        rate_limit_wait,
        quota: remaining.zip(resets_in),
    }
}

/// `Retry-After` in seconds (GitHub never sends the HTTP-date form).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_u64(headers, "retry-after")
        .map(|secs| Duration::from_secs(secs).clamp(MIN_WAIT, MAX_RATE_LIMIT_WAIT))
}

/// The `rel="next"` target of a `Link` header value, e.g.
/// `<https://api.github.com/events?page=2>; rel="next", <...>; rel="last"`.
pub fn next_link(link_header: &str) -> Option<String> {
    link_header.split(',').find_map(|link| {
        let mut parts = link.split(';');
        let target = parts.next()?.trim();
        let target = target.strip_prefix('<')?.strip_suffix('>')?;
        let is_next = parts.any(|param| {
            let Some((key, value)) = param.split_once('=') else {
                return false;
            };
            key.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn finds_the_next_link_among_others() {
        let value = r#"<https://api.github.com/events?per_page=100&page=2>; rel="next", <https://api.github.com/events?per_page=100&page=3>; rel="last""#;
        assert_eq!(
            next_link(value).as_deref(),
            Some("https://api.github.com/events?per_page=100&page=2")
        );
        let last_first = r#"<http://x/e?page=1>; rel="prev", <http://x/e?page=3>; rel="next""#;
        assert_eq!(next_link(last_first).as_deref(), Some("http://x/e?page=3"));
    }

    #[test]
    fn no_next_link_on_the_last_page() {
        assert_eq!(
            next_link(r#"<http://x/e?page=1>; rel="first", <http://x/e?page=2>; rel="prev""#),
            None
        );
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("garbage; rel=next"), None);
    }

    #[test]
    fn poll_interval_defaults_to_sixty_seconds() {
        let hints = read_hints(&HeaderMap::new(), SystemTime::now());
        assert_eq!(hints.poll_interval, Duration::from_secs(60));
        assert_eq!(hints.rate_limit_wait, None);
        let hints = read_hints(&headers(&[("x-poll-interval", "17")]), SystemTime::now());
        assert_eq!(hints.poll_interval, Duration::from_secs(17));
        assert_eq!(hints.next_poll_in(), Duration::from_secs(17));
    }

    #[test]
    fn exhausted_rate_limit_waits_until_reset() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let hints = read_hints(
            &headers(&[
                ("x-poll-interval", "60"),
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000900"),
            ]),
            now,
        );
        assert_eq!(hints.rate_limit_wait, Some(Duration::from_secs(900)));
        assert_eq!(hints.next_poll_in(), Duration::from_secs(900));
        // A reset already in the past still waits a moment rather than spinning.
        let past = read_hints(
            &headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "1")]),
            now,
        );
        assert_eq!(past.rate_limit_wait, Some(MIN_WAIT));
        let remaining = read_hints(&headers(&[("x-ratelimit-remaining", "12")]), now);
        assert_eq!(remaining.rate_limit_wait, None);
        let quota = read_hints(
            &headers(&[
                ("x-ratelimit-remaining", "12"),
                ("x-ratelimit-reset", "1700000600"),
            ]),
            now,
        );
        assert_eq!(quota.quota, Some((12, Duration::from_secs(600))));
    }

    #[test]
    fn endpoint_ignores_trailing_slashes() {
        for base in ["http://127.0.0.1:9/", "http://127.0.0.1:9"] {
            let config = PollerConfig::new(base.parse().unwrap(), None);
            let client = GithubClient::new(&config, Arc::default()).unwrap();
            assert_eq!(
                client.endpoint("events?per_page=100").as_str(),
                "http://127.0.0.1:9/events?per_page=100"
            );
        }
        let enterprise = PollerConfig::new("https://ghe.example/api/v3/".parse().unwrap(), None);
        let client = GithubClient::new(&enterprise, Arc::default()).unwrap();
        assert_eq!(
            client.endpoint("/events").as_str(),
            "https://ghe.example/api/v3/events"
        );
    }
}
