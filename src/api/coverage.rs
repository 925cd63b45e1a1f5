//! `GET /coverage`: how much of reality the live feed sees, measured on every
//! complete GH Archive hour: the share of the hour's tracked events that the
//! poller had stored before the archive brought the rest.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::cache::{self, Answer, Key};
use super::params::{QueryParams, Window};
use crate::error::{AppError, ErrorBody};
use crate::event::EventType;
use crate::store::HourCoverage;
use crate::time_buckets::{SECONDS_PER_DAY, SECONDS_PER_HOUR, ceil_div};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(coverage))
}

#[derive(Serialize, ToSchema)]
struct ArchiveCoverage {
    /// One entry per complete archive hour starting in the window, oldest first.
    hours: Vec<ArchiveHourShare>,
}

#[derive(Serialize, ToSchema)]
struct ArchiveHourShare {
    /// The hour's start (UTC).
    hour: DateTime<Utc>,
    /// Tracked events in the hour's GH Archive file.
    archive_events: u64,
    /// Of them, those the live feeds (global or watched) had stored before
    /// the archive was imported.
    live_events: u64,
    /// `live_events / archive_events`; null when the file held none.
    share: Option<f64>,
    /// The same per event type.
    by_type: BTreeMap<&'static str, TypeShare>,
}

#[derive(Serialize, ToSchema)]
struct TypeShare {
    archive_events: u64,
    live_events: u64,
    share: Option<f64>,
}

fn share(live: u64, archive: u64) -> Option<f64> {
    (archive > 0).then(|| live as f64 / archive as f64)
}

impl From<&HourCoverage> for ArchiveHourShare {
    fn from(hour: &HourCoverage) -> Self {
        let archive_events = hour.archive_events.iter().sum();
        let live_events = hour.live_events.iter().sum();
        ArchiveHourShare {
            hour: DateTime::from_timestamp(hour.hour * SECONDS_PER_HOUR, 0).unwrap_or_default(),
            archive_events,
            live_events,
            share: share(live_events, archive_events),
            by_type: EventType::ALL
                .iter()
                .map(|t| {
                    let (archive, live) =
                        (hour.archive_events[t.index()], hour.live_events[t.index()]);
                    (
                        t.as_str(),
                        TypeShare {
                            archive_events: archive,
                            live_events: live,
                            share: share(live, archive),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The share of each complete archive hour's events the live feed had seen.
///
/// For every GH Archive hour imported whole (`import --gharchive`, `serve
/// --follow-gharchive`, or an hour's file imported) whose start lies in the
/// window: the tracked events of its file, those of them the poller had
/// stored before, and the share, in all and per type. Live counts of the
/// last hours are about that share of what the archive will show.
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
        (status = 200, description = "The complete archive hours of the window, oldest first", body = ArchiveCoverage),
        (status = 422, description = "A window that breaks a rule above", body = ErrorBody),
    )
)]
async fn coverage(State(state): State<AppState>, params: QueryParams) -> Result<Answer, AppError> {
    let now = Utc::now().timestamp();
    let window = params.window(now)?.unwrap_or(Window::Between {
        from: now - SECONDS_PER_DAY,
        to: None,
    });
    let stamp = super::metrics::stamp_for(&state, Some(window), now).await?;
    let key = Key {
        route: "coverage",
        params: window.key(),
    };
    cache::answer(&state, key, stamp, || async {
        let (from, to) = window.bounds(now);
        let to = to.min(now + SECONDS_PER_DAY);
        let (first, last) = (
            ceil_div(from, SECONDS_PER_HOUR),
            (to - 1).div_euclid(SECONDS_PER_HOUR),
        );
        let hours = state.store.hour_coverage(first, last).await?;
        cache::json(&ArchiveCoverage {
            hours: hours.iter().map(ArchiveHourShare::from).collect(),
        })
    })
    .await
}

/// The share of the last day's complete archive hours' events the live feed
/// had seen (for `/health`); `None` without such hours.
pub async fn last_day_share(state: &AppState, now: i64) -> Result<Option<f64>, AppError> {
    let last = now / SECONDS_PER_HOUR - 1;
    let hours = state.store.hour_coverage(last - 23, last).await?;
    let archive: u64 = hours.iter().flat_map(|h| h.archive_events).sum();
    let live: u64 = hours.iter().flat_map(|h| h.live_events).sum();
    Ok(share(live, archive))
}
