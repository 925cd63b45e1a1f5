//! Runtime configuration of the service: one [`Config`] built by the CLI (or by a
//! test), with the GitHub token kept out of every `Debug` and log line.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;

use crate::core::bots::BotLogins;

/// Where the SQLite database lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A database file (its directory is created if missing).
    File(PathBuf),
    /// One in-memory database shared by every pooled connection; gone at exit.
    Memory,
}

impl FromStr for SqliteLocation {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(if value == ":memory:" {
            SqliteLocation::Memory
        } else {
            SqliteLocation::File(PathBuf::from(value))
        })
    }
}

impl fmt::Display for SqliteLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqliteLocation::File(path) => write!(f, "{}", path.display()),
            SqliteLocation::Memory => f.write_str(":memory:"),
        }
    }
}

/// Where events are stored: the `--store` URL, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreLocation {
    /// `sqlite:PATH` (or `--db PATH`).
    Sqlite(SqliteLocation),
    /// `clickhouse://[user@]host[:port]/database`.
    ClickHouse(ClickHouseSettings),
}

impl From<SqliteLocation> for StoreLocation {
    fn from(location: SqliteLocation) -> Self {
        StoreLocation::Sqlite(location)
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite(location) => write!(f, "sqlite:{location}"),
            StoreLocation::ClickHouse(settings) => settings.fmt(f),
        }
    }
}

/// The environment variable the ClickHouse password is read from (never a
/// flag or the URL, which would show in `ps` and shell history).
pub const CLICKHOUSE_PASSWORD_ENV: &str = "GHMETRICS_CLICKHOUSE_PASSWORD";

impl StoreLocation {
    /// Parses a `--store` URL. `password` is the ClickHouse password (from
    /// [`CLICKHOUSE_PASSWORD_ENV`]); errors never repeat a credential.
    pub fn parse(value: &str, password: Option<String>) -> Result<StoreLocation, String> {
        const EXPECTED: &str = "expected sqlite:PATH or clickhouse://[user@]host[:port]/database";
        if let Some(path) = value.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!("--store sqlite: needs a path ({EXPECTED})"));
            }
            return Ok(StoreLocation::Sqlite(
                path.parse().unwrap_or_else(|never| match never {}),
            ));
        }
        let Some(rest) = value.strip_prefix("clickhouse://") else {
            return Err(format!("--store: unknown scheme ({EXPECTED})"));
        };
        let url = Url::parse(&format!("http://{rest}")).map_err(|error| {
            format!("--store: not a valid ClickHouse URL: {error} ({EXPECTED})")
        })?;
        if url.password().is_some() {
            return Err(format!(
                "--store: the URL holds a password; put it in {CLICKHOUSE_PASSWORD_ENV} instead"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "--store: a ClickHouse URL takes no query or fragment ({EXPECTED})"
            ));
        }
        let database = url.path().trim_start_matches('/');
        let identifier = |name: &str| {
            (1..=64).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit()
        };
        if !identifier(database) {
            return Err(format!(
                "--store: the database name must be 1-64 letters, digits or '_', not starting with a digit ({EXPECTED})"
            ));
        }
        let user = match url.username() {
            "" => "default".to_owned(),
            user => user.to_owned(),
        };
        let host = url.host_str().unwrap_or_default();
        let port = url.port().unwrap_or(CLICKHOUSE_HTTP_PORT);
        let endpoint = Url::parse(&format!("http://{host}:{port}/"))
            .map_err(|error| format!("--store: {error}"))?;
        Ok(StoreLocation::ClickHouse(ClickHouseSettings {
            endpoint,
            user,
            password: password.filter(|p| !p.is_empty()).map(Secret),
            database: database.to_owned(),
            cluster: None,
            shard_endpoints: Vec::new(),
        }))
    }
}

/// ClickHouse's default HTTP port.
pub const CLICKHOUSE_HTTP_PORT: u16 = 8123;

/// How to reach a ClickHouse server (its HTTP interface) and which database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickHouseSettings {
    /// `http://host:port/`, without credentials.
    pub endpoint: Url,
    pub user: String,
    pub password: Option<Secret>,
    pub database: String,
    /// `--clickhouse-cluster`: tables are local per shard, queried and
    /// written through a `Distributed` table over them.
    pub cluster: Option<String>,
    /// `--clickhouse-shard-url`: each shard's HTTP endpoint, for creating the
    /// local tables one by one where the cluster has no distributed DDL
    /// (`ON CLUSTER` needs ClickHouse Keeper or ZooKeeper). Empty: `ON CLUSTER`.
    pub shard_endpoints: Vec<Url>,
}

impl fmt::Display for ClickHouseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = self.endpoint.host_str().unwrap_or_default();
        let port = self.endpoint.port().unwrap_or(CLICKHOUSE_HTTP_PORT);
        write!(
            f,
            "clickhouse://{}@{host}:{port}/{}",
            self.user, self.database
        )?;
        if let Some(cluster) = &self.cluster {
            write!(f, " (cluster {cluster})")?;
        }
        Ok(())
    }
}

/// A password: its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
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

    /// `GITHUB_TOKEN` as given: surrounding whitespace (a trailing newline from
    /// `$(cat file)`) is dropped, blank means no token, and a value that cannot
    /// be sent as a header (inner spaces, control or non-ASCII characters) is an
    /// error rather than a silent fall-back to unauthenticated polling.
    pub fn parse(value: &str) -> Result<Option<Self>, String> {
        let Some(token) = GithubToken::new(value) else {
            return Ok(None);
        };
        if !token.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("GITHUB_TOKEN is not a valid token: it may hold only visible ASCII characters, without spaces".to_owned());
        }
        Ok(Some(token))
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

/// A repository as `owner/name`, checked against GitHub's naming rules (letters,
/// digits, `-`, `_`, `.`), so that a typo is an error at startup rather than a
/// 404 every minute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RepoName {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        let valid_part = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match value.split_once('/') {
            Some((owner, name)) if valid_part(owner) && valid_part(name) => {
                Ok(RepoName(value.to_owned()))
            }
            _ => Err(format!(
                "{value:?} is not a repository: expected owner/name (letters, digits, '-', '_', '.')"
            )),
        }
    }
}

/// Reads a watch file: one `owner/name` per line; blank lines and `#` comments ignored.
pub fn read_watch_file(path: &std::path::Path) -> Result<Vec<RepoName>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read watch file {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let line = line.split('#').next().unwrap_or("").trim();
            (!line.is_empty()).then(|| {
                line.parse()
                    .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
            })
        })
        .collect()
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
    /// Repositories whose own event feeds are polled too (`--watch-repo`).
    pub watched: Vec<RepoName>,
    /// How long before a repository that answered 404 or 451 is asked again.
    pub gone_retry: Duration,
    /// The first polls of the watched repositories are spread over this long.
    pub watch_spread: Duration,
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
            watched: Vec::new(),
            // Renamed or deleted repositories rarely come back; asking a few
            // times a day costs nothing and notices if they do.
            gone_retry: Duration::from_secs(6 * 3600),
            watch_spread: Duration::from_secs(60),
        }
    }
}

/// Limits and cross-origin rules of the HTTP API.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Longest a request may wait and run before it is answered 503 (the time
    /// to the response headers; a long streamed body is not cut).
    pub request_timeout: Duration,
    /// Longest a request waits for the store: past it the store counts as
    /// not answering (a frozen server) and the request gets 503 at once
    /// instead of waiting out `request_timeout`.
    pub store_timeout: Duration,
    /// Requests handled at once; the rest queue, within the timeout.
    pub max_concurrent_requests: usize,
    /// Requests per second allowed per client IP (with a burst of as many);
    /// `None`: no per-client limit.
    pub rate_limit: Option<NonZeroU32>,
    /// Origins browsers may call the API from; `*` allows any. Empty: no CORS
    /// headers, so browsers allow only same-origin calls.
    pub cors_origins: Vec<String>,
    /// Open connections and the deadlines each is held to.
    pub connections: ConnectionLimits,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            // Far above any answer (BENCHMARKS.md): ten seconds means
            // something is stuck, and a client is better told than left waiting.
            request_timeout: Duration::from_secs(10),
            // Far above any store question (BENCHMARKS.md), under the
            // request timeout so that the client hears which part is stuck.
            store_timeout: Duration::from_secs(5),
            // Far above what two cores serve at once, low enough that a flood
            // queues instead of exhausting memory or the connection pool's patience.
            max_concurrent_requests: 512,
            rate_limit: None,
            cors_origins: Vec::new(),
            connections: ConnectionLimits::default(),
        }
    }
}

/// Everything `serve` needs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the HTTP API listens on (tests pass their own bound listener instead).
    pub listen: SocketAddr,
    /// Where events are stored.
    pub store: StoreLocation,
    /// `None` serves what is stored and polls nothing.
    pub poller: Option<PollerConfig>,
    pub http: HttpConfig,
    /// Events older than this are deleted in the background; `None` keeps everything.
    pub retention: Option<Duration>,
    /// `--follow-gharchive`: import each GH Archive hour once published.
    pub follow: Option<FollowConfig>,
    /// `--archive-lag`: how many hours after its own an archive may file an
    /// event; an hour settles once those files are read.
    pub archive_lag_hours: i64,
    /// `--bot-login`: the logins counted as bots besides the GitHub Apps'.
    pub bot_logins: BotLogins,
}

/// The limits every connection is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections open at once; further clients wait in the kernel's
    /// accept queue until one closes.
    pub max_connections: usize,
    /// From the first byte of a request to the end of its head.
    pub header_read_timeout: Duration,
    /// How long a connection may wait for its first request, or for the next
    /// one after an answer.
    pub keep_alive_timeout: Duration,
    /// How long writing an answer may make no progress (a client that stopped
    /// reading) before the connection is closed.
    pub write_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            // Below the 1,024 file descriptors many systems allow a process by
            // default, leaving room for the database, the poller and the logs.
            max_connections: 768,
            // A request head is a few hundred bytes: seconds are generous even
            // on a bad mobile link.
            header_read_timeout: Duration::from_secs(10),
            // Long enough for a dashboard's 30 s refresh to reuse its connection.
            keep_alive_timeout: Duration::from_secs(60),
            // The largest answer (every repository's PR count, megabytes) flows
            // in well under this to any client that is reading at all.
            write_timeout: Duration::from_secs(30),
        }
    }
}

/// The default `--archive-lag`: GitHub documents its public events as
/// appearing 30 seconds to 6 hours after they happen.
pub const DEFAULT_ARCHIVE_LAG_HOURS: i64 = 6;

/// What the follower does and when.
#[derive(Clone, Debug)]
pub struct FollowConfig {
    /// GH Archive and mirrors (as `import --gharchive` takes them).
    pub urls: Vec<Url>,
    /// The first hour to import (hours since the epoch).
    pub from_hour: i64,
    /// How long after an hour ends it is first asked for (GH Archive
    /// publishes an hour a few minutes after it ends).
    pub publish_delay: Duration,
    /// How long to wait before asking again for an hour not there yet.
    pub retry_every: Duration,
    /// An hour still missing this long after it ended is given up on.
    pub give_up_after: Duration,
    /// `--retention`: hours older than it are not imported (they would be deleted).
    pub retention: Option<Duration>,
    /// Tries and waits within one attempt at an hour (as `import --gharchive`).
    pub attempts: u32,
    pub backoff: Duration,
    pub timeout: Duration,
    /// `--archive-lag` (see [`Config::archive_lag_hours`]).
    pub archive_lag_hours: i64,
}

impl FollowConfig {
    pub fn new(urls: Vec<Url>, from_hour: i64) -> FollowConfig {
        FollowConfig {
            urls,
            from_hour,
            publish_delay: Duration::from_secs(5 * 60),
            retry_every: Duration::from_secs(5 * 60),
            give_up_after: Duration::from_secs(24 * 3600),
            retention: None,
            attempts: 3,
            backoff: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            archive_lag_hours: DEFAULT_ARCHIVE_LAG_HOURS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_parse_with_defaults_and_refuse_what_they_cannot_use() {
        assert_eq!(
            StoreLocation::parse("sqlite:data/x.db", None).unwrap(),
            StoreLocation::Sqlite(SqliteLocation::File("data/x.db".into()))
        );
        assert_eq!(
            StoreLocation::parse("sqlite::memory:", None).unwrap(),
            StoreLocation::Sqlite(SqliteLocation::Memory)
        );
        let StoreLocation::ClickHouse(plain) =
            StoreLocation::parse("clickhouse://ch.internal/ghm", None).unwrap()
        else {
            panic!("not ClickHouse");
        };
        assert_eq!(plain.endpoint.as_str(), "http://ch.internal:8123/");
        assert_eq!(
            (plain.user.as_str(), plain.database.as_str()),
            ("default", "ghm")
        );
        assert_eq!(plain.password, None);
        let StoreLocation::ClickHouse(with_user) = StoreLocation::parse(
            "clickhouse://ana@10.0.0.7:9999/events_2024",
            Some("pw".into()),
        )
        .unwrap() else {
            panic!("not ClickHouse");
        };
        assert_eq!(with_user.endpoint.as_str(), "http://10.0.0.7:9999/");
        assert_eq!(with_user.user, "ana");
        assert_eq!(with_user.password.as_ref().map(Secret::expose), Some("pw"));
        let shown = format!("{with_user} {with_user:?}");
        assert!(!shown.contains("pw\""), "{shown}");
        assert!(
            shown.contains("clickhouse://ana@10.0.0.7:9999/events_2024"),
            "{shown}"
        );
        for bad in [
            "postgres://x/y",
            "sqlite:",
            "clickhouse://host",
            "clickhouse://host/",
            "clickhouse://host/1db",
            "clickhouse://host/db;DROP",
            "clickhouse://host/db?x=1",
            "clickhouse://user:Secr3t@host/db",
        ] {
            let error = StoreLocation::parse(bad, None).unwrap_err();
            assert!(!error.contains("Secr3t"), "{error}");
        }
    }

    #[test]
    fn token_never_shows_in_debug() {
        let token = GithubToken::new("ghp_supersecret").unwrap();
        let config = PollerConfig::new(DEFAULT_API_URL.parse().unwrap(), Some(token));
        let printed = format!("{config:?} {config:#?}");
        assert!(!printed.contains("supersecret"), "{printed}");
        assert!(printed.contains("<redacted>"));
    }

    #[test]
    fn repository_names_are_checked() {
        for good in ["rust-lang/rust", "a/b", " owner/name.js ", "o_1/x-y.z"] {
            assert_eq!(
                good.parse::<RepoName>().unwrap().as_str(),
                good.trim(),
                "{good}"
            );
        }
        for bad in [
            "", "rust", "a/", "/b", "a/b/c", "a b/c", "a/..", "../b", "a/b?x=1",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn watch_files_skip_comments_and_name_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watch.txt");
        std::fs::write(&path, "# mine\nrust-lang/rust\n\n  tokio-rs/axum  # web\n").unwrap();
        let repos = read_watch_file(&path).unwrap();
        assert_eq!(
            repos.iter().map(RepoName::as_str).collect::<Vec<_>>(),
            ["rust-lang/rust", "tokio-rs/axum"]
        );
        std::fs::write(&path, "a/b\nnot a repo\n").unwrap();
        let error = read_watch_file(&path).unwrap_err();
        assert!(error.ends_with(":2: \"not a repo\" is not a repository: expected owner/name (letters, digits, '-', '_', '.')"), "{error}");
        assert!(read_watch_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn tokens_are_trimmed_and_checked() {
        assert_eq!(
            GithubToken::parse("ghp_abc123\n")
                .unwrap()
                .unwrap()
                .expose(),
            "ghp_abc123"
        );
        assert!(GithubToken::parse(" \n").unwrap().is_none());
        for bad in ["ghp abc", "ghp\tabc", "ghp_ä", "a\u{7f}b"] {
            let error = GithubToken::parse(bad).unwrap_err();
            assert!(!error.contains(bad), "the error must not echo the token");
        }
    }

    #[test]
    fn blank_token_means_none() {
        assert!(GithubToken::new("  ").is_none());
        assert_eq!(GithubToken::new(" abc\n").unwrap().expose(), "abc");
    }

    #[test]
    fn memory_location_is_recognised() {
        assert_eq!(
            ":memory:".parse::<SqliteLocation>().unwrap(),
            SqliteLocation::Memory
        );
        assert_eq!(
            "data/x.db".parse::<SqliteLocation>().unwrap(),
            SqliteLocation::File("data/x.db".into())
        );
    }
}
