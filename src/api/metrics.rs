//! `GET /metrics/...`: the four metrics, each one SQL query (see `db::metrics`).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use super::params::QueryParams;
use crate::app::AppState;
use crate::chart;
use crate::db::{self, EventCounts};
use crate::error::AppError;

/// The chart's window when `offset_minutes` is not given.
const DEFAULT_CHART_WINDOW_MINUTES: i64 = 60;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/metrics/average-pr-time", get(average_pr_time))
        .route("/metrics/event-counts", get(event_counts))
        .route("/metrics/pr-counts", get(pr_counts))
        .route("/metrics/visualization", get(visualization))
}

#[derive(Serialize)]
struct AveragePrTime {
    repo_name: String,
    /// Mean seconds between consecutive PR openings; null with fewer than two.
    average_seconds: Option<f64>,
    /// PR openings found.
    pr_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

async fn average_pr_time(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Json<AveragePrTime>, AppError> {
    let repo_name = params.required_text("repo_name")?.to_owned();
    let repo = repo_name.clone();
    let summary = state
        .db
        .run(move |conn| db::average_pr_gap(conn, &repo))
        .await?;
    let message = summary.average_seconds.is_none().then(|| {
        format!(
            "Only {} PR event(s) found. At least 2 are required.",
            summary.openings
        )
    });
    Ok(Json(AveragePrTime {
        repo_name,
        average_seconds: summary.average_seconds,
        pr_count: summary.openings,
        message,
    }))
}

/// Epoch second `offset_minutes` before `now`; 422 when that is not a representable time.
fn window_start(offset_minutes: i64, now: DateTime<Utc>) -> Result<i64, AppError> {
    chrono::Duration::try_minutes(offset_minutes)
        .and_then(|window| now.checked_sub_signed(window))
        .map(|start| start.timestamp())
        .ok_or_else(|| AppError::InvalidParameter("offset_minutes is too large".to_owned()))
}

async fn counts_since(state: &AppState, offset_minutes: i64) -> Result<EventCounts, AppError> {
    let since = window_start(offset_minutes, Utc::now())?;
    Ok(state
        .db
        .run(move |conn| db::event_counts(conn, since))
        .await?)
}

async fn event_counts(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Json<EventCounts>, AppError> {
    let offset_minutes = params.required_positive_integer("offset_minutes")?;
    Ok(Json(counts_since(&state, offset_minutes).await?))
}

/// Repository -> PR count, serialized as a JSON object in rank order.
struct RankedCounts(Vec<(String, u64)>);

impl Serialize for RankedCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (repo, count) in &self.0 {
            map.serialize_entry(repo, count)?;
        }
        map.end()
    }
}

async fn pr_counts(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<Json<RankedCounts>, AppError> {
    let limit = params.positive_integer("limit")?.map(|n| n as u64);
    let counts = state.db.run(move |conn| db::pr_counts(conn, limit)).await?;
    Ok(Json(RankedCounts(counts)))
}

async fn visualization(
    State(state): State<AppState>,
    params: QueryParams,
) -> Result<impl IntoResponse, AppError> {
    let offset_minutes = params
        .positive_integer("offset_minutes")?
        .unwrap_or(DEFAULT_CHART_WINDOW_MINUTES);
    let counts = counts_since(&state, offset_minutes).await?;
    let window = chart::describe_window(offset_minutes);
    let span = tracing::Span::current();
    let png = tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        chart::render_event_counts(&counts, &window)
    })
    .await??;
    Ok(([(header::CONTENT_TYPE, "image/png")], png))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_start_rejects_unrepresentable_offsets() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(window_start(1, now).unwrap(), 1_700_000_000 - 60);
        assert_eq!(
            window_start(10_000_000, now).unwrap(),
            1_700_000_000 - 600_000_000
        );
        assert!(window_start(i64::MAX, now).is_err());
        assert!(window_start(i64::MAX / 60, now).is_err());
    }
}
