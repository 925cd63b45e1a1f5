//! `ghmetrics import`: GH Archive files (`.json.gz`, or plain `.json` /
//! `.ndjson`, one event per line) into the same `events` table as the poller,
//! with the same parser and the same dedupe.
//!
//! Threads form a pipeline so that inflating, parsing and writing overlap: a
//! reader inflates newline-aligned chunks (`--gharchive`: one reader per hour
//! downloading, `--jobs` of them), the calling thread parses them, a writer
//! inserts batches (one transaction each, so the poller and readers of a live
//! database wait for at most one batch). Memory stays flat: a few chunks and
//! batches are in flight, whatever the file size or the range.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::core::event::{Event, PerType, parse_event};
use crate::core::time::SECONDS_PER_HOUR;
use crate::ingest::gharchive::{self, HourRange, Unavailable};
use crate::store::{ArchiveFile, InsertStats, Load, Settling, SourceId, Store, StoreError};

mod archive;
mod parser;
mod reader;

pub use archive::{ArchiveImport, DEFAULT_HOUR_DEADLINE, import_archive, source_name};
use parser::*;
use reader::*;

/// How often an import waiting for its downloads looks for a shutdown.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(100);
/// Bytes of whole lines handed from the reader to the parser at a time.
const CHUNK_BYTES: usize = 4 << 20;
/// Chunks or batches queued between two stages: enough to smooth out
/// hiccups, few enough to keep memory flat.
const QUEUE_DEPTH: usize = 4;
/// How many bad lines are reported individually (the rest are only counted).
const BAD_LINES_REPORTED: u64 = 10;
/// How often progress is logged when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Import settings.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Events per transaction.
    pub batch_size: usize,
    /// Draw a progress bar (a person is watching) rather than log lines.
    pub progress_bar: bool,
    /// Only keep events of these repositories (`owner/name`); all when empty.
    pub repos: Vec<String>,
    /// Longer lines are skipped, counted as bad, without being held in memory.
    pub max_line_bytes: usize,
    /// `--archive-lag`: how many hours after its own an archive may file an
    /// event (from 2025-05-25, when GH Archive began filing by crawl hour).
    pub archive_lag_hours: i64,
}

/// The default `--max-line-bytes`: the largest real events (a PR with a huge
/// body) are a few hundred KB, so nothing real comes near it.
pub const DEFAULT_MAX_LINE_BYTES: usize = 16 << 20;

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            // Large enough that per-transaction costs vanish, small enough that a
            // concurrent poller waits well under its busy_timeout.
            batch_size: 20_000,
            progress_bar: false,
            repos: Vec::new(),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            archive_lag_hours: crate::config::DEFAULT_ARCHIVE_LAG_HOURS,
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Files read to the end.
    pub files_complete: usize,
    /// Files that could not be read (missing, unreadable, truncated), with why.
    pub files_failed: Vec<String>,
    /// Compressed (on-disk) bytes read.
    pub bytes_read: u64,
    /// Non-empty lines seen.
    pub lines: u64,
    pub stored: InsertStats,
    /// Events of untracked types (or other repositories, with a filter).
    pub skipped: u64,
    /// Lines that were not a valid event.
    pub bad_lines: u64,
    pub elapsed: Duration,
    /// `--gharchive`: hours imported whole, hours found already imported
    /// (not downloaded), and hours GH Archive does not have (404).
    pub hours_imported: usize,
    pub hours_already: usize,
    pub hours_missing: Vec<String>,
    /// The largest lag of any archive file read, in hours (see [`ArchiveFile::lags`]).
    pub max_lag_hours: i64,
    /// Archive files filed by crawl hour whose events are later than
    /// `--archive-lag` allows: `name: N h`.
    pub files_beyond_lag: Vec<String>,
    /// The first and last hour of the archive files read whole.
    pub archive_file_hours: Option<(i64, i64)>,
    /// Hours (by `created_at`, since the epoch) of those files that look
    /// like holes in the archive (see [`crate::store::suspect_hours`]).
    pub suspect_hours: Vec<i64>,
}

impl ImportSummary {
    /// One line for people: what happened and how fast.
    pub fn describe(&self) -> String {
        let seconds = self.elapsed.as_secs_f64().max(1e-9);
        let what = if self.hours_imported + self.hours_already + self.hours_missing.len() > 0 {
            format!(
                "{} hour(s) imported, {} already imported, {} missing upstream, {} failed",
                self.hours_imported,
                self.hours_already,
                self.hours_missing.len(),
                self.files_failed.len()
            )
        } else {
            format!(
                "{} file(s) imported, {} failed",
                self.files_complete,
                self.files_failed.len()
            )
        };
        format!(
            "{what}; {} lines read, {} events stored, {} duplicates, {} skipped, {} bad lines; largest lag {} h; {:.2} s ({:.0} lines/s, {:.0} events stored/s)",
            self.lines,
            self.stored.inserted(),
            self.stored.duplicates,
            self.skipped,
            self.bad_lines,
            self.max_lag_hours,
            seconds,
            self.lines as f64 / seconds,
            self.stored.inserted() as f64 / seconds,
        )
    }
}

/// Why an import stopped before the end (a file that cannot be read is not
/// this: it is recorded in [`ImportSummary::files_failed`] and the next file follows).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the database writer stopped unexpectedly")]
    WriterGone,
    #[error("cannot start downloading: {0}")]
    Download(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("the import stopped unexpectedly: {0}")]
    Stopped(String),
}

/// The files `inputs` name: files as given, directories expanded to their
/// importable files in name order.
pub fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut files = Vec::new();
    let mut failures = Vec::new();
    for input in inputs {
        if input.is_dir() {
            match std::fs::read_dir(input) {
                Ok(entries) => {
                    let mut found: Vec<PathBuf> = entries
                        .filter_map(|entry| entry.ok().map(|e| e.path()))
                        .filter(|path| path.is_file() && is_importable(path))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(error) => failures.push(format!("{}: {error}", input.display())),
            }
        } else {
            files.push(input.clone());
        }
    }
    (files, failures)
}

fn is_importable(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    [".json.gz", ".ndjson.gz", ".json", ".ndjson"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// Imports every file `inputs` names into `db`. Files named as archive
/// hours (`YYYY-MM-DD-H.json.gz`) are an archive's, one source per
/// directory; the hours they settle are recorded so. The files are read
/// and parsed on threads of their own; the store is asked on the runtime.
pub async fn import(
    store: &Store,
    inputs: &[PathBuf],
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let (store, inputs, options) = (store.clone(), inputs.to_vec(), options.clone());
    off_runtime(move || import_files(&store, &inputs, &options)).await
}

/// Runs `work` (an import) on a blocking thread of the runtime, in the
/// caller's span.
async fn off_runtime(
    work: impl FnOnce() -> Result<ImportSummary, ImportError> + Send + 'static,
) -> Result<ImportSummary, ImportError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        work()
    })
    .await
    .map_err(|error| ImportError::Stopped(error.to_string()))?
}

/// [`import`], on the blocking thread it runs on.
fn import_files(
    store: &Store,
    inputs: &[PathBuf],
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let (files, mut files_failed) = expand_inputs(inputs);
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let progress = Progress::new(total_bytes, options.progress_bar);
    // An archive hour file (not cut to some repositories) and its directory.
    let archive_of = |file: &Path| -> Option<(String, i64)> {
        let hour = archive_hour(file.file_name()?.to_str()?)?;
        let path = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        let directory = path.parent().unwrap_or(Path::new("."));
        options
            .repos
            .is_empty()
            .then(|| (directory.display().to_string(), hour))
    };
    let mut names: Vec<String> = files
        .iter()
        .filter_map(|f| archive_of(f))
        .map(|(d, _)| d)
        .collect();
    names.sort_unstable();
    names.dedup();
    let lookups = Lookups::new(store);
    let sources = register_sources(&lookups, &names)?;
    let settling = Settling {
        lag_hours: options.archive_lag_hours,
        sources: names
            .iter()
            .filter_map(|n| sources.get(n).copied())
            .collect(),
    };

    let mut summary = run_pipeline(store, options, &progress, settling, |parser| {
        for file in &files {
            let source = match File::open(file) {
                Ok(source) => source,
                Err(error) => {
                    files_failed.push(format!("{}: {error}", file.display()));
                    continue;
                }
            };
            let gzipped = file.extension().is_some_and(|ext| ext == "gz");
            if gzipped && !starts_as_gzip(file) {
                files_failed.push(format!(
                    "{}: not a gzip file, though its name ends in .gz (a plain file of events is read as .json)",
                    file.display()
                ));
                continue;
            }
            let archive = archive_of(file)
                .and_then(|(directory, hour)| Some((*sources.get(&directory)?, hour)));
            let mut reading = parser.open_file(file.display().to_string(), archive);
            let read = match start_reader(source, gzipped, options.max_line_bytes, &progress) {
                Ok(pieces) => parser.take_all(&mut reading, pieces),
                Err(why) => Err(Stop::File(why)),
            };
            let whole = match read {
                Ok(()) => {
                    parser.summary.files_complete += 1;
                    true
                }
                // Reported once, in the summary; the lines read before are kept.
                Err(Stop::File(reason)) => {
                    files_failed.push(format!("{}: {reason}", file.display()));
                    false
                }
                Err(Stop::WriterGone) => return Err(WriterGone),
            };
            parser.end_file(reading, whole)?;
        }
        Ok(())
    })?;
    summary.files_failed = files_failed;
    find_suspects(&lookups, &mut summary, options.archive_lag_hours)?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The import's few questions to the store, asked from the import's
/// blocking thread on the process's runtime.
struct Lookups {
    runtime: tokio::runtime::Handle,
    store: Store,
}

impl Lookups {
    fn new(store: &Store) -> Lookups {
        Lookups {
            runtime: runtime(),
            store: store.clone(),
        }
    }

    fn ask<T, F: std::future::Future<Output = Result<T, StoreError>>>(
        &self,
        question: impl FnOnce(Store) -> F,
    ) -> Result<T, ImportError> {
        Ok(self.runtime.block_on(question(self.store.clone()))?)
    }
}

/// The process's runtime, which the import's downloads and store calls run
/// on; the import itself (reading, inflating, parsing) runs on a blocking
/// thread of it ([`off_runtime`]), so there always is one.
fn runtime() -> tokio::runtime::Handle {
    tokio::runtime::Handle::current()
}

/// Whether `path` begins as a gzip file does (an empty file does not).
fn starts_as_gzip(path: &Path) -> bool {
    let mut magic = [0u8; 2];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == [0x1f, 0x8b]
}

/// Numbers the archive sources `names` in the store: name -> number.
fn register_sources(
    lookups: &Lookups,
    names: &[String],
) -> Result<HashMap<String, SourceId>, ImportError> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let names = names.to_vec();
    let sources = lookups.ask(|store| async move { store.archive_sources(names).await })?;
    Ok(sources.into_iter().map(|(id, name)| (name, id)).collect())
}

/// Fills [`ImportSummary::suspect_hours`]: the hours whose events the
/// archive files read can hold, judged with their neighbours.
fn find_suspects(
    lookups: &Lookups,
    summary: &mut ImportSummary,
    lag_hours: i64,
) -> Result<(), ImportError> {
    let Some((first, last)) = summary.archive_file_hours else {
        return Ok(());
    };
    let first = first - lag_hours;
    let around = crate::store::SUSPECT_NEIGHBOURS;
    let (hours, files) = lookups.ask(|store| async move {
        tokio::try_join!(
            store.hour_coverage(HourRange {
                first: first - around,
                last: last + around,
            }),
            store.archive_files(HourRange { first, last }),
        )
    })?;
    summary.suspect_hours = crate::store::suspect_hours(&hours, &files)
        .into_iter()
        .filter(|hour| (first..=last).contains(hour))
        .collect();
    Ok(())
}

/// The hour (since the epoch) a GH Archive file's name stands for:
/// `YYYY-MM-DD-H.json.gz`, `H` from 0 to 23 without a leading zero.
pub fn archive_hour(file_name: &str) -> Option<i64> {
    let stem = file_name.strip_suffix(".json.gz")?;
    let (date, hour) = stem.rsplit_once('-')?;
    let valid_hour = !hour.is_empty()
        && hour.len() <= 2
        && hour.bytes().all(|b| b.is_ascii_digit())
        && !(hour.len() == 2 && hour.starts_with('0'));
    let hour: i64 = hour
        .parse()
        .ok()
        .filter(|h| valid_hour && (0..24).contains(h))?;
    if date.len() != 10 {
        return None;
    }
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let midnight = day.and_hms_opt(0, 0, 0)?.and_utc().timestamp();
    Some(midnight / SECONDS_PER_HOUR + hour)
}
