//! `GET /metrics`: the Prometheus text exposition (see `telemetry`), where a
//! Prometheus scrape config expects it by default.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::app::AppState;
use crate::db::newest_event_at;
use crate::error::AppError;
use crate::telemetry;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(exposition))
}

async fn exposition(State(state): State<AppState>) -> Result<impl IntoResponse, AppError> {
    let newest = state.db.run(|conn| newest_event_at(conn)).await?;
    let text = state
        .telemetry
        .render(newest, chrono::Utc::now().timestamp());
    Ok(([(header::CONTENT_TYPE, telemetry::CONTENT_TYPE)], text))
}
