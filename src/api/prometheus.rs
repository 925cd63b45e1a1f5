//! `GET /metrics`: the Prometheus text exposition (see `telemetry`), where a
//! Prometheus scrape config expects it by default.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::error::AppError;
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
    let totals = super::cache::bounded(&state, async { Ok(state.store.totals().await?) }).await?;
    let database = DatabaseGauges {
        newest_event_at: totals.newest_event_at,
        stored_events: totals.events,
    };
    let text = state
        .telemetry
        .render(&database, chrono::Utc::now().timestamp());
    Ok(([(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)], text))
}
