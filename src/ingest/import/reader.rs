//! Reading a file or a body: inflated and split into whole lines on a
//! thread of its own, a few chunks ahead, with its bytes counted.

use super::*;

/// Starts a reader thread that inflates (when `gzipped`) and splits
/// `source` into [`Piece`]s, a few chunks ahead of whoever receives them.
pub(super) fn start_reader(
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
pub(super) fn read_source(
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
pub(super) enum Piece {
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
pub(super) fn read_chunks(
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
pub(super) struct CountingReader<R> {
    pub(super) inner: R,
    pub(super) bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A progress bar for a person at a terminal, periodic log lines otherwise.
pub(super) struct Progress {
    pub(super) bytes: Arc<AtomicU64>,
    pub(super) bar: Option<ProgressBar>,
    pub(super) started: Instant,
    pub(super) last_log: std::cell::Cell<Instant>,
}

impl Progress {
    pub(super) fn new(total_bytes: u64, bar: bool) -> Progress {
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

    pub(super) fn update(&self, summary: &ImportSummary) {
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

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
