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

use crate::core::event::{Event, parse_event};
use crate::core::time::SECONDS_PER_HOUR;
use crate::ingest::gharchive::{self, HourRange, Unavailable};
use crate::store::{ArchiveFile, InsertStats, Load, Settling, SourceId, Store, StoreError};

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
/// directory; the hours they settle are recorded so.
pub fn import(
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
    let lookups = Lookups::new(store)?;
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
                Ok(pieces) => parser.take_all(&mut reading, pieces)?,
                Err(why) => Err(why),
            };
            let whole = match read {
                Ok(()) => {
                    parser.summary.files_complete += 1;
                    true
                }
                // Reported once, in the summary; the lines read before are kept.
                Err(reason) => {
                    files_failed.push(format!("{}: {reason}", file.display()));
                    false
                }
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

/// The import's few questions to the store, asked on a runtime of its own
/// with connections of its own (the import runs on plain threads).
struct Lookups {
    runtime: tokio::runtime::Runtime,
    store: Store,
}

impl Lookups {
    fn new(store: &Store) -> Result<Lookups, ImportError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| ImportError::Download(format!("cannot start a runtime: {error}")))?;
        Ok(Lookups {
            runtime,
            store: store.with_new_connections(),
        })
    }

    fn ask<T, F: std::future::Future<Output = Result<T, StoreError>>>(
        &self,
        question: impl FnOnce(Store) -> F,
    ) -> Result<T, ImportError> {
        Ok(self.runtime.block_on(question(self.store.clone()))?)
    }
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
            store.hour_coverage(first - around, last + around),
            store.archive_files(first, last),
        )
    })?;
    summary.suspect_hours = crate::store::suspect_hours(&hours, &files)
        .into_iter()
        .filter(|hour| (first..=last).contains(hour))
        .collect();
    Ok(())
}

/// What `import --gharchive` downloads, and how hard it tries.
#[derive(Clone, Debug)]
pub struct ArchiveImport {
    /// GH Archive or mirrors (several archives are united, each hour read
    /// from every one): the hour `H` is `URL/YYYY-MM-DD-H.json.gz`.
    pub urls: Vec<reqwest::Url>,
    pub range: HourRange,
    /// Hours downloading at once (as many of them as there are cores are
    /// inflated side by side).
    pub jobs: usize,
    /// Download hours already imported whole too.
    pub force: bool,
    /// Tries per hour for 5xx, 429, timeouts, resets and bodies cut short.
    pub attempts: u32,
    /// The wait before the second try, doubled for each next one.
    pub backoff: Duration,
    /// The longest wait for a connection, an answer or the next piece of a body.
    pub timeout: Duration,
    /// The longest one try at an hour may take in all (a mirror that sends
    /// a byte a second would otherwise hold it forever).
    pub hour_deadline: Duration,
    /// Stops the import when cancelled: the files being read are left
    /// unrecorded (the next run reads them again).
    pub shutdown: Option<tokio_util::sync::CancellationToken>,
}

impl ArchiveImport {
    pub fn new(urls: Vec<reqwest::Url>, range: HourRange) -> ArchiveImport {
        ArchiveImport {
            urls,
            range,
            jobs: 4,
            force: false,
            attempts: 5,
            backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(60),
            hour_deadline: DEFAULT_HOUR_DEADLINE,
            shutdown: None,
        }
    }
}

/// The default [`ArchiveImport::hour_deadline`]: today's largest hours are
/// a few hundred MB, minutes at a modest link's speed.
pub const DEFAULT_HOUR_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// The name an archive source is recorded under: its URL without credentials.
pub fn source_name(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// One file of `import --gharchive`: an hour from one source.
#[derive(Clone, Copy)]
struct Job {
    hour: i64,
    /// Index into [`ArchiveImport::urls`].
    url: usize,
    source: SourceId,
}

/// `import --gharchive`: every hour of the range from every source, except
/// the files a source has given whole before, downloaded (`jobs` at once,
/// each body inflated as it arrives by a reader of its own, the parser
/// taking the readers' pieces as they come, no file written) and imported
/// as `import FILE` would, each file recorded once stored whole. A 404 is
/// an hour the source does not have (recorded so once the hour and its lag
/// have passed); anything else that fails is tried again from the hour's
/// start (ids make that safe), up to `attempts` times, then reported as failed.
pub fn import_archive(
    store: &Store,
    archive: &ArchiveImport,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let lookups = Lookups::new(store)?;
    let names: Vec<String> = archive.urls.iter().map(source_name).collect();
    let sources = register_sources(&lookups, &names)?;
    let ids: Vec<SourceId> = names
        .iter()
        .filter_map(|n| sources.get(n).copied())
        .collect();
    let read_before = if archive.force {
        Vec::new()
    } else {
        let range = archive.range;
        lookups.ask(|store| async move { store.archive_files(range.first, range.last).await })?
    };
    let mut wanted = Vec::new();
    let mut already = 0;
    for hour in archive.range.hours() {
        for (url, &source) in ids.iter().enumerate() {
            let read = read_before
                .iter()
                .any(|f| f.hour == hour && f.source == source && !f.missing);
            if read {
                already += 1;
            } else {
                wanted.push(Job { hour, url, source });
            }
        }
    }
    if wanted.is_empty() {
        // Nothing to download: no runtime, no writer.
        return Ok(ImportSummary {
            hours_already: already,
            elapsed: started.elapsed(),
            ..ImportSummary::default()
        });
    }
    let downloader = gharchive::Downloader::new(archive.timeout, archive.hour_deadline)
        .map_err(|error| ImportError::Download(error.to_string()))?;
    let progress = Progress::new(0, false);
    let hours_bar = HoursBar::new(wanted.len() as u64, options.progress_bar);
    let mut failed: Vec<(i64, String)> = Vec::new();
    let mut missing = Vec::new();
    // Sources that gave an answer: one that cannot be reached before it
    // has will not be, for any hour.
    let mut answered: Vec<bool> = vec![false; archive.urls.len()];
    let mut unreachable: Option<String> = None;
    let settling = Settling {
        lag_hours: options.archive_lag_hours,
        sources: ids.clone(),
    };
    let several = archive.urls.len() > 1;
    let label = |job: &Job| {
        let name = gharchive::file_name(job.hour);
        if several {
            format!("{}{name}", names[job.url])
        } else {
            name
        }
    };
    let mut summary = run_pipeline(store, options, &progress, settling, |parser| {
        // `jobs` hours download at once; as many of them as there are cores
        // are inflated, each by a thread of its own, into one queue, and the
        // parser takes their pieces as they come, so that inflating (the
        // largest cost) keeps every core busy.
        let jobs = archive.jobs.max(1);
        let readers = thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(jobs);
        let (news_tx, news) = sync_channel::<HourNews>(QUEUE_DEPTH);
        let download = |job: Job, delay: Duration| {
            gharchive::hour_url(&archive.urls[job.url], job.hour)
                .map(|url| downloader.start_after(url, delay))
        };
        let inflate = |key: usize, attempt: u32, download| {
            let news = news_tx.clone();
            read_hour(
                key,
                attempt,
                download,
                options.max_line_bytes,
                &progress,
                news,
            )
        };
        let mut next = wanted.iter().copied().enumerate();
        let mut downloading = std::collections::VecDeque::new();
        let mut active: HashMap<usize, HourRead> = HashMap::new();
        loop {
            while active.len() + downloading.len() < jobs
                && let Some((key, job)) = next.next()
            {
                downloading.push_back((key, job, download(job, Duration::ZERO)));
            }
            while active.len() < readers
                && let Some((key, job, started)) = downloading.pop_front()
            {
                let name = label(&job);
                match inflate(key, 1, started) {
                    Ok(()) => {
                        let reading = parser.open_file(name, Some((job.source, job.hour)));
                        active.insert(
                            key,
                            HourRead {
                                job,
                                attempt: 1,
                                reading,
                            },
                        );
                    }
                    Err(why) => failed.push((job.hour, format!("{name}: {why}"))),
                }
            }
            if active.is_empty() {
                break;
            }
            let HourNews { key, attempt, news } = match news.recv_timeout(SHUTDOWN_CHECK) {
                Ok(news) => news,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if archive.shutdown.as_ref().is_some_and(|s| s.is_cancelled()) {
                        tracing::info!(
                            files = active.len(),
                            "stopping: the files being read are read again next time"
                        );
                        break;
                    }
                    continue;
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let Some(read) = active.get_mut(&key).filter(|read| read.attempt == attempt) else {
                // What is left of an attempt given up.
                continue;
            };
            let mut worth_retrying = true;
            if !matches!(news, News::Unavailable(Unavailable::Unreachable(_))) {
                answered[read.job.url] = true;
            }
            let mut outcome = match news {
                News::Piece(piece) => match parser.take_piece(&mut read.reading, piece)? {
                    Ok(()) => continue,
                    Err(why) => Err(why),
                },
                News::End => parser.finish(&read.reading).map(|()| true),
                News::Unavailable(Unavailable::Missing) => Ok(false),
                News::Unavailable(Unavailable::Retry(why)) => Err(why),
                News::Unavailable(Unavailable::Unreachable(why)) => {
                    if !answered[read.job.url] {
                        let host = archive.urls[read.job.url]
                            .host_str()
                            .unwrap_or("?")
                            .to_owned();
                        unreachable = Some(format!(
                            "cannot reach {host}: {why}. Check the network, or give a mirror with --gharchive-url"
                        ));
                        break;
                    }
                    Err(why)
                }
                News::Unavailable(Unavailable::Failed(why)) => {
                    worth_retrying = false;
                    Err(why)
                }
            };
            if let Err(why) = &outcome
                && worth_retrying
                && read.attempt < archive.attempts
            {
                // What was read stays stored; the next try skips it.
                parser.flush(&mut read.reading)?;
                let wait = archive.backoff * 2u32.saturating_pow(read.attempt - 1);
                tracing::warn!(hour = %read.reading.name, attempt = read.attempt, "{why}; trying again in {wait:?}");
                read.attempt += 1;
                read.reading.restart();
                match inflate(key, read.attempt, download(read.job, wait)) {
                    Ok(()) => continue,
                    Err(why) => {
                        worth_retrying = false;
                        outcome = Err(why);
                    }
                }
            }
            let Some(HourRead {
                job,
                attempt,
                reading,
            }) = active.remove(&key)
            else {
                continue;
            };
            let whole = match outcome {
                Ok(true) => {
                    parser.summary.files_complete += 1;
                    tracing::info!(hour = %reading.name, events = reading.tracked.iter().sum::<u64>(), "imported");
                    true
                }
                Ok(false) => {
                    tracing::warn!(hour = %reading.name, "the archive does not have this hour (404)");
                    missing.push((job.hour, reading.name.clone()));
                    // Once the hour and its lag have passed, it will not come.
                    let now = chrono::Utc::now().timestamp();
                    if now >= (job.hour + 1 + options.archive_lag_hours) * SECONDS_PER_HOUR {
                        parser.missing(job.source, job.hour)?;
                    }
                    false
                }
                Err(why) => {
                    let why = if worth_retrying {
                        format!("{why} ({attempt} tries)")
                    } else {
                        why
                    };
                    tracing::error!(hour = %reading.name, "{why}");
                    failed.push((job.hour, format!("{}: {why}", reading.name)));
                    false
                }
            };
            parser.end_file(reading, whole)?;
            hours_bar.advance(&parser.summary, &progress);
        }
        Ok(())
    })?;
    hours_bar.finish();
    if let Some(why) = unreachable {
        return Err(ImportError::Unreachable(why));
    }
    // Hours end in the order their pieces come: reported in hour order.
    failed.sort_unstable();
    missing.sort_unstable();
    summary.files_failed = failed.into_iter().map(|(_, why)| why).collect();
    summary.hours_missing = missing.into_iter().map(|(_, name)| name).collect();
    summary.hours_imported = summary.files_complete;
    summary.hours_already = already;
    find_suspects(&lookups, &mut summary, options.archive_lag_hours)?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// A file of `import --gharchive` being read: which, which try, and what
/// the parser has of it.
struct HourRead {
    job: Job,
    attempt: u32,
    reading: Reading,
}

/// What a file's reader thread tells the parser, tagged with its job and try.
struct HourNews {
    key: usize,
    attempt: u32,
    news: News,
}

enum News {
    /// The next piece of the body (or the read error that ends it).
    Piece(io::Result<Piece>),
    /// The body was read to its end.
    End,
    /// No body.
    Unavailable(Unavailable),
}

/// Starts a thread that waits for `download`'s answer and inflates its body
/// into `news` as pieces of whole lines, then [`News::End`].
fn read_hour(
    key: usize,
    attempt: u32,
    download: Result<gharchive::Pending, String>,
    max_line: usize,
    progress: &Progress,
    news: SyncSender<HourNews>,
) -> Result<(), String> {
    let bytes = progress.bytes.clone();
    let reader = move || {
        let tell = |news_now: News| {
            news.send(HourNews {
                key,
                attempt,
                news: news_now,
            })
            .is_ok()
        };
        match download.map_err(Unavailable::Failed).and_then(|d| d.wait()) {
            Ok(body) => {
                let mut send = |piece| tell(News::Piece(piece));
                if read_source(body, true, max_line, bytes, &mut send) {
                    tell(News::End);
                }
            }
            Err(why) => {
                tell(News::Unavailable(why));
            }
        }
    };
    thread::Builder::new()
        .name("import-reader".into())
        .spawn(reader)
        .map(drop)
        .map_err(|error| format!("cannot start a reader thread: {error}"))
}

/// A bar across hours (done of total, MB/s, events/s) for a person at a terminal.
struct HoursBar {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl HoursBar {
    fn new(hours: u64, bar: bool) -> HoursBar {
        let bar = bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(hours), ProgressDrawTarget::stderr());
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {pos}/{len} hours ETA {eta} {msg}")
            {
                bar.set_style(style);
            }
            bar
        });
        HoursBar {
            bar,
            started: Instant::now(),
        }
    }

    fn advance(&self, summary: &ImportSummary, progress: &Progress) {
        if let Some(bar) = &self.bar {
            let seconds = self.started.elapsed().as_secs_f64().max(1e-9);
            let megabytes = progress.bytes.load(Ordering::Relaxed) as f64 / 1e6;
            bar.inc(1);
            // Tracked events read (stored or found stored already), per second.
            let events = summary
                .lines
                .saturating_sub(summary.skipped + summary.bad_lines);
            bar.set_message(format!(
                "{:.1} MB/s, {:.0} events/s",
                megabytes / seconds,
                events as f64 / seconds
            ));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Runs `drive` with a parser whose batches a writer thread stores, then
/// waits for the writer: the pipeline every import shares. `drive` stops
/// early only when the writer is gone (whose error is then returned).
fn run_pipeline(
    store: &Store,
    options: &ImportOptions,
    progress: &Progress,
    settling: Settling,
    drive: impl FnOnce(&mut Parser<'_>) -> Result<(), WriterGone>,
) -> Result<ImportSummary, ImportError> {
    let (batch_tx, batch_rx) = sync_channel::<Load>(QUEUE_DEPTH);
    let writer_store = store.clone();
    let writer = thread::Builder::new()
        .name("import-writer".into())
        .spawn(move || writer_store.bulk_load(batch_rx, settling))
        .map_err(|_| ImportError::WriterGone)?;
    let mut parser = Parser {
        options,
        batch_tx,
        summary: ImportSummary::default(),
        progress,
        next_file: 0,
    };
    let _ = drive(&mut parser);
    let Parser {
        batch_tx,
        mut summary,
        ..
    } = parser;
    drop(batch_tx);
    let stored = writer.join().map_err(|_| ImportError::WriterGone)??;
    progress.finish();
    summary.stored = stored;
    summary.bytes_read = progress.bytes.load(Ordering::Relaxed);
    Ok(summary)
}

/// The writer hung up (it failed; its error comes from `join`).
struct WriterGone;

struct Parser<'a> {
    options: &'a ImportOptions,
    batch_tx: SyncSender<Load>,
    summary: ImportSummary,
    progress: &'a Progress,
    /// The id of the next file opened.
    next_file: u64,
}

/// One file (or hour) being parsed: where in it the parser is, what it held
/// so far, and its events not yet handed to the writer.
struct Reading {
    /// Tells the writer which file a batch came from.
    id: u64,
    /// The file, in messages.
    name: String,
    line_number: u64,
    /// Lines that were events (of any type), to tell a file of events from
    /// a file of something else.
    events_seen: u64,
    /// The first bad line and why: what the file is said to be when it
    /// holds no event at all.
    first_problem: Option<String>,
    /// Tracked events read, per type.
    tracked: [u64; 3],
    /// The archive source and hour of an archive hour file.
    archive: Option<(SourceId, i64)>,
    /// Tracked events per lag (hours from their hour to the file's).
    lags: std::collections::BTreeMap<i64, u64>,
    batch: Vec<Event>,
}

impl Reading {
    /// Back to the file's start, for another try (its batches so far are
    /// the writer's).
    fn restart(&mut self) {
        self.line_number = 0;
        self.events_seen = 0;
        self.first_problem = None;
        self.tracked = [0; 3];
        self.lags.clear();
    }
}

impl Parser<'_> {
    /// A file to read; `archive` for an archive hour file (its source and hour).
    fn open_file(&mut self, name: String, archive: Option<(SourceId, i64)>) -> Reading {
        self.next_file += 1;
        Reading {
            id: self.next_file,
            name,
            line_number: 0,
            events_seen: 0,
            first_problem: None,
            tracked: [0; 3],
            archive: archive.filter(|_| self.options.repos.is_empty()),
            lags: Default::default(),
            batch: Vec::with_capacity(self.options.batch_size),
        }
    }

    /// Parses every piece a reader thread sends for `file`; `Err` says why
    /// it could not be read to the end.
    fn take_all(
        &mut self,
        file: &mut Reading,
        pieces: Receiver<io::Result<Piece>>,
    ) -> Result<Result<(), String>, WriterGone> {
        for piece in pieces {
            if let Err(why) = self.take_piece(file, piece)? {
                return Ok(Err(why));
            }
        }
        Ok(self.finish(file))
    }

    /// Parses the next piece of `file`; `Err` when it is the read error
    /// that ends it.
    fn take_piece(
        &mut self,
        file: &mut Reading,
        piece: io::Result<Piece>,
    ) -> Result<Result<(), String>, WriterGone> {
        let chunk = match piece {
            Ok(Piece::Lines(chunk)) => chunk,
            Ok(Piece::Oversized) => {
                file.line_number += 1;
                self.summary.lines += 1;
                let why = format!("longer than {} bytes", self.options.max_line_bytes);
                self.bad_line(file, &why);
                return Ok(Ok(()));
            }
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Ok(Err(format!(
                    "truncated after line {} ({error})",
                    file.line_number
                )));
            }
            Err(error) => {
                return Ok(Err(format!(
                    "read failed after line {}: {error}",
                    file.line_number
                )));
            }
        };
        // The chunk is whole lines, each ending in '\n'.
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', &chunk) {
            file.line_number += 1;
            self.take_line(file, &chunk[start..end])?;
            start = end + 1;
        }
        self.progress.update(&self.summary);
        Ok(Ok(()))
    }

    /// Whether `file`, read to its end, was a file of events.
    fn finish(&self, file: &Reading) -> Result<(), String> {
        if file.events_seen > 0 {
            return Ok(());
        }
        let first = file.first_problem.as_deref().unwrap_or_default();
        Err(format!(
            "no GitHub event in it{first}; expected one JSON event object per line, as GH Archive writes them"
        ))
    }

    fn bad_line(&mut self, file: &mut Reading, reason: &str) {
        let line_number = file.line_number;
        if file.first_problem.is_none() {
            file.first_problem = Some(format!(" (line {line_number}: {reason})"));
        }
        self.summary.bad_lines += 1;
        if self.summary.bad_lines <= BAD_LINES_REPORTED {
            tracing::warn!("{}:{line_number}: skipped: {reason}", file.name);
        } else if self.summary.bad_lines == BAD_LINES_REPORTED + 1 {
            tracing::warn!("more bad lines follow; only their count is reported");
        }
    }

    fn take_line(&mut self, file: &mut Reading, line: &[u8]) -> Result<(), WriterGone> {
        // A byte-order mark some editors write; CR of CRLF line ends goes with the trim.
        let line = match file.line_number {
            1 => line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line),
            _ => line,
        };
        let line = line.trim_ascii();
        if line.is_empty() {
            return Ok(());
        }
        self.summary.lines += 1;
        let parsed = parse_event(line);
        if parsed.is_ok() {
            file.events_seen += 1;
        }
        match parsed {
            Ok(Some(event)) if self.wanted(&event) => {
                file.tracked[event.event_type.index()] += 1;
                if let Some((_, hour)) = file.archive {
                    let lag = hour - event.created_at.div_euclid(SECONDS_PER_HOUR);
                    *file.lags.entry(lag).or_default() += 1;
                }
                file.batch.push(event);
                if file.batch.len() >= self.options.batch_size {
                    self.flush(file)?;
                }
            }
            Ok(_) => self.summary.skipped += 1,
            Err(reason) => self.bad_line(file, &reason.to_string()),
        }
        Ok(())
    }

    fn wanted(&self, event: &Event) -> bool {
        self.options.repos.is_empty() || self.options.repos.contains(&event.repo_name)
    }

    /// The file's last batch, then its end: an archive hour file read
    /// `whole` is recorded once its events are stored.
    fn end_file(&mut self, mut file: Reading, whole: bool) -> Result<(), WriterGone> {
        self.flush(&mut file)?;
        let archive_file = match file.archive {
            Some((source, hour)) if whole => Some(ArchiveFile {
                source,
                hour,
                events_by_type: file.tracked,
                lags: std::mem::take(&mut file.lags),
            }),
            _ => None,
        };
        if let Some(archive_file) = &archive_file {
            let hours = &mut self.summary.archive_file_hours;
            *hours = Some(
                hours.map_or((archive_file.hour, archive_file.hour), |(first, last)| {
                    (first.min(archive_file.hour), last.max(archive_file.hour))
                }),
            );
            let lag = archive_file.max_lag();
            self.summary.max_lag_hours = self.summary.max_lag_hours.max(lag);
            if archive_file.hour >= crate::store::CRAWL_HOUR_FILES_FROM
                && lag > self.options.archive_lag_hours
            {
                tracing::warn!(file = %file.name, lag_hours = lag, allowed = self.options.archive_lag_hours, "events later than --archive-lag allows: hours settled before this file may have moved");
                self.summary
                    .files_beyond_lag
                    .push(format!("{}: {lag} h", file.name));
            }
        }
        self.batch_tx
            .send(Load::FileEnd {
                file: file.id,
                archive_file,
            })
            .map_err(|_| WriterGone)
    }

    /// Tells the writer that `source` does not have the file of `hour`.
    fn missing(&mut self, source: SourceId, hour: i64) -> Result<(), WriterGone> {
        self.batch_tx
            .send(Load::Missing { source, hour })
            .map_err(|_| WriterGone)
    }

    fn flush(&mut self, file: &mut Reading) -> Result<(), WriterGone> {
        if file.batch.is_empty() {
            return Ok(());
        }
        let events =
            std::mem::replace(&mut file.batch, Vec::with_capacity(self.options.batch_size));
        self.batch_tx
            .send(Load::Events {
                file: file.id,
                events,
                archive: file.archive.map(|(source, _)| source),
            })
            .map_err(|_| WriterGone)
    }
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

/// Starts a reader thread that inflates (when `gzipped`) and splits
/// `source` into [`Piece`]s, a few chunks ahead of whoever receives them.
fn start_reader(
    source: impl Read + Send + 'static,
    gzipped: bool,
    max_line: usize,
    progress: &Progress,
) -> Result<Receiver<io::Result<Piece>>, String> {
    let bytes = progress.bytes.clone();
    let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Piece>>(QUEUE_DEPTH);
    thread::Builder::new()
        .name("import-reader".into())
        .spawn(move || {
            let mut send = |piece| chunk_tx.send(piece).is_ok();
            read_source(source, gzipped, max_line, bytes, &mut send);
        })
        .map_err(|error| format!("cannot start a reader thread: {error}"))?;
    Ok(chunk_rx)
}

/// A reader thread's work: inflates `source` (when `gzipped`) and hands its
/// whole lines to `send` ([`read_chunks`]), counting the bytes read into
/// `bytes`. Returns whether it was read to its end; otherwise a read error,
/// or the reader's own failure (a panic), was the last piece sent, so that
/// no file is taken as read whole when it was not.
fn read_source(
    source: impl Read,
    gzipped: bool,
    max_line: usize,
    bytes: Arc<AtomicU64>,
    send: &mut impl FnMut(io::Result<Piece>) -> bool,
) -> bool {
    let counted = CountingReader {
        inner: source,
        bytes,
    };
    let mut failed = false;
    let mut watched = |piece: io::Result<Piece>| {
        failed |= piece.is_err();
        send(piece)
    };
    let read = std::panic::catch_unwind(AssertUnwindSafe(|| {
        if gzipped {
            read_chunks(MultiGzDecoder::new(counted), max_line, &mut watched);
        } else {
            read_chunks(counted, max_line, &mut watched);
        }
    }));
    if read.is_err() {
        send(Err(io::Error::other("the reader thread failed")));
        return false;
    }
    !failed
}

/// What the reader thread hands the parser, in file order.
enum Piece {
    /// Whole lines, each ending in `\n`.
    Lines(Vec<u8>),
    /// A line longer than the maximum, skipped unread.
    Oversized,
}

/// The reader thread: whole lines, about [`CHUNK_BYTES`] at a time. A line
/// longer than `max_line` is dropped as soon as it passes the limit and the
/// rest of it skipped, so memory is bounded by the chunk size plus the
/// limit whatever the input (a gzip bomb of one endless line, `/dev/zero`).
/// On a read error the complete lines before it are sent, then the error.
/// `send` says whether the receiver still listens.
fn read_chunks(
    source: impl Read,
    max_line: usize,
    send: &mut impl FnMut(io::Result<Piece>) -> bool,
) {
    let mut reader = BufReader::with_capacity(1 << 20, source);
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
    // Where the line being read starts in `chunk`.
    let mut line_start = 0;
    let mut skipping = false;
    let mut send_ok = |piece: Piece| send(Ok(piece));
    let failure = loop {
        let buffer = match reader.fill_buf() {
            Ok([]) => break None,
            Ok(buffer) => buffer,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => break Some(error),
        };
        let newline = memchr::memchr(b'\n', buffer);
        let taken = newline.map_or(buffer.len(), |at| at + 1);
        if skipping {
            skipping = newline.is_none();
        } else {
            chunk.extend_from_slice(&buffer[..taken]);
            if chunk.len() - line_start > max_line + 1 {
                chunk.truncate(line_start);
                skipping = newline.is_none();
                let lines = std::mem::take(&mut chunk);
                if (!lines.is_empty() && !send_ok(Piece::Lines(lines)))
                    || !send_ok(Piece::Oversized)
                {
                    return;
                }
                line_start = 0;
            } else if newline.is_some() {
                line_start = chunk.len();
            }
        }
        reader.consume(taken);
        if line_start >= CHUNK_BYTES {
            let partial = chunk.split_off(line_start);
            let full = std::mem::replace(&mut chunk, partial);
            line_start = 0;
            if !send_ok(Piece::Lines(full)) {
                return;
            }
        }
    };
    match failure {
        // Keep complete lines only: a torn last line is part of the failure.
        Some(_) => chunk.truncate(line_start),
        None if chunk.len() > line_start => chunk.push(b'\n'),
        None => {}
    }
    if !chunk.is_empty() && !send_ok(Piece::Lines(chunk)) {
        return;
    }
    if let Some(error) = failure {
        send(Err(error));
    }
}

/// Counts the bytes read from the file, for progress.
struct CountingReader<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A progress bar for a person at a terminal, periodic log lines otherwise.
struct Progress {
    bytes: Arc<AtomicU64>,
    bar: Option<ProgressBar>,
    started: Instant,
    last_log: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(total_bytes: u64, bar: bool) -> Progress {
        let bar = bar.then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        let now = Instant::now();
        Progress {
            bytes: Arc::new(AtomicU64::new(0)),
            bar,
            started: now,
            last_log: std::cell::Cell::new(now),
        }
    }

    fn update(&self, summary: &ImportSummary) {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let rate = summary.lines as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        match &self.bar {
            Some(bar) => {
                bar.set_position(bytes);
                bar.set_message(format!("{} lines, {rate:.0} lines/s", summary.lines));
            }
            None if self.last_log.get().elapsed() >= LOG_EVERY => {
                self.last_log.set(Instant::now());
                tracing::info!(
                    bytes_read = bytes,
                    lines = summary.lines,
                    lines_per_s = rate as u64,
                    "importing"
                );
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
