//! The command line (clap). Every flag can also come from the environment; the
//! GitHub token comes only from `GITHUB_TOKEN`, since flags show up in `ps`.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use reqwest::Url;

use crate::config::{Config, DEFAULT_API_URL, DbLocation, GithubToken, PollerConfig};

#[derive(Debug, Parser)]
#[command(
    name = "ghmetrics",
    version,
    about = "Streams GitHub's public events into SQLite and serves metrics about them."
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `ghmetrics` alone means `ghmetrics serve`, with the same flags.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Poll GitHub and serve the metrics API (the default).
    Serve(ServeArgs),
}

#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address for the HTTP API.
    #[arg(long, env = "GHMETRICS_LISTEN", default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,

    /// SQLite database file (its directory is created if missing), or `:memory:`
    /// for a database that lives only as long as the process.
    #[arg(long, env = "GHMETRICS_DB", default_value = "data/events.db")]
    pub db: DbLocation,

    /// Base URL of the GitHub REST API (e.g. a GitHub Enterprise `/api/v3` URL).
    #[arg(long, env = "GITHUB_API_URL", default_value = DEFAULT_API_URL)]
    pub github_api_url: Url,

    /// Serve what is stored and poll nothing.
    #[arg(long, env = "GHMETRICS_NO_POLL", value_parser = clap::builder::FalseyValueParser::new())]
    pub no_poll: bool,
}

impl Cli {
    /// The arguments of the command to run (`serve` when none is named).
    pub fn serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => args,
            None => self.serve,
        }
    }
}

impl ServeArgs {
    /// The service configuration; `token` is `GITHUB_TOKEN`, read by the caller.
    pub fn into_config(self, token: Option<GithubToken>) -> Config {
        Config {
            listen: self.listen,
            db: self.db,
            poller: (!self.no_poll).then(|| PollerConfig::new(self.github_api_url, token)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Cli::try_parse_from(args).map(Cli::serve_args)
    }

    #[test]
    fn no_subcommand_means_serve_with_defaults() {
        let args = parse(&["ghmetrics"]).unwrap();
        assert_eq!(args.listen, "127.0.0.1:8000".parse().unwrap());
        assert_eq!(args.db, DbLocation::File("data/events.db".into()));
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
        assert_eq!(args.db, DbLocation::Memory);
        assert!(args.no_poll);
        assert!(args.clone().into_config(None).poller.is_none());
        let top_level = parse(&["ghmetrics", "--db", ":memory:"]).unwrap();
        assert_eq!(top_level.db, DbLocation::Memory);
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        assert!(parse(&["ghmetrics", "--listen", "nonsense"]).is_err());
        assert!(parse(&["ghmetrics", "serve", "--github-api-url", "not a url"]).is_err());
        assert!(parse(&["ghmetrics", "--token", "x"]).is_err());
    }
}
