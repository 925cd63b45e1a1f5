//! The command line (clap). Every flag can also come from the environment; the
//! GitHub token comes only from `GITHUB_TOKEN`, since flags show up in `ps`.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use reqwest::Url;

use crate::core::bots::{BotLogin, BotLogins};

use crate::config::{
    Config, ConnectionLimits, DEFAULT_API_URL, GithubToken, HttpConfig, PollerConfig, RepoName,
    SqliteLocation, StoreLocation, read_watch_file,
};

#[derive(Debug, Parser)]
#[command(
    name = "ghmetrics",
    version,
    about = "Streams GitHub's public events into SQLite and serves metrics about them.",
    after_help = ENVIRONMENT
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `ghmetrics` alone means `ghmetrics serve`, with the same flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The settings that only the environment gives, listed under every `--help`.
const ENVIRONMENT: &str = "Environment (besides each flag's own variable, shown with it):
  GITHUB_TOKEN                   a GitHub token: 5,000 requests an hour instead of 60 (never a flag: flags show in `ps`)
  GHMETRICS_CLICKHOUSE_PASSWORD  the ClickHouse user's password (never in the URL)
  RUST_LOG                       what is logged, e.g. `ghmetrics=debug` (default `ghmetrics=info,tower_http=info`)";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll GitHub and serve the metrics API (the default).
    #[command(after_help = ENVIRONMENT)]
    Serve(Box<ServeArgs>),
    /// Import GH Archive files (.json.gz, .json, .ndjson; a directory means every
    /// such file in it), or download a range of hours with --gharchive.
    #[command(after_help = ENVIRONMENT)]
    Import(Box<ImportArgs>),
}

/// Where events are stored (`serve` and `import` alike).
#[derive(Debug, Args, Clone)]
pub struct StoreArgs {
    /// Where events are stored: `sqlite:PATH` (the default, as `--db`) or
    /// `clickhouse://[user@]host[:port]/database` (ClickHouse's HTTP interface,
    /// port 8123 by default; the password comes from
    /// GHMETRICS_CLICKHOUSE_PASSWORD, never from the URL).
    #[arg(
        long,
        env = "GHMETRICS_STORE",
        value_name = "URL",
        conflicts_with = "db"
    )]
    pub store: Option<String>,

    /// SQLite database file (its directory is created if missing), or `:memory:`
    /// for a database that lives only as long as the process: shorthand for
    /// `--store sqlite:PATH`.
    #[arg(long, env = "GHMETRICS_DB", default_value = "data/events.db")]
    pub db: SqliteLocation,

    /// ClickHouse only: keep the tables on this cluster (from the server's
    /// `remote_servers`), one local table per shard behind a `Distributed` table.
    #[arg(
        long,
        env = "GHMETRICS_CLICKHOUSE_CLUSTER",
        value_name = "NAME",
        requires = "store"
    )]
    pub clickhouse_cluster: Option<String>,

    /// ClickHouse cluster without distributed DDL (no Keeper/ZooKeeper): the
    /// HTTP URL of each shard (`http://host:8123`, repeatable), on which the
    /// local tables are created one by one instead of `ON CLUSTER`.
    #[arg(
        long = "clickhouse-shard-url",
        value_name = "URL",
        requires = "clickhouse_cluster"
    )]
    pub clickhouse_shards: Vec<Url>,
}

impl StoreArgs {
    /// The store these flags name; `password` is GHMETRICS_CLICKHOUSE_PASSWORD.
    pub fn location(&self, password: Option<String>) -> Result<StoreLocation, String> {
        let Some(url) = &self.store else {
            return Ok(StoreLocation::Sqlite(self.db.clone()));
        };
        let mut location = StoreLocation::parse(url, password)?;
        match &mut location {
            StoreLocation::ClickHouse(settings) => {
                if let Some(cluster) = &self.clickhouse_cluster {
                    let valid = !cluster.is_empty()
                        && cluster.len() <= 64
                        && cluster
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                    if !valid {
                        return Err(
                            "--clickhouse-cluster: 1-64 letters, digits, '_' or '-'".to_owned()
                        );
                    }
                }
                settings.cluster = self.clickhouse_cluster.clone();
                settings.shard_endpoints = self.clickhouse_shards.clone();
            }
            StoreLocation::Sqlite(_) if self.clickhouse_cluster.is_some() => {
                return Err("--clickhouse-cluster needs a clickhouse:// store".to_owned());
            }
            StoreLocation::Sqlite(_) => {}
        }
        Ok(location)
    }
}

#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,

    /// Events per transaction.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub batch_size: u64,

    /// Keep only this repository's events (`owner/name`; repeatable), e.g. to
    /// backfill the history of repositories you care about.
    #[arg(long = "repo", value_name = "OWNER/NAME")]
    pub repos: Vec<RepoName>,

    /// Lines longer than this many bytes are skipped and counted as bad,
    /// without being held in memory.
    #[arg(long, default_value_t = crate::ingest::import::DEFAULT_MAX_LINE_BYTES as u64, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    pub max_line_bytes: u64,

    /// Files or directories to import.
    #[arg(
        required_unless_present = "gharchive",
        conflicts_with = "gharchive",
        value_name = "FILE_OR_DIR"
    )]
    pub inputs: Vec<std::path::PathBuf>,

    /// Download and import GH Archive's hours: `YYYY-MM-DD` (a UTC day),
    /// `YYYY-MM-DDTHH` (one hour), or `START..END` with either form on each
    /// side, inclusive. Hours already imported whole are not downloaded again.
    #[arg(long, value_name = "RANGE", value_parser = clap::value_parser!(crate::ingest::gharchive::HourRange))]
    pub gharchive: Option<crate::ingest::gharchive::HourRange>,

    /// Where an archive's hours are: the hour H is `URL/YYYY-MM-DD-H.json.gz`.
    /// Repeatable (the environment variable takes a comma-separated list):
    /// every hour is read from each archive (GH Archive and OpenDigger's,
    /// say), and the events are united by id.
    #[arg(long = "gharchive-url", env = "GHMETRICS_GHARCHIVE_URL", value_name = "URL", default_value = crate::ingest::gharchive::DEFAULT_URL, value_delimiter = ',', value_parser = parse_directory_url)]
    pub gharchive_urls: Vec<Url>,

    /// How many hours after its own an archive may file an event (GH Archive
    /// files events by the hour it crawled them since 2025-05-25; GitHub
    /// shows events up to 6 hours late). An hour's answers are final once
    /// the files of this many hours after it are read.
    #[arg(long, env = "GHMETRICS_ARCHIVE_LAG", value_name = "HOURS", default_value_t = crate::config::DEFAULT_ARCHIVE_LAG_HOURS as u64, value_parser = clap::value_parser!(u64).range(0..=168))]
    pub archive_lag: u64,

    /// Hours downloading at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=32))]
    pub jobs: u64,

    /// Download and import hours already imported whole too.
    #[arg(long)]
    pub force: bool,

    /// The longest one try at an hour may take, download to end (e.g. `30m`);
    /// past it the hour is tried again, then reported as failed.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = parse_duration)]
    pub hour_timeout: Duration,
}

/// An http(s) URL whose path ends in `/`, so that file names join under it.
fn parse_directory_url(text: &str) -> Result<Url, String> {
    if !text.contains("://") {
        return Err(format!(
            "a URL needs http:// or https:// in front (e.g. http://{text})"
        ));
    }
    let mut url: Url = text.parse().map_err(|error| format!("{error}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "expected an http:// or https:// URL, got {:?}",
            url.scheme()
        ));
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address for the HTTP API.
    #[arg(long, env = "GHMETRICS_LISTEN", value_name = "HOST:PORT", default_value = "127.0.0.1:8000", value_parser = parse_listen)]
    pub listen: SocketAddr,

    #[command(flatten)]
    pub store: StoreArgs,

    /// Base URL of the GitHub REST API (e.g. a GitHub Enterprise `/api/v3` URL).
    #[arg(long, env = "GITHUB_API_URL", default_value = DEFAULT_API_URL)]
    pub github_api_url: Url,

    /// Serve what is stored and poll nothing.
    #[arg(long, env = "GHMETRICS_NO_POLL", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_poll: bool,

    /// Also poll this repository's own event feed, for complete data about it
    /// (repeatable; the environment variable takes a comma-separated list).
    #[arg(
        long = "watch-repo",
        env = "GHMETRICS_WATCH",
        value_name = "OWNER/NAME",
        value_delimiter = ','
    )]
    pub watch_repos: Vec<RepoName>,

    /// Count this login's events as a bot's (`exclude_bots=true` leaves them
    /// out), besides every GitHub App's (`...[bot]`); repeatable, the
    /// environment variable takes a comma-separated list. When the list
    /// changes, start-up re-marks the stored events of the logins it adds or drops.
    #[arg(
        long = "bot-login",
        env = "GHMETRICS_BOT_LOGINS",
        value_name = "LOGIN",
        value_delimiter = ','
    )]
    pub bot_logins: Vec<BotLogin>,

    /// A file of repositories to watch: one `owner/name` per line, `#` comments.
    #[arg(long, value_name = "PATH")]
    pub watch_file: Option<std::path::PathBuf>,

    /// Import each GH Archive hour once it is published (a few minutes after
    /// it ends), beside the poller: complete data an hour later.
    #[arg(long, env = "GHMETRICS_FOLLOW_GHARCHIVE", value_parser = clap::builder::FalseyValueParser::new())]
    pub follow_gharchive: bool,

    /// The first hour --follow-gharchive imports: `YYYY-MM-DD` or
    /// `YYYY-MM-DDTHH` (default: the hour the service started).
    #[arg(long, value_name = "START", value_parser = clap::value_parser!(crate::ingest::gharchive::HourRange), requires = "follow_gharchive")]
    pub follow_gharchive_from: Option<crate::ingest::gharchive::HourRange>,

    /// Where an archive's hours are: the hour H is `URL/YYYY-MM-DD-H.json.gz`.
    /// Repeatable (the environment variable takes a comma-separated list):
    /// every hour is read from each archive (GH Archive and OpenDigger's,
    /// say), and the events are united by id.
    #[arg(long = "gharchive-url", env = "GHMETRICS_GHARCHIVE_URL", value_name = "URL", default_value = crate::ingest::gharchive::DEFAULT_URL, value_delimiter = ',', value_parser = parse_directory_url)]
    pub gharchive_urls: Vec<Url>,

    /// How many hours after its own an archive may file an event (GH Archive
    /// files events by the hour it crawled them since 2025-05-25; GitHub
    /// shows events up to 6 hours late). An hour's answers are final once
    /// the files of this many hours after it are read.
    #[arg(long, env = "GHMETRICS_ARCHIVE_LAG", value_name = "HOURS", default_value_t = crate::config::DEFAULT_ARCHIVE_LAG_HOURS as u64, value_parser = clap::value_parser!(u64).range(0..=168))]
    pub archive_lag: u64,

    /// Delete events older than this (e.g. `30d`, `12h`), in small batches in
    /// the background. Default: keep everything.
    #[arg(long, env = "GHMETRICS_RETENTION", value_name = "DURATION", value_parser = parse_retention)]
    pub retention: Option<Duration>,

    /// Answer 503 to a request not answered within this long.
    #[arg(long, env = "GHMETRICS_REQUEST_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Answer 503 to a request whose store has not answered within this long
    /// (a frozen or overloaded database server).
    #[arg(long, env = "GHMETRICS_STORE_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub store_timeout: Duration,

    /// Requests handled at once; more wait their turn (within the timeout).
    #[arg(long, env = "GHMETRICS_MAX_CONCURRENT_REQUESTS", default_value_t = NonZeroUsize::new(HttpConfig::default().max_concurrent_requests).unwrap_or(NonZeroUsize::MIN))]
    pub max_concurrent_requests: NonZeroUsize,

    /// Requests per second allowed per client IP; over it, 429 with Retry-After.
    /// Default: no limit.
    #[arg(long, env = "GHMETRICS_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<NonZeroU32>,

    /// An origin browsers may call the API from (e.g. `https://dash.example.com`;
    /// `*` for any; repeatable, or comma-separated in the environment). Default: none.
    #[arg(long = "cors-origin", env = "GHMETRICS_CORS_ORIGINS", value_name = "ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_origins: Vec<String>,

    /// Most client connections open at once; more wait until one closes.
    #[arg(long, env = "GHMETRICS_MAX_CONNECTIONS", default_value_t = NonZeroUsize::new(ConnectionLimits::default().max_connections).unwrap_or(NonZeroUsize::MIN))]
    pub max_connections: NonZeroUsize,

    /// A client must send a request's whole head within this long of its first byte.
    #[arg(long, env = "GHMETRICS_HEADER_READ_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// A connection with no request in flight is closed after this long.
    #[arg(long, env = "GHMETRICS_KEEP_ALIVE_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,

    /// A connection whose client reads nothing of an answer for this long is closed.
    #[arg(long, env = "GHMETRICS_WRITE_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub write_timeout: Duration,
}

/// `HOST:PORT` with an IP address (`127.0.0.1:8000`, `0.0.0.0:8000`, `[::1]:8000`).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.trim().parse().map_err(|_| {
        let example = match text.trim().parse::<u16>() {
            Ok(port) => {
                format!("127.0.0.1:{port} (this machine only) or 0.0.0.0:{port} (every interface)")
            }
            Err(_) => "127.0.0.1:8000 or [::1]:8000".to_owned(),
        };
        format!("expected an IP address and a port, HOST:PORT, e.g. {example}")
    })
}

/// `30d`, `12h`, `1h 30m`, `90s`: humantime's syntax, and not zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(text.trim()).map_err(|e| format!("{e} (e.g. 30d, 12h, 90s)"))?;
    if duration.is_zero() {
        return Err("must be longer than zero".to_owned());
    }
    Ok(duration)
}

/// A retention period: a duration that reaches no further back than
/// [`MAX_RETENTION_YEARS`] (a longer one could not be subtracted from now
/// without overflowing, and would put the cutoff anywhere).
fn parse_retention(text: &str) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration > crate::ingest::retention::MAX_RETENTION {
        return Err(format!(
            "{text:?} is longer than {} years: to keep everything, leave --retention out",
            crate::ingest::retention::MAX_RETENTION_YEARS
        ));
    }
    Ok(duration)
}

/// `*` or `scheme://host[:port]`, as a browser sends it in `Origin`.
fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(text.to_owned());
    }
    let url = Url::parse(text).map_err(|e| format!("{text:?} is not an origin: {e}"))?;
    let origin = url.origin();
    if !origin.is_tuple() || url.path() != "/" || text.ends_with('/') || url.query().is_some() {
        return Err(format!(
            "{text:?} is not an origin: expected scheme://host[:port] or *"
        ));
    }
    Ok(origin.ascii_serialization())
}

impl Cli {
    /// The command to run (`serve` when none is named).
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(Box::new(self.serve)))
    }
}

impl ServeArgs {
    /// The service configuration; `token` is `GITHUB_TOKEN`, read by the caller.
    pub fn into_config(
        self,
        token: Option<GithubToken>,
        clickhouse_password: Option<String>,
    ) -> Result<Config, String> {
        let mut watched = self.watch_repos;
        if let Some(path) = &self.watch_file {
            watched.extend(read_watch_file(path)?);
        }
        watched.sort();
        watched.dedup();
        Ok(Config {
            listen: self.listen,
            store: self.store.location(clickhouse_password)?,
            poller: (!self.no_poll).then(|| {
                let mut poller = PollerConfig::new(self.github_api_url, token);
                poller.watched = watched;
                poller
            }),
            http: HttpConfig {
                request_timeout: self.request_timeout,
                store_timeout: self.store_timeout,
                max_concurrent_requests: self.max_concurrent_requests.get(),
                rate_limit: self.rate_limit,
                cors_origins: self.cors_origins,
                connections: ConnectionLimits {
                    max_connections: self.max_connections.get(),
                    header_read_timeout: self.header_read_timeout,
                    keep_alive_timeout: self.keep_alive_timeout,
                    write_timeout: self.write_timeout,
                },
            },
            follow: self.follow_gharchive.then(|| {
                let from_hour = self.follow_gharchive_from.map_or_else(
                    || chrono::Utc::now().timestamp() / crate::core::time::SECONDS_PER_HOUR,
                    |start| start.first,
                );
                let mut follow =
                    crate::config::FollowConfig::new(distinct(self.gharchive_urls), from_hour);
                follow.retention = self.retention;
                follow.archive_lag_hours = self.archive_lag as i64;
                follow
            }),
            retention: self.retention,
            archive_lag_hours: self.archive_lag as i64,
            bot_logins: BotLogins::new(self.bot_logins)?,
        })
    }
}

/// `urls` without repeats, in the order given.
pub fn distinct(urls: Vec<Url>) -> Vec<Url> {
    let mut seen = Vec::new();
    for url in urls {
        if !seen.contains(&url) {
            seen.push(url);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        match Cli::try_parse_from(args)?.into_command() {
            Command::Serve(args) => Ok(*args),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn import_takes_files_and_a_db() {
        let cli = Cli::try_parse_from(["ghmetrics", "import", "--db", "x.db", "a.json.gz", "dir"])
            .unwrap();
        let Command::Import(args) = cli.into_command() else {
            panic!()
        };
        assert_eq!(args.store.db, SqliteLocation::File("x.db".into()));
        assert_eq!(
            args.inputs,
            [std::path::PathBuf::from("a.json.gz"), "dir".into()]
        );
        assert_eq!(args.batch_size, 20_000);
        assert!(
            Cli::try_parse_from(["ghmetrics", "import"]).is_err(),
            "files are required"
        );
        assert!(Cli::try_parse_from(["ghmetrics", "import", "--batch-size", "0", "f"]).is_err());
    }

    #[test]
    fn serve_follows_the_archive_when_asked() {
        let config = |args: &[&str]| {
            let mut all = vec!["ghmetrics", "serve"];
            all.extend_from_slice(args);
            parse(&all).map(|args| args.into_config(None, None).unwrap())
        };
        assert!(config(&[]).unwrap().follow.is_none(), "off by default");
        let follow = config(&[
            "--follow-gharchive",
            "--follow-gharchive-from",
            "2026-11-29T05",
        ])
        .unwrap()
        .follow
        .unwrap();
        let hour = "2026-11-29T05"
            .parse::<crate::ingest::gharchive::HourRange>()
            .unwrap();
        assert_eq!(follow.from_hour, hour.first);
        assert_eq!(
            follow.urls[0].as_str(),
            crate::ingest::gharchive::DEFAULT_URL
        );
        let now_hour = chrono::Utc::now().timestamp() / 3600;
        let started = config(&["--follow-gharchive", "--retention", "2d"])
            .unwrap()
            .follow
            .unwrap();
        assert!(
            (started.from_hour - now_hour).abs() <= 1,
            "the hour it started"
        );
        assert_eq!(started.retention, Some(Duration::from_secs(2 * 86_400)));
        assert!(
            config(&["--follow-gharchive-from", "2026-11-29"]).is_err(),
            "needs --follow-gharchive"
        );
        assert!(config(&["--follow-gharchive", "--follow-gharchive-from", "soon"]).is_err());
    }

    #[test]
    fn help_lists_the_settings_only_the_environment_gives() {
        use clap::CommandFactory;
        for path in [&[][..], &["serve"], &["import"]] {
            let mut command = Cli::command();
            let mut command = &mut command;
            for sub in path {
                command = command.find_subcommand_mut(sub).unwrap();
            }
            let help = command.render_help().to_string();
            for name in ["GITHUB_TOKEN", "RUST_LOG", "GHMETRICS_CLICKHOUSE_PASSWORD"] {
                assert!(help.contains(name), "{path:?}: {name} missing");
            }
        }
        let import = Cli::command()
            .find_subcommand("import")
            .unwrap()
            .get_about()
            .unwrap()
            .to_string();
        assert!(import.contains("download"), "{import}");
    }

    #[test]
    fn mistakes_in_archive_flags_say_what_to_fix() {
        let said = |args: &[&str]| {
            let mut all = vec!["ghmetrics", "import"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).unwrap_err().to_string()
        };
        assert!(said(&["--gharchive", "2015-13-01"]).contains("there is no month 13"));
        assert!(said(&["--gharchive", "2015-02-30"]).contains("that month has no day 30"));
        assert!(said(&["--gharchive", "2015-1-1"]).contains("expected YYYY-MM-DD"));
        let url = said(&[
            "--gharchive",
            "2015-01-01",
            "--gharchive-url",
            "127.0.0.1:8765",
        ]);
        assert!(url.contains("a URL needs http:// or https://"), "{url}");
    }

    #[test]
    fn import_takes_a_gh_archive_range_instead_of_files() {
        let import = |args: &[&str]| {
            let mut all = vec!["ghmetrics", "import"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).map(|cli| match cli.into_command() {
                Command::Import(args) => *args,
                other => panic!("not import: {other:?}"),
            })
        };
        let args = import(&[
            "--gharchive",
            "2015-01-01",
            "--gharchive-url",
            "http://127.0.0.1:1/m",
        ])
        .unwrap();
        assert_eq!(args.gharchive.unwrap().len(), 24);
        assert_eq!(
            args.gharchive_urls[0].as_str(),
            "http://127.0.0.1:1/m/",
            "a directory"
        );
        assert_eq!(args.archive_lag, 6);
        let two = import(&[
            "--gharchive",
            "2015-01-01",
            "--gharchive-url",
            "http://127.0.0.1:1/a/",
            "--gharchive-url",
            "http://127.0.0.1:1/b/",
            "--archive-lag",
            "9",
        ])
        .unwrap();
        assert_eq!(two.gharchive_urls.len(), 2);
        assert_eq!(two.archive_lag, 9);
        assert!(args.inputs.is_empty());
        assert_eq!((args.jobs, args.force), (4, false));
        let default = import(&["--gharchive", "2015-01-01T05"]).unwrap();
        assert_eq!(
            default.gharchive_urls[0].as_str(),
            crate::ingest::gharchive::DEFAULT_URL
        );
        for bad in [
            &["--gharchive", "2015-01-01", "file.json.gz"][..],
            &["--gharchive", "2015-13-01"],
            &["--gharchive", "2015-01-01", "--jobs", "0"],
            &["--gharchive", "2015-01-01", "--gharchive-url", "ftp://x/"],
            &["--gharchive", "2015-01-01", "--archive-lag", "169"],
            &[],
        ] {
            assert!(import(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let args = parse(&["ghmetrics"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(args.store.db, SqliteLocation::File("data/events.db".into()));
        assert_eq!(args.github_api_url.as_str(), "https://api.github.com/");
        assert!(!args.no_poll);
    }

    #[test]
    fn serve_flags_parse() {
        let args = parse(&[
            "ghmetrics",
            "serve",
            "--listen",
            "0.0.0.0:9000",
            "--db",
            ":memory:",
            "--no-poll",
            "--github-api-url",
            "http://127.0.0.1:1234/",
        ])
        .unwrap();
        assert_eq!(args.listen.port(), 9000);
        assert_eq!(args.store.db, SqliteLocation::Memory);
        assert!(args.no_poll);
        assert!(
            args.clone()
                .into_config(None, None)
                .unwrap()
                .poller
                .is_none()
        );
        let top_level = parse(&["ghmetrics", "--db", ":memory:"]).unwrap();
        assert_eq!(top_level.store.db, SqliteLocation::Memory);
    }

    #[test]
    fn watched_repositories_come_from_flags_and_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("watch");
        std::fs::write(&file, "c/c\n# comment\na/a\n").unwrap();
        let args = parse(&[
            "ghmetrics",
            "--watch-repo",
            "b/b",
            "--watch-repo",
            "a/a,d/d",
            "--watch-file",
            file.to_str().unwrap(),
        ])
        .unwrap();
        let config = args.into_config(None, None).unwrap();
        let watched: Vec<String> = config
            .poller
            .unwrap()
            .watched
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(watched, ["a/a", "b/b", "c/c", "d/d"]);
        assert!(parse(&["ghmetrics", "--watch-repo", "nope"]).is_err());
        let missing = parse(&["ghmetrics", "--watch-file", "/no/such/file"]).unwrap();
        assert!(missing.into_config(None, None).is_err());
    }

    #[test]
    fn bot_logins_come_from_repeated_flags_and_lists() {
        let args = parse(&[
            "ghmetrics",
            "--bot-login",
            "Renovate-Bot",
            "--bot-login",
            "k8s-ci-robot,my-app[bot]",
        ])
        .unwrap();
        let config = args.into_config(None, None).unwrap();
        let logins: Vec<&str> = config.bot_logins.iter().collect();
        assert_eq!(logins, ["k8s-ci-robot", "my-app[bot]", "renovate-bot"]);
        let error = parse(&["ghmetrics", "--bot-login", "a b"]).unwrap_err();
        assert!(error.to_string().contains("not a GitHub login"), "{error}");
        let many = (0..=crate::core::bots::MAX_BOT_LOGINS)
            .map(|i| format!("bot-{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let args = parse(&["ghmetrics", "--bot-login", &many]).unwrap();
        assert!(
            args.into_config(None, None)
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn limits_retention_and_origins_parse() {
        let defaults = parse(&["ghmetrics"])
            .unwrap()
            .into_config(None, None)
            .unwrap();
        assert_eq!(defaults.retention, None);
        assert_eq!(defaults.http.rate_limit, None);
        assert!(defaults.http.cors_origins.is_empty());
        assert_eq!(defaults.http.request_timeout, Duration::from_secs(10));
        assert_eq!(
            defaults.http.store_timeout,
            HttpConfig::default().store_timeout
        );
        let config = parse(&[
            "ghmetrics",
            "--retention",
            "30d",
            "--request-timeout",
            "1500ms",
            "--max-concurrent-requests",
            "8",
            "--rate-limit",
            "20",
            "--cors-origin",
            "https://dash.example.com",
            "--cors-origin",
            "http://localhost:3000,*",
        ])
        .unwrap()
        .into_config(None, None)
        .unwrap();
        assert_eq!(config.retention, Some(Duration::from_secs(30 * 86_400)));
        assert_eq!(config.http.request_timeout, Duration::from_millis(1500));
        assert_eq!(config.http.max_concurrent_requests, 8);
        assert_eq!(config.http.rate_limit.map(NonZeroU32::get), Some(20));
        assert_eq!(
            config.http.cors_origins,
            ["https://dash.example.com", "http://localhost:3000", "*"]
        );
        for bad in [
            &["ghmetrics", "--retention", "0s"][..],
            &["ghmetrics", "--retention", "forever"],
            &["ghmetrics", "--retention", "18446744073709551615s"],
            &["ghmetrics", "--retention", "300000000000y"],
            &["ghmetrics", "--retention", "1001y"],
            &["ghmetrics", "--rate-limit", "0"],
            &["ghmetrics", "--max-concurrent-requests", "0"],
            &["ghmetrics", "--cors-origin", "example.com"],
            &["ghmetrics", "--cors-origin", "https://example.com/path"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        assert!(parse(&["ghmetrics", "--listen", "nonsense"]).is_err());
        let error = parse(&["ghmetrics", "--listen", "8001"])
            .unwrap_err()
            .to_string();
        assert!(error.contains("HOST:PORT, e.g. 127.0.0.1:8001"), "{error}");
        assert!(parse(&["ghmetrics", "serve", "--github-api-url", "not a url"]).is_err());
        assert!(parse(&["ghmetrics", "--token", "x"]).is_err());
    }
}
