//! GH Archive's hours: which files a range names (`2015-01-01`,
//! `2015-01-01T05`, `START..END`), where each lives
//! (`URL/YYYY-MM-DD-H.json.gz`), and each body streamed as a blocking
//! [`Read`] for the importer, downloaded ahead on a runtime of its own.

use std::io::{self, Read};
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use reqwest::{StatusCode, Url};

use crate::core::time::SECONDS_PER_HOUR;

/// GH Archive itself.
pub const DEFAULT_URL: &str = "https://data.gharchive.org/";

/// The longest range one import takes: ten years of hours.
pub const MAX_HOURS: i64 = 10 * 366 * 24;

pub use crate::core::time::HourRange;

/// One side of a range: a whole day (`YYYY-MM-DD`) or one hour
/// (`YYYY-MM-DDTHH`), as `(first hour, last hour)`.
fn parse_side(text: &str) -> Result<(i64, i64), String> {
    let hint = "expected YYYY-MM-DD (a UTC day) or YYYY-MM-DDTHH (an hour)";
    let date = |day: &str| {
        if day.len() != 10 {
            return Err(format!("{text:?}: {hint}"));
        }
        NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| {
            // In the form, but not a day of the calendar: say which part.
            let part = |range: std::ops::Range<usize>| day.get(range)?.parse::<u32>().ok();
            match (part(0..4), part(5..7), part(8..10)) {
                (Some(_), Some(month), _) if !(1..=12).contains(&month) => {
                    format!("{text:?}: there is no month {month} (01 to 12)")
                }
                (Some(_), Some(_), Some(day_of_month)) => {
                    format!("{text:?}: that month has no day {day_of_month}")
                }
                _ => format!("{text:?}: {hint}"),
            }
        })
    };
    if let Some((day, hour)) = text.split_once('T') {
        let day = date(day)?;
        let hour: u32 = (hour.len() == 2)
            .then(|| hour.parse().ok())
            .flatten()
            .filter(|h| *h < 24)
            .ok_or_else(|| format!("{text:?}: the hour must be 00 to 23; {hint}"))?;
        let at = day
            .and_hms_opt(hour, 0, 0)
            .ok_or_else(|| format!("{text:?}: {hint}"))?;
        let hour = at.and_utc().timestamp() / SECONDS_PER_HOUR;
        Ok((hour, hour))
    } else {
        let day = date(text)?;
        let first = NaiveDateTime::from(day).and_utc().timestamp() / SECONDS_PER_HOUR;
        Ok((first, first + 23))
    }
}

impl FromStr for HourRange {
    type Err = String;

    /// `DAY`, `DAY THH`, or `START..END` with either form on each side,
    /// inclusive; from 2011-02-12 (GH Archive's first hour) to 2100.
    fn from_str(text: &str) -> Result<Self, String> {
        let (first, last) = match text.split_once("..") {
            Some((start, end)) => (parse_side(start)?.0, parse_side(end)?.1),
            None => parse_side(text)?,
        };
        if last < first {
            return Err(format!("{text:?}: the range ends before it starts"));
        }
        let earliest = 1_297_468_800 / SECONDS_PER_HOUR; // 2011-02-12T00
        let latest = crate::core::time::END_OF_TIME / SECONDS_PER_HOUR;
        if first < earliest || last >= latest {
            return Err(format!(
                "{text:?}: GH Archive holds hours from 2011-02-12 on (and this reads none past 2099)"
            ));
        }
        if last - first + 1 > MAX_HOURS {
            return Err(format!(
                "{text:?}: {} hours; at most {MAX_HOURS} (ten years) in one import",
                last - first + 1
            ));
        }
        Ok(HourRange { first, last })
    }
}

/// GH Archive's name for `hour`: `YYYY-MM-DD-H.json.gz`, `H` without a leading zero.
pub fn file_name(hour: i64) -> String {
    let at = DateTime::from_timestamp(hour * SECONDS_PER_HOUR, 0).unwrap_or_default();
    format!("{}-{}.json.gz", at.format("%Y-%m-%d"), at.format("%-H"))
}

/// Where `hour` is under `base` (which should end in `/`).
pub fn hour_url(base: &Url, hour: i64) -> Result<Url, String> {
    base.join(&file_name(hour))
        .map_err(|error| format!("{base}: {error}"))
}

/// Why the download of one hour has no body.
#[derive(Debug)]
pub enum Unavailable {
    /// 404: GH Archive does not have this hour (it has such holes).
    Missing,
    /// Anything else worth another try (5xx, 429, timeouts, resets, an
    /// hour that did not end in time), with why.
    Retry(String),
    /// No connection at all (a name that does not resolve, a refused
    /// connection), with why: with no hour read yet, none will be.
    Unreachable(String),
    /// Not worth another try (another 4xx), with why.
    Failed(String),
}

/// Pieces of a body queued between the download and the reader (each as
/// the connection delivered it, usually 8 to 64 KiB): about a megabyte per
/// hour downloading ahead, so memory stays flat whatever the range.
const QUEUE_PIECES: usize = 32;

/// An hour's body as a blocking [`Read`]: the bytes a download task sends.
/// A failure mid-body (a reset, a timeout, a body cut short) is a read error.
#[derive(Debug)]
pub struct HourBody {
    pieces: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for HourBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.pieces.blocking_recv() {
                Some(Ok(piece)) => self.current = piece,
                Some(Err(error)) => return Err(error),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Downloads GH Archive hours on the process's runtime: each
/// [`Downloader::start_after`] begins one, in the background, for a blocking
/// thread to read.
pub struct Downloader {
    runtime: tokio::runtime::Handle,
    client: reqwest::Client,
    /// The longest one try at an hour may take, from its request to its
    /// body's end (a mirror that sends a byte a second never times out
    /// otherwise).
    hour_deadline: Duration,
}

impl Downloader {
    /// `timeout`: the longest wait for a connection, an answer or the next
    /// piece of a body; `hour_deadline`: for one try at an hour in all.
    pub fn new(
        runtime: tokio::runtime::Handle,
        timeout: Duration,
        hour_deadline: Duration,
    ) -> io::Result<Downloader> {
        crate::ingest::github::client::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("ghmetrics/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build()
            .map_err(io::Error::other)?;
        Ok(Downloader {
            runtime,
            client,
            hour_deadline,
        })
    }

    /// Starts downloading `url` once `delay` has passed; the answer's start
    /// comes with [`Pending::wait`].
    pub fn start_after(&self, url: Url, delay: Duration) -> Pending {
        let (pieces_tx, pieces) = tokio::sync::mpsc::channel(QUEUE_PIECES);
        let client = self.client.clone();
        let (head_tx, head) = tokio::sync::oneshot::channel();
        let hour_deadline = self.hour_deadline;
        self.runtime.spawn(async move {
            tokio::time::sleep(delay).await;
            let deadline = tokio::time::Instant::now() + hour_deadline;
            let late = || format!("the hour did not end within {hour_deadline:?}");
            let response = match tokio::time::timeout_at(deadline, client.get(url).send()).await {
                Ok(Ok(response)) => response,
                Ok(Err(error)) if error.is_connect() => {
                    let _ = head_tx.send(Err(Unavailable::Unreachable(transport_problem(&error))));
                    return;
                }
                Ok(Err(error)) => {
                    let _ = head_tx.send(Err(Unavailable::Retry(transport_problem(&error))));
                    return;
                }
                Err(_) => {
                    let _ = head_tx.send(Err(Unavailable::Retry(late())));
                    return;
                }
            };
            let status = response.status();
            if status == StatusCode::NOT_FOUND {
                let _ = head_tx.send(Err(Unavailable::Missing));
                return;
            }
            if !status.is_success() {
                let why = format!("HTTP {status}");
                let retry = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                let _ = head_tx.send(Err(if retry {
                    Unavailable::Retry(why)
                } else {
                    Unavailable::Failed(why)
                }));
                return;
            }
            let expected = response.content_length();
            if head_tx
                .send(Ok(HourBody {
                    pieces,
                    current: Bytes::new(),
                }))
                .is_err()
            {
                return;
            }
            let mut response = response;
            let mut received = 0u64;
            loop {
                let Ok(chunk) = tokio::time::timeout_at(deadline, response.chunk()).await else {
                    let _ = pieces_tx
                        .send(Err(io::Error::new(io::ErrorKind::TimedOut, late())))
                        .await;
                    break;
                };
                let piece = match chunk {
                    Ok(Some(piece)) => Ok(piece),
                    Ok(None) => match expected {
                        Some(length) if received < length => Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("the body ended after {received} of {length} bytes"),
                        )),
                        _ => break,
                    },
                    Err(error) => Err(io::Error::other(transport_problem(&error))),
                };
                let failed = piece.is_err();
                if let Ok(piece) = &piece {
                    received += piece.len() as u64;
                }
                if pieces_tx.send(piece).await.is_err() || failed {
                    break;
                }
            }
        });
        Pending { head }
    }
}

/// A download whose answer has not been looked at yet.
pub struct Pending {
    head: tokio::sync::oneshot::Receiver<Result<HourBody, Unavailable>>,
}

impl Pending {
    /// Waits (blocking) for the answer's start: 200's body as it arrives,
    /// or why there is none.
    pub fn wait(self) -> Result<HourBody, Unavailable> {
        self.head
            .blocking_recv()
            .unwrap_or_else(|_| Err(Unavailable::Retry("the download stopped".to_owned())))
    }
}

/// A transport failure in words, without the URL (which could carry credentials).
fn transport_problem(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "no answer in time"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_body() || error.is_decode() {
        "the body broke off"
    } else {
        "the request failed"
    };
    let mut source = std::error::Error::source(error);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind} ({detail})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour_of(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp() / SECONDS_PER_HOUR
    }

    #[test]
    fn ranges_name_days_hours_and_spans_inclusively() {
        let range = |text: &str| text.parse::<HourRange>();
        let day = range("2015-01-01").unwrap();
        assert_eq!(day.first, hour_of("2015-01-01T00:00:00Z"));
        assert_eq!(day.len(), 24);
        let six = range("2015-01-01T00..2015-01-01T05").unwrap();
        assert_eq!(six.len(), 6);
        assert_eq!(range("2026-11-01..2026-11-07").unwrap().len(), 7 * 24);
        let one = range("2015-01-01T23").unwrap();
        assert_eq!((one.first, one.len()), (hour_of("2015-01-01T23:00:00Z"), 1));
        assert_eq!(
            range("2015-01-01T22..2015-01-02").unwrap().len(),
            2 + 24,
            "a day on the right ends with its last hour"
        );
        for bad in [
            "",
            "2015-1-1",
            "2015-01-01T5",
            "2015-01-01T24",
            "2015-01-01T05:00",
            "2015-01-02..2015-01-01",
            "2010-01-01",
            "2015-01-01..",
            "2000-01-01..2099-01-01",
            "yesterday",
        ] {
            assert!(range(bad).is_err(), "{bad:?}");
        }
        assert!(
            range("2012-01-01..2026-01-01")
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn hours_are_named_as_gh_archive_names_them() {
        assert_eq!(
            file_name(hour_of("2015-01-01T00:00:00Z")),
            "2015-01-01-0.json.gz"
        );
        assert_eq!(
            file_name(hour_of("2026-11-30T09:00:00Z")),
            "2026-11-30-9.json.gz"
        );
        assert_eq!(
            file_name(hour_of("2026-11-30T23:00:00Z")),
            "2026-11-30-23.json.gz"
        );
        let base: Url = "http://127.0.0.1:1/mirror/".parse().unwrap();
        assert_eq!(
            hour_url(&base, hour_of("2015-01-01T05:00:00Z"))
                .unwrap()
                .as_str(),
            "http://127.0.0.1:1/mirror/2015-01-01-5.json.gz"
        );
        // Every hour's name reads back as that hour.
        for hour in [0, 1, hour_of("2024-02-29T13:00:00Z")] {
            assert_eq!(
                crate::ingest::import::archive_hour(&file_name(hour)),
                Some(hour)
            );
        }
    }
}
