//! The `ghmetrics` binary: parse the command line, set up logging, run the library.
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use ghmetrics::App;
use ghmetrics::cli::{Cli, Command, ImportArgs, ServeArgs};
use ghmetrics::config::{CLICKHOUSE_PASSWORD_ENV, GithubToken};
use ghmetrics::ingest::import::ImportOptions;
use ghmetrics::store::Store;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Log levels when `RUST_LOG` is not set.
const DEFAULT_LOG_FILTER: &str = "ghmetrics=info,tower_http=info";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        // Logs go to stderr, so that stdout carries only results (the import
        // summary) for scripts to read.
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in journald or files.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .init();
    let result = runtime().and_then(|runtime| match cli.into_command() {
        Command::Serve(args) => runtime.block_on(serve(*args)).map(|()| ExitCode::SUCCESS),
        Command::Import(args) => runtime.block_on(import(*args)),
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// `error` and its causes on one line, each said once: many errors already
/// include their cause in their own message, which `{:#}` would repeat.
fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

/// Threads for blocking work: the database (8 pooled connections) and chart
/// rendering (CPU-bound). Tokio's default of 512 only adds threads, each with
/// its own allocator arena, that wait for a connection or a core: memory for
/// no speed (BENCHMARKS.md, serving).
const BLOCKING_THREADS: usize = 8;

/// The process's one runtime, for every command.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")
}

/// Serves until SIGINT or SIGTERM.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let token = match std::env::var_os("GITHUB_TOKEN") {
        None => None,
        Some(value) => match value.to_str() {
            Some(text) => GithubToken::parse(text).map_err(anyhow::Error::msg)?,
            None => anyhow::bail!("GITHUB_TOKEN is not valid UTF-8"),
        },
    };
    let config = args
        .into_config(token, clickhouse_password()?)
        .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let app = App::build(&config, listener).await?;
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    app.run_until(shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// GHMETRICS_CLICKHOUSE_PASSWORD, if set.
fn clickhouse_password() -> anyhow::Result<Option<String>> {
    match std::env::var_os(CLICKHOUSE_PASSWORD_ENV) {
        None => Ok(None),
        Some(value) => match value.into_string() {
            Ok(password) => Ok(Some(password)),
            Err(_) => anyhow::bail!("{CLICKHOUSE_PASSWORD_ENV} is not valid UTF-8"),
        },
    }
}

/// Imports files or archive hours, then prints a summary and one `failed:` line per file not read
/// completely (exit status 1 then).
async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let location = args
        .store
        .location(clickhouse_password()?)
        .map_err(anyhow::Error::msg)?;
    let store = Store::open(&location)
        .await
        .with_context(|| format!("opening the store {location}"))?;
    let options = ImportOptions {
        batch_size: usize::try_from(args.batch_size).unwrap_or(usize::MAX),
        progress_bar: std::io::stderr().is_terminal(),
        repos: args.repos.iter().map(ToString::to_string).collect(),
        max_line_bytes: usize::try_from(args.max_line_bytes).unwrap_or(usize::MAX),
        archive_lag_hours: args.archive_lag as i64,
    };
    let mut all_missing = None;
    let summary = match args.gharchive {
        Some(range) => {
            let urls = ghmetrics::cli::distinct(args.gharchive_urls);
            let mut archive = ghmetrics::ingest::import::ArchiveImport::new(urls, range);
            archive.jobs = usize::try_from(args.jobs).unwrap_or(1);
            archive.force = args.force;
            archive.hour_deadline = args.hour_timeout;
            let files = archive.urls.len() * range.hours().count();
            let summary =
                ghmetrics::ingest::import::import_archive(&store, &archive, &options).await?;
            if summary.hours_missing.len() == files {
                all_missing = Some(archive.urls);
            }
            summary
        }
        None => ghmetrics::ingest::import::import(&store, &args.inputs, &options).await?,
    };
    if let Some(urls) = all_missing {
        let urls: Vec<String> = urls
            .iter()
            .map(ghmetrics::ingest::import::source_name)
            .collect();
        println!(
            "none of the {} hour(s) is at {} (404 for every one): is --gharchive-url right? GH Archive's is {}",
            summary.hours_missing.len(),
            urls.join(" or "),
            ghmetrics::ingest::gharchive::DEFAULT_URL
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("{}", summary.describe());
    for hour in &summary.hours_missing {
        println!("missing upstream: {hour}");
    }
    for hour in &summary.suspect_hours {
        let at = chrono::DateTime::from_timestamp(hour * 3600, 0).unwrap_or_default();
        println!(
            "suspect: {} (under a tenth of the hours around it, or a source lacks it: likely a hole in the archive)",
            at.format("%Y-%m-%dT%H:00:00Z")
        );
    }
    for file in &summary.files_beyond_lag {
        println!("later than --archive-lag allows: {file}");
    }
    for failure in &summary.files_failed {
        println!("failed: {failure}");
    }
    Ok(if summary.files_failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
    shutdown.cancel();
}
