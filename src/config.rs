//! Runtime configuration of the service: one [`Config`] built by the CLI (or by a
//! test), with the GitHub token kept out of every `Debug` and log line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;

/// Where the SQLite database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    /// A database file (its directory is created if missing).
    File(PathBuf),
    /// One in-memory database shared by every pooled connection; gone at exit.
    Memory,
}

impl FromStr for DbLocation {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(if value == ":memory:" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(value))
        })
    }
}

impl fmt::Display for DbLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbLocation::File(path) => write!(f, "{}", path.display()),
            DbLocation::Memory => f.write_str(":memory:"),
        }
    }
}

/// A GitHub token. Its `Debug` and `Display` never show the value.
#[derive(Clone)]
pub struct GithubToken(String);

impl GithubToken {
    /// `None` for an empty or all-blank value, so `GITHUB_TOKEN=` means "no token".
    pub fn new(value: impl Into<String>) -> Option<Self> {
        let value = value.into();
        (!value.trim().is_empty()).then(|| GithubToken(value.trim().to_owned()))
    }

    /// The secret itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for GithubToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GithubToken(<redacted>)")
    }
}

/// How the poller talks to GitHub and how patiently it retries.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// Base URL of the REST API (`https://api.github.com`, or a mock in tests).
    pub api_url: Url,
    /// Sent as `Authorization: Bearer` when present.
    pub token: Option<GithubToken>,
    /// Upper bound on one HTTP request, connection included.
    pub request_timeout: Duration,
    /// First wait after a failure; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest wait after failures.
    pub backoff_max: Duration,
}

/// GitHub's public API; the default for `--github-api-url`.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

impl PollerConfig {
    /// Production defaults for the given API base URL and token.
    pub fn new(api_url: Url, token: Option<GithubToken>) -> Self {
        PollerConfig {
            api_url,
            token,
            // Long enough for a slow 100-event page, short enough to notice a hung socket.
            request_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(2),
            // "A few minutes": long enough to ride out an outage without hammering it.
            backoff_max: Duration::from_secs(300),
        }
    }
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the HTTP API listens on (tests pass their own bound listener instead).
    pub listen: SocketAddr,
    /// The SQLite database.
    pub db: DbLocation,
    /// `None` serves what is stored and polls nothing.
    pub poller: Option<PollerConfig>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_never_shows_in_debug() {
        let token = GithubToken::new("ghp_supersecret").unwrap();
        let config = PollerConfig::new(DEFAULT_API_URL.parse().unwrap(), Some(token));
        let printed = format!("{config:?} {config:#?}");
        assert!(!printed.contains("supersecret"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn blank_token_means_none() {
        assert!(GithubToken::new("  ").is_none());
        assert_eq!(GithubToken::new(" abc\n").unwrap().expose(), "abc");
    }

    #[test]
    fn memory_location_is_recognised() {
        assert_eq!(
            ":memory:".parse::<DbLocation>().unwrap(),
            DbLocation::Memory
        );
        assert_eq!(
            "data/x.db".parse::<DbLocation>().unwrap(),
            DbLocation::File("data/x.db".into())
        );
    }
}
