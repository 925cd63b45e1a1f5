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
/// The downloads run on the runtime, the inflating and parsing on threads
/// of their own.
pub async fn import_archive(
    store: &Store,
    archive: &ArchiveImport,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let (store, archive, options) = (store.clone(), archive.clone(), options.clone());
    off_runtime(move || import_hours(&store, &archive, &options)).await
}

/// [`import_archive`], on the blocking thread it runs on.
fn import_hours(
    store: &Store,
    archive: &ArchiveImport,
    options: &ImportOptions,
) -> Result<ImportSummary, ImportError> {
    let started = Instant::now();
    let lookups = Lookups::new(store);
    let plan = Plan::make(&lookups, archive)?;
    if plan.wanted.is_empty() {
        // Nothing to download: no writer.
        return Ok(ImportSummary {
            hours_already: plan.already,
            elapsed: started.elapsed(),
            ..ImportSummary::default()
        });
    }
    let downloader = gharchive::Downloader::new(runtime(), archive.timeout, archive.hour_deadline)
        .map_err(|error| ImportError::Download(error.to_string()))?;
    let progress = Progress::new(0, false);
    let settling = Settling {
        lag_hours: options.archive_lag_hours,
        sources: plan.ids.clone(),
    };
    let mut hours = Hours::new(archive, options, &plan, &downloader, &progress);
    let mut summary = run_pipeline(store, options, &progress, settling, |parser| {
        hours.read_all(parser)
    })?;
    hours.bar.finish();
    let Hours {
        mut failed,
        mut missing,
        unreachable,
        ..
    } = hours;
    if let Some(why) = unreachable {
        return Err(ImportError::Unreachable(why));
    }
    // Hours end in the order their pieces come: reported in hour order.
    failed.sort_unstable();
    missing.sort_unstable();
    summary.files_failed = failed.into_iter().map(|(_, why)| why).collect();
    summary.hours_missing = missing.into_iter().map(|(_, name)| name).collect();
    summary.hours_imported = summary.files_complete;
    summary.hours_already = plan.already;
    find_suspects(&lookups, &mut summary, options.archive_lag_hours)?;
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Which files an import reads: every hour of the range from every source,
/// but those a source has given whole before (unless forced).
struct Plan {
    /// The sources' recorded names and numbers, in `--gharchive-url` order.
    names: Vec<String>,
    ids: Vec<SourceId>,
    wanted: Vec<Job>,
    /// Files read whole before, skipped.
    already: usize,
}

impl Plan {
    fn make(lookups: &Lookups, archive: &ArchiveImport) -> Result<Plan, ImportError> {
        let names: Vec<String> = archive.urls.iter().map(source_name).collect();
        let sources = register_sources(lookups, &names)?;
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
        Ok(Plan {
            names,
            ids,
            wanted,
            already,
        })
    }
}

/// How one try at an hour ended.
enum Outcome {
    /// Read whole.
    Read,
    /// The source does not have it (404).
    Missing,
    /// Worth another try (a 5xx, a timeout, a body cut short).
    Retry(String),
    /// Not worth another (a 4xx other than 404, a file that is not events).
    Failed(String),
    /// No connection to the source at all.
    Unreachable(String),
}

/// The hours of an import being read: `jobs` download at once; as many of
/// them as there are cores are inflated, each by a thread of its own, into
/// one queue, and the parser takes their pieces as they come, so that
/// inflating (the largest cost) keeps every core busy.
struct Hours<'a> {
    archive: &'a ArchiveImport,
    options: &'a ImportOptions,
    names: &'a [String],
    downloader: &'a gharchive::Downloader,
    progress: &'a Progress,
    bar: HoursBar,
    jobs: usize,
    readers: usize,
    /// The jobs not started, keyed by their position.
    next: std::iter::Enumerate<std::vec::IntoIter<Job>>,
    /// Started downloads waiting for a reader.
    downloading: std::collections::VecDeque<(usize, Job, Result<gharchive::Pending, String>)>,
    /// Hours being inflated and parsed, by key.
    active: HashMap<usize, HourRead>,
    news_tx: SyncSender<HourNews>,
    news: Receiver<HourNews>,
    /// Sources that gave an answer: one that cannot be reached before it
    /// has will not be, for any hour.
    answered: Vec<bool>,
    failed: Vec<(i64, String)>,
    missing: Vec<(i64, String)>,
    unreachable: Option<String>,
}

impl<'a> Hours<'a> {
    fn new(
        archive: &'a ArchiveImport,
        options: &'a ImportOptions,
        plan: &'a Plan,
        downloader: &'a gharchive::Downloader,
        progress: &'a Progress,
    ) -> Hours<'a> {
        let jobs = archive.jobs.max(1);
        let (news_tx, news) = sync_channel::<HourNews>(QUEUE_DEPTH);
        Hours {
            archive,
            options,
            names: &plan.names,
            downloader,
            progress,
            bar: HoursBar::new(plan.wanted.len() as u64, options.progress_bar),
            jobs,
            readers: thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(jobs),
            next: plan.wanted.clone().into_iter().enumerate(),
            downloading: Default::default(),
            active: HashMap::new(),
            news_tx,
            news,
            answered: vec![false; archive.urls.len()],
            failed: Vec::new(),
            missing: Vec::new(),
            unreachable: None,
        }
    }

    /// Reads every hour, until done, cancelled or a source is unreachable.
    fn read_all(&mut self, parser: &mut Parser<'_>) -> Result<(), WriterGone> {
        loop {
            self.start_hours(parser);
            if self.active.is_empty() {
                return Ok(());
            }
            let Some(HourNews { key, attempt, news }) = self.next_news() else {
                return Ok(());
            };
            let Some(read) = self.active.get_mut(&key).filter(|r| r.attempt == attempt) else {
                // What is left of an attempt given up.
                continue;
            };
            let url = read.job.url;
            let outcome = match news {
                News::Piece(piece) => match parser.take_piece(&mut read.reading, piece) {
                    Ok(()) => continue,
                    Err(Stop::File(why)) => Outcome::Retry(why),
                    Err(Stop::WriterGone) => return Err(WriterGone),
                },
                News::End => match parser.finish(&read.reading) {
                    Ok(()) => Outcome::Read,
                    Err(why) => Outcome::Retry(why),
                },
                News::Unavailable(Unavailable::Missing) => Outcome::Missing,
                News::Unavailable(Unavailable::Retry(why)) => Outcome::Retry(why),
                News::Unavailable(Unavailable::Failed(why)) => Outcome::Failed(why),
                News::Unavailable(Unavailable::Unreachable(why)) => Outcome::Unreachable(why),
            };
            if let Outcome::Unreachable(why) = &outcome
                && !self.answered[url]
            {
                let host = self.archive.urls[url].host_str().unwrap_or("?");
                self.unreachable = Some(format!(
                    "cannot reach {host}: {why}. Check the network, or give a mirror with --gharchive-url"
                ));
                return Ok(());
            }
            self.answered[url] = true;
            let outcome = match outcome {
                Outcome::Retry(why) | Outcome::Unreachable(why) => {
                    if self.try_again(parser, key, &why)? {
                        continue;
                    }
                    Outcome::Retry(why)
                }
                outcome => outcome,
            };
            self.end_hour(parser, key, outcome)?;
        }
    }

    /// Starts downloads up to `jobs` and readers up to `readers`.
    fn start_hours(&mut self, parser: &mut Parser<'_>) {
        while self.active.len() + self.downloading.len() < self.jobs
            && let Some((key, job)) = self.next.next()
        {
            let started = self.download(job, Duration::ZERO);
            self.downloading.push_back((key, job, started));
        }
        while self.active.len() < self.readers
            && let Some((key, job, started)) = self.downloading.pop_front()
        {
            let name = self.label(&job);
            match self.inflate(key, 1, started) {
                Ok(()) => {
                    let reading = parser.open_file(name, Some((job.source, job.hour)));
                    let read = HourRead {
                        job,
                        attempt: 1,
                        reading,
                    };
                    self.active.insert(key, read);
                }
                Err(why) => self.failed.push((job.hour, format!("{name}: {why}"))),
            }
        }
    }

    /// The next news of any hour being read; `None` when cancelled.
    fn next_news(&self) -> Option<HourNews> {
        loop {
            match self.news.recv_timeout(SHUTDOWN_CHECK) {
                Ok(news) => return Some(news),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if self
                        .archive
                        .shutdown
                        .as_ref()
                        .is_some_and(|s| s.is_cancelled())
                    {
                        tracing::info!(
                            files = self.active.len(),
                            "stopping: the files being read are read again next time"
                        );
                        return None;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Starts the next try at the hour `key` after its backoff, when it has
    /// tries left: false when it has none. What was read stays stored; the
    /// next try skips it.
    fn try_again(
        &mut self,
        parser: &mut Parser<'_>,
        key: usize,
        why: &str,
    ) -> Result<bool, WriterGone> {
        let attempts = self.archive.attempts;
        let Some(read) = self.active.get_mut(&key).filter(|r| r.attempt < attempts) else {
            return Ok(false);
        };
        parser.flush(&mut read.reading)?;
        let wait = self.archive.backoff * 2u32.saturating_pow(read.attempt - 1);
        tracing::warn!(hour = %read.reading.name, attempt = read.attempt, "{why}; trying again in {wait:?}");
        read.attempt += 1;
        read.reading.restart();
        let (job, attempt) = (read.job, read.attempt);
        let started = self.download(job, wait);
        if let Err(why) = self.inflate(key, attempt, started) {
            self.end_hour(parser, key, Outcome::Failed(why))?;
        }
        Ok(true)
    }

    /// Ends the hour `key` with `outcome`: recorded read, missing, or failed.
    fn end_hour(
        &mut self,
        parser: &mut Parser<'_>,
        key: usize,
        outcome: Outcome,
    ) -> Result<(), WriterGone> {
        let Some(HourRead {
            job,
            attempt,
            reading,
        }) = self.active.remove(&key)
        else {
            return Ok(());
        };
        let whole = match outcome {
            Outcome::Read => {
                parser.summary.files_complete += 1;
                tracing::info!(hour = %reading.name, events = reading.tracked.total(), "imported");
                true
            }
            Outcome::Missing => {
                tracing::warn!(hour = %reading.name, "the archive does not have this hour (404)");
                self.missing.push((job.hour, reading.name.clone()));
                // Once the hour and its lag have passed, it will not come.
                let now = chrono::Utc::now().timestamp();
                let lag = self.options.archive_lag_hours;
                if now >= (job.hour + 1 + lag) * SECONDS_PER_HOUR {
                    parser.missing(job.source, job.hour)?;
                }
                false
            }
            Outcome::Retry(why) | Outcome::Unreachable(why) => {
                self.fail(&reading, job, format!("{why} ({attempt} tries)"))
            }
            Outcome::Failed(why) => self.fail(&reading, job, why),
        };
        parser.end_file(reading, whole)?;
        self.bar.advance(&parser.summary, self.progress);
        Ok(())
    }

    fn fail(&mut self, reading: &Reading, job: Job, why: String) -> bool {
        tracing::error!(hour = %reading.name, "{why}");
        self.failed
            .push((job.hour, format!("{}: {why}", reading.name)));
        false
    }

    fn download(&self, job: Job, delay: Duration) -> Result<gharchive::Pending, String> {
        gharchive::hour_url(&self.archive.urls[job.url], job.hour)
            .map(|url| self.downloader.start_after(url, delay))
    }

    fn inflate(
        &self,
        key: usize,
        attempt: u32,
        download: Result<gharchive::Pending, String>,
    ) -> Result<(), String> {
        read_hour(
            key,
            attempt,
            download,
            self.options.max_line_bytes,
            self.progress,
            self.news_tx.clone(),
        )
    }

    /// The hour's name in messages: with its source when there are several.
    fn label(&self, job: &Job) -> String {
        let name = gharchive::file_name(job.hour);
        if self.archive.urls.len() > 1 {
            format!("{}{name}", self.names[job.url])
        } else {
            name
        }
    }
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
