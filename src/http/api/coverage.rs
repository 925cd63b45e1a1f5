//! `GET /coverage`: how complete each hour is, by event id. Per hour (by
//! `created_at`): the events the archives hold, how many of them the live
//! feeds had stored first, the live events no archive has, each archive
//! source's share, late arrivals, whether the hour is settled or suspect, and
//! how late the events in each archive file of that hour were.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::cache::{self, Answer, Key};
use super::params::{QueryParams, WindowParam};
use crate::core::event::EventType;
use crate::core::time::{HourRange, SECONDS_PER_DAY, SECONDS_PER_HOUR, Window, ceil_div};
use crate::http::error::{AppError, ErrorBody};
use crate::store::{FileRecord, HourCoverage, SourceId};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(coverage))
}

use crate::store::{SUSPECT_NEIGHBOURS, suspect_hours};

#[derive(Serialize, ToSchema)]
struct ArchiveCoverage {
    /// `--archive-lag`: hours after its own an archive may file an event.
    archive_lag_hours: i64,
    /// One entry per hour starting in the window that an archive holds
    /// events of, that is settled, or whose archive file was looked for; oldest first.
    hours: Vec<ArchiveHourShare>,
}

#[derive(Serialize, ToSchema)]
struct ArchiveHourShare {
    /// The hour's start (UTC); events by `created_at`.
    hour: DateTime<Utc>,
    /// Every archive file that can hold the hour's events has been read
    /// whole: answers up to its end are final (bar late arrivals).
    settled: bool,
    /// Fewer archive events than a tenth of the median of the 24 hours
    /// around it, or an archive source without this hour's file: likely a
    /// hole in the archive, not a quiet hour.
    suspect: bool,
    /// Tracked events of the hour that at least one archive file holds (by id).
    archive_events: u64,
    /// Of them, those the live feeds (global or watched) had stored before
    /// an archive brought them.
    live_events: u64,
    /// `live_events / archive_events` (never above 1); null when the
    /// archives hold none.
    share: Option<f64>,
    /// Tracked events the live feeds stored that no archive file holds: the
    /// archives' own misses.
    live_only: u64,
    /// Events stored after the hour was settled: an answer said to be final moved by them.
    late_arrivals: u64,
    /// The same per event type.
    by_type: BTreeMap<&'static str, TypeShare>,
    /// Per archive source (its URL or directory): of `archive_events`, how
    /// many its files hold, and that share.
    sources: BTreeMap<String, SourceShare>,
    /// The archive files named for this hour, per source: whether read or
    /// missing, and how late their events were.
    files: Vec<ArchiveFileLag>,
}

#[derive(Serialize, ToSchema)]
struct TypeShare {
    archive_events: u64,
    live_events: u64,
    share: Option<f64>,
    live_only: u64,
    late_arrivals: u64,
}

#[derive(Serialize, ToSchema)]
struct SourceShare {
    events: u64,
    share: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct ArchiveFileLag {
    /// The archive source (its URL or directory).
    source: String,
    /// The source answered that it does not have the file, after the hour
    /// and its lag had passed.
    missing: bool,
    /// Tracked events in the file.
    events: u64,
    /// The latest of its events: hours from an event's `created_at` hour to the file's.
    max_lag_hours: i64,
    /// Tracked events per lag in hours (`"0"`: created in the file's hour).
    #[schema(example = json!({"0": 51234, "1": 2210, "2": 37}))]
    lags: BTreeMap<String, u64>,
}

fn share(live: u64, archive: u64) -> Option<f64> {
    (archive > 0).then(|| live as f64 / archive as f64)
}

fn at(hour: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(hour * SECONDS_PER_HOUR, 0).unwrap_or_default()
}

fn lags(text: &str) -> BTreeMap<String, u64> {
    text.split_whitespace()
        .filter_map(|pair| {
            let (lag, events) = pair.split_once(':')?;
            Some((lag.to_owned(), events.parse().ok()?))
        })
        .collect()
}

fn hour_share(
    hour: &HourCoverage,
    suspect: bool,
    files: &[&FileRecord],
    source_name: &dyn Fn(SourceId) -> String,
) -> ArchiveHourShare {
    let archive_events = hour.archive_events.total();
    let live_events = hour.live_events.total();
    ArchiveHourShare {
        hour: at(hour.hour),
        settled: hour.settled,
        suspect,
        archive_events,
        live_events,
        share: share(live_events, archive_events),
        live_only: hour.live_only.total(),
        late_arrivals: hour.late_arrivals.total(),
        by_type: EventType::ALL
            .iter()
            .map(|&t| {
                let (archive, live) = (hour.archive_events[t], hour.live_events[t]);
                (
                    t.as_str(),
                    TypeShare {
                        archive_events: archive,
                        live_events: live,
                        share: share(live, archive),
                        live_only: hour.live_only[t],
                        late_arrivals: hour.late_arrivals[t],
                    },
                )
            })
            .collect(),
        sources: hour
            .by_source
            .iter()
            .map(|(source, counts)| {
                let events = counts.total();
                (
                    source_name(*source),
                    SourceShare {
                        events,
                        share: share(events, archive_events),
                    },
                )
            })
            .collect(),
        files: files
            .iter()
            .map(|f| ArchiveFileLag {
                source: source_name(f.source),
                missing: f.missing,
                events: f.events,
                max_lag_hours: f.max_lag,
                lags: lags(&f.lags),
            })
            .collect(),
    }
}

/// How complete each hour is: the archives against the live feeds, by event id.
///
/// For every hour (by `created_at`) whose start lies in the window and that
/// an archive holds events of, that is settled, or whose archive file was
/// looked for: the tracked events the archives hold (united by id over every
/// file read, from every source), how many of them the live feeds had
/// stored first and that share, the live events no archive holds, each
/// source's share, late arrivals, whether the hour is settled (answers up to
/// it are final) or suspect (a likely hole), and how late the events in the
/// hour's own archive files were. Live counts of the last hours are about
/// `share` of what the archives will show.
#[utoipa::path(
    get,
    path = "/coverage",
    tag = "metrics",
    params(
        ("offset_minutes" = Option<i64>, Query, description = "The window: the last N minutes (not with `from`/`to`); default the last day"),
        ("from" = Option<String>, Query, description = super::metrics::WINDOW_FROM),
        ("to" = Option<String>, Query, description = super::metrics::WINDOW_TO),
    ),
    responses(
        (status = 200, description = "The hours of the window with archive data, oldest first", body = ArchiveCoverage),
        (status = 422, description = "A window that breaks a rule above", body = ErrorBody),
    )
)]
async fn coverage(State(state): State<AppState>, params: QueryParams) -> Result<Answer, AppError> {
    let now = Utc::now().timestamp();
    let window = params.window(now)?.unwrap_or(WindowParam::Between {
        from: now - SECONDS_PER_DAY,
        to: None,
    });
    let stamp = super::metrics::stamp_for(&state, Some(window), now).await?;
    let key = Key {
        route: "coverage",
        params: window.key(),
    };
    cache::answer(&state, key, stamp, || async {
        let Window { from, to } = window.at(now);
        let to = to.min(now + SECONDS_PER_DAY);
        let (first, last) = (
            ceil_div(from, SECONDS_PER_HOUR),
            (to - 1).div_euclid(SECONDS_PER_HOUR),
        );
        // The neighbours of the window's edge hours too, for `suspect`.
        let around = HourRange {
            first: first - SUSPECT_NEIGHBOURS,
            last: last + SUSPECT_NEIGHBOURS,
        };
        let (hours, files, sources) = tokio::try_join!(
            state.store.hour_coverage(around),
            state.store.archive_files(HourRange { first, last }),
            state.store.archive_sources(Vec::new()),
        )?;
        let suspect = suspect_hours(&hours, &files);
        let source_name = |id: SourceId| {
            sources
                .iter()
                .find(|(s, _)| *s == id)
                .map_or_else(|| format!("source {id}"), |(_, name)| name.clone())
        };
        let mut listed: BTreeMap<i64, HourCoverage> = hours
            .into_iter()
            .filter(|h| (first..=last).contains(&h.hour))
            .map(|h| (h.hour, h))
            .collect();
        for file in &files {
            listed.entry(file.hour).or_insert_with(|| HourCoverage {
                hour: file.hour,
                ..HourCoverage::default()
            });
        }
        cache::json(&ArchiveCoverage {
            archive_lag_hours: state.archive_lag_hours,
            hours: listed
                .values()
                .map(|hour| {
                    let its_files: Vec<&FileRecord> =
                        files.iter().filter(|f| f.hour == hour.hour).collect();
                    hour_share(hour, suspect.contains(&hour.hour), &its_files, &source_name)
                })
                .collect(),
        })
    })
    .await
}

/// The share of the last day's archive events the live feeds had stored
/// first (for `/health`); `None` without any.
pub async fn last_day_share(state: &AppState, now: i64) -> Result<Option<f64>, AppError> {
    let last = now / SECONDS_PER_HOUR - 1;
    let hours = state
        .store
        .hour_coverage(HourRange {
            first: last - 23,
            last,
        })
        .await?;
    let archive: u64 = hours.iter().map(|h| h.archive_events.total()).sum();
    let live: u64 = hours.iter().map(|h| h.live_events.total()).sum();
    Ok(share(live, archive))
}
