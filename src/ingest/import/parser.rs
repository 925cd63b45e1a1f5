//! The pipeline every import shares: a parser on the calling thread, a
//! writer on a blocking thread of the runtime that hands its batches to the
//! store's bulk load.

use super::*;

/// Runs `drive` with a parser whose batches a writer thread stores, then
/// waits for the writer: the pipeline every import shares. `drive` stops
/// early only when the writer is gone (whose error is then returned).
pub(super) fn run_pipeline(
    store: &Store,
    options: &ImportOptions,
    progress: &Progress,
    settling: Settling,
    drive: impl FnOnce(&mut Parser<'_>) -> Result<(), WriterGone>,
) -> Result<ImportSummary, ImportError> {
    let (batch_tx, batch_rx) = sync_channel::<Load>(QUEUE_DEPTH);
    let writer_store = store.clone();
    let runtime = runtime();
    let writer = runtime.spawn_blocking(move || writer_store.bulk_load(batch_rx, settling));
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
    let stored = runtime
        .block_on(writer)
        .map_err(|_| ImportError::WriterGone)??;
    progress.finish();
    summary.stored = stored;
    summary.bytes_read = progress.bytes.load(Ordering::Relaxed);
    Ok(summary)
}

/// The writer hung up (it failed; its error comes from `join`).
pub(super) struct WriterGone;

/// Why a file was not read to its end.
pub(super) enum Stop {
    /// The file: truncated, unreadable, not events. Why, for the summary.
    File(String),
    /// The writer: the whole import stops.
    WriterGone,
}

impl From<WriterGone> for Stop {
    fn from(_: WriterGone) -> Stop {
        Stop::WriterGone
    }
}

pub(super) struct Parser<'a> {
    pub(super) options: &'a ImportOptions,
    pub(super) batch_tx: SyncSender<Load>,
    pub(super) summary: ImportSummary,
    pub(super) progress: &'a Progress,
    /// The id of the next file opened.
    pub(super) next_file: u64,
}

/// One file (or hour) being parsed: where in it the parser is, what it held
/// so far, and its events not yet handed to the writer.
pub(super) struct Reading {
    /// Tells the writer which file a batch came from.
    pub(super) id: u64,
    /// The file, in messages.
    pub(super) name: String,
    pub(super) line_number: u64,
    /// Lines that were events (of any type), to tell a file of events from
    /// a file of something else.
    pub(super) events_seen: u64,
    /// The first bad line and why: what the file is said to be when it
    /// holds no event at all.
    pub(super) first_problem: Option<String>,
    /// Tracked events read, per type.
    pub(super) tracked: PerType<u64>,
    /// The archive source and hour of an archive hour file.
    pub(super) archive: Option<(SourceId, i64)>,
    /// Tracked events per lag (hours from their hour to the file's).
    pub(super) lags: std::collections::BTreeMap<i64, u64>,
    pub(super) batch: Vec<Event>,
}

impl Reading {
    /// Back to the file's start, for another try (its batches so far are
    /// the writer's).
    pub(super) fn restart(&mut self) {
        self.line_number = 0;
        self.events_seen = 0;
        self.first_problem = None;
        self.tracked = PerType::default();
        self.lags.clear();
    }
}

impl Parser<'_> {
    /// A file to read; `archive` for an archive hour file (its source and hour).
    pub(super) fn open_file(&mut self, name: String, archive: Option<(SourceId, i64)>) -> Reading {
        self.next_file += 1;
        Reading {
            id: self.next_file,
            name,
            line_number: 0,
            events_seen: 0,
            first_problem: None,
            tracked: PerType::default(),
            archive: archive.filter(|_| self.options.repos.is_empty()),
            lags: Default::default(),
            batch: Vec::with_capacity(self.options.batch_size),
        }
    }

    /// Parses every piece a reader thread sends for `file`, to its end.
    pub(super) fn take_all(
        &mut self,
        file: &mut Reading,
        pieces: Receiver<io::Result<Piece>>,
    ) -> Result<(), Stop> {
        for piece in pieces {
            self.take_piece(file, piece)?;
        }
        self.finish(file).map_err(Stop::File)
    }

    /// Parses the next piece of `file`; [`Stop::File`] when it is the read
    /// error that ends it.
    pub(super) fn take_piece(
        &mut self,
        file: &mut Reading,
        piece: io::Result<Piece>,
    ) -> Result<(), Stop> {
        let chunk = match piece {
            Ok(Piece::Lines(chunk)) => chunk,
            Ok(Piece::Oversized) => {
                file.line_number += 1;
                self.summary.lines += 1;
                let why = format!("longer than {} bytes", self.options.max_line_bytes);
                self.bad_line(file, &why);
                return Ok(());
            }
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(Stop::File(format!(
                    "truncated after line {} ({error})",
                    file.line_number
                )));
            }
            Err(error) => {
                return Err(Stop::File(format!(
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
        Ok(())
    }

    /// Whether `file`, read to its end, was a file of events.
    pub(super) fn finish(&self, file: &Reading) -> Result<(), String> {
        if file.events_seen > 0 {
            return Ok(());
        }
        let first = file.first_problem.as_deref().unwrap_or_default();
        Err(format!(
            "no GitHub event in it{first}; expected one JSON event object per line, as GH Archive writes them"
        ))
    }

    pub(super) fn bad_line(&mut self, file: &mut Reading, reason: &str) {
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

    pub(super) fn take_line(&mut self, file: &mut Reading, line: &[u8]) -> Result<(), WriterGone> {
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
                file.tracked[event.event_type] += 1;
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

    pub(super) fn wanted(&self, event: &Event) -> bool {
        self.options.repos.is_empty() || self.options.repos.contains(&event.repo_name)
    }

    /// The file's last batch, then its end: an archive hour file read
    /// `whole` is recorded once its events are stored.
    pub(super) fn end_file(&mut self, mut file: Reading, whole: bool) -> Result<(), WriterGone> {
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
    pub(super) fn missing(&mut self, source: SourceId, hour: i64) -> Result<(), WriterGone> {
        self.batch_tx
            .send(Load::Missing { source, hour })
            .map_err(|_| WriterGone)
    }

    pub(super) fn flush(&mut self, file: &mut Reading) -> Result<(), WriterGone> {
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
