//! `import --gharchive`: the hours of a range from every source, downloaded
//! a few at a time, each inflated by a reader of its own, retried, and
//! recorded once read whole (or missing).

use super::*;

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
pub(super) struct Job {
    pub(super) hour: i64,
    /// Index into [`ArchiveImport::urls`].
    pub(super) url: usize,
    pub(super) source: SourceId,
}

/// `import --gharchive`: every hour of the range from every source, except
/// the files a source has given whole before, downloaded (`jobs` at once,
/// each body inflated as it arrives by a reader of its own, the parser
/// taking the readers' pieces as they come, no file written) and imported
/// as `import FILE` would, each file recorded once stored whole. A 404 is
/// an hour the source does not have (recorded so once the hour and its lag
/// have passed); anything else that fails is tried again from the hour's
/// start (ids make that safe), up to `attempts` times, then reported as failed.
/// Blocking, like [`super::import`]: the downloads run on the runtime's
/// workers, the reading and parsing on this thread and the readers' own.
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
        lookups.ask(|store| async move { store.archive_files(range).await })?
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
        // Nothing to download: no writer.
        return Ok(ImportSummary {
            hours_already: already,
            elapsed: started.elapsed(),
            ..ImportSummary::default()
        });
    }
    let downloader = gharchive::Downloader::new(runtime()?, archive.timeout, archive.hour_deadline)
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
pub(super) struct HourRead {
    pub(super) job: Job,
    pub(super) attempt: u32,
    pub(super) reading: Reading,
}

/// What a file's reader thread tells the parser, tagged with its job and try.
pub(super) struct HourNews {
    pub(super) key: usize,
    pub(super) attempt: u32,
    pub(super) news: News,
}

pub(super) enum News {
    /// The next piece of the body (or the read error that ends it).
    Piece(io::Result<Piece>),
    /// The body was read to its end.
    End,
    /// No body.
    Unavailable(Unavailable),
}

/// Starts a thread that waits for `download`'s answer and inflates its body
/// into `news` as pieces of whole lines, then [`News::End`].
pub(super) fn read_hour(
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
pub(super) struct HoursBar {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl HoursBar {
    pub(super) fn new(hours: u64, bar: bool) -> HoursBar {
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

    pub(super) fn advance(&self, summary: &ImportSummary, progress: &Progress) {
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

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
