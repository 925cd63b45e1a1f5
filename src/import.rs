//! `ghmetrics import`: GH Archive files (`.json.gz`, or plain `.json` /
//! `.ndjson`, one event per line) into the same `events` table as the poller,
//! with the same parser and the same dedupe.
//!
//! Three threads form a pipeline so that inflating, parsing and writing overlap:
//! a reader inflates newline-aligned chunks, the calling thread parses them, a
//! writer inserts batches (one transaction each, so the poller and readers of a
//! live database wait for at most one batch). Memory stays flat: a few chunks
//! and batches are in flight, whatever the file size.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread;
use std::time::{Duration, Instant};

use flate2::read::MultiGzDecoder;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::event::{Event, parse_event};
use crate::gharchive::{self, HourRange};
use crate::store::{ArchiveHour, InsertStats, Load, Store, StoreError};
use crate::time_buckets::SECONDS_PER_HOUR;

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
            "{what}; {} lines read, {} events stored, {} duplicates, {} skipped, {} bad lines; {:.2} s ({:.0} lines/s, {:.0} events stored/s)",
            self.lines,
            self.stored.inserted(),
            self.stored.duplicates,
            self.skipped,
            self.bad_lines,
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

/// Imports every file `inputs` names into `db`.
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

    let mut summary = run_pipeline(store, options, &progress, |parser| {
        for file in &files {
            parser.tracked_in_file = [0; 3];
            let source = match File::open(file) {
                Ok(source) => source,
                Err(error) => {
                    files_failed.push(format!("{}: {error}", file.display()));
                    continue;
                }
            };
            let gzipped = file.extension().is_some_and(|ext| ext == "gz");
            let hour = match parser.import_reader(&file.display().to_string(), source, gzipped)? {
                Ok(()) => {
                    parser.summary.files_complete += 1;
                    // A GH Archive hour read whole (and not cut to some repositories).
                    let name = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default();
                    archive_hour(name)
                        .filter(|_| options.repos.is_empty())
                        .map(|hour| ArchiveHour {
                            hour,
                            source: file.display().to_string(),
                            events_by_type: parser.tracked_in_file,
                        })
                }
                // Reported once, in the summary; the lines read before are kept.
                Err(reason) => {
                    files_failed.push(format!("{}: {reason}", file.display()));
                    None
                }
            };
            parser.end_file(hour)?;
        }
        Ok(())
    })?;
    summary.files_failed = files_failed;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// What `import --gharchive` downloads, and how hard it tries.
#[derive(Clone, Debug)]
pub struct ArchiveImport {
    /// GH Archive or a mirror: the hour `H` is `URL/YYYY-MM-DD-H.json.gz`.
    pub url: reqwest::Url,
    pub range: HourRange,
    /// Hours downloading at once (the next ones start while one is parsed).
    pub jobs: usize,
    /// Download hours already imported whole too.
    pub force: bool,
    /// Tries per hour for 5xx, 429, timeouts, resets and bodies cut short.
    pub attempts: u32,
    /// The wait before the second try, doubled for each next one.
    pub backoff: Duration,
    /// The longest wait for a connection, an answer or the next piece of a body.
    pub timeout: Duration,
}

impl ArchiveImport {
    pub fn new(url: reqwest::Url, range: HourRange) -> ArchiveImport {
        ArchiveImport {
            url,
            range,
            jobs: 4,
            force: false,
            attempts: 5,
            backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(60),
        }
    }
}

/// `import --gharchive`: every hour of the range not imported whole yet,
/// downloaded (`jobs` at once, the bodies streamed into the parser in hour
/// order, no file written) and imported as `import FILE` would, each hour
/// recorded once stored whole. A 404 is an hour GH Archive does not have;
/// anything else that fails is tried again from the hour's start (ids make
/// that safe), up to `attempts` times, then reported as failed.
pub fn import_archive(
    store: &Store,
    archive: &ArchiveImport,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let lookups = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| ImportError::Download(format!("cannot start a runtime: {error}")))?;
    let mut wanted = Vec::new();
    let mut already = 0;
    for hour in archive.range.hours() {
        if !archive.force && lookups.block_on(store.complete_hours(hour, hour))? > 0 {
            already += 1;
        } else {
            wanted.push(hour);
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
    let downloader = gharchive::Downloader::new(archive.timeout)
        .map_err(|error| ImportError::Download(error.to_string()))?;
    let progress = Progress::new(0, false);
    let hours_bar = HoursBar::new(wanted.len() as u64, options.progress_bar);
    let mut failed = Vec::new();
    let mut missing = Vec::new();
    let start = |hour: i64| -> Result<gharchive::Pending, String> {
        Ok(downloader.start(gharchive::hour_url(&archive.url, hour)?))
    };
    let mut summary = run_pipeline(store, options, &progress, |parser| {
        // Downloads started ahead, in hour order.
        let mut ahead: std::collections::VecDeque<(i64, Result<gharchive::Pending, String>)> =
            std::collections::VecDeque::new();
        let mut next = wanted.iter().copied();
        for _ in 0..archive.jobs.max(1) {
            if let Some(hour) = next.next() {
                ahead.push_back((hour, start(hour)));
            }
        }
        while let Some((hour, mut pending)) = ahead.pop_front() {
            let name = gharchive::file_name(hour);
            // Recorded with the hour: the URL without any credentials in it.
            let source = gharchive::hour_url(&archive.url, hour).map_or_else(
                |_| name.clone(),
                |mut url| {
                    let _ = url.set_username("");
                    let _ = url.set_password(None);
                    url.to_string()
                },
            );
            let mut attempt = 1;
            let outcome = loop {
                let why = match pending {
                    Err(why) => break Err(why),
                    Ok(download) => match download.wait() {
                        gharchive::Fetch::Missing => break Ok(false),
                        gharchive::Fetch::Failed(why) => break Err(why),
                        gharchive::Fetch::Retry(why) => why,
                        gharchive::Fetch::Body(body) => {
                            parser.tracked_in_file = [0; 3];
                            match parser.import_reader(&name, body, true)? {
                                Ok(()) => break Ok(true),
                                Err(why) => {
                                    // What was read stays stored; the next try skips it.
                                    parser.flush()?;
                                    why
                                }
                            }
                        }
                    },
                };
                if attempt >= archive.attempts {
                    break Err(format!("{why} ({attempt} tries)"));
                }
                let wait = archive.backoff * 2u32.saturating_pow(attempt - 1);
                tracing::warn!(hour = %name, attempt, "{why}; trying again in {wait:?}");
                std::thread::sleep(wait);
                attempt += 1;
                pending = start(hour);
            };
            let record = match outcome {
                Ok(true) => {
                    parser.summary.files_complete += 1;
                    let hour = ArchiveHour {
                        hour,
                        source,
                        events_by_type: parser.tracked_in_file,
                    };
                    tracing::info!(hour = %name, events = hour.events_read(), "imported");
                    options.repos.is_empty().then_some(hour)
                }
                Ok(false) => {
                    tracing::warn!(hour = %name, "GH Archive does not have this hour (404)");
                    missing.push(name);
                    None
                }
                Err(why) => {
                    tracing::error!(hour = %name, "{why}");
                    failed.push(format!("{name}: {why}"));
                    None
                }
            };
            parser.end_file(record)?;
            hours_bar.advance(&parser.summary, &progress);
            if let Some(hour) = next.next() {
                ahead.push_back((hour, start(hour)));
            }
        }
        Ok(())
    })?;
    hours_bar.finish();
    summary.files_failed = failed;
    summary.hours_missing = missing;
    summary.hours_imported = summary.files_complete;
    summary.hours_already = already;
    summary.elapsed = started.elapsed();
    Ok(summary)
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
    drive: impl FnOnce(&mut Parser<'_>) -> Result<(), WriterGone>,
) -> Result<ImportSummary, ImportError> {
    let (batch_tx, batch_rx) = sync_channel::<Load>(QUEUE_DEPTH);
    let writer_store = store.clone();
    let writer = thread::Builder::new()
        .name("import-writer".into())
        .spawn(move || writer_store.bulk_load(batch_rx))
        .map_err(|_| ImportError::WriterGone)?;
    let mut parser = Parser {
        options,
        batch: Vec::with_capacity(options.batch_size),
        batch_tx,
        summary: ImportSummary::default(),
        progress,
        events_seen: 0,
        first_problem: None,
        tracked_in_file: [0; 3],
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
    batch: Vec<Event>,
    batch_tx: SyncSender<Load>,
    summary: ImportSummary,
    /// Tracked events read from the current file, per type.
    tracked_in_file: [u64; 3],
    progress: &'a Progress,
    /// Lines that were events (of any type), to tell a file of events from
    /// a file of something else.
    events_seen: u64,
    /// The first bad line of the current file and why: what the file is
    /// said to be when it holds no event at all.
    first_problem: Option<String>,
}

impl Parser<'_> {
    /// Parses one source (`name` in messages); the inner `Err` says why it
    /// could not be read to the end.
    fn import_reader(
        &mut self,
        name: &str,
        source: impl Read + Send + 'static,
        gzipped: bool,
    ) -> Result<Result<(), String>, WriterGone> {
        let counted = CountingReader {
            inner: source,
            bytes: self.progress.bytes.clone(),
        };
        let (chunk_tx, chunk_rx) = sync_channel::<io::Result<Piece>>(QUEUE_DEPTH);
        let max_line = self.options.max_line_bytes;
        let reader = thread::Builder::new()
            .name("import-reader".into())
            .spawn(move || {
                if gzipped {
                    read_chunks(MultiGzDecoder::new(counted), max_line, &chunk_tx);
                } else {
                    read_chunks(counted, max_line, &chunk_tx);
                }
            });
        if let Err(error) = reader {
            return Ok(Err(format!("cannot start a reader thread: {error}")));
        }
        let name = name.to_owned();
        self.first_problem = None;
        let mut line_number = 0u64;
        let events_before = self.events_seen;
        for piece in chunk_rx {
            let chunk = match piece {
                Ok(Piece::Lines(chunk)) => chunk,
                Ok(Piece::Oversized) => {
                    line_number += 1;
                    self.summary.lines += 1;
                    self.bad_line(&name, line_number, &format!("longer than {max_line} bytes"));
                    continue;
                }
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(Err(format!("truncated after line {line_number} ({error})")));
                }
                Err(error) => {
                    return Ok(Err(format!(
                        "read failed after line {line_number}: {error}"
                    )));
                }
            };
            for line in chunk.split(|b| *b == b'\n') {
                line_number += 1;
                self.take_line(line, &name, line_number)?;
            }
            // The chunk ends with '\n', so split() yields one empty tail: not a line.
            line_number -= 1;
            self.progress.update(&self.summary);
        }
        if self.events_seen == events_before {
            let first = self.first_problem.take().unwrap_or_default();
            return Ok(Err(format!(
                "no GitHub event in it{first}; expected one JSON event object per line, as GH Archive writes them"
            )));
        }
        Ok(Ok(()))
    }

    fn bad_line(&mut self, file: &str, line_number: u64, reason: &str) {
        if self.first_problem.is_none() {
            self.first_problem = Some(format!(" (line {line_number}: {reason})"));
        }
        self.summary.bad_lines += 1;
        if self.summary.bad_lines <= BAD_LINES_REPORTED {
            tracing::warn!("{file}:{line_number}: skipped: {reason}");
        } else if self.summary.bad_lines == BAD_LINES_REPORTED + 1 {
            tracing::warn!("more bad lines follow; only their count is reported");
        }
    }

    fn take_line(&mut self, line: &[u8], file: &str, line_number: u64) -> Result<(), WriterGone> {
        // A byte-order mark some editors write; CR of CRLF line ends goes with the trim.
        let line = match line_number {
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
            self.events_seen += 1;
        }
        match parsed {
            Ok(Some(event)) if self.wanted(&event) => {
                self.tracked_in_file[event.event_type.index()] += 1;
                self.batch.push(event);
                if self.batch.len() >= self.options.batch_size {
                    self.flush()?;
                }
            }
            Ok(_) => self.summary.skipped += 1,
            Err(reason) => self.bad_line(file, line_number, &reason.to_string()),
        }
        Ok(())
    }

    fn wanted(&self, event: &Event) -> bool {
        self.options.repos.is_empty() || self.options.repos.contains(&event.repo_name)
    }

    /// The file's last batch, then its end: `hour` is recorded once its
    /// events are stored.
    fn end_file(&mut self, hour: Option<ArchiveHour>) -> Result<(), WriterGone> {
        self.flush()?;
        self.batch_tx
            .send(Load::FileEnd(hour))
            .map_err(|_| WriterGone)
    }

    fn flush(&mut self) -> Result<(), WriterGone> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(self.options.batch_size));
        self.batch_tx
            .send(Load::Events(batch))
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
fn read_chunks(source: impl Read, max_line: usize, pieces: &SyncSender<io::Result<Piece>>) {
    let mut reader = BufReader::with_capacity(1 << 20, source);
    let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK_BYTES + (64 << 10));
    // Where the line being read starts in `chunk`.
    let mut line_start = 0;
    let mut skipping = false;
    let send = |piece: Piece| pieces.send(Ok(piece)).is_ok();
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
                if (!lines.is_empty() && !send(Piece::Lines(lines))) || !send(Piece::Oversized) {
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
            if !send(Piece::Lines(full)) {
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
    if !chunk.is_empty() && !send(Piece::Lines(chunk)) {
        return;
    }
    if let Some(error) = failure {
        let _ = pieces.send(Err(error));
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
