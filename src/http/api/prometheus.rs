//! `GET /metrics`: the Prometheus text exposition (see `telemetry`), where a
//! Prometheus scrape config expects it by default.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::http::error::AppError;
use crate::telemetry::{self, DatabaseGauges};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(exposition))
}

/// Prometheus metrics of the poller, retention and the HTTP API.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String))
)]
async fn exposition(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let now = chrono::Utc::now().timestamp();
    let (totals, hours, archive) = state
        .within_store_timeout(async {
            let last = now / 3600 - 1;
            Ok(tokio::try_join!(
                state.store.totals(),
                state.store.hour_coverage(crate::core::time::HourRange {
                    first: last - 47,
                    last,
                }),
                state.store.archive_summary(state.archive_lag_hours),
            )?)
        })
        .await?;
    let live_share_last_hour = hours.iter().rev().find(|h| h.settled).and_then(|hour| {
        let archive = hour.archive_events.total();
        let live = hour.live_events.total();
        (archive > 0).then(|| live as f64 / archive as f64)
    });
    let database = DatabaseGauges {
        newest_event_at: totals.newest_event_at,
        stored_events: totals.events,
        following: state.follow.as_ref().and_then(|status| {
            let status = status.lock().ok()?;
            Some((
                status.newest_hour,
                status.hours_behind,
                status.given_up.len(),
            ))
        }),
        live_share_last_hour,
        archive,
    };
    let text = state
        .telemetry
        .render(&database, chrono::Utc::now().timestamp());
    Ok(([(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)], text))
}
